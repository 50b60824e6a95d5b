"""The study's secondary analyses: regimes against plain SGD (AdamW at equal batch size, explicit baselines at
equal lr and B), per-step training cost, the attack's saturation and the Hessian along lr/B."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .measure import value_key
from .scales import StudySettings
from .stats import Difference, MeanCI, Slope, difference_ci, mean_ci
from .summaries import RunSummary, models_present, sgd_runs
from .trends import is_cell_level, trend


__all__ = ["Comparison", "Cost", "CurvatureRow", "SaturationRow", "comparisons", "curvature", "saturation"]


@dataclass(frozen=True)
class Comparison:
    """A regime minus a reference SGD cell, for one method family's mean headline measure (Welch)."""

    arm: str
    attention_type: str
    regime: str
    label: str
    reference: str
    family: str
    difference: Difference


@dataclass(frozen=True)
class Cost:
    """Training cost of a cell: wall seconds per optimizer step and to the matched fit, relative to plain SGD at
    the same lr and B (``nan`` without such a cell)."""

    arm: str
    attention_type: str
    label: str
    seconds_per_step: MeanCI
    train_seconds: MeanCI
    step_cost_vs_sgd: float


@dataclass(frozen=True)
class SaturationRow:
    """The top-k intersection of one method under each attack budget (steps x restarts) on the saturation runs
    of one model, and the change from the study's budget to the largest."""

    arm: str
    attention_type: str
    method: str
    budgets: tuple[str, ...]
    means: tuple[MeanCI, ...]
    change: MeanCI


@dataclass(frozen=True)
class CurvatureRow:
    """Hessian trace / top eigenvalue against ``log2(lr/B)`` over the SGD runs with diagnostics, with the
    achieved relative standard errors of the trace."""

    arm: str
    attention_type: str
    quantity: str
    slope: Slope
    mean: MeanCI
    runs: int
    rel_stderr_median: float
    rel_stderr_max: float
    within_target: int


def _family(run: RunSummary, settings: StudySettings, family: str) -> float:
    protocol = settings.protocol(run.arm)
    methods = protocol.gradient_methods if family == "gradient" else protocol.attention_methods
    keys = [value_key("topk", protocol.main_epsilon, m, settings.headline_measure) for m in methods]
    values = [run.values.get(k, math.nan) for k in keys]
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def comparisons(settings, runs, cells) -> tuple[list[Comparison], list[Cost]]:
    comparisons, costs = [], []
    usable = [r for r in runs if r.usable]
    for cell in cells:
        if cell.regime == "sgd":
            continue
        same = [
            r
            for r in usable
            if r.arm == cell.arm
            and r.attention_type == cell.attention_type
            and r.regime == cell.regime
            and r.regularizer_weight == cell.regularizer_weight
        ]
        # AdamW against every SGD cell of its batch size; a baseline against the SGD cell of its lr and B.
        references = [
            c
            for c in cells
            if c.arm == cell.arm
            and c.attention_type == cell.attention_type
            and c.regime == "sgd"
            and c.batch_size == cell.batch_size
            and (cell.regime == "adamw" or c.learning_rate == cell.learning_rate)
        ]
        for reference in references:
            base = [
                r
                for r in sgd_runs(usable, cell.arm, cell.attention_type)
                if r.learning_rate == reference.learning_rate and r.batch_size == reference.batch_size
            ]
            for family in ("gradient", "attention"):
                difference = difference_ci(
                    [_family(r, settings, family) for r in same], [_family(r, settings, family) for r in base]
                )
                comparisons.append(
                    Comparison(
                        cell.arm, cell.attention_type, cell.regime, cell.label, reference.label, family, difference
                    )
                )
    for cell in cells:
        reference = next(
            (
                c
                for c in cells
                if c.arm == cell.arm
                and c.attention_type == cell.attention_type
                and c.regime == "sgd"
                and c.learning_rate == cell.learning_rate
                and c.batch_size == cell.batch_size
            ),
            None,
        )
        ratio = math.nan
        if reference is not None and reference.seconds_per_step.n and cell.seconds_per_step.n:
            ratio = cell.seconds_per_step.mean / reference.seconds_per_step.mean
        costs.append(Cost(cell.arm, cell.attention_type, cell.label, cell.seconds_per_step, cell.train_seconds, ratio))
    return comparisons, costs


def saturation(settings, runs) -> list[SaturationRow]:
    rows = []
    for arm, attention in models_present(settings, runs):
        protocol = settings.protocol(arm)
        chosen = [
            r
            for r in runs
            if r.usable and r.arm == arm and r.attention_type == attention and any("@" in k for k in r.values)
        ]
        if not chosen:
            continue
        budgets = sorted(
            {(protocol.attack_steps, protocol.attack_restarts), *protocol.saturation_budgets},
            key=lambda b: (b[0] * b[1], b[1]),
        )
        names = tuple(f"{s}x{r}" for s, r in budgets)
        for method in protocol.saturation_methods:
            key = value_key("topk", protocol.main_epsilon, method, "topk_intersection")
            means = tuple(mean_ci([r.values.get(f"{key}@{b}", math.nan) for r in chosen]) for b in names)
            main = f"{key}@{protocol.attack_steps}x{protocol.attack_restarts}"
            change = mean_ci(
                [r.values.get(f"{key}@{names[-1]}", math.nan) - r.values.get(main, math.nan) for r in chosen]
            )
            rows.append(SaturationRow(arm, attention, method, names, means, change))
    return rows


def curvature(settings, runs) -> list[CurvatureRow]:
    rows = []
    for arm, attention in models_present(settings, runs):
        sgd = [r for r in sgd_runs(runs, arm, attention) if math.isfinite(r.hessian_trace)]
        if not sgd:
            continue
        rel = [abs(r.hessian_trace_stderr / r.hessian_trace) for r in sgd if r.hessian_trace]
        for quantity in ("hessian_trace", "hessian_top_eigenvalue"):
            values = [getattr(r, quantity) for r in sgd]
            slope = trend(sgd, values, is_cell_level(settings.analysis))
            rows.append(
                CurvatureRow(
                    arm,
                    attention,
                    quantity,
                    slope,
                    mean_ci(values),
                    len(sgd),
                    float(np.median(rel)) if rel else math.nan,
                    max(rel) if rel else math.nan,
                    sum(v <= 0.1 for v in rel),
                )
            )
    return rows
