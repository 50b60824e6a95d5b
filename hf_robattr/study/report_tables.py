"""Markdown tables of the study report, each built from the :class:`~hf_robattr.study.analysis.Analysis`."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .analysis import MEASURE_SIGNS, SLOPE_MEASURES, Analysis
from .claims import ClaimTest
from .measure import value_key
from .stats import MeanCI, Slope, mean_ci, signed, uncancelled
from .summaries import sgd_runs


__all__ = [
    "claim_table",
    "column_table",
    "comparison_tables",
    "curvature_table",
    "decomposition_table",
    "epsilon_table",
    "estimate_with_ci",
    "level_table",
    "method_slope_table",
    "precondition_table",
    "saturation_table",
    "table",
]

Columns = Sequence[tuple[str, Callable[[Any], str]]]
"""A table's columns: each header with the function that turns one row's item into that column's cell."""

MODEL_COLUMNS: Columns = (("arm", lambda c: c.arm), ("attention", lambda c: c.attention_type))
"""The columns that name the model of a row (its study arm and attention type) and lead most tables."""

SIGN_WORDS = {1: "higher = more robust", -1: "higher = less robust"}


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A markdown table (``_(no rows)_`` when empty), followed by a blank line."""
    if not rows:
        return ["_(no rows)_", ""]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return [*lines, *("| " + " | ".join(row) + " |" for row in rows), ""]


def column_table(columns: Columns, items: Iterable[Any]) -> list[str]:
    """A :func:`table` with one row per item: each column is its header beside the function that fills its cell."""
    return table([header for header, _ in columns], [[cell(item) for _, cell in columns] for item in items])


def number(value: float, digits: int = 3, sign: bool = False) -> str:
    """A float, or ``n/a``. A value within 1e-12 of zero prints as ``+0.000`` (``0.000``): what is left of a sum
    that cancels exactly (a slope and its mirror image) is float noise whose sign differs between CPUs. A small
    value beyond that keeps its sign (``-0.000`` for a bound just below zero)."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return signed(value, digits) if sign else f"{uncancelled(value):.{digits}f}"


def p_value(value: float) -> str:
    """A p-value with two significant digits, or ``n/a``."""
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.2g}"


def slope_text(slope: Slope, digits: int = 4) -> str:
    """``+0.0123 [+0.0040, +0.0206], p = 0.004``; ``+0.0000 (no variation, n = 4)`` for a degenerate slope."""
    if slope.degenerate:
        return f"{number(slope.estimate, digits, True)} ({slope.degenerate}, n = {slope.n})"
    if not slope.valid:
        return f"n/a (n = {slope.n})"
    low, high = slope.ci()
    return (
        f"{number(slope.estimate, digits, True)} [{number(low, digits, True)}, {number(high, digits, True)}], "
        f"p = {p_value(slope.p_value)}"
    )


def estimate_with_ci(test: ClaimTest) -> str:
    """A claim test's estimate and 95% interval: ``+0.0123 [+0.0040, +0.0206]``."""
    return f"{number(test.estimate, 4, True)} [{number(test.ci[0], 4, True)}, {number(test.ci[1], 4, True)}]"


def _claim_power(c: ClaimTest) -> str:
    extra = f"; TOST power {number(c.power_equivalence, 2)}" if c.claim == 2 else ""
    return f"{number(c.power, 2)}{extra}"


CLAIM_COLUMNS: Columns = (
    ("claim", lambda c: str(c.claim)),
    ("model", lambda c: c.model),
    ("method", lambda c: c.method),
    ("verdict", lambda c: f"**{c.verdict}**" + (f" ({c.untested})" if c.untested else "")),
    ("slope per doubling of lr/B [95% CI]", estimate_with_ci),
    ("p (Holm)", lambda c: p_value(c.p)),
    ("power at the margin", _claim_power),
    ("runs", lambda c: str(c.n)),
)


def claim_table(claims: Sequence[ClaimTest]) -> list[str]:
    """One row per claim test."""
    return column_table(CLAIM_COLUMNS, claims)


PRECONDITION_COLUMNS: Columns = (
    *MODEL_COLUMNS,
    ("cell", lambda c: c.label),
    ("[CLS] entropy / log N", lambda c: c.cls_entropy_ratio.format(3)),
    ("[CLS] coeff. of variation", lambda c: c.cls_cv.format(3)),
    ("evidence recall (raw attention)", lambda c: c.evidence_recall.format(3)),
    ("chance", lambda c: number(c.evidence_chance, 3)),
    ("degenerate runs", lambda c: f"{c.degenerate_runs}/{c.ok}"),
    ("degenerate cell", lambda c: "**yes**" if c.degenerate else "no"),
)


def precondition_table(analysis: Analysis) -> list[str]:
    """Attention preconditions per cell (main runs)."""
    return column_table(PRECONDITION_COLUMNS, analysis.cells)


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


CURVATURE_COLUMNS: Columns = (
    *MODEL_COLUMNS,
    ("quantity", lambda c: c.quantity),
    ("mean [95% CI]", lambda c: c.mean.format(2)),
    ("slope on log2(lr/B)", lambda c: slope_text(c.slope, 3)),
    ("runs", lambda c: str(c.runs)),
    ("trace rel. stderr (median)", lambda c: number(c.rel_stderr_median, 3)),
    ("(max)", lambda c: number(c.rel_stderr_max, 3)),
    ("runs with rel. stderr <= 10%", lambda c: f"{c.within_target}/{c.runs}"),
)


def curvature_table(analysis: Analysis) -> list[str]:
    """Hessian trace and top eigenvalue along lr/B."""
    return column_table(CURVATURE_COLUMNS, analysis.curvature)
