"""The study's statistics (numpy least squares and scipy distributions): means with t intervals, Welch
differences, slopes with seed blocks, slope differences, Holm's correction, equivalence tests and their power.

The claim tests use :func:`block_slope`: ordinary least squares of ``y`` on ``x`` with one intercept per block
(the seed: runs of one seed share data order and attack noise), so the slope is estimated within seeds. Its
:class:`Slope` carries the estimate, standard error and residual degrees of freedom, from which every p-value,
interval, equivalence test (two one-sided tests, TOST) and power figure follows with Student's t.

Every function drops pairs with a non-finite member and returns NaN fields where too few values remain, instead of
raising: a cell whose runs all diverged still gets a row in the report.

A fit with nothing to estimate its noise from is **degenerate** (:attr:`Slope.degenerate`) and gets no test: values
that do not vary within any block (*no variation*: slope 0), or that lie exactly on a line (*no residual variation*:
the residual variance, and with it the standard error, is 0, which would make every p-value 0). The study's
measures are means over a few hundred examples of discrete scores (a top-k intersection moves in steps of
``1 / (examples x k)``) stored from float32, so four runs can fall exactly on a line up to float32 rounding; values
that agree to a relative :data:`RESOLUTION` count as equal. Such a slope keeps its estimate, has standard error 0,
and is not :attr:`~Slope.valid`: its interval, p-values and power are NaN.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special, stats


__all__ = [
    "CANCELLED",
    "RESOLUTION",
    "BlockFit",
    "Difference",
    "MeanCI",
    "Slope",
    "block_regression",
    "block_slope",
    "difference_ci",
    "holm",
    "mean_ci",
    "power_one_sided",
    "power_tost",
    "power_two_sided",
    "signed",
    "slope_difference",
    "uncancelled",
]

NAN = float("nan")

RESOLUTION = 1e-6
"""Relative precision below which values count as equal (residuals as zero): the measures are means of float32
scores, whose relative precision is about 6e-8."""

CANCELLED = 1e-12
"""Below this, a printed value is an exact cancellation (:func:`uncancelled`): far below any digit a report shows, far
above float64 noise on the measures' [0, 1] scale."""


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
            return f"{signed(self.difference, digits)} (too few runs for a CI)"
        low, high = signed(self.low, digits), signed(self.high, digits)
        return f"{signed(self.difference, digits)} [{low}, {high}], p = {self.p_value:.2g}"


def uncancelled(value: float) -> float:
    """``value``, or ``0.0`` when it is within :data:`CANCELLED` of zero: what is left of a sum that cancels exactly
    (a slope and its mirror image, two equal means) is float noise whose sign differs between CPUs."""
    return 0.0 if abs(value) < CANCELLED else value


def signed(value: float, digits: int) -> str:
    """``value`` with its sign and ``digits`` decimals (``+0.0123``); an exact cancellation prints as ``+0.0000``,
    never ``-0.0000``, while a small value beyond it keeps its sign."""
    return f"{uncancelled(value):+.{digits}f}"


def _t_cdf(t: float, df: float) -> float:
    """``scipy.stats.t.cdf(t, df)`` for a finite ``df >= 1``: the same special function, without the distribution
    object's argument handling (which made it 100x slower; the error-rate simulations call it ~10^5 times)."""
    return float(special.stdtr(df, t))


def _t_sf(t: float, df: float) -> float:
    """``scipy.stats.t.sf(t, df)`` for a finite ``df >= 1`` (see :func:`_t_cdf`)."""
    return float(special.stdtr(df, -t))


def _t_ppf(q: float, df: float) -> float:
    """``scipy.stats.t.ppf(q, df)`` for a finite ``df >= 1`` (see :func:`_t_cdf`; the same value to the bit)."""
    return float(special.stdtrit(df, q))


@dataclass(frozen=True)
class Slope:
    """A slope estimate with its standard error and the degrees of freedom of its t distribution.

    ``n`` is the number of observations and ``blocks`` the number of blocks it was estimated within (for a
    difference of two slopes: the sums, and Welch-Satterthwaite degrees of freedom).
    """

    estimate: float
    stderr: float
    df: float
    n: int
    blocks: int

    def __post_init__(self) -> None:
        # a float always, so that results.json writes it the way it reads it back (6.0, never 6)
        object.__setattr__(self, "df", float(self.df))

    @property
    def valid(self) -> bool:
        """Whether the estimate has a finite standard error and at least one degree of freedom."""
        return math.isfinite(self.estimate) and math.isfinite(self.stderr) and self.stderr > 0 and self.df >= 1

    @property
    def degenerate(self) -> str:
        """Why a slope that was estimated cannot be tested: ``"no variation"`` (the values do not vary within any
        block; the estimate is 0) or ``"no residual variation"`` (they lie exactly on a line: standard error 0);
        ``""`` for a testable slope, or one without an estimate."""
        if not (math.isfinite(self.estimate) and self.stderr == 0 and self.df >= 1):
            return ""
        return "no variation" if self.estimate == 0 else "no residual variation"

    def ci(self, confidence: float = 0.95) -> tuple[float, float]:
        """Two-sided t interval."""
        _check_level(confidence, "confidence")
        if not self.valid:
            return (NAN, NAN)
        half = _t_ppf(0.5 + confidence / 2, self.df) * self.stderr
        return (self.estimate - half, self.estimate + half)

    @property
    def p_value(self) -> float:
        """Two-sided p-value of ``slope == 0``."""
        if not self.valid:
            return NAN
        return float(2 * _t_sf(abs(self.estimate) / self.stderr, self.df))

    def p_below(self, bound: float) -> float:
        """One-sided p-value of the alternative ``slope < bound`` (null: ``slope >= bound``)."""
        if not self.valid:
            return NAN
        return float(_t_cdf((self.estimate - bound) / self.stderr, self.df))

    def p_above(self, bound: float) -> float:
        """One-sided p-value of the alternative ``slope > bound`` (null: ``slope <= bound``)."""
        if not self.valid:
            return NAN
        return float(_t_sf((self.estimate - bound) / self.stderr, self.df))

    def p_equivalent(self, margin: float) -> float:
        """TOST p-value of the alternative ``|slope| < margin``: the larger of the two one-sided p-values."""
        if margin <= 0:
            raise ValueError(f"`margin` must be > 0, got {margin}.")
        return max(self.p_below(margin), self.p_above(-margin))


def _check_level(value: float, name: str) -> None:
    if not 0 < value < 1:
        raise ValueError(f"`{name}` must be in (0, 1), got {value}.")


def _finite(values: Sequence[float]) -> np.ndarray:
    array = np.asarray([NAN if v is None else v for v in values], dtype=float)
    return array[np.isfinite(array)]


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> MeanCI:
    """Mean of the finite ``values`` with a Student-t confidence interval (``scipy.stats.t.interval``)."""
    _check_level(confidence, "confidence")
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
    # scipy.stats.t.interval's arithmetic, without the distribution object's argument handling (same values to the bit)
    low, high = (_t_ppf(q, n - 1) * sem + mean for q in ((1.0 - confidence) / 2, (1.0 + confidence) / 2))
    return MeanCI(mean, low, high, n)


def difference_ci(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Difference:
    """``mean(a) - mean(b)`` with Welch's t-test (``scipy.stats.ttest_ind(equal_var=False)``) CI and p-value."""
    _check_level(confidence, "confidence")
    x, y = _finite(a), _finite(b)
    if x.size == 0 or y.size == 0:
        return Difference(NAN, NAN, NAN, NAN, int(x.size), int(y.size))
    difference = float(x.mean() - y.mean())
    if x.size < 2 or y.size < 2 or (np.ptp(x) == 0 and np.ptp(y) == 0):
        return Difference(difference, NAN, NAN, NAN, int(x.size), int(y.size))
    with warnings.catch_warnings():
        # One group of equal values (two seeds with the same accuracy): its variance is 0, which scipy computes from
        # a mean rounded in the last bit, and warns about.
        warnings.filterwarnings("ignore", "Precision loss occurred in moment calculation", RuntimeWarning)
        result = stats.ttest_ind(x, y, equal_var=False)
    interval = result.confidence_interval(confidence)
    return Difference(
        difference, float(interval.low), float(interval.high), float(result.pvalue), int(x.size), int(y.size)
    )


def block_slope(x: Sequence[float], y: Sequence[float], blocks: Sequence[Hashable]) -> Slope:
    """Least-squares slope of ``y`` on ``x`` with one intercept per block (a fixed-effects model).

    Equivalent to the slope of the within-block deviations of ``y`` on those of ``x``, with ``n - blocks - 1``
    residual degrees of freedom. Pairs with a non-finite member are dropped; NaN fields when fewer than
    ``blocks + 2`` observations remain or ``x`` does not vary within any block. A degenerate fit (see the module
    docstring) has standard error 0: estimate 0 when ``y`` does not vary within any block, the least-squares
    estimate when the residuals vanish (both to a relative :data:`RESOLUTION` of ``max |y|``).
    """
    if not len(x) == len(y) == len(blocks):
        raise ValueError(f"`x`, `y` and `blocks` must have the same length, got {len(x)}, {len(y)}, {len(blocks)}.")
    xs = np.asarray([NAN if v is None else v for v in x], dtype=float)
    ys = np.asarray([NAN if v is None else v for v in y], dtype=float)
    keep = np.isfinite(xs) & np.isfinite(ys)
    labels = [b for b, k in zip(blocks, keep) if k]
    xs, ys = xs[keep], ys[keep]
    n = int(xs.size)
    levels = sorted(set(labels), key=repr)
    index = np.asarray([levels.index(b) for b in labels], dtype=int)
    df = n - len(levels) - 1
    if n == 0 or df < 1:
        return Slope(NAN, NAN, max(df, 0), n, len(levels))
    x_dev = xs - (np.bincount(index, xs) / np.bincount(index))[index]
    y_dev = ys - (np.bincount(index, ys) / np.bincount(index))[index]
    sxx = float(x_dev @ x_dev)
    if sxx <= 1e-12 * max(1.0, float(xs @ xs)):
        return Slope(NAN, NAN, df, n, len(levels))
    tolerance = RESOLUTION * float(np.abs(ys).max())
    if float(np.abs(y_dev).max()) <= tolerance:
        return Slope(0.0, 0.0, float(df), n, len(levels))
    estimate = float(x_dev @ y_dev) / sxx
    residual = y_dev - estimate * x_dev
    if math.sqrt(float(residual @ residual) / n) <= tolerance:
        return Slope(estimate, 0.0, float(df), n, len(levels))
    variance = float(residual @ residual) / df
    return Slope(estimate, math.sqrt(variance / sxx), float(df), n, len(levels))


@dataclass(frozen=True)
class BlockFit:
    """Least squares of ``y`` on several regressors with one intercept per block: coefficients, their covariance,
    residual degrees of freedom; :meth:`contrast` tests a linear combination of the coefficients."""

    coefficients: tuple[float, ...]
    covariance: tuple[tuple[float, ...], ...]
    df: float
    n: int
    blocks: int

    def contrast(self, weights: Sequence[float]) -> Slope:
        """``sum(w_i * beta_i)`` as a :class:`Slope` (estimate, standard error, the fit's degrees of freedom)."""
        if len(weights) != len(self.coefficients):
            raise ValueError(f"`weights` needs {len(self.coefficients)} entries, got {len(weights)}.")
        w = np.asarray(weights, dtype=float)
        beta, cov = np.asarray(self.coefficients), np.asarray(self.covariance)
        if not np.all(np.isfinite(beta)) or self.df < 1:
            return Slope(NAN, NAN, self.df, self.n, self.blocks)
        return Slope(float(w @ beta), math.sqrt(max(float(w @ cov @ w), 0.0)), self.df, self.n, self.blocks)


def block_regression(columns: Sequence[Sequence[float]], y: Sequence[float], blocks: Sequence[Hashable]) -> BlockFit:
    """Least squares of ``y`` on the regressors ``columns`` with one intercept per block (rows with a non-finite
    value dropped); NaN coefficients when the design is rank deficient or leaves no residual degree of freedom. A
    degenerate fit (as in :func:`block_slope`) has covariance 0, so its contrasts are degenerate slopes: coefficients
    0 when ``y`` does not vary within any block."""
    k = len(columns)
    data = np.asarray([[NAN if v is None else v for v in column] for column in columns], dtype=float).reshape(k, -1)
    ys = np.asarray([NAN if v is None else v for v in y], dtype=float)
    if data.shape[1] != ys.size or ys.size != len(blocks):
        raise ValueError("`columns`, `y` and `blocks` must have the same length.")
    keep = np.isfinite(ys) & np.all(np.isfinite(data), axis=0)
    labels = [b for b, kept in zip(blocks, keep) if kept]
    levels = sorted(set(labels), key=repr)
    n, df = int(keep.sum()), int(keep.sum()) - len(levels) - k
    nan_fit = BlockFit((NAN,) * k, tuple((NAN,) * k for _ in range(k)), max(df, 0), n, len(levels))
    if df < 1:
        return nan_fit
    index = np.asarray([levels.index(b) for b in labels], dtype=int)
    dummies = np.eye(len(levels))[index]
    design = np.column_stack([data[:, keep].T, dummies])
    if np.linalg.matrix_rank(design) < design.shape[1]:
        return nan_fit
    beta, *_ = np.linalg.lstsq(design, ys[keep], rcond=None)
    residual = ys[keep] - design @ beta
    tolerance = RESOLUTION * float(np.abs(ys[keep]).max())
    deviation = ys[keep] - (np.bincount(index, ys[keep]) / np.bincount(index))[index]
    if float(np.abs(deviation).max()) <= tolerance:
        beta[:k] = 0.0
    variance = float(residual @ residual) / df
    if math.sqrt(float(residual @ residual) / n) <= tolerance:
        variance = 0.0
    covariance = variance * np.linalg.inv(design.T @ design)
    return BlockFit(
        tuple(float(b) for b in beta[:k]),
        tuple(tuple(float(c) for c in row[:k]) for row in covariance[:k]),
        float(df),
        n,
        len(levels),
    )


def slope_difference(a: Slope, b: Slope) -> Slope:
    """``a - b`` for two independently estimated slopes: standard errors added in quadrature and
    Welch-Satterthwaite degrees of freedom (the two groups may differ in noise)."""
    if not (a.valid and b.valid):
        return Slope(NAN, NAN, NAN, a.n + b.n, a.blocks + b.blocks)
    va, vb = a.stderr**2, b.stderr**2
    df = (va + vb) ** 2 / (va**2 / a.df + vb**2 / b.df)
    return Slope(a.estimate - b.estimate, math.sqrt(va + vb), float(df), a.n + b.n, a.blocks + b.blocks)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down; NaN entries stay NaN and do not count as tests)."""
    values = [NAN if p is None else float(p) for p in p_values]
    finite = [i for i, p in enumerate(values) if math.isfinite(p)]
    m = len(finite)
    adjusted = [NAN] * len(values)
    running = 0.0
    for rank, i in enumerate(sorted(finite, key=lambda j: values[j])):
        running = max(running, min(1.0, (m - rank) * values[i]))
        adjusted[i] = running
    return adjusted


def power_two_sided(effect: float, stderr: float, df: float, alpha: float = 0.05) -> float:
    """Power of the two-sided level-``alpha`` t-test of ``slope == 0`` when the true slope is ``effect`` and the
    estimate has standard error ``stderr`` on ``df`` degrees of freedom (noncentral t)."""
    _check_level(alpha, "alpha")
    if not (math.isfinite(stderr) and stderr > 0 and math.isfinite(df) and df >= 1):
        return NAN
    critical = _t_ppf(1 - alpha / 2, df)
    shift = effect / stderr
    return float(stats.nct.sf(critical, df, shift) + stats.nct.cdf(-critical, df, shift))


def power_one_sided(effect: float, stderr: float, df: float, alpha: float = 0.05) -> float:
    """Power of the one-sided level-``alpha`` t-test of ``slope <= 0`` against ``slope > 0`` when the true slope is
    ``effect`` (noncentral t); for ``slope >= bound`` against ``slope < bound``, pass ``bound - true slope``."""
    _check_level(alpha, "alpha")
    if not (math.isfinite(stderr) and stderr > 0 and math.isfinite(df) and df >= 1):
        return NAN
    return float(stats.nct.sf(_t_ppf(1 - alpha, df), df, effect / stderr))


def power_tost(margin: float, stderr: float, df: float, alpha: float = 0.05, effect: float = 0.0) -> float:
    """Probability that the level-``alpha`` TOST shows ``|slope| < margin`` when the true slope is ``effect``:
    ``P(effect_hat - t*se > -margin and effect_hat + t*se < margin)``, with the estimate normal around
    ``effect`` (the standard large-sample approximation of TOST power)."""
    _check_level(alpha, "alpha")
    if not (math.isfinite(stderr) and stderr > 0 and math.isfinite(df) and df >= 1):
        return NAN
    critical = _t_ppf(1 - alpha, df)
    upper = (margin - effect) / stderr - critical
    lower = (-margin - effect) / stderr + critical
    return float(max(0.0, stats.norm.cdf(upper) - stats.norm.cdf(lower)))
