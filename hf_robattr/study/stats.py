"""Statistics of the study, all from scipy: means with t confidence intervals, Welch differences, and rank
trends (Spearman rho with its p-value and a paired bootstrap confidence interval).

Every function drops NaN values (pairwise for trends) and returns NaN where too few values remain, instead of
raising: a cell whose runs all diverged still gets a row in the report.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


__all__ = ["Difference", "MeanCI", "Trend", "difference_ci", "mean_ci", "rank_trend"]

NAN = float("nan")


@dataclass(frozen=True)
class MeanCI:
    """A mean and its two-sided confidence interval (Student t), over ``n`` finite values."""

    mean: float
    low: float
    high: float
    n: int

    def format(self, digits: int = 3) -> str:
        """``mean [low, high]``, or ``n/a`` without values."""
        if self.n == 0:
            return "n/a"
        if math.isnan(self.low):
            return f"{self.mean:.{digits}f} (n=1)"
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


@dataclass(frozen=True)
class Trend:
    """Spearman rank correlation ``rho`` of ``y`` on ``x``, its p-value, and a paired bootstrap CI."""

    rho: float
    p_value: float
    low: float
    high: float
    n: int

    @property
    def direction(self) -> str:
        """``rises`` / ``falls`` when the bootstrap CI excludes 0 *and* Spearman's p < 0.05 (the percentile bootstrap
        alone is anti-conservative with few runs), else ``no clear trend``."""
        if self.p_value < 0.05 and self.low > 0:
            return "rises"
        if self.p_value < 0.05 and self.high < 0:
            return "falls"
        return "no clear trend"

    def format(self) -> str:
        """``rho = r [low, high], p = p (n = n)``."""
        if math.isnan(self.rho):
            return f"rho n/a (n = {self.n})"
        return f"rho = {self.rho:+.2f} [{self.low:+.2f}, {self.high:+.2f}], p = {self.p_value:.2g} (n = {self.n})"


@dataclass(frozen=True)
class Difference:
    """Mean of ``a`` minus mean of ``b``, with a Welch t confidence interval and p-value."""

    difference: float
    low: float
    high: float
    p_value: float
    n_a: int
    n_b: int

    def format(self, digits: int = 3) -> str:
        """``+d [low, high], p = p``."""
        if math.isnan(self.difference):
            return "n/a"
        if math.isnan(self.low):
            return f"{self.difference:+.{digits}f} (too few runs for a CI)"
        return (
            f"{self.difference:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}], p = {self.p_value:.2g}"
        )


def _finite(values: Sequence[float]) -> np.ndarray:
    array = np.asarray([NAN if v is None else v for v in values], dtype=float)
    return array[np.isfinite(array)]


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"`confidence` must be in (0, 1), got {confidence}.")


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> MeanCI:
    """Mean of the finite ``values`` with a Student-t confidence interval (``scipy.stats.t.interval``)."""
    _check_confidence(confidence)
    array = _finite(values)
    n = int(array.size)
    if n == 0:
        return MeanCI(NAN, NAN, NAN, 0)
    mean = float(array.mean())
    if n == 1:
        return MeanCI(mean, NAN, NAN, 1)
    sem = float(stats.sem(array))
    if sem == 0:
        return MeanCI(mean, mean, mean, n)
    low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=sem)
    return MeanCI(mean, float(low), float(high), n)


def difference_ci(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Difference:
    """``mean(a) - mean(b)`` with Welch's t-test (``scipy.stats.ttest_ind(equal_var=False)``) CI and p-value."""
    _check_confidence(confidence)
    x, y = _finite(a), _finite(b)
    if x.size == 0 or y.size == 0:
        return Difference(NAN, NAN, NAN, NAN, int(x.size), int(y.size))
    difference = float(x.mean() - y.mean())
    if x.size < 2 or y.size < 2 or (np.ptp(x) == 0 and np.ptp(y) == 0):
        return Difference(difference, NAN, NAN, NAN, int(x.size), int(y.size))
    result = stats.ttest_ind(x, y, equal_var=False)
    interval = result.confidence_interval(confidence)
    return Difference(difference, float(interval.low), float(interval.high), float(result.pvalue), x.size, y.size)


def _spearman(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Spearman's rho along ``axis`` (Pearson correlation of average ranks, as ``scipy.stats.spearmanr``),
    vectorised over resamples for ``scipy.stats.bootstrap``; NaN where a resample is constant."""
    rx = stats.rankdata(x, axis=axis)
    ry = stats.rankdata(y, axis=axis)
    rx = rx - rx.mean(axis=axis, keepdims=True)
    ry = ry - ry.mean(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rx * ry).sum(axis=axis) / np.sqrt((rx * rx).sum(axis=axis) * (ry * ry).sum(axis=axis))


def rank_trend(
    x: Sequence[float],
    y: Sequence[float],
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Trend:
    """Spearman's rho of ``y`` against ``x`` (pairs with a non-finite member dropped), the p-value of
    ``scipy.stats.spearmanr``, and a percentile bootstrap CI over pairs (``scipy.stats.bootstrap``,
    ``paired=True``). Resamples whose rho is undefined (constant) are left out of the percentiles when at most half
    of them are; otherwise the CI is NaN. Fewer than 3 pairs, or a constant ``x`` or ``y``, give NaN."""
    _check_confidence(confidence)
    if len(x) != len(y):
        raise ValueError(f"`x` and `y` must have the same length, got {len(x)} and {len(y)}.")
    xs = np.asarray([NAN if v is None else v for v in x], dtype=float)
    ys = np.asarray([NAN if v is None else v for v in y], dtype=float)
    keep = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[keep], ys[keep]
    n = int(xs.size)
    if n < 3 or np.ptp(xs) == 0 or np.ptp(ys) == 0:
        return Trend(NAN, NAN, NAN, NAN, n)
    result = stats.spearmanr(xs, ys)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        boot = stats.bootstrap(
            (xs, ys),
            _spearman,
            paired=True,
            vectorized=True,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    low, high = boot.confidence_interval
    if not (math.isfinite(low) and math.isfinite(high)):
        # Some resamples were constant (few distinct x values): take the percentiles over the defined ones.
        distribution = boot.bootstrap_distribution[np.isfinite(boot.bootstrap_distribution)]
        if distribution.size >= n_resamples // 2:
            alpha = (1 - confidence) / 2
            low, high = np.percentile(distribution, [100 * alpha, 100 * (1 - alpha)])
    return Trend(float(result.statistic), float(result.pvalue), float(low), float(high), n)
