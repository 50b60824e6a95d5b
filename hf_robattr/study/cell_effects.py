"""Slopes with a cell random effect, lack of fit, and the error rates of a decision rule (study v3, issue 25.4).

Runs of one grid cell (one learning rate and batch size) share more than their lr/B: the data order of a seed is
shared across cells, but the cell itself shifts every run's value by an amount that the line in log2(lr/B) does not
explain (v2: two cells of equal lr/B disagreed by up to 0.19 on digits). Treating the runs as independent draws
around the line then overstates the evidence. The model here is

    y[run] = a + b * x[cell] + u[cell] + s[seed] + e[run],   u ~ N(0, cell_sd^2),   e ~ N(0, run_sd^2),

and the slope ``b`` is estimated from **cell means** (each cell's value after removing the seed effects, by least
squares on cell and seed indicators), regressed on the cells' ``x``: its standard error comes from the scatter of
the cell means around the line, which holds both ``cell_sd`` and ``run_sd / sqrt(runs per cell)``, on
``cells - 2`` degrees of freedom. With one run per cell and no cell effect this is the ordinary regression; with
many seeds it is the standard analysis of a design whose unit of treatment is the cell.

:func:`lack_of_fit` is the classic F test of the line against one free mean per cell (pure error from the runs
within cells, after the seed effects); :func:`separate_effects` fits lr and B separately on the cell means, for a
grid where the line does not fit; :func:`simulate_error_rates` replays a decision rule on data simulated from the
model above at a stated spread (the error rates the report states); :func:`estimate_spread` reads that spread from
the runs.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats

from .stats import NAN, Slope, block_regression, block_slope


__all__ = [
    "CellMeans",
    "LackOfFit",
    "Spread",
    "cell_means",
    "cell_slope",
    "estimate_spread",
    "lack_of_fit",
    "separate_effects",
    "simulate_error_rates",
]


@dataclass(frozen=True)
class CellMeans:
    """Per cell (in order of first appearance): its ``x``, its mean after the seed effects, and its run count."""

    cells: tuple[Hashable, ...]
    x: np.ndarray
    means: np.ndarray
    counts: np.ndarray


@dataclass(frozen=True)
class LackOfFit:
    """F test of the straight line against one mean per cell: ``f`` on (``df_lack``, ``df_pure``), ``p``."""

    f: float
    df_lack: int
    df_pure: int
    p: float

    def rejects(self, alpha: float = 0.05) -> bool:
        """Whether the line is rejected at level ``alpha`` (False when the test could not be run)."""
        return bool(np.isfinite(self.p) and self.p < alpha)


@dataclass(frozen=True)
class Spread:
    """Standard deviations of the cell effect and of a run within its cell, as :func:`estimate_spread` reads them."""

    cell_sd: float
    run_sd: float


def _columns(x, y, cells, blocks) -> tuple[np.ndarray, np.ndarray, list, list]:
    if blocks is None:
        blocks = [0] * len(y)
    if not len(x) == len(y) == len(cells) == len(blocks):
        raise ValueError(
            f"`x`, `y`, `cells` and `blocks` must have the same length, got {len(x)}, {len(y)}, {len(cells)}, "
            f"{len(blocks)}."
        )
    xs = np.asarray([NAN if v is None else v for v in x], dtype=float)
    ys = np.asarray([NAN if v is None else v for v in y], dtype=float)
    keep = np.isfinite(xs) & np.isfinite(ys)
    return xs[keep], ys[keep], [c for c, k in zip(cells, keep) if k], [b for b, k in zip(blocks, keep) if k]


def _indicators(labels: list) -> tuple[list, np.ndarray]:
    positions = {level: i for i, level in enumerate(dict.fromkeys(labels))}
    return list(positions), np.asarray([positions[label] for label in labels], dtype=int)


@lru_cache(maxsize=16)
def _design(cell_bytes: bytes, block_bytes: bytes, cells: int, blocks: int) -> np.ndarray:
    cell_index, block_index = np.frombuffer(cell_bytes, dtype=int), np.frombuffer(block_bytes, dtype=int)
    design = np.zeros((cell_index.size, cells + blocks - 1))
    design[np.arange(cell_index.size), cell_index] = 1.0
    for level in range(1, blocks):  # sum-to-zero coding: the cell effects are means over an average seed
        design[block_index == level, cells + level - 1] = 1.0
        design[block_index == 0, cells + level - 1] = -1.0
    design.setflags(write=False)
    return design


# A decision fits the same runs several times (the slope, the spread, the margin), and the error-rate simulations
# make ~10^5 decisions on one layout: the fits are remembered by their exact inputs, so the numbers do not change.
@lru_cache(maxsize=64)
def _cached_fit(ys_bytes: bytes, cell_bytes: bytes, block_bytes: bytes, cells: int, blocks: int):
    ys = np.frombuffer(ys_bytes, dtype=float)
    design = _design(cell_bytes, block_bytes, cells, blocks)
    # lstsq's rank uses matrix_rank's default tolerance (largest singular value x eps x max(design.shape))
    beta, _, rank, _ = np.linalg.lstsq(design, ys, rcond=None)
    if rank < design.shape[1]:
        return None
    residual = ys - design @ beta
    beta.setflags(write=False)
    return beta[:cells], float(residual @ residual)


def _additive_fit(ys: np.ndarray, cell_index: np.ndarray, block_index: np.ndarray, cells: int, blocks: int):
    """Least squares of ``ys`` on cell and seed indicators (seed effects summing to zero): the cell effects and the
    residual sum of squares, or ``None`` when the design cannot separate them."""
    fit = _cached_fit(
        np.ascontiguousarray(ys, dtype=float).tobytes(),
        np.ascontiguousarray(cell_index, dtype=int).tobytes(),
        np.ascontiguousarray(block_index, dtype=int).tobytes(),
        cells,
        blocks,
    )
    return None if fit is None else (fit[0].copy(), fit[1])


def cell_means(
    x: Sequence[float], y: Sequence[float], cells: Sequence[Hashable], blocks: Sequence[Hashable] | None = None
) -> CellMeans:
    """Each cell's mean of ``y`` after the seed (``blocks``) effects, with its ``x`` (which must be one value per
    cell) and run count. Runs with a non-finite ``x`` or ``y`` are dropped."""
    xs, ys, cell_labels, block_labels = _columns(x, y, cells, blocks)
    # the labels' types are part of the key: 1, 1.0 and True are equal keys but distinct labels
    types = (tuple(map(type, cell_labels)), tuple(map(type, block_labels)))
    found = _cached_means(xs.tobytes(), ys.tobytes(), tuple(cell_labels), tuple(block_labels), types)
    return CellMeans(found.cells, found.x.copy(), found.means.copy(), found.counts.copy())


@lru_cache(maxsize=64)
def _cached_means(x_bytes: bytes, y_bytes: bytes, cell_labels: tuple, block_labels: tuple, _types: tuple) -> CellMeans:
    xs, ys = np.frombuffer(x_bytes, dtype=float), np.frombuffer(y_bytes, dtype=float)
    levels, cell_index = _indicators(cell_labels)
    block_levels, block_index = _indicators(block_labels)
    cell_x = np.full(len(levels), NAN)
    if levels:  # each cell's x is its first run's; every run of the cell must agree with it
        high, low, scale = np.full(len(levels), -np.inf), np.full(len(levels), np.inf), np.ones(len(levels))
        np.maximum.at(high, cell_index, xs)
        np.minimum.at(low, cell_index, xs)
        np.maximum.at(scale, cell_index, np.abs(xs))
        for index in np.flatnonzero(high - low > 1e-9 * scale):
            values = sorted(set(xs[cell_index == index]))
            raise ValueError(f"`x` must be one value per cell; cell {levels[index]!r} has {values}.")
        cell_x = xs[np.unique(cell_index, return_index=True)[1]]
    counts = np.bincount(cell_index, minlength=len(levels)) if levels else np.zeros(0, dtype=int)
    fit = _additive_fit(ys, cell_index, block_index, len(levels), len(block_levels)) if levels else None
    # seeds confounded with cells (or nothing left): plain means
    plain = np.bincount(cell_index, ys, minlength=len(levels)) / np.maximum(counts, 1)
    means = plain if fit is None else fit[0]
    return CellMeans(tuple(levels), cell_x, np.asarray(means, dtype=float), counts)


def cell_slope(
    x: Sequence[float], y: Sequence[float], cells: Sequence[Hashable], blocks: Sequence[Hashable] | None = None
) -> Slope:
    """The slope of ``y`` on ``x`` with a cell random effect: least squares of the cell means (:func:`cell_means`)
    on the cells' ``x``, on ``cells - 2`` degrees of freedom (``Slope.n`` counts the runs, ``Slope.blocks`` the
    cells). NaN fields with fewer than 3 cells or one ``x``."""
    means = cell_means(x, y, cells, blocks)
    slope = block_slope(means.x, means.means, [0] * len(means.cells))
    return Slope(slope.estimate, slope.stderr, slope.df, int(means.counts.sum()), len(means.cells))


def separate_effects(
    log_lr: Sequence[float],
    log_batch: Sequence[float],
    y: Sequence[float],
    cells: Sequence[Hashable],
    blocks: Sequence[Hashable] | None = None,
) -> dict[str, Slope]:
    """The slopes of the cell means on log2(lr) and on log2(B), fitted together (``cells - 3`` degrees of freedom):
    ``{"learning_rate": ..., "batch_size": ..., "sum": ...}``. Under the lr/B line they are ``b`` and ``-b``, and
    their ``sum`` is 0."""
    means = cell_means(log_lr, y, cells, blocks)
    batch = cell_means(log_batch, y, cells, blocks)
    fit = block_regression([means.x, batch.x], means.means, [0] * len(means.cells))
    runs, count = int(means.counts.sum()), len(means.cells)
    named = {}
    for name, weights in (("learning_rate", (1.0, 0.0)), ("batch_size", (0.0, 1.0)), ("sum", (1.0, 1.0))):
        slope = fit.contrast(weights)
        named[name] = Slope(slope.estimate, slope.stderr, slope.df, runs, count)
    return named


def lack_of_fit(
    x: Sequence[float], y: Sequence[float], cells: Sequence[Hashable], blocks: Sequence[Hashable] | None = None
) -> LackOfFit:
    """F test of ``y = a + b x`` (plus seed effects) against one free mean per cell (plus seed effects): lack-of-fit
    mean square over pure-error mean square, on ``(cells - 2, runs - cells - seeds + 1)`` degrees of freedom. NaN
    when either is below 1 or the pure error is 0."""
    xs, ys, cell_labels, block_labels = _columns(x, y, cells, blocks)
    levels, cell_index = _indicators(cell_labels)
    block_levels, block_index = _indicators(block_labels)
    df_lack = len(levels) - 2
    df_pure = ys.size - len(levels) - len(block_levels) + 1
    full = _additive_fit(ys, cell_index, block_index, len(levels), len(block_levels)) if levels else None
    if df_lack < 1 or df_pure < 1 or full is None:
        return LackOfFit(NAN, max(df_lack, 0), max(df_pure, 0), NAN)
    design = np.column_stack([xs, np.eye(len(block_levels))[block_index]])
    if np.linalg.matrix_rank(design) < design.shape[1] or full[1] <= 0:
        return LackOfFit(NAN, df_lack, df_pure, NAN)
    beta, *_ = np.linalg.lstsq(design, ys, rcond=None)
    residual = ys - design @ beta
    ss_line, ss_pure = float(residual @ residual), full[1]
    f = (max(ss_line - ss_pure, 0.0) / df_lack) / (ss_pure / df_pure)
    return LackOfFit(float(f), df_lack, df_pure, float(stats.f.sf(f, df_lack, df_pure)))


def estimate_spread(
    x: Sequence[float], y: Sequence[float], cells: Sequence[Hashable], blocks: Sequence[Hashable] | None = None
) -> Spread:
    """Method-of-moments ``cell_sd`` and ``run_sd``: the run scatter from the pure error of :func:`lack_of_fit`'s
    full model, the cell scatter from what the cell means' residual variance around the line holds beyond
    ``run_sd^2 / runs per cell`` (0 when nothing is left)."""
    xs, ys, cell_labels, block_labels = _columns(x, y, cells, blocks)
    levels, cell_index = _indicators(cell_labels)
    block_levels, block_index = _indicators(block_labels)
    df_pure = ys.size - len(levels) - len(block_levels) + 1
    full = _additive_fit(ys, cell_index, block_index, len(levels), len(block_levels)) if levels else None
    if full is None or df_pure < 1 or len(levels) < 3:
        return Spread(NAN, NAN)
    run_var = full[1] / df_pure
    means = cell_means(xs, ys, cell_labels, block_labels)
    slope = block_slope(means.x, means.means, [0] * len(levels))
    residual = means.means - means.means.mean() - slope.estimate * (means.x - means.x.mean())
    mean_var = float(residual @ residual) / (len(levels) - 2)
    harmonic = len(levels) / float(np.sum(1.0 / means.counts))
    return Spread(float(np.sqrt(max(mean_var - run_var / harmonic, 0.0))), float(np.sqrt(run_var)))


def simulate_error_rates(
    decide: Callable[[Sequence[float], Sequence[float], Sequence[Hashable], Sequence[Hashable]], str],
    cell_x: Sequence[float],
    *,
    seeds: int,
    slope: float,
    spread: Spread,
    simulations: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """How often ``decide`` returns each verdict on data simulated from the module's model: one run per cell and
    seed, cells at ``cell_x``, true slope ``slope``, cell and run scatter ``spread`` (seed effects are drawn too: a
    rule must not depend on them). ``decide(x, y, cells, blocks)`` returns a verdict string; the result maps each
    verdict seen to its share of ``simulations``. A ``decide`` with a ``batch(x, ys, cells, blocks)`` attribute is
    given all the studies at once (one row of ``ys`` each, drawn in the same order) and returns their verdicts."""
    if simulations < 1 or seeds < 1:
        raise ValueError(f"`simulations` and `seeds` must be >= 1, got {simulations} and {seeds}.")
    if not (np.isfinite(spread.cell_sd) and np.isfinite(spread.run_sd)) or min(spread.cell_sd, spread.run_sd) < 0:
        raise ValueError(f"`spread` must hold finite, non-negative standard deviations, got {spread}.")
    rng = np.random.default_rng(seed)
    grid = np.asarray(cell_x, dtype=float)
    x = np.tile(grid, seeds)
    cells = list(np.tile(np.arange(grid.size), seeds))
    blocks = list(np.repeat(np.arange(seeds), grid.size))
    drawn = np.empty((simulations, x.size))
    for i in range(simulations):
        cell_effect = rng.normal(0.0, spread.cell_sd, grid.size)
        seed_effect = rng.normal(0.0, spread.run_sd, seeds)
        y = slope * x + np.tile(cell_effect, seeds) + np.repeat(seed_effect, grid.size)
        drawn[i] = y + rng.normal(0.0, spread.run_sd, x.size)
    batch = getattr(decide, "batch", None)
    if batch is not None:
        verdicts = batch(x, drawn, cells, blocks)
    else:
        verdicts = [decide(list(x), list(y), cells, blocks) for y in drawn]
    counts: dict[str, int] = {}
    for verdict in verdicts:
        counts[verdict] = counts.get(verdict, 0) + 1
    return {verdict: count / simulations for verdict, count in sorted(counts.items())}
