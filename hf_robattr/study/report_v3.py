"""The report sections of study v3 (:mod:`~hf_robattr.study.analysis_v3`): the claims on the co-primary measures, the
rules, and the checks that gate them."""

from __future__ import annotations

import math
from collections import Counter

from .analysis import Analysis
from .checks_v3 import CO_PRIMARY
from .report_tables import number, p_value, slope_text, table


__all__ = ["checks_sections_v3", "claims_section_v3", "rules_v3"]

CLAIMS_V3 = {
    1: "plain SGD makes gradient attributions robust",
    2: "the gain does not carry over to softmax attention attributions",
    3: "kernel attention restores it",
}


def _verdict(test) -> str:
    return f"**{test.verdict}**" + (f" ({test.untested})" if test.untested else "")


def claims_section_v3(analysis: Analysis) -> list[str]:
    """Per claim, a count of verdicts and one row per model, method and measure."""
    lines = ["## The claims (at this scale)", ""]
    for claim, text in CLAIMS_V3.items():
        tests = [c for c in analysis.claims if c.claim == claim]
        lines += [f"Claim {claim}: {text}.", ""]
        if not tests:
            lines += ["- No usable runs for this claim yet.", ""]
            continue
        for measure, _ in CO_PRIMARY:
            chosen = [t for t in tests if t.measure == measure]
            counts = Counter("untested" if t.untested and t.verdict == "inconclusive" else t.verdict for t in chosen)
            summary = ", ".join(f"{counts[v]} {v}" for v in ("supported", "contradicted", "inconclusive", "untested"))
            lines.append(f"- {measure}: {summary} (of {len(chosen)} model x method pairs).")
        lines.append("")
        rows = [
            [
                t.model,
                t.method,
                t.measure,
                _verdict(t),
                f"{number(t.estimate, 4, True)} [{number(t.ci[0], 4, True)}, {number(t.ci[1], 4, True)}]",
                number(t.margin, 4),
                p_value(t.p),
                number(t.power, 2),
                str(t.n),
            ]
            for t in tests
        ]
        header = ["model", "method", "measure", "verdict", "slope per doubling [95% CI]", "margin", "p (Holm)"]
        lines += table([*header, "power at the margin", "runs"], rows)
    lines += [
        "Slopes: each measure oriented so that higher = more robust (max-sensitivity negated), per doubling of lr/B, "
        "from cell means after seed effects (a cell random effect; degrees of freedom = cells - 2). Claim 3's "
        "estimate is the interaction (kernel slope - softmax slope).",
        "",
    ]
    return lines


def rules_v3(analysis: Analysis) -> list[str]:
    """The pre-registered rules of v3."""
    s = analysis.settings
    return [
        "## Pre-registered protocol",
        "",
        "Decision rules (fixed before the runs; simulated in `tests/study/test_rules_v3.py`). Two one-sided tests on "
        f"every slope at alpha {s.alpha:g}, Holm over the methods of one claim, model and measure: RISES (slope > 0) "
        "and SMALL (slope < margin).",
        "",
        "- Claim 1 (gradient methods, every model): *supported* when RISES rejects and SMALL does not; "
        "*contradicted* when SMALL rejects; else *inconclusive*.",
        "- Claim 2 (attention methods, softmax models): *supported* when SMALL rejects and the measure's positive "
        "control passed; *contradicted* when RISES rejects and SMALL does not; else *inconclusive*.",
        "- Claim 3 (attention methods, kernel vs softmax), only where claim 2 is supported: *supported* when the "
        "kernel slope passes claim 1's rule and the interaction is shown > 0; *contradicted* when the kernel slope is "
        "SMALL; else *inconclusive*.",
        "- Error rates of one test: a true slope <= 0 is called claim-1 supported or claim-2 contradicted at most "
        f"{s.alpha:g}; a true slope >= the margin is called claim-1 contradicted or claim-2 supported at most "
        f"{s.alpha:g}. With the cell spread these runs show, the simulated rates are in *Error rates* below.",
        "- Margin: a slope matters when over the grid's span of D doublings of lr/B it moves the measure by one "
        "seed-to-seed standard deviation (within cells, after seed effects): margin = run SD / D, per model, method "
        f"and measure; {s.margin:g} where the SD cannot be estimated.",
        "- Manipulation check: the log Hessian trace must fall with lr/B (one-sided, cell random effect); where it "
        "does not, every verdict of that model reads *untested: the treatment had no measurable effect*.",
        "- Positive control: a model scored at half the radius is a planted, more robust model (the attenuated "
        "classifier of `hf_robattr.robustness.controls`); claim 2's support needs the measure to detect it "
        "(one-sided paired t test over the runs).",
        "- Saturation: a measure the scoring flags as saturated in most of a model's runs is untested there.",
        "- Matched fit: a run counts when its training loss at the stop lies within the arm's band around the target; "
        "others are excluded and counted below.",
        "",
    ]


def _manipulation(analysis: Analysis) -> list[str]:
    rows = [
        [
            m.arm,
            m.attention_type,
            slope_text(m.trace),
            slope_text(m.top_eigenvalue),
            p_value(m.p),
            "**passed**" if m.passed else f"failed ({m.reason})",
        ]
        for m in analysis.v3.manipulation_check
    ]
    header = ["arm", "attention", "log Hessian trace per doubling", "log top eigenvalue", "p (falls)", "check"]
    return ["## Manipulation check: does curvature fall with lr/B?", "", *table(header, rows)]


def _fit(analysis: Analysis) -> list[str]:
    lines = ["## Matched fit", ""]
    for arm, counts in analysis.v3.fit_outcomes.items():
        if counts:
            lines.append(
                f"- {arm}: " + ", ".join(f"{n} {outcome}" for outcome, n in counts.items()) + " (main SGD runs)."
            )
    lines += ["", "The headline slope with the training loss at the stop (log, cell mean) as a covariate:", ""]
    rows = [
        [c.arm, c.attention_type, c.method, slope_text(c.plain), slope_text(c.adjusted)]
        for c in analysis.v3.covariate
        if c.measure == analysis.settings.headline_measure
    ]
    return lines + table(["arm", "attention", "method", "slope", "slope adjusted for the loss at the stop"], rows)


def _controls_and_margins(analysis: Analysis) -> list[str]:
    rows = [
        [
            c.arm,
            c.attention_type,
            c.method,
            c.measure,
            number(c.gain, 4, True),
            number(c.margin_span, 4),
            p_value(c.p),
            str(c.n),
            "**passed**" if c.passed else "failed",
        ]
        for c in analysis.v3.positive_controls
    ]
    header = ["arm", "attention", "method", "measure", "gain at half the radius", "margin x span", "p", "runs"]
    lines = ["## Positive controls (a planted, more robust model)", "", *table([*header, "control"], rows)]
    margins = [
        [
            m.arm,
            m.attention_type,
            m.method,
            m.measure,
            number(m.run_sd, 4),
            number(m.doublings, 1),
            number(m.margin, 4),
        ]
        for m in analysis.v3.margins
    ]
    header = ["arm", "attention", "method", "measure", "seed-to-seed SD", "doublings", "margin"]
    return [*lines, "## Margins", "", *table(header, margins)]


def _lack_of_fit(analysis: Analysis) -> list[str]:
    rows = [
        [
            r.arm,
            r.attention_type,
            r.method,
            r.measure,
            f"F = {number(r.test.f, 2)} on ({r.test.df_lack}, {r.test.df_pure})",
            p_value(r.test.p),
            slope_text(r.lr) if r.lr is not None else "",
            slope_text(r.batch) if r.batch is not None else "",
        ]
        for r in analysis.v3.lack_of_fit
    ]
    rejected = sum(r.test.rejects(analysis.settings.alpha) for r in analysis.v3.lack_of_fit)
    header = ["arm", "attention", "method", "measure", "lack of fit", "p", "log2 lr slope", "log2 B slope"]
    text = (
        f"The line in log2(lr/B) is rejected in {rejected} of {len(rows)} series (alpha {analysis.settings.alpha:g});"
    )
    text += " there lr and B are reported separately (under the lr/B line they are b and -b)."
    return ["## Lack of fit of the line in log2(lr/B)", "", text, "", *table(header, rows)]


def _error_rates(analysis: Analysis) -> list[str]:
    rows = []
    for e in analysis.v3.error_rates:
        rates = ", ".join(f"{verdict} {number(share, 3)}" for verdict, share in e.rates.items())
        truth = "0" if e.true_slope == 0 else f"margin ({number(e.true_slope, 4)})"
        rows.append([e.arm, e.attention_type, e.rule, truth, number(e.cell_sd, 4), number(e.run_sd, 4), rates])
    simulations = analysis.v3.error_rates[0].simulations if rows else 0
    text = (
        f"Each rule replayed on {simulations} simulated studies with the model's own cells and seeds, at the cell and "
        "run spread its headline measure shows (Monte Carlo standard error of a rate near 0.05: "
        f"{number(math.sqrt(0.05 * 0.95 / max(simulations, 1)), 3)}). The errors to read: *supported* at a true "
        "slope of 0 for claim 1, *contradicted* at the margin for claim 1, and the mirror image for claim 2."
    )
    header = ["arm", "attention", "rule", "true slope", "cell SD", "run SD", "verdicts"]
    return ["## Error rates at the spread these runs show", "", text, "", *table(header, rows)]


def checks_sections_v3(analysis: Analysis) -> list[str]:
    """The sections of v3's checks, in the order a reader needs them."""
    if analysis.v3 is None:
        return []
    saturated = analysis.v3.saturated
    lines = _manipulation(analysis) + _fit(analysis) + _controls_and_margins(analysis) + _lack_of_fit(analysis)
    lines += _error_rates(analysis)
    if saturated:
        lines += ["Read as untested (saturated): " + ", ".join(saturated) + ".", ""]
    return lines
