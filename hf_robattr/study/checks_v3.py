"""Study v3's checks before a claim may be read (issue 25.2-25.4, 25.6): the manipulation check, the margins from the
measures' own spread, the positive controls, lack of fit and the fit covariate.

All slopes here carry a cell random effect (:mod:`~hf_robattr.study.cell_effects`): cells are (lr, B), seeds are
blocks, ``x = log2(lr / B)``.

- **Manipulation check** (pre-registered): per model (arm x attention type), the slope of ``log`` Hessian trace on
  ``x`` over the usable SGD runs with curvature (the top eigenvalue's is reported beside it); it passes when a
  one-sided test shows it falls (``p < alpha``). Where it does not, or cannot be run, the treatment had no
  measurable effect and every robustness verdict of that model is untested.
- **Margin** (a pre-registered rule, not a number): a slope matters when, over the grid's span of ``D`` doublings of
  lr/B, it moves the measure by one seed-to-seed standard deviation: ``margin = run_sd / D``, per model, method and
  measure, with ``D`` the span of the arm's design grid (:func:`design_doublings`; never of the runs that happen to
  be kept, which excluded or degenerate cells would shrink, and with them the bar a slope must clear), with ``run_sd`` the pooled within-cell standard deviation after seed effects
  (:func:`~.cell_effects.estimate_spread`). Why this scale: the seed-to-seed spread is what a reader sees when the
  same cell is trained again, so a gain smaller than one such spread over the whole grid cannot be told apart from
  retraining; the cell-to-cell spread is left out on purpose (it is what the cell random effect already charges to
  the slope's standard error, and a margin that grew with it would make a noisier grid easier to call "small").
  Where ``run_sd`` cannot be estimated the settings' fixed margin is used (said so in the report).
- **Positive control**: scoring a model ``f`` at radius ``s * eps`` (``s < 1``) is scoring the planted model
  ``g(x) = f(c + s (x - c))`` at ``eps`` (:class:`~hf_robattr.robustness.controls.AttenuatedClassifier`), which is
  at least as robust by construction; the measure passes when the paired (same run) difference, oriented so that
  higher = more robust, is shown > 0 (one-sided one-sample t test over the model's runs). v3 scores the sweep
  methods at half the main radius, so ``s = 1/2``.
- **Lack of fit**: the F test of the line against one mean per cell; where it rejects, lr and B separately.
- **Fit covariate**: the slope with the cell mean of log(training loss at the stop) as a second regressor of the
  cell means. Not a run-level regression (:func:`~.stats.block_regression` over runs): the treatment is given per
  cell, so a run-level fit would again count the runs of one cell as independent evidence about the slope, and its
  covariate would mostly explain the scatter of runs within a cell, which is not what could confound lr/B. The cell
  means keep the unit of treatment and ask the question that matters: does the slope survive when the cells'
  average fit is held fixed? It costs one degree of freedom (``cells - 3``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .cell_effects import LackOfFit, Spread, cell_means, cell_slope, estimate_spread, lack_of_fit, separate_effects
from .measure import value_key
from .settings import StudySettings
from .stats import NAN, Slope, block_regression
from .summaries import RunSummary


__all__ = [
    "CO_PRIMARY",
    "UNTREATED",
    "CovariateSlope",
    "LackOfFitRow",
    "ManipulationCheck",
    "Margin",
    "PositiveControl",
    "covariate_slope",
    "design_doublings",
    "lack_of_fit_row",
    "manipulation_check",
    "margin_for",
    "margin_rule",
    "measure_values",
    "positive_control",
    "value_keys",
    "xs_cells_seeds",
]

# The co-primary measures and their orientation (+1: higher = more robust; max-sensitivity is negated).
CO_PRIMARY = (("topk_intersection", 1), ("kendall_tau", 1), ("max_sensitivity", -1))
UNTREATED = "untested: the treatment had no measurable effect"


@dataclass(frozen=True)
class ManipulationCheck:
    """Does curvature fall with lr/B? ``trace`` / ``top_eigenvalue``: slopes of their logs on ``log2(lr/B)``;
    ``p``: one-sided p of the trace slope < 0; ``passed``; ``reason`` (``"untested: ..."``) when it did not."""

    arm: str
    attention_type: str
    trace: Slope
    top_eigenvalue: Slope
    p: float
    passed: bool
    reason: str = ""


@dataclass(frozen=True)
class Margin:
    """The smallest slope that matters for one model, method and measure, and where it comes from (``source``:
    ``"spread"``, the rule, or ``"fixed"``, the settings' fallback)."""

    arm: str
    attention_type: str
    method: str
    measure: str
    run_sd: float
    doublings: float
    margin: float
    source: str


@dataclass(frozen=True)
class PositiveControl:
    """The planted change one measure must detect: the mean paired gain (higher = more robust) of scoring at
    ``factor`` times the radius, its one-sided p, the runs, and ``margin x doublings`` (the change a margin-sized
    slope makes over the grid)."""

    arm: str
    attention_type: str
    method: str
    measure: str
    gain: float
    p: float
    n: int
    passed: bool
    margin_span: float
    factor: float = 0.5


@dataclass(frozen=True)
class LackOfFitRow:
    """The line in ``log2(lr/B)`` against one mean per cell; ``lr`` / ``batch`` slopes where the line is rejected."""

    arm: str
    attention_type: str
    method: str
    measure: str
    test: LackOfFit
    lr: Slope | None = None
    batch: Slope | None = None


@dataclass(frozen=True)
class CovariateSlope:
    """The slope with and without the training loss at the stop (log, cell mean) as a covariate."""

    arm: str
    attention_type: str
    method: str
    measure: str
    plain: Slope
    adjusted: Slope


def xs_cells_seeds(runs: Sequence[RunSummary]) -> tuple[list[float], list[tuple], list[int]]:
    """``x = log2(lr/B)``, the cell ``(lr, B)`` and the seed of each run."""
    return (
        [r.log2_strength for r in runs],
        [(r.learning_rate, r.batch_size) for r in runs],
        [r.seed for r in runs],
    )


def measure_values(runs: Sequence[RunSummary], key: str, sign: int) -> list[float]:
    """Each run's value of ``key``, oriented so that higher = more robust (NaN where the run has none)."""
    return [sign * r.values.get(key, NAN) for r in runs]


def _log(value: float) -> float:
    return math.log(value) if math.isfinite(value) and value > 0 else NAN


def manipulation_check(arm: str, attention: str, runs: Sequence[RunSummary], alpha: float) -> ManipulationCheck:
    """The manipulation check of one model over its usable SGD runs with a measured, positive Hessian trace."""
    measured = [r for r in runs if math.isfinite(r.hessian_trace) and r.hessian_trace > 0]
    x, cells, seeds = xs_cells_seeds(measured)
    trace = cell_slope(x, [_log(r.hessian_trace) for r in measured], cells, seeds)
    eigen = cell_slope(x, [_log(r.hessian_top_eigenvalue) for r in measured], cells, seeds)
    if not trace.valid:
        runs, cells = len(measured), trace.blocks
        why = f"{runs} run{'s' if runs != 1 else ''} with curvature in {cells} cell{'s' if cells != 1 else ''}"
        detail = trace.degenerate or ("it needs 3 cells" if cells < 3 else "lr/B takes one value")
        reason = f"{UNTREATED} ({arm} {attention}: the check is not estimable, {why}; {detail})"
        return ManipulationCheck(arm, attention, trace, eigen, NAN, False, reason)
    p = trace.p_below(0.0)
    passed = p < alpha
    reason = "" if passed else (
        f"{UNTREATED} ({arm} {attention}: log Hessian trace slope {trace.estimate:+.3g} per doubling of lr/B, "
        f"one-sided p = {p:.2g} for a fall)"
    )  # fmt: skip
    return ManipulationCheck(arm, attention, trace, eigen, p, passed, reason)


def design_doublings(settings: StudySettings, arm: str) -> float:
    """How many doublings of lr/B arm ``arm``'s grid spans: ``log2(max lr / min lr) + log2(max B / min B)`` (from
    its lowest lr over its largest B to its highest lr over its smallest B)."""
    grid = settings.arm(arm)[1]
    lrs, batches = grid.learning_rates, grid.batch_sizes
    return math.log2(max(lrs) / min(lrs)) + math.log2(max(batches) / min(batches))


def margin_rule(
    x: Sequence[float], y: Sequence[float], cells: Sequence, seeds: Sequence, fixed: float, doublings: float
) -> tuple[float, float, float, str]:
    """``(run_sd, doublings, margin, source)`` by the margin rule (see the module docstring): ``doublings`` is the
    design grid's span (:func:`design_doublings`)."""
    spread = estimate_spread(x, y, cells, seeds) if len(set(cells)) >= 3 else Spread(NAN, NAN)
    if math.isfinite(spread.run_sd) and spread.run_sd > 0 and doublings > 0:
        return spread.run_sd, doublings, spread.run_sd / doublings, "spread"
    return spread.run_sd, doublings, fixed, "fixed"


def margin_for(
    arm: str, attention: str, method: str, measure: str, runs, key: str, sign: int, fixed: float, doublings: float
) -> Margin:
    """The margin of one model, method and measure (see the module docstring)."""
    x, cells, seeds = xs_cells_seeds(runs)
    values = measure_values(runs, key, sign)
    return Margin(arm, attention, method, measure, *margin_rule(x, values, cells, seeds, fixed, doublings))


def positive_control(
    arm: str,
    attention: str,
    method: str,
    measure: str,
    runs,
    keys: tuple[str, str],
    sign: int,
    alpha: float,
    span: float,
    factor: float = 0.5,
) -> PositiveControl | None:
    """The control of one measure (``keys``: its value at ``factor`` times the radius and at the radius); ``None``
    when no run has both."""
    small, main = keys
    pairs = [(r.values.get(small, NAN), r.values.get(main, NAN)) for r in runs]
    gains = np.asarray([sign * (a - b) for a, b in pairs if math.isfinite(a) and math.isfinite(b)], dtype=float)
    if gains.size == 0:
        return None
    sd = float(gains.std(ddof=1)) if gains.size >= 2 else NAN
    if not sd > 1e-12 * max(1.0, float(np.abs(gains).max())):  # one run, or no scatter: no t test
        p = 0.0 if gains.size >= 2 and gains.mean() > 0 else NAN
    else:  # one-sided one-sample t test (scipy's ttest_1samp, alternative="greater")
        p = float(stats.t.sf(gains.mean() / (sd / math.sqrt(gains.size)), gains.size - 1))
    passed = bool(math.isfinite(p) and p < alpha)
    gain = float(gains.mean())
    return PositiveControl(arm, attention, method, measure, gain, p, int(gains.size), passed, span, factor)


def lack_of_fit_row(arm, attention, method, measure, runs, key: str, sign: int, alpha: float) -> LackOfFitRow:
    """Lack of fit of the line, with lr and B separately where it is rejected."""
    x, cells, seeds = xs_cells_seeds(runs)
    y = measure_values(runs, key, sign)
    test = lack_of_fit(x, y, cells, seeds)
    if not test.rejects(alpha):
        return LackOfFitRow(arm, attention, method, measure, test)
    lr = [math.log2(r.learning_rate) for r in runs]
    batch = [math.log2(r.batch_size) for r in runs]
    effects = separate_effects(lr, batch, y, cells, seeds)
    return LackOfFitRow(arm, attention, method, measure, test, effects["learning_rate"], effects["batch_size"])


def covariate_slope(arm, attention, method, measure, runs, key: str, sign: int) -> CovariateSlope:
    """The cell slope, and the slope with the cell mean of log(training loss at the stop) as a covariate (see the
    module docstring; NaN with fewer than 4 cells or a cell without a loss)."""
    x, cells, seeds = xs_cells_seeds(runs)
    y = measure_values(runs, key, sign)
    plain = cell_slope(x, y, cells, seeds)
    keep = [math.isfinite(v) for v in y]  # the covariate's cell means over the runs the slope uses
    chosen = [r for r, k in zip(runs, keep) if k]
    cx, ccells, cseeds = xs_cells_seeds(chosen)
    means = cell_means(cx, [v for v, k in zip(y, keep) if k], ccells, cseeds)
    loss = cell_means(cx, [_log(r.fit_loss) for r in chosen], ccells, cseeds)
    if len(means.cells) < 4 or loss.cells != means.cells or not np.all(np.isfinite(loss.means)):
        adjusted = Slope(NAN, NAN, 0, plain.n, plain.blocks)
    else:
        fit = block_regression([means.x, loss.means], means.means, [0] * len(means.cells))
        contrast = fit.contrast([1.0, 0.0])
        adjusted = Slope(contrast.estimate, contrast.stderr, contrast.df, plain.n, plain.blocks)
    return CovariateSlope(arm, attention, method, measure, plain, adjusted)


def value_keys(settings: StudySettings, arm: str, method: str, measure: str) -> tuple[str, str | None, float]:
    """The key of a measure at the arm's main radius, the key at the largest smaller radius (``None``: none), and
    that radius over the main one (the control's attenuation factor)."""
    protocol = settings.protocol(arm)
    main = value_key("topk", protocol.main_epsilon, method, measure)
    smaller = [e for e in protocol.epsilons if e < protocol.main_epsilon]
    if not smaller:
        return main, None, NAN
    return main, value_key("topk", max(smaller), method, measure), max(smaller) / protocol.main_epsilon
