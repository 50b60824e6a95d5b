"""Study v3's decision rules on many simulated studies of one layout at once, for the error-rate simulations.

The error rates replay a rule on thousands of studies that share their cells, seeds and ``x`` and differ only in
``y`` (:func:`~hf_robattr.study.cell_effects.simulate_error_rates`). The one-study path fits each one by least squares
and tests it in Python, ~0.5 ms a study; here the fits of all studies are one least-squares solve with many
right-hand sides and the tests are array operations.

The one-study rules stay the reference. The batch computes the same quantities in the same way (cell means after the
seed effects, the slope of the means on their ``x``, the margin rule's run spread, the t tests), up to floating-point
rounding in the last bits; a study whose verdict could turn on that rounding is decided by the one-study rule
instead: a degenerate or nearly degenerate fit (the thresholds of :func:`~hf_robattr.study.stats.block_slope`, with a
factor 4 to spare), a non-finite value, or a p-value within :data:`P_GUARD` of ``alpha``. The verdicts, and so the
rates, are the reference's (``tests/study/test_batched_rules.py`` checks both paths against each other).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from .cell_effects import _design, _indicators
from .stats import RESOLUTION


__all__ = ["P_GUARD", "BatchSlopes", "Layout", "batch_slopes", "decide_rows", "layout_of", "margins", "near"]

P_GUARD = 1e-9
"""A p-value closer than this to ``alpha`` sends its study to the one-study rule."""

_SPARE = 4.0  # how far inside the one-study path's degeneracy thresholds a batch study must be


@dataclass(frozen=True)
class Layout:
    """What the studies of one simulation share: each run's cell and seed (as indices), the cells' ``x``, their run
    counts, and the least-squares design of cell means plus sum-to-zero seed effects (``None`` when it is rank
    deficient: the one-study path then takes plain cell means)."""

    cell_index: np.ndarray
    block_index: np.ndarray
    cell_x: np.ndarray
    counts: np.ndarray
    design: np.ndarray | None

    @property
    def cells(self) -> int:
        return self.cell_x.size


def layout_of(x: Sequence[float], cells: Sequence[Hashable], blocks: Sequence[Hashable]) -> Layout | None:
    """The shared layout of studies with runs at ``x`` in ``cells`` and ``blocks``; ``None`` where a run's ``x``
    is not finite or a cell's runs disagree on ``x`` (the one-study path handles, or refuses, those)."""
    xs = np.asarray(x, dtype=float)
    if not np.all(np.isfinite(xs)) or not len(xs) == len(cells) == len(blocks):
        return None
    levels, cell_index = _indicators(list(cells))
    block_levels, block_index = _indicators(list(blocks))
    k, b = len(levels), len(block_levels)
    first = np.unique(cell_index, return_index=True)[1]
    cell_x = xs[first]
    if np.any(xs != cell_x[cell_index]):
        return None
    design = _design(cell_index.tobytes(), block_index.tobytes(), k, b)  # the one-study fit's design
    full_rank = np.linalg.matrix_rank(design) == design.shape[1]
    counts = np.bincount(cell_index, minlength=k)
    return Layout(cell_index, block_index, cell_x, counts, design if full_rank else None)


@dataclass(frozen=True)
class BatchSlopes:
    """Per study: the slope of the cell means on ``x``, its standard error, the residual sum of squares of the
    additive fit (NaN without one), and whether the batch may decide the study (``clear``); ``df`` is shared."""

    estimate: np.ndarray
    stderr: np.ndarray
    rss: np.ndarray
    clear: np.ndarray
    df: float

    def p_above(self, bound: float | np.ndarray) -> np.ndarray:
        """One-sided p-values of ``slope > bound`` (``Slope.p_above``; NaN where the batch has no test)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return special.stdtr(self.df, -(self.estimate - bound) / self.stderr)

    def p_below(self, bound: float | np.ndarray) -> np.ndarray:
        """One-sided p-values of ``slope < bound`` (``Slope.p_below``; NaN where the batch has no test)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return special.stdtr(self.df, (self.estimate - bound) / self.stderr)


def batch_slopes(layout: Layout, ys: np.ndarray) -> BatchSlopes:
    """``cell_slope`` of every row of ``ys`` (one study per row, runs in ``layout``'s order)."""
    k = layout.cells
    rows = ys.shape[0]
    if layout.design is not None:
        beta = np.linalg.lstsq(layout.design, ys.T, rcond=None)[0]
        means = beta[:k].T
        residual = ys - (layout.design @ beta).T
        rss = np.einsum("ij,ij->i", residual, residual)
    else:
        sums = np.stack([np.bincount(layout.cell_index, row, minlength=k) for row in ys])
        means, rss = sums / np.maximum(layout.counts, 1), np.full(rows, np.nan)
    x = layout.cell_x
    x_dev = x - x.mean()
    sxx = float(x_dev @ x_dev)
    df = k - 2
    if df < 1 or sxx <= _SPARE * 1e-12 * max(1.0, float(x @ x)):
        nothing = np.full(rows, np.nan)
        return BatchSlopes(nothing, nothing, rss, np.zeros(rows, dtype=bool), float(max(df, 0)))
    y_dev = means - means.mean(axis=1, keepdims=True)
    estimate = y_dev @ x_dev / sxx
    fitted = y_dev - estimate[:, None] * x_dev
    residual_ss = np.einsum("ij,ij->i", fitted, fitted)
    tolerance = RESOLUTION * np.abs(means).max(axis=1)
    clear = (np.abs(y_dev).max(axis=1) > _SPARE * tolerance) & (np.sqrt(residual_ss / k) > _SPARE * tolerance)
    with np.errstate(invalid="ignore", divide="ignore"):
        stderr = np.sqrt(residual_ss / df / sxx)
    clear &= np.isfinite(estimate) & np.isfinite(stderr) & (stderr > 0)
    return BatchSlopes(estimate, stderr, rss, clear, float(df))


def margins(
    layout: Layout, slopes: BatchSlopes, scale: np.ndarray, fixed: float, doublings: float
) -> tuple[np.ndarray, np.ndarray]:
    """The margin rule's margin of every study (``checks_v3.margin_rule``: the run spread of the additive fit over
    ``doublings``, or ``fixed`` where there is no positive run spread), and where its branch is clear: a run spread
    that is 0 up to rounding (below ``RESOLUTION`` of the study's ``scale``, its largest ``|y|``) is not."""
    k, runs = layout.cells, layout.cell_index.size
    blocks = int(layout.block_index.max()) + 1 if runs else 0
    df_pure = runs - k - blocks + 1
    rows = slopes.estimate.size
    if k < 3 or df_pure < 1 or layout.design is None or not doublings > 0:
        return np.full(rows, fixed), np.ones(rows, dtype=bool)
    run_sd = np.sqrt(slopes.rss / df_pure)
    clear = np.isfinite(run_sd) & (run_sd > _SPARE * RESOLUTION * scale)
    return np.where(clear, run_sd / doublings, fixed), clear


def near(p: np.ndarray, alpha: float) -> np.ndarray:
    """Where a p-value is within :data:`P_GUARD` of ``alpha``, or not finite."""
    return ~np.isfinite(p) | (np.abs(p - alpha) < P_GUARD)


def decide_rows(
    clear: np.ndarray,
    decide_clear: Callable[[int], str],
    decide_reference: Callable[[int], str],
) -> list[str]:
    """Each row's verdict: by the batch where ``clear``, else by the one-study reference."""
    return [decide_clear(i) if ok else decide_reference(i) for i, ok in enumerate(clear)]
