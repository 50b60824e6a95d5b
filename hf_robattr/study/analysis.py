"""Turn stored run records into the study's findings (:class:`Analysis`, dataclasses all the way to the report).

- The claim tests by the settings' rules (``settings.analysis``): v2's (:mod:`~hf_robattr.study.claims`, on the
  headline measure under the top-k attack at the main radius, over the usable plain-SGD runs of each model, claims
  2 and 3 without the degenerate cells) or v3's (:mod:`~hf_robattr.study.analysis_v3`: three co-primary measures,
  cell random effects, and the checks that gate them).
- Descriptive slopes of every measure against ``log2(lr / B)`` (each with its sign: which direction is "more
  robust"), the noise baseline and the attack-minus-noise gap at every radius (:mod:`~hf_robattr.study.trends`:
  seed blocks under v2, a cell random effect under v3).
- lr and B separated: ``y ~ log2 lr + log2 B`` (v2: runs with seed blocks; v3: cell means); if lr/B is what
  matters, the two coefficients are equal and opposite (their sum is tested against 0).
- Comparisons at equal batch size (AdamW) and equal lr and B (explicit baselines), per-step cost, the attack's
  saturation, and the Hessian along lr/B.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from .analysis_v3 import V3Findings, analyse_v3
from .claims import ClaimTest, Interaction, claim_1_tests, claim_2_tests, claim_3_tests
from .measure import value_key
from .scales import StudySettings
from .secondary import Comparison, Cost, CurvatureRow, SaturationRow, comparisons, curvature, saturation
from .stats import Slope
from .summaries import CellSummary, EvalSet, RunSummary, cell_summaries, models_present, run_summaries, sgd_runs
from .sweep import SweepChoice, choose_weights
from .trends import is_cell_level, lr_batch_trends, trend


__all__ = ["MEASURE_SIGNS", "Analysis", "analyse", "reanalyse"]

# +1: higher = more robust; -1: higher = less robust (or: the attack did more).
MEASURE_SIGNS = {
    "topk_intersection": 1,
    "kendall_tau": 1,
    "patch_topk_intersection": 1,
    "patch_kendall_tau": 1,
    "max_sensitivity": -1,
    "prediction_change_rate": -1,
}
SLOPE_MEASURES = (
    "topk_intersection",
    "kendall_tau",
    "patch_topk_intersection",
    "max_sensitivity",
    "prediction_change_rate",
)


@dataclass(frozen=True)
class SlopeRow:
    """The slope of one measure against ``log2(lr/B)`` over the usable SGD runs of one model. ``attack`` is
    ``topk``, ``noise`` or ``gap`` (top-k attack minus noise, per run)."""

    arm: str
    attention_type: str
    method: str
    measure: str
    epsilon: float
    attack: str
    slope: Slope


@dataclass(frozen=True)
class Decomposition:
    """``y ~ log2 lr + log2 B`` (seed blocks) for the headline measure: ``lr`` and ``batch`` coefficients and
    their sum (0 when only lr/B matters)."""

    arm: str
    attention_type: str
    method: str
    lr: Slope
    batch: Slope
    total: Slope


@dataclass
class Analysis:
    """Everything the report shows."""

    settings: StudySettings
    runs_expected: int
    status_counts: dict[str, int]
    eval_sets: list[EvalSet]
    runs: list[RunSummary]
    cells: list[CellSummary]
    claims: list[ClaimTest]
    interactions: list[Interaction]
    slopes: list[SlopeRow]
    decompositions: list[Decomposition]
    comparisons: list[Comparison]
    costs: list[Cost]
    sweeps: list[SweepChoice]
    saturation: list[SaturationRow]
    curvature: list[CurvatureRow]
    start_points: list[dict[str, str]] = field(default_factory=list)
    timing: dict[str, str] = field(default_factory=dict)
    title_note: str = ""
    v3: V3Findings | None = None  # study v3's checks (settings.analysis == "v3"); None for v2

    @property
    def complete(self) -> bool:
        """Whether every run of the grid is stored (errors included)."""
        return sum(self.status_counts.values()) >= self.runs_expected


def _slope(runs: list[RunSummary], key: str, minus: str | None = None, cell_level: bool = False) -> Slope:
    y = [r.values.get(key, math.nan) - (r.values.get(minus, math.nan) if minus else 0.0) for r in runs]
    return trend(runs, y, cell_level)


def _decide(settings, runs, degenerate) -> tuple[list[ClaimTest], list[Interaction], V3Findings | None]:
    """The claims by the settings' rules: v2's (:func:`_claims`) or v3's (:func:`~.analysis_v3.analyse_v3`)."""
    if settings.analysis == "v3":
        return analyse_v3(settings, runs, degenerate)
    return (*_claims(settings, runs, degenerate), None)


def _claims(settings, runs, degenerate) -> tuple[list[ClaimTest], list[Interaction]]:
    claims, interactions = [], []
    measure = settings.headline_measure
    for protocol, grid in settings.arms:
        eps = protocol.main_epsilon
        slopes = {}
        for attention in grid.attention_types:
            sgd = sgd_runs(runs, protocol.arm, attention)
            if not sgd:
                continue
            gradient = {m: _slope(sgd, value_key("topk", eps, m, measure)) for m in protocol.gradient_methods}
            claims += claim_1_tests(
                f"{protocol.arm}-{attention}", gradient, measure=measure, margin=settings.margin, alpha=settings.alpha
            )
            clean = sgd_runs(runs, protocol.arm, attention, degenerate)
            slopes[attention] = {
                m: _slope(clean, value_key("topk", eps, m, measure)) for m in protocol.attention_methods
            }
        if "softmax" in slopes:
            claims += claim_2_tests(
                f"{protocol.arm}-softmax",
                slopes["softmax"],
                measure=measure,
                margin=settings.margin,
                alpha=settings.alpha,
            )
        if "softmax" in slopes and "kernel" in slopes:
            tests, pairs = claim_3_tests(
                protocol.arm,
                slopes["kernel"],
                slopes["softmax"],
                measure=measure,
                margin=settings.margin,
                alpha=settings.alpha,
            )
            claims += tests
            interactions += pairs
    return claims, interactions


def _slopes(settings, runs) -> list[SlopeRow]:
    rows, cell_level = [], is_cell_level(settings.analysis)
    for arm, attention in models_present(settings, runs):
        protocol, sgd = settings.protocol(arm), sgd_runs(runs, arm, attention)
        for eps in protocol.epsilons:
            main = eps == protocol.main_epsilon
            for method in protocol.methods if main else protocol.sweep_methods:
                measures = SLOPE_MEASURES if main else ("topk_intersection", "prediction_change_rate")
                for measure in measures:
                    key = value_key("topk", eps, method, measure)
                    if any(key in r.values for r in sgd):
                        slope = _slope(sgd, key, cell_level=cell_level)
                        rows.append(SlopeRow(arm, attention, method, measure, eps, "topk", slope))
                noise = value_key("noise", eps, method, "topk_intersection")
                attack = value_key("topk", eps, method, "topk_intersection")
                if any(noise in r.values for r in sgd):
                    noise_slope = _slope(sgd, noise, cell_level=cell_level)
                    gap = _slope(sgd, attack, minus=noise, cell_level=cell_level)
                    rows.append(SlopeRow(arm, attention, method, "topk_intersection", eps, "noise", noise_slope))
                    rows.append(SlopeRow(arm, attention, method, "topk_intersection", eps, "gap", gap))
    return rows


def _decompositions(settings, runs) -> list[Decomposition]:
    rows, cell_level = [], is_cell_level(settings.analysis)
    for arm, attention in models_present(settings, runs):
        protocol, sgd = settings.protocol(arm), sgd_runs(runs, arm, attention)
        for method in protocol.methods:
            key = value_key("topk", protocol.main_epsilon, method, settings.headline_measure)
            values = [r.values.get(key, math.nan) for r in sgd]
            rows.append(Decomposition(arm, attention, method, *lr_batch_trends(sgd, values, cell_level)))
    return rows


def _degenerate_cells(cells: list[CellSummary]) -> set[tuple]:
    return {
        (c.arm, c.attention_type, c.learning_rate, c.batch_size) for c in cells if c.degenerate and c.regime == "sgd"
    }


def analyse(records: list[dict], settings: StudySettings, *, expected_runs: int) -> Analysis:
    """The analysis of the stored ``records`` of a study whose grid has ``expected_runs`` runs."""
    runs, eval_sets = run_summaries(records, settings)
    cells = cell_summaries(runs)
    claims, interactions, v3 = _decide(settings, runs, _degenerate_cells(cells))
    comparison_rows, costs = comparisons(settings, runs, cells)
    main = [r for r in runs if r.role == "main"]
    return Analysis(
        settings=settings,
        runs_expected=expected_runs,
        status_counts={
            status: sum(r.status == status for r in runs) for status in ("ok", "not_fit", "diverged", "error")
        },
        eval_sets=eval_sets,
        runs=runs,
        cells=cells,
        claims=claims,
        interactions=interactions,
        slopes=_slopes(settings, main),
        decompositions=_decompositions(settings, main),
        comparisons=comparison_rows,
        costs=costs,
        sweeps=choose_weights(records, settings),
        saturation=saturation(settings, main),
        curvature=curvature(settings, main),
        v3=v3,
    )


def reanalyse(analysis: Analysis) -> Analysis:
    """``analysis`` with its claim tests, interactions, v3 checks, slopes, decompositions and curvature decided
    again from its own run summaries by the current rules (e.g. an ``Analysis`` loaded from a ``results.json``
    written by older code); for an analysis made by the current code, an equal one."""
    runs, main = analysis.runs, [r for r in analysis.runs if r.role == "main"]
    claims, interactions, v3 = _decide(analysis.settings, runs, _degenerate_cells(analysis.cells))
    return dataclasses.replace(
        analysis,
        claims=claims,
        interactions=interactions,
        v3=v3,
        slopes=_slopes(analysis.settings, main),
        decompositions=_decompositions(analysis.settings, main),
        curvature=curvature(analysis.settings, main),
    )
