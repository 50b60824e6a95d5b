"""Markdown tables of the study report, each built from the :class:`~hf_robattr.study.analysis.Analysis`."""

from __future__ import annotations

import math
from collections.abc import Sequence

from .analysis import MEASURE_SIGNS, SLOPE_MEASURES, Analysis
from .claims import ClaimTest
from .measure import value_key
from .stats import MeanCI, Slope, mean_ci
from .summaries import sgd_runs


__all__ = [
    "claim_table",
    "comparison_tables",
    "curvature_table",
    "decomposition_table",
    "epsilon_table",
    "level_table",
    "method_slope_table",
    "precondition_table",
    "saturation_table",
    "table",
]

SIGN_WORDS = {1: "higher = more robust", -1: "higher = less robust"}


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A markdown table (``_(no rows)_`` when empty), followed by a blank line."""
    if not rows:
        return ["_(no rows)_", ""]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return [*lines, *("| " + " | ".join(row) + " |" for row in rows), ""]


def number(value: float, digits: int = 3, sign: bool = False) -> str:
    """A float, or ``n/a``."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def p_value(value: float) -> str:
    """A p-value with two significant digits, or ``n/a``."""
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.2g}"


def slope_text(slope: Slope, digits: int = 4) -> str:
    """``+0.0123 [+0.0040, +0.0206], p = 0.004``."""
    if not slope.valid:
        return f"n/a (n = {slope.n})"
    low, high = slope.ci()
    return (
        f"{number(slope.estimate, digits, True)} [{number(low, digits, True)}, {number(high, digits, True)}], "
        f"p = {p_value(slope.p_value)}"
    )


def claim_table(claims: Sequence[ClaimTest]) -> list[str]:
    """One row per claim test."""
    rows = []
    for c in claims:
        extra = f"; TOST power {number(c.power_equivalence, 2)}" if c.claim == 2 else ""
        rows.append(
            [
                str(c.claim),
                c.model,
                c.method,
                f"**{c.verdict}**",
                f"{number(c.estimate, 4, True)} [{number(c.ci[0], 4, True)}, {number(c.ci[1], 4, True)}]",
                p_value(c.p),
                f"{number(c.power, 2)}{extra}",
                str(c.n),
            ]
        )
    header = [
        "claim",
        "model",
        "method",
        "verdict",
        "slope per doubling of lr/B [95% CI]",
        "p (Holm)",
        "power at the margin",
        "runs",
    ]
    return table(header, rows)


def precondition_table(analysis: Analysis) -> list[str]:
    """Attention preconditions per cell (main runs)."""
    rows = []
    for c in analysis.cells:
        chance = number(c.evidence_chance, 3)
        rows.append(
            [
                c.arm,
                c.attention_type,
                c.label,
                c.cls_entropy_ratio.format(3),
                c.cls_cv.format(3),
                c.evidence_recall.format(3),
                chance,
                f"{c.degenerate_runs}/{c.ok}",
                "**yes**" if c.degenerate else "no",
            ]
        )
    header = [
        "arm",
        "attention",
        "cell",
        "[CLS] entropy / log N",
        "[CLS] coeff. of variation",
        "evidence recall (raw attention)",
        "chance",
        "degenerate runs",
        "degenerate cell",
    ]
    return table(header, rows)


def method_slope_table(analysis: Analysis) -> list[str]:
    """Slopes of every measure at the main radius, per model and method."""
    index = {(r.arm, r.attention_type, r.method, r.measure, r.epsilon, r.attack): r.slope for r in analysis.slopes}
    rows = []
    for protocol, grid in analysis.settings.arms:
        for attention in grid.attention_types:
            for method in protocol.methods:
                cells = [
                    index.get((protocol.arm, attention, method, m, protocol.main_epsilon, "topk"))
                    for m in SLOPE_MEASURES
                ]
                gap = index.get((protocol.arm, attention, method, "topk_intersection", protocol.main_epsilon, "gap"))
                if all(c is None for c in cells):
                    continue
                rows.append(
                    [protocol.arm, attention, method]
                    + ["" if c is None else slope_text(c) for c in cells]
                    + ["" if gap is None else slope_text(gap)]
                )
    header = [
        "arm",
        "attention",
        "method",
        *(f"{m} ({SIGN_WORDS[MEASURE_SIGNS[m]]})" for m in SLOPE_MEASURES),
        "top-k attack - noise gap (more negative = attack beats noise more)",
    ]
    return table(header, rows)


def level_table(analysis: Analysis) -> list[str]:
    """Top-k intersection levels at the same k over patches: gradient maps pooled to the ViT's patches beside the
    attention maps (native patch resolution), mean over the usable SGD runs of each model, main radius."""
    rows = []
    for protocol, grid in analysis.settings.arms:
        if protocol.model != "vit":
            continue
        for attention in grid.attention_types:
            sgd = sgd_runs(analysis.runs, protocol.arm, attention)
            if not sgd:
                continue
            cells = []
            for method in protocol.methods:
                measure = "patch_topk_intersection" if method in protocol.gradient_methods else "topk_intersection"
                key = value_key("topk", protocol.main_epsilon, method, measure)
                cells.append(_mean([r.values.get(key, math.nan) for r in sgd]))
            rows.append([protocol.arm, attention, *cells])
    methods = analysis.settings.arms[0][0].methods if analysis.settings.arms else ()
    return table(["arm", "attention", *methods], rows)


def epsilon_table(analysis: Analysis) -> list[str]:
    """The radius sweep: mean over the usable SGD runs of the top-k intersection under attack and noise, their gap
    and the label-flip rate, and the slope of the gap against lr/B."""
    index = {(r.arm, r.attention_type, r.method, r.epsilon, r.attack, r.measure): r.slope for r in analysis.slopes}
    rows = []
    for protocol, grid in analysis.settings.arms:
        for attention in grid.attention_types:
            sgd = sgd_runs(analysis.runs, protocol.arm, attention)
            if not sgd:
                continue
            for method in protocol.sweep_methods:
                for eps in protocol.epsilons:
                    attack = value_key("topk", eps, method, "topk_intersection")
                    noise = value_key("noise", eps, method, "topk_intersection")
                    flips = value_key("topk", eps, method, "prediction_change_rate")
                    gap = index.get((protocol.arm, attention, method, eps, "gap", "topk_intersection"))
                    rows.append(
                        [
                            protocol.arm,
                            attention,
                            method,
                            f"{eps:g}",
                            _mean([r.values.get(attack, math.nan) for r in sgd]),
                            _mean([r.values.get(noise, math.nan) for r in sgd]),
                            _mean([r.values.get(attack, math.nan) - r.values.get(noise, math.nan) for r in sgd]),
                            _mean([r.values.get(flips, math.nan) for r in sgd]),
                            "" if gap is None else slope_text(gap),
                        ]
                    )
    header = [
        "arm",
        "attention",
        "method",
        "epsilon",
        "top-k attack",
        "noise",
        "attack - noise",
        "label-flip rate (attack)",
        "slope of the gap on log2(lr/B)",
    ]
    return table(header, rows)


def _mean(values: Sequence[float]) -> str:
    finite = [v for v in values if math.isfinite(v)]
    return MeanCI(math.nan, math.nan, math.nan, 0).format() if not finite else _ci(finite)


def _ci(values: Sequence[float]) -> str:
    return mean_ci(values).format(3)


def decomposition_table(analysis: Analysis) -> list[str]:
    """lr and B separated, per model and method."""
    rows = [
        [d.arm, d.attention_type, d.method, slope_text(d.lr), slope_text(d.batch), slope_text(d.total)]
        for d in analysis.decompositions
    ]
    header = ["arm", "attention", "method", "per doubling of lr", "per doubling of B", "sum (0 if only lr/B matters)"]
    return table(header, rows)


def comparison_tables(analysis: Analysis) -> list[str]:
    """Regimes against plain SGD at equal batch size / equal lr and B, the weight sweeps, and the costs."""
    rows = [
        [c.arm, c.attention_type, c.label, c.reference, c.family, c.difference.format()] for c in analysis.comparisons
    ]
    lines = table(["arm", "attention", "regime", "minus SGD cell", "methods", "difference [95% CI], Welch p"], rows)
    sweep_rows = []
    for s in analysis.sweeps:
        runs = ", ".join(f"w={w:g}: {st} {number(sc, 3)}" for w, st, sc in zip(s.weights, s.statuses, s.scores))
        chosen = (
            "pending" if s.chosen is None else f"{s.chosen:g}" + (" (no run fitted: smallest)" if s.fallback else "")
        )
        sweep_rows.append([s.arm, s.attention_type, s.regularizer, runs, chosen])
    lines += ["Weight sweeps (validation score = gradient-method top-k intersection):", ""]
    lines += table(["arm", "attention", "regularizer", "weight: status score", "chosen weight"], sweep_rows)
    cost_rows = [
        [
            c.arm,
            c.attention_type,
            c.label,
            c.seconds_per_step.format(4),
            c.train_seconds.format(1),
            "n/a" if not math.isfinite(c.step_cost_vs_sgd) else f"{c.step_cost_vs_sgd:.2f}x",
        ]
        for c in analysis.costs
    ]
    lines += ["Training cost (wall clock on a shared machine; ratios are the comparable part):", ""]
    lines += table(["arm", "attention", "cell", "s per step", "s to matched fit", "per-step cost vs SGD"], cost_rows)
    return lines


def saturation_table(analysis: Analysis) -> list[str]:
    """The attack's top-k intersection under growing budgets."""
    rows = []
    for s in analysis.saturation:
        budgets = "; ".join(f"{b}: {m.format(3)}" for b, m in zip(s.budgets, s.means))
        rows.append([s.arm, s.attention_type, s.method, budgets, s.change.format(3)])
    header = ["arm", "attention", "method", "top-k intersection per steps x restarts", "largest budget - study's"]
    return table(header, rows)


def curvature_table(analysis: Analysis) -> list[str]:
    """Hessian trace and top eigenvalue along lr/B."""
    rows = [
        [
            c.arm,
            c.attention_type,
            c.quantity,
            c.mean.format(2),
            slope_text(c.slope, 3),
            str(c.runs),
            number(c.rel_stderr_median, 3),
            number(c.rel_stderr_max, 3),
            f"{c.within_target}/{c.runs}",
        ]
        for c in analysis.curvature
    ]
    header = [
        "arm",
        "attention",
        "quantity",
        "mean [95% CI]",
        "slope on log2(lr/B)",
        "runs",
        "trace rel. stderr (median)",
        "(max)",
        "runs with rel. stderr <= 10%",
    ]
    return table(header, rows)
