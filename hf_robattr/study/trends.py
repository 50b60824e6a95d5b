"""The trend of a per-run value along ``log2(lr / B)`` over a model's runs, by the analysis's rule.

Study v2 (``cell_level=False``) fits runs with the seed as a block (:func:`~.stats.block_slope`); study v3
(``cell_level=True``) adds a cell random effect, cells being ``(lr, B)`` (:func:`~.cell_effects.cell_slope`: the
line through the cell means after seed effects, on ``cells - 2`` degrees of freedom). The descriptive tables of the
report (every measure, the radius sweep, lr and B separated, curvature) go through here, so that under v3 no slope
in the report treats the runs of one cell as independent draws.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .cell_effects import cell_slope, separate_effects
from .stats import Slope, block_regression, block_slope
from .summaries import RunSummary


__all__ = ["is_cell_level", "lr_batch_trends", "trend"]


def is_cell_level(analysis: str) -> bool:
    """Whether the analysis ``"v2"`` / ``"v3"`` puts a cell random effect on its slopes."""
    return analysis == "v3"


def trend(runs: Sequence[RunSummary], values: Sequence[float], cell_level: bool) -> Slope:
    """The slope of ``values`` (one per run) on ``log2(lr / B)``."""
    x, seeds = [r.log2_strength for r in runs], [r.seed for r in runs]
    if not cell_level:
        return block_slope(x, values, seeds)
    return cell_slope(x, values, [(r.learning_rate, r.batch_size) for r in runs], seeds)


def lr_batch_trends(
    runs: Sequence[RunSummary], values: Sequence[float], cell_level: bool
) -> tuple[Slope, Slope, Slope]:
    """``values ~ log2 lr + log2 B`` fitted together: the lr slope, the B slope and their sum (0 when only lr/B
    matters); v2 over runs with seed blocks, v3 over the cell means (:func:`~.cell_effects.separate_effects`)."""
    log_lr = [math.log2(r.learning_rate) for r in runs]
    log_batch = [math.log2(r.batch_size) for r in runs]
    seeds = [r.seed for r in runs]
    if not cell_level:
        fit = block_regression([log_lr, log_batch], values, seeds)
        return fit.contrast([1, 0]), fit.contrast([0, 1]), fit.contrast([1, 1])
    cells = [(r.learning_rate, r.batch_size) for r in runs]
    effects = separate_effects(log_lr, log_batch, values, cells, seeds)
    return effects["learning_rate"], effects["batch_size"], effects["sum"]
