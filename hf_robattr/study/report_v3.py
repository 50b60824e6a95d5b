"""The claims and rules sections of the study v3 report (:mod:`~hf_robattr.study.analysis_v3`); the sections of
the checks that gate the claims are in :mod:`~hf_robattr.study.report_v3_checks`."""

from __future__ import annotations

from collections import Counter

from .analysis import Analysis
from .checks_v3 import CO_PRIMARY
from .claims import ClaimTest
from .report_tables import number, p_value, table
from .rules_v3 import VERDICTS_V3


__all__ = ["CLAIMS_V3", "claims_section_v3", "rules_v3", "verdict_text"]

CLAIMS_V3 = {
    1: "plain SGD makes gradient attributions robust (robustness rises with lr/B)",
    2: "the gain does not carry over to softmax attention attributions (no rise that matters)",
    3: "kernel attention restores it (the kernel slope rises, and by more than the softmax slope)",
}


def verdict_text(test: ClaimTest) -> str:
    """``**supported** at this scale``; an untested verdict with its reason (``**untested** at this scale: ...``),
    an inconclusive one with its note."""
    if test.verdict == "untested":
        return f"**untested** at this scale: {test.untested.removeprefix('untested: ')}"
    note = f" ({test.note.removeprefix('inconclusive: ')})" if test.note else ""
    return f"**{test.verdict}** at this scale{note}"


def _interval(estimate: float, ci: tuple[float, float]) -> str:
    return f"{number(estimate, 4, True)} [{number(ci[0], 4, True)}, {number(ci[1], 4, True)}]"


def _rows(tests: list[ClaimTest]) -> list[list[str]]:
    return [
        [
            t.model,
            t.method,
            verdict_text(t),
            _interval(t.estimate, t.ci),
            number(t.margin, 4),
            p_value(t.p),
            number(t.power, 2),
            str(t.n),
        ]
        for t in tests
    ]


def _header(alpha: float) -> list[str]:
    # a one-sided test at alpha rejects exactly where the two-sided (1 - 2 alpha) interval excludes its bound
    ci = f"{100 * (1 - 2 * alpha):g}% CI"
    return ["model", "method", "verdict", f"slope per doubling [{ci}]", "margin", "p (Holm)", "power", "runs"]


def claims_section_v3(analysis: Analysis) -> list[str]:
    """Per claim: the verdicts counted per co-primary measure, then one table per measure."""
    lines = ["## The claims (at this scale)", ""]
    for claim, text in CLAIMS_V3.items():
        tests = [c for c in analysis.claims if c.claim == claim]
        lines += [f"Claim {claim}: {text}.", ""]
        if not tests:
            lines += ["- No usable runs for this claim yet.", ""]
            continue
        for measure, _ in CO_PRIMARY:
            counts = Counter(t.verdict for t in tests if t.measure == measure)
            summary = ", ".join(f"{counts[v]} {v}" for v in VERDICTS_V3)
            lines.append(f"- {measure}: {summary} at this scale (of {sum(counts.values())} model x method pairs).")
        lines.append("")
        for measure, sign in CO_PRIMARY:
            chosen = [t for t in tests if t.measure == measure]
            if chosen:
                oriented = "" if sign > 0 else " (negated: higher = more robust)"
                lines += [f"{measure}{oriented}:", "", *table(_header(analysis.settings.alpha), _rows(chosen))]
    lines += [
        "Slopes: each measure oriented so that higher = more robust, per doubling of lr/B, the line through the cell "
        "means after seed effects (a cell random effect; degrees of freedom = cells - 2). Claim 3's estimate is the "
        "interaction (kernel slope - softmax slope); its p is the larger of the kernel slope's RISES and the "
        "interaction's, or the kernel slope's SMALL when contradicted. Claims 1 and 2 show the p of the claim's own "
        "test (claim 1: RISES; claim 2: SMALL), or of the test that contradicted it. Intervals: two-sided at "
        "1 - 2 x alpha, so that a one-sided test at alpha rejects where the interval excludes its bound (before "
        "Holm). Power: the chance that RISES rejects at a true "
        "slope of the margin (equal to the chance that SMALL rejects at a true slope of 0), one-sided at alpha / "
        "methods; claim 3: the product of the kernel slope's and the interaction's.",
        "",
    ]
    return lines


def rules_v3(analysis: Analysis) -> list[str]:
    """The pre-registered rules of v3."""
    s = analysis.settings
    a = f"{s.alpha:g}"
    return [
        "## Pre-registered protocol",
        "",
        "Decision rules (fixed before the runs; checked by simulation in `tests/study/test_rules_v3.py`). Only "
        "usable runs enter a claim: main plain-SGD runs with status ok (under the two-sided matched fit: inside the "
        "band). Co-primary measures: "
        + ", ".join(f"{m} ({'higher' if sign > 0 else 'lower'} = more robust)" for m, sign in CO_PRIMARY)
        + f", each with its own verdicts. Two one-sided t tests on every slope at alpha {a}: RISES (null slope <= 0) "
        "and SMALL (null slope >= margin), each Holm-adjusted over the methods of one claim, model and measure.",
        "",
        "- Claim 1 (gradient methods, every model): *supported* when RISES rejects and SMALL does not; "
        "*contradicted* when SMALL rejects; else *inconclusive*.",
        "- Claim 2 (attention methods, softmax models), the mirror image: *supported* when SMALL rejects and the "
        "method's positive control passed (without one, or with one that failed, it stays *inconclusive* and says "
        "so); *contradicted* when RISES rejects and SMALL does not; else *inconclusive*.",
        "- Claim 3 (attention methods, kernel vs softmax of one arm), tested only for methods whose claim 2 is "
        "supported on that measure (else *untested*, with the reason): *supported* when the kernel slope passes "
        "claim 1's rule and the interaction kernel - softmax is shown > 0 (one-sided, Holm); *contradicted* when the "
        "kernel slope is SMALL; else *inconclusive*.",
        f"- Guarantees per test (Holm only lowers them): a true slope <= 0 is called claim-1 supported or claim-2 "
        f"contradicted at most {a} of the time; a true slope >= the margin is called claim-1 contradicted or "
        f"claim-2 supported at most {a}; claim 3 is called supported with a true kernel slope or interaction <= 0 "
        f"at most {a}, and contradicted with a true kernel slope >= the margin at most {a}. These are exact for the "
        "cell-means t test on a balanced grid; the rates at the spread these runs show, with the margin estimated "
        "as below, are simulated in *Error rates*. Nothing bounds *inconclusive*: read it with its power.",
        "- Margin (a rule, not a number): a slope matters when over the grid's span of D doublings of lr/B it moves "
        "the measure by one seed-to-seed standard deviation (within cells, after seed effects, pooled over the "
        "model's cells): margin = run SD / D, per model, method and measure (values under *Margins*); "
        f"{s.margin:g} where the SD cannot be estimated. The seed-to-seed spread is what retraining the same cell "
        "shows; the cell-to-cell spread is left out (the cell random effect already charges it to the slope's "
        "standard error, and a margin that grew with it would make a noisier grid easier to call small).",
        "- Manipulation check: the log Hessian trace must be shown to fall with lr/B (one-sided, cell random "
        f"effect, alpha {a}) on each model's usable runs; where it is not (or cannot be tested), every verdict of "
        "that model reads *untested: the treatment had no measurable effect*; claim 3 needs both models' checks.",
        "- Positive control: scoring a model at s times the radius is scoring the planted model g(x) = f(c + s(x - "
        "c)) at the radius (the attenuated classifier of `hf_robattr.robustness.controls`), at least as robust by "
        "construction; per attention method and measure scored at both radii, the paired gain must be shown > 0 "
        "(one-sided t test over the model's runs). Claim 2's support needs it.",
        "- Attention preconditions: a model trained from an untrained start is judged against the same-seed "
        f"untrained model (paired): its attention is degenerate unless its last-layer [CLS]-row entropy ratio is at "
        f"least {s.min_entropy_drop:g} lower and (where the pool marks evidence) raw attention's evidence recall at "
        f"least {s.min_recall_gain:g} higher; an untrained model fails it. A model fine-tuned from a pretrained "
        "checkpoint, whose attention was trained before the run began, or a run stored without its starting model's "
        "checks, is judged by v2's absolute rule ([CLS]-row coefficient of variation >= "
        f"{s.min_cls_cv:g}, evidence recall >= chance + {s.min_recall_gain:g}). A cell is degenerate when most of "
        "its usable runs are; degenerate cells are listed under *Attention preconditions* and left out of claims 2 "
        "and 3.",
        "- Saturation: a measure the scoring flags as saturated in most of a model's usable runs is *untested: "
        "saturated* there.",
        "- Fit covariate: the slope of the cell means with the cell mean of log(training loss at the stop) as a "
        "second regressor (cells - 3 degrees of freedom), reported beside each slope; the fixed-budget arm is "
        "analysed by the same rules and set beside its matched-fit twin.",
        "- Lack of fit: the F test of the line in log2(lr/B) against one mean per cell (pure error within cells, "
        "after seed effects); where it rejects, the lr and B slopes are reported separately.",
        "",
    ]
