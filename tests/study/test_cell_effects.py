"""Slopes with a cell random effect against references (scipy's linregress, textbook lack-of-fit sums) and against
simulations with planted effects: the cell-level rule keeps its stated error rate where the run-level one does not."""

import math

import numpy as np
import pytest
from scipy import stats

from hf_robattr.study.cell_effects import (
    Spread,
    cell_means,
    cell_slope,
    estimate_spread,
    lack_of_fit,
    separate_effects,
    simulate_error_rates,
)
from hf_robattr.study.stats import block_slope


# A 3 x 3 grid of log2(lr) x log2(B): 8 doublings of lr/B, three cells of equal lr/B on the diagonal.
LOG_LR = np.log2([0.05, 0.2, 0.8])
LOG_B = np.log2([8, 32, 128])
GRID = [(lr, b) for lr in LOG_LR for b in LOG_B]
CELL_X = [lr - b for lr, b in GRID]


def runs(y_of_cell, seeds=5, seed_shift=None):
    x, y, cells, blocks = [], [], [], []
    for seed in range(seeds):
        for index, (lr, b) in enumerate(GRID):
            x.append(lr - b)
            y.append(y_of_cell(index, lr, b) + (seed_shift[seed] if seed_shift is not None else 0.0))
            cells.append(index)
            blocks.append(seed)
    return x, y, cells, blocks


def test_one_run_per_cell_is_ordinary_regression():
    rng = np.random.default_rng(0)
    y = 0.3 * np.asarray(CELL_X) + rng.normal(0, 0.1, len(CELL_X))
    slope = cell_slope(CELL_X, y, range(len(CELL_X)))
    reference = stats.linregress(CELL_X, y)
    assert slope.estimate == pytest.approx(reference.slope, rel=1e-10)
    assert slope.stderr == pytest.approx(reference.stderr, rel=1e-10)
    assert slope.df == len(CELL_X) - 2 and slope.blocks == len(CELL_X)


def test_balanced_seeds_give_plain_cell_means_and_their_regression():
    rng = np.random.default_rng(1)
    x, y, cells, blocks = runs(lambda i, lr, b: 0.1 * (lr - b), seed_shift=rng.normal(0, 1, 5))
    y = list(np.asarray(y) + rng.normal(0, 0.05, len(y)))
    means = cell_means(x, y, cells, blocks)
    plain = [np.mean([v for v, c in zip(y, cells) if c == i]) for i in range(9)]
    np.testing.assert_allclose(means.means, plain, rtol=1e-10)
    reference = stats.linregress(CELL_X, plain)
    slope = cell_slope(x, y, cells, blocks)
    assert slope.estimate == pytest.approx(reference.slope, rel=1e-9)
    assert slope.stderr == pytest.approx(reference.stderr, rel=1e-9)
    assert slope.n == 45 and slope.df == 7


def test_seed_effects_are_removed_when_a_run_is_missing():
    truth = np.arange(9) * 0.1
    x, y, cells, blocks = runs(lambda i, lr, b: truth[i], seeds=3, seed_shift=[0.0, 1.0, -2.0])
    y[4] = float("nan")  # seed 0 lost its run of cell 4: plain means would be off by the seed shifts
    means = cell_means(x, y, cells, blocks)
    by_cell = dict(zip(means.cells, means.means))
    got = np.asarray([by_cell[i] for i in range(9)])
    offset = got[0] - truth[0]  # the level is an average seed's; differences between cells are exact
    np.testing.assert_allclose(got - offset, truth, atol=1e-12)
    assert dict(zip(means.cells, means.counts.tolist())) == {i: 2 if i == 4 else 3 for i in range(9)}


def test_lack_of_fit_matches_the_textbook_sums_of_squares():
    rng = np.random.default_rng(2)
    x, y, cells, _ = runs(lambda i, lr, b: 0.2 * (lr - b) ** 2 / 10, seeds=4)
    y = np.asarray(y) + rng.normal(0, 0.05, len(y))
    result = lack_of_fit(x, y, cells)
    fitted = np.polyval(np.polyfit(x, y, 1), x)
    sse = float(np.sum((y - fitted) ** 2))
    groups = [y[np.asarray(cells) == i] for i in range(9)]
    ss_pure = sum(float(np.sum((g - g.mean()) ** 2)) for g in groups)
    f = ((sse - ss_pure) / 7) / (ss_pure / (36 - 9))
    assert result.df_lack == 7 and result.df_pure == 27
    assert result.f == pytest.approx(f, rel=1e-9)
    assert result.p == pytest.approx(stats.f.sf(f, 7, 27), rel=1e-9)


def _one_sided(test):
    """A claim-1-shaped rule: 'supported' when the slope is shown above 0 at level 0.05."""

    def decide(x, y, cells, blocks):
        slope = test(x, y, cells, blocks)
        return "supported" if slope.valid and slope.p_above(0.0) < 0.05 else "not shown"

    return decide


CELL_SPREAD = Spread(cell_sd=0.02, run_sd=0.02)  # cells scatter as much as runs, as v2's digits cells did


def test_the_cell_rule_keeps_its_error_rate_where_the_run_rule_does_not():
    cell_rule = simulate_error_rates(
        _one_sided(cell_slope), CELL_X, seeds=5, slope=0.0, spread=CELL_SPREAD, simulations=1000
    )
    run_rule = simulate_error_rates(
        _one_sided(lambda x, y, c, b: block_slope(x, y, b)),
        CELL_X,
        seeds=5,
        slope=0.0,
        spread=CELL_SPREAD,
        simulations=1000,
    )
    # 1000 draws at a true rate of 0.05: 99.9% of them fall in [0.03, 0.075]
    assert 0.03 <= cell_rule.get("supported", 0.0) <= 0.075
    assert run_rule["supported"] > 0.15


def test_a_planted_slope_is_found_by_the_cell_rule():
    rates = simulate_error_rates(
        _one_sided(cell_slope), CELL_X, seeds=5, slope=0.01, spread=CELL_SPREAD, simulations=400
    )
    assert rates["supported"] > 0.8


def test_lack_of_fit_finds_a_planted_bend_and_holds_its_level_on_a_line():
    def rejects(x, y, cells, blocks):
        return "bent" if lack_of_fit(x, y, cells, blocks).rejects() else "line"

    line = simulate_error_rates(rejects, CELL_X, seeds=5, slope=0.01, spread=Spread(0.0, 0.02), simulations=500)
    assert 0.02 <= line.get("bent", 0.0) <= 0.09  # 500 draws at a true rate of 0.05
    center = float(np.mean(CELL_X))

    def rejects_bent(x, y, cells, blocks):  # the planted effect: curvature of 0.01 per squared doubling
        return rejects(x, [v + 0.01 * (u - center) ** 2 for u, v in zip(x, y)], cells, blocks)

    bent = simulate_error_rates(rejects_bent, CELL_X, seeds=5, slope=0.01, spread=Spread(0.0, 0.02), simulations=200)
    assert bent["bent"] > 0.9


def test_separate_effects_recover_planted_lr_and_batch_slopes():
    _, y, cells, blocks = runs(lambda i, lr, b: 0.03 * lr - 0.01 * b, seeds=2)
    log_lr = [GRID[c][0] for c in cells]
    log_b = [GRID[c][1] for c in cells]
    rng = np.random.default_rng(3)
    y = list(np.asarray(y) + rng.normal(0, 1e-3, len(y)))
    effects = separate_effects(log_lr, log_b, y, cells, blocks)
    assert effects["learning_rate"].estimate == pytest.approx(0.03, abs=1e-3)
    assert effects["batch_size"].estimate == pytest.approx(-0.01, abs=1e-3)
    assert effects["learning_rate"].df == 6


def test_estimate_spread_reads_the_planted_spread():
    rng = np.random.default_rng(4)
    cell_x = np.linspace(-8, 0, 40)
    cell_effect = rng.normal(0, 0.03, cell_x.size)
    x, y, cells, blocks = [], [], [], []
    for seed in range(20):
        for index, value in enumerate(cell_x):
            x.append(value)
            y.append(0.01 * value + cell_effect[index] + rng.normal(0, 0.02))
            cells.append(index)
            blocks.append(seed)
    spread = estimate_spread(x, y, cells, blocks)
    assert spread.run_sd == pytest.approx(0.02, rel=0.1)
    assert spread.cell_sd == pytest.approx(float(np.std(cell_effect, ddof=2)), rel=0.2)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="same length"):
        cell_slope([1.0, 2.0], [1.0], [0, 1])
    with pytest.raises(ValueError, match="one value per cell"):
        cell_means([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [0, 0, 1])
    with pytest.raises(ValueError, match="simulations"):
        simulate_error_rates(lambda *a: "x", CELL_X, seeds=2, slope=0.0, spread=CELL_SPREAD, simulations=0)
    with pytest.raises(ValueError, match="spread"):
        simulate_error_rates(lambda *a: "x", CELL_X, seeds=2, slope=0.0, spread=Spread(float("nan"), 0.1))
    two_cells = cell_slope([0.0, 0.0, 1.0, 1.0], [1.0, 1.1, 2.0, 2.1], [0, 0, 1, 1])
    assert math.isnan(two_cells.estimate) or not two_cells.valid
    assert math.isnan(lack_of_fit([0.0, 1.0], [1.0, 2.0], [0, 1]).p)


def test_remembered_fits_are_the_fits_and_cannot_be_changed_through_a_result():
    """The fits are remembered by their exact inputs (the error-rate simulations refit the same runs several times
    per decision): a later call gives the same numbers as the first, and changing one result's arrays changes
    nothing the next caller sees."""
    x, y, cells, blocks = runs(lambda index, lr, b: 0.1 * (lr - b) + 0.01 * index, seeds=3, seed_shift=[0, 0.2, -0.1])
    first = cell_means(x, y, cells, blocks)
    first.means[:] = 99.0
    first.x[:] = 99.0
    again = cell_means(x, y, cells, blocks)
    design = np.column_stack([np.eye(9)[cells], np.eye(3)[blocks][:, 1:] - np.eye(3)[blocks][:, :1]])
    reference = np.linalg.lstsq(design, np.asarray(y), rcond=None)[0][:9]
    np.testing.assert_allclose(again.means, reference, rtol=1e-12)
    np.testing.assert_array_equal(again.x, np.asarray(CELL_X))
    changed = list(y)
    changed[0] += 1.0
    assert cell_means(x, changed, cells, blocks).means[0] != again.means[0]
    as_floats = cell_means(x, y, [float(c) for c in cells], blocks)  # equal labels of another type stay themselves
    assert all(type(c) is float for c in as_floats.cells) and all(type(c) is int for c in again.cells)
