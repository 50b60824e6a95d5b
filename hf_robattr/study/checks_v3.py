"""Study v3's checks before a claim may be read (issue 25.2-25.4, 25.6): the manipulation check, the margins from the
measures' own spread, the positive controls, lack of fit, the fit covariate and the rules' error rates.

All slopes here carry a cell random effect (:mod:`~hf_robattr.study.cell_effects`): cells are (lr, B), seeds are
blocks, ``x = log2(lr / B)``.

- **Manipulation check** (pre-registered): per model, the slope of ``log`` Hessian trace on ``x`` over the usable
  SGD runs with curvature; it passes when a one-sided test shows it falls (``p < alpha``). Where it does not, the
  treatment had no measurable effect and every robustness verdict of that model is untested.
- **Margin**: a slope matters when, over the grid's span of ``D`` doublings, it moves the measure by one
  seed-to-seed standard deviation (``run_sd`` of :func:`~.cell_effects.estimate_spread`): ``margin = run_sd / D``,
  per model, method and measure. Where ``run_sd`` cannot be estimated the settings' fixed margin is used (said so).
- **Positive control**: scoring a model ``f`` at radius ``eps / 2`` is scoring the planted model
  ``g(x) = f(c + (x - c) / 2)`` at ``eps`` (:class:`~hf_robattr.robustness.controls.AttenuatedClassifier`), which
  is more robust by construction; the measure passes when the paired (same run) difference, oriented so that
  higher = more robust, is shown > 0 (one-sided t test over the model's runs).
- **Error rates**: each rule replayed (:func:`~.cell_effects.simulate_error_rates`) on the model's own cell layout
  and seeds at the spread its runs show, with a true slope of 0 and of ``margin``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from .cell_effects import LackOfFit, Spread, cell_means, cell_slope, estimate_spread, lack_of_fit, separate_effects
from .measure import value_key
from .settings import StudySettings
from .stats import NAN, Slope, block_regression
from .summaries import RunSummary


__all__ = [
    "CO_PRIMARY",
    "CovariateSlope",
    "ErrorRate",
    "LackOfFitRow",
    "ManipulationCheck",
    "Margin",
    "PositiveControl",
    "measure_values",
    "xs_cells_seeds",
]

# The co-primary measures and their orientation (+1: higher = more robust).
CO_PRIMARY = (("topk_intersection", 1), ("kendall_tau", 1), ("max_sensitivity", -1))
UNTREATED = "untested: the treatment had no measurable effect"


@dataclass(frozen=True)
class ManipulationCheck:
    """Does curvature fall with lr/B? ``trace`` / ``top_eigenvalue``: slopes of their logs on ``log2(lr/B)``;
    ``p``: one-sided p of the trace slope < 0; ``passed``; ``reason`` when it did not pass."""

    arm: str
    attention_type: str
    trace: Slope
    top_eigenvalue: Slope
    p: float
    passed: bool
    reason: str = ""


@dataclass(frozen=True)
class Margin:
    """The smallest slope that matters for one model, method and measure, and where it comes from."""

    arm: str
    attention_type: str
    method: str
    measure: str
    run_sd: float
    doublings: float
    margin: float
    source: str  # "spread" or "fixed"


@dataclass(frozen=True)
class PositiveControl:
    """The planted change (half the radius) one measure must detect: mean paired gain (higher = more robust), its
    one-sided p, the runs, and ``margin x doublings`` (the change a margin-sized slope makes over the grid)."""

    arm: str
    attention_type: str
    method: str
    measure: str
    gain: float
    p: float
    n: int
    passed: bool
    margin_span: float


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


@dataclass(frozen=True)
class ErrorRate:
    """How often a rule gives each verdict on simulated data: ``rule`` (claim 1 / claim 2), the true slope, the
    spread used, and the share of each verdict."""

    arm: str
    attention_type: str
    measure: str
    rule: str
    true_slope: float
    cell_sd: float
    run_sd: float
    simulations: int
    rates: dict[str, float] = field(default_factory=dict)


def xs_cells_seeds(runs: Sequence[RunSummary]) -> tuple[list[float], list[tuple], list[int]]:
    """``x = log2(lr/B)``, the cell ``(lr, B)`` and the seed of each run."""
    return (
        [r.log2_strength for r in runs],
        [(r.learning_rate, r.batch_size) for r in runs],
        [r.seed for r in runs],
    )


def measure_values(runs: Sequence[RunSummary], key: str, sign: int) -> list[float]:
    """Each run's value of ``key``, oriented so that higher = more robust."""
    return [sign * r.values.get(key, NAN) for r in runs]


def manipulation_check(arm: str, attention: str, runs: Sequence[RunSummary], alpha: float) -> ManipulationCheck:
    """The manipulation check of one model over its usable SGD runs (those with a measured Hessian count)."""
    measured = [r for r in runs if math.isfinite(r.hessian_trace) and r.hessian_trace > 0]
    x, cells, seeds = xs_cells_seeds(measured)
    trace = cell_slope(x, [math.log(r.hessian_trace) for r in measured], cells, seeds)
    eigen_runs = [r.hessian_top_eigenvalue for r in measured]
    eigen = cell_slope(x, [math.log(v) if v > 0 else NAN for v in eigen_runs], cells, seeds)
    p = trace.p_below(0.0)
    if not trace.valid:
        return ManipulationCheck(arm, attention, trace, eigen, NAN, False, f"{UNTREATED} (curvature not estimable)")
    passed = p < alpha
    reason = "" if passed else f"{UNTREATED} (Hessian trace slope {trace.estimate:+.3g}, one-sided p = {p:.2g})"
    return ManipulationCheck(arm, attention, trace, eigen, p, passed, reason)


def margin_for(arm: str, attention: str, method: str, measure: str, runs, key: str, sign: int, fixed: float) -> Margin:
    """The margin of one model, method and measure (see the module docstring)."""
    x, cells, seeds = xs_cells_seeds(runs)
    y = measure_values(runs, key, sign)
    doublings = float(max(x) - min(x)) if x else NAN
    spread = estimate_spread(x, y, cells, seeds) if len(set(cells)) >= 3 else Spread(NAN, NAN)
    if math.isfinite(spread.run_sd) and spread.run_sd > 0 and doublings > 0:
        return Margin(arm, attention, method, measure, spread.run_sd, doublings, spread.run_sd / doublings, "spread")
    return Margin(arm, attention, method, measure, spread.run_sd, doublings, fixed, "fixed")


def positive_control(
    arm: str, attention: str, method: str, measure: str, runs, keys: tuple[str, str], sign: int, alpha: float, span
) -> PositiveControl | None:
    """The half-radius control of one measure (``keys``: its value at ``eps / 2`` and at ``eps``); ``None`` when
    the runs have no value at ``eps / 2``."""
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
    return PositiveControl(arm, attention, method, measure, float(gains.mean()), p, int(gains.size), passed, span)


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
    """The cell slope, and the slope with the cell mean of log(training loss at the stop) as a covariate."""
    x, cells, seeds = xs_cells_seeds(runs)
    y = measure_values(runs, key, sign)
    plain = cell_slope(x, y, cells, seeds)
    loss = [math.log(r.fit_loss) if r.fit_loss > 0 else NAN for r in runs]
    means, loss_means = cell_means(x, y, cells, seeds), cell_means(x, loss, cells, seeds)
    if len(means.cells) < 4 or not np.all(np.isfinite(loss_means.means)):
        adjusted = Slope(NAN, NAN, 0, plain.n, plain.blocks)
    else:
        fit = block_regression([means.x, loss_means.means], means.means, [0] * len(means.cells))
        contrast = fit.contrast([1.0, 0.0])
        adjusted = Slope(contrast.estimate, contrast.stderr, contrast.df, plain.n, plain.blocks)
    return CovariateSlope(arm, attention, method, measure, plain, adjusted)


def value_keys(settings: StudySettings, arm: str, method: str, measure: str) -> tuple[str, str | None]:
    """The key of a measure at the arm's main radius, and at the next smaller radius (``None``: none scored)."""
    protocol = settings.protocol(arm)
    main = value_key("topk", protocol.main_epsilon, method, measure)
    smaller = [e for e in protocol.epsilons if e < protocol.main_epsilon]
    return main, value_key("topk", max(smaller), method, measure) if smaller else None
