"""Render the study report (``report.md``) from an :class:`~hf_robattr.study.analysis.Analysis` alone, so that the
report re-rendered from ``results.json.gz`` is byte for byte the report rendered from the runs."""

from __future__ import annotations

import math
from collections.abc import Sequence

from .analysis import Analysis
from .claims import ClaimTest
from .protocol import ArmProtocol
from .report_tables import (
    claim_table,
    comparison_tables,
    curvature_table,
    decomposition_table,
    epsilon_table,
    estimate_with_ci,
    level_table,
    method_slope_table,
    number,
    p_value,
    precondition_table,
    saturation_table,
    table,
)
from .report_v3 import claims_section_v3, rules_v3
from .report_v3_checks import checks_sections_v3
from .results import EVAL_SET_RULE
from .stats import RESOLUTION


__all__ = ["CLAIMS", "render_report"]

CLAIMS = {
    1: "plain SGD makes gradient-based attributions robust (robustness rises with lr/B)",
    2: "the gain does not carry over to softmax attention-based attributions (no slope beyond the margin)",
    3: "kernel attention restores it (the kernel slope exceeds the softmax slope, and is positive)",
}


def _untested(test: ClaimTest) -> str:
    """The clause of a test that was not run (its slope is degenerate or has no estimate): the reason and the
    slope(s)."""
    if test.missing and not test.degenerate:
        return f"{test.verdict} for {test.method} ({test.missing}, so no test; {test.n} runs)"
    if test.claim == 3:
        slopes = f"kernel slope {number(test.slope.estimate, 4, True)}, softmax slope "
        slopes += number(test.reference_slope.estimate, 4, True)
    else:
        slopes = f"slope {number(test.estimate, 4, True)}"
    return f"{test.verdict} for {test.method} ({test.degenerate}, so no test: {slopes}; {test.n} runs)"


def _claim_sentence(claim: int, model: str, tests: Sequence[ClaimTest]) -> str:
    parts = []
    for test in tests:
        if test.untested:
            parts.append(_untested(test))
            continue
        text = f"{test.verdict} for {test.method} ({estimate_with_ci(test)}, p = {p_value(test.p)}"
        if test.verdict == "inconclusive":
            text += f"; power to detect {test.margin:g} per doubling: {number(test.power, 2)}"
            if claim == 2:
                text += f", chance of showing equivalence if the slope were 0: {number(test.power_equivalence, 2)}"
        parts.append(text + ")")
    return f"- **Claim {claim}, {model}**: " + "; ".join(parts) + "."


def _claims_section(analysis: Analysis) -> list[str]:
    s = analysis.settings
    lines = ["## The claims", ""]
    for claim, text in CLAIMS.items():
        tests = [c for c in analysis.claims if c.claim == claim]
        lines.append(f"Claim {claim}: {text}.")
        lines.append("")
        if not tests:
            lines += ["- No usable runs for this claim yet.", ""]
            continue
        for model in dict.fromkeys(t.model for t in tests):
            lines.append(_claim_sentence(claim, model, [t for t in tests if t.model == model]))
        lines.append("")
    lines += [
        f"Slopes are of {s.headline_measure} (higher = more robust) under the top-k attack at each arm's main radius, "
        f"per doubling of lr/B, over the usable plain-SGD runs (seed as a block). Margin {s.margin:g} per doubling, "
        f"alpha {s.alpha:g}, Holm over the methods of one claim and model. Claim 3's estimate is the interaction "
        "(kernel slope - softmax slope).",
        "",
        *claim_table(analysis.claims),
    ]
    if analysis.interactions:
        rows = [
            [
                i.family,
                i.method,
                f"{number(i.estimate, 4, True)} [{number(i.ci[0], 4, True)}, {number(i.ci[1], 4, True)}]",
                p_value(i.p),
                number(i.kernel.estimate, 4, True),
                number(i.softmax.estimate, 4, True),
            ]
            for i in analysis.interactions
        ]
        lines += ["Interaction (attention methods): kernel slope minus softmax slope.", ""]
        lines += table(
            ["arm", "method", "kernel - softmax [95% CI]", "p (Holm)", "kernel slope", "softmax slope"], rows
        )
    return lines


def _rules(analysis: Analysis) -> list[str]:
    s = analysis.settings
    return [
        "## Pre-registered protocol",
        "",
        "Decision rules (fixed before any run; each checked by simulation in `tests/study/test_claims.py`):",
        "",
        f"- Claim 1 (gradient methods, every model): *supported* when the slope is positive and its two-sided test "
        f"rejects 0 at {s.alpha:g} (Holm); *contradicted* when not supported and the slope is shown to be below "
        f"{s.margin:g} (one-sided, Holm); else *inconclusive*. Error rates: a true null is called supported at most "
        f"{s.alpha / 2:g} of the time; a true slope >= the margin is called contradicted at most {s.alpha:g}.",
        f"- Claim 2 (attention methods, softmax models): *supported* when two one-sided tests show |slope| < "
        f"{s.margin:g} (TOST, Holm); else *contradicted* when the slope is positive and significant (Holm); else "
        "*inconclusive* (with its power). A true |slope| >= the margin is called supported at most "
        f"{s.alpha:g} of the time.",
        "- Claim 3 (attention methods, kernel vs softmax of one arm): *supported* when the interaction and the kernel "
        "slope are both positive and significant (Holm, intersection-union); *contradicted* when not supported and "
        f"either is shown to be below the margin (one-sided at {s.alpha / 2:g} each); else *inconclusive*.",
        "- Degenerate measure (added after the first cpu runs, where four runs falling exactly on a line gave "
        "p = 2e-16): a slope whose runs do not vary within any seed (*no variation*) or lie exactly on a line (*no "
        "residual variation*: standard error 0, so every p-value would be 0) is not tested. Its verdict is "
        "*inconclusive* with that reason, and it counts in its Holm family as a test that does not reject; claim 3 "
        "is untested for a method when either attention type's slope is degenerate. Values equal to a relative "
        f"{RESOLUTION:g} count as equal (the measures are means of float32 scores).",
        f"- Degenerate attention: a run whose [CLS]-row coefficient of variation is below {s.min_cls_cv:g}, or whose "
        f"raw-attention evidence recall is less than {s.min_recall_gain:g} above chance; a cell is degenerate when "
        "most of its usable runs are. Degenerate cells are reported and left out of claims 2 and 3.",
        f"- Common evaluation set: {EVAL_SET_RULE}.",
        "- Matched fit: a run counts when its true training loss (eval mode, fixed training subset) at the stop is "
        "within the arm's tolerance of the target; others are listed below and excluded.",
        "",
    ]


def _fit_rule(p: ArmProtocol) -> str:
    """How the arm's runs end, in one sentence (v2's one-sided rule, v3's band, or a fixed budget)."""
    if p.fit_rule == "budget":
        return (
            f"Fixed budget: {p.budget_examples} training examples per run (max_steps = budget // B); the true "
            f"training loss on the first {p.fit_examples} training examples is recorded at the stop."
        )
    if p.fit_rule == "band":
        start = f" from {p.min_fit_examples} training examples on," if p.min_fit_examples else ""
        return (
            f"Matched fit (two-sided): the checkpoint whose true training loss on the first {p.fit_examples} "
            f"training examples is closest to {p.target_loss:g} (checked every {p.fit_every_examples} examples,"
            f"{start} rolled back past an overshoot), at most {p.max_epochs:g} epochs; a run outside "
            f"+-{p.fit_tolerance:.0%} of the target is excluded."
        )
    return (
        f"Matched fit: true training loss <= {p.target_loss:g} on the first {p.fit_examples} training examples, "
        f"checked every {p.fit_every_examples} examples, at most {p.max_epochs:g} epochs, tolerance "
        f"{p.fit_tolerance:.0%}."
    )


def truncation(layers: int | None) -> str:
    """What follows a pretrained checkpoint's name where it was truncated to its first ``layers`` encoder layers
    (:attr:`ArmProtocol.pretrained_layers`; ``None``: nothing)."""
    return "" if layers is None else f" truncated to its first {layers} encoder layer{'s' if layers > 1 else ''}"


def _arm_lines(protocol: ArmProtocol, grid: object) -> list[str]:
    p = protocol
    start = (
        f"AdamW warm start (lr {p.warm_start.learning_rate:g}, B {p.warm_start.batch_size}) to a training loss of {p.warm_start.target_loss:g}, "
        "one per attention type, shared by every cell"
        if p.warm_start
        else f"pretrained `{p.pretrained}`{truncation(p.pretrained_layers)}"
        if p.pretrained
        else "from scratch"
    )
    model = (
        f"{p.num_hidden_layers} layers, hidden {p.hidden_size}, {p.num_attention_heads} heads"
        if not p.pretrained
        else "the checkpoint's architecture"
    )
    size = f" ({p.dataset_size} examples)" if p.dataset_size else ""
    family = "ViT" if p.model == "vit" else "BERT"
    return [
        f"- **{p.arm}**: `{p.dataset}`{size}, {family} ({model}; kernel feature map `{p.kernel_feature_map}`), "
        f"{start}. Grid: SGD lr {list(grid.learning_rates)} x B {list(grid.batch_sizes)}, attention "
        f"{list(grid.attention_types)}, {grid.seeds} seed(s); AdamW (lr, B) = {grid.adamw}; baselines "
        f"{[name for name, _ in grid.baselines]} at (lr, B) = {grid.baseline_cell}.",
        f"  {_fit_rule(p)} Scoring: pool of {p.eval_pool} test examples; top-k attack ({p.attack_steps} steps x "
        f"{p.attack_restarts} restarts, k = {p.topk:g}) and a noise baseline (as many uniform draws as the attack "
        f"visits points) at epsilon {list(p.epsilons)} (main {p.main_epsilon:g}; "
        f"{'L-inf on pixels in ' + str(list(p.input_range)) if p.input_range else 'relative to each embedding'}); "
        f"methods {list(p.methods)} (all at the main radius, {list(p.sweep_methods)} at every radius; integrated "
        f"gradients with {p.ig_steps} steps on the first {p.ig_examples} examples); max-sensitivity over "
        f"{p.sensitivity_samples} draws; Hessian on {p.hessian_examples} training examples.",
    ]


def render_report(analysis: Analysis, figures: Sequence[str]) -> str:
    """The markdown of the report."""
    s = analysis.settings
    counts = analysis.status_counts
    stored = sum(counts.values())
    note = f" ({analysis.title_note})" if analysis.title_note else ""
    lines = [
        f"# Reproducing the paper's three claims: scale `{s.scale}`{note}",
        "",
        f"Runs stored: {stored} of {analysis.runs_expected}"
        + ("" if analysis.complete else " - **partial study: the numbers below cover only the stored runs**")
        + f". Status: {counts['ok']} ok, {counts['not_fit']} not fit (excluded), {counts['diverged']} diverged, "
        f"{counts['error']} errors.",
        "",
    ]
    if s.scale == "ci":
        lines += ["> Scale `ci` is a smoke test of the pipeline (tiny grid, few steps): its numbers mean nothing.", ""]
    if analysis.v3 is not None:  # study v3's rules and the checks that gate its claims
        lines += claims_section_v3(analysis) + rules_v3(analysis)
    else:
        lines += _claims_section(analysis) + _rules(analysis)
    lines += ["Arms:", ""]
    for protocol, grid in s.arms:
        lines += _arm_lines(protocol, grid)
    lines += [""]
    if analysis.start_points:
        lines += ["Start points:", ""]
        lines += [f"- {p['arm']}/{p['attention_type']}: {p['description']}" for p in analysis.start_points] + [""]
    lines += ["## Common evaluation sets", ""]
    lines += table(
        ["arm", "split", "pool", "common set", "models intersected"],
        [[e.arm, e.split, str(e.pool_size), str(e.size), str(e.models)] for e in analysis.eval_sets],
    )
    lines += ["## Attention preconditions (per cell, usable runs)", "", *precondition_table(analysis)]
    lines += [
        "## Every measure against lr/B, per method (main radius)",
        "",
        "Each entry: slope per doubling of lr/B [95% CI], p (no multiplicity correction: descriptive)."
        + (" Cell random effect: the line through the cell means after seed effects." if analysis.v3 else ""),
        "",
        *method_slope_table(analysis),
    ]
    lines += [
        "## Levels at the same k: top-k intersection over patches (usable SGD runs, main radius)",
        "",
        "Gradient maps summed over each ViT patch, attention maps as they are (one value per patch): the same k for "
        "both families, so levels compare across families (within a family, trends compare in every table).",
        "",
        *level_table(analysis),
        "## Radius sweep: attack, noise baseline, gap and label flips (usable SGD runs)",
        "",
        *epsilon_table(analysis),
    ]
    lines += ["## lr and B separated", "", *decomposition_table(analysis)]
    lines += ["## AdamW and explicit baselines against plain SGD", "", *comparison_tables(analysis)]
    lines += ["## Attack saturation", "", *saturation_table(analysis)]
    lines += ["## Curvature along lr/B (Hessian of the training loss)", "", *curvature_table(analysis)]
    lines += checks_sections_v3(analysis)
    lines += ["## Cells", "", *_cells(analysis)]
    lines += ["## Runs excluded or failed (kept, not dropped)", "", *_problems(analysis), ""]
    if figures:
        lines += ["## Figures", "", *[f"![{name}]({name})" for name in figures], ""]
    if analysis.timing:
        lines += ["## Timing", "", *[f"- {k}: {v}" for k, v in analysis.timing.items()], ""]
    return "\n".join(lines)


def _cells(analysis: Analysis) -> list[str]:
    rows = []
    for c in analysis.cells:
        protocol = analysis.settings.protocol(c.arm)
        means = [c.values.get(f"topk|{protocol.main_epsilon:g}|{m}|topk_intersection") for m in protocol.methods]
        flips = c.values.get(f"topk|{protocol.main_epsilon:g}|{protocol.methods[0]}|prediction_change_rate")
        rows.append(
            [
                c.arm,
                c.attention_type,
                c.label,
                f"{c.log2_strength:.2f}",
                f"{c.ok}/{c.not_fit}/{c.diverged}/{c.error}",
                c.accuracy.format(3),
                c.fit_loss.format(4),
            ]
            + [m.format(3) if m else "n/a" for m in means]
            + [flips.format(3) if flips else "n/a"]
        )
    methods = analysis.settings.arms[0][0].methods if analysis.settings.arms else ()
    header = [
        "arm",
        "attention",
        "cell",
        "log2(lr/B)",
        "ok/not fit/diverged/error",
        "test accuracy",
        "train loss at stop",
        *(f"{m} top-k" for m in methods),
        "label flips (first method)",
    ]
    return [
        "Means [95% CI] over usable runs, on the common evaluation set, top-k attack at the main radius. "
        "Method columns follow the first arm's methods; other arms with other methods list theirs in order.",
        "",
        *table(header, rows),
    ]


def _problems(analysis: Analysis) -> list[str]:
    lines = []
    for run in analysis.runs:
        if run.status != "ok":
            detail = (
                f": {run.error}"
                if run.error
                else (f" (loss at stop {number(run.fit_loss, 4)})" if math.isfinite(run.fit_loss) else "")
            )
            lines.append(f"- `{run.key}`: {run.status}{detail}")
    for c in analysis.cells:
        if c.degenerate:
            lines.append(
                f"- degenerate attention: {c.arm} {c.attention_type} `{c.label}` ({c.degenerate_runs} of "
                f"{c.ok} usable runs); left out of claims 2 and 3"
            )
    return lines or ["- None."]
