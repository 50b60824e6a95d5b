"""The study's statistics against scipy computed directly, and the power formulas against simulation."""

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from hf_robattr.study.stats import (
    Slope,
    block_regression,
    block_slope,
    difference_ci,
    holm,
    mean_ci,
    power_tost,
    power_two_sided,
    slope_difference,
)


def test_mean_ci_matches_scipy_t_interval():
    values = [0.61, 0.58, 0.66, 0.7, 0.63]
    result = mean_ci(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert result.mean == pytest.approx(np.mean(values))
    assert (result.low, result.high) == pytest.approx((low, high))
    assert result.n == 5


@pytest.mark.parametrize(
    ("values", "n", "finite_bounds"),
    [
        pytest.param([], 0, False, id="empty"),
        pytest.param([0.5], 1, False, id="one"),
        pytest.param([0.5, float("nan"), None, 0.7], 2, True, id="nan-and-none-dropped"),
        pytest.param([0.4, 0.4, 0.4], 3, True, id="constant"),
    ],
)
def test_mean_ci_edge_cases(values, n, finite_bounds):
    result = mean_ci(values)
    assert result.n == n
    assert math.isfinite(result.low) == finite_bounds


def test_difference_ci_matches_welch():
    a, b = [0.8, 0.82, 0.79, 0.85], [0.7, 0.72, 0.69, 0.75, 0.71]
    result = difference_ci(a, b)
    reference = stats.ttest_ind(a, b, equal_var=False)
    interval = reference.confidence_interval(0.95)
    assert result.difference == pytest.approx(np.mean(a) - np.mean(b))
    assert (result.low, result.high, result.p_value) == pytest.approx((interval.low, interval.high, reference.pvalue))
    assert math.isnan(difference_ci([1.0], [2.0, 3.0]).low)
    assert math.isnan(difference_ci([], [2.0]).difference)


def test_difference_ci_with_one_group_of_equal_values_is_welch_without_scipy_warning():
    """Two seeds with the same accuracy (5/9): scipy warns that their mean was rounded in the last bit, and still
    gives the right interval (the group's variance is 0); the study's report keeps the interval, not the warning."""
    a, b = [5 / 9, 5 / 9], [0.5, 0.61111111]
    with pytest.warns(RuntimeWarning, match="Precision loss"):  # the reference warns
        reference = stats.ttest_ind(a, b, equal_var=False)
    interval = reference.confidence_interval(0.95)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = difference_ci(a, b)
    assert (result.low, result.high, result.p_value) == (interval.low, interval.high, reference.pvalue)


def _design(seeds=5):
    lr, batch = np.meshgrid([0.05, 0.1, 0.2], [8, 32, 128])
    x = np.log2(lr / batch).ravel()
    return np.tile(x, seeds), np.repeat(np.arange(seeds), x.size)


def test_block_slope_with_one_block_is_linregress():
    x, _ = _design(1)
    y = 0.02 * x + np.random.default_rng(0).normal(0, 0.05, x.size)
    slope, reference = block_slope(x, y, [0] * x.size), stats.linregress(x, y)
    assert slope.estimate == pytest.approx(reference.slope)
    assert slope.stderr == pytest.approx(reference.stderr)
    assert slope.df == x.size - 2
    assert slope.p_value == pytest.approx(reference.pvalue)


def test_block_slope_matches_least_squares_with_block_dummies():
    x, seeds = _design(5)
    rng = np.random.default_rng(1)
    y = 0.01 * x + rng.normal(0, 0.1, 5)[seeds] + rng.normal(0, 0.03, x.size)
    slope = block_slope(x, y, seeds)
    design = np.column_stack([x, np.eye(5)[seeds]])
    beta, residuals, *_ = np.linalg.lstsq(design, y, rcond=None)
    df = x.size - design.shape[1]
    covariance = residuals[0] / df * np.linalg.inv(design.T @ design)
    assert slope.estimate == pytest.approx(beta[0])
    assert slope.stderr == pytest.approx(math.sqrt(covariance[0, 0]))
    assert slope.df == df and slope.blocks == 5 and slope.n == x.size
    low, high = slope.ci()
    half = stats.t.ppf(0.975, df) * slope.stderr
    assert (low, high) == pytest.approx((beta[0] - half, beta[0] + half))
    assert slope.p_below(0.02) == pytest.approx(stats.t.cdf((beta[0] - 0.02) / slope.stderr, df))
    assert slope.p_equivalent(0.02) == pytest.approx(max(slope.p_below(0.02), slope.p_above(-0.02)))


def test_block_regression_separates_lr_from_batch():
    lr, batch = np.meshgrid([0.05, 0.1, 0.2], [8, 32, 128])
    log_lr, log_b = np.tile(np.log2(lr).ravel(), 5), np.tile(np.log2(batch).ravel(), 5)
    seeds = np.repeat(np.arange(5), 9)
    rng = np.random.default_rng(3)
    y = 0.03 * log_lr - 0.01 * log_b + rng.normal(0, 0.1, 5)[seeds] + rng.normal(0, 0.02, 45)
    fit = block_regression([log_lr, log_b], y, seeds)
    design = np.column_stack([log_lr, log_b, np.eye(5)[seeds]])
    beta, residuals, *_ = np.linalg.lstsq(design, y, rcond=None)
    covariance = residuals[0] / (45 - 7) * np.linalg.inv(design.T @ design)
    assert fit.coefficients == pytest.approx(tuple(beta[:2]))
    total = fit.contrast([1, 1])
    assert total.estimate == pytest.approx(beta[0] + beta[1])
    assert total.stderr == pytest.approx(math.sqrt(covariance[0, 0] + covariance[1, 1] + 2 * covariance[0, 1]))
    # a single regressor reproduces block_slope
    one = block_regression([log_lr - log_b], y, seeds).contrast([1])
    reference = block_slope(log_lr - log_b, y, seeds)
    assert (one.estimate, one.stderr, one.df) == pytest.approx((reference.estimate, reference.stderr, reference.df))
    assert math.isnan(block_regression([log_lr, 2 * log_lr], y, seeds).coefficients[0])


def test_block_slope_degenerate_inputs_give_nan():
    assert math.isnan(block_slope([1, 2], [1, 2], [0, 0]).estimate)
    assert math.isnan(block_slope([1, 1, 1, 1], [1, 2, 3, 4], [0, 0, 0, 0]).estimate)
    assert math.isnan(block_slope([1, 2, 3, 4], [1, 2, 3, 4], [0, 1, 2, 3]).stderr)
    dropped = block_slope([1, 2, 3, float("nan"), 5], [2, 1, 4, 3, None], [0] * 5)
    assert dropped.n == 3 and not block_slope([], [], []).valid


# log2(lr/B) of the cpu ViT arm's 2x2 grid (lr 0.05, 0.2; B 8, 128) and the top-k intersections of its four kernel
# runs (seed 0) under rollout: 294, 293, 292 and 291 of 558 top-k slots (93 examples x k = 6), stored from float32.
CPU_X = np.log2(np.array([0.05 / 128, 0.2 / 128, 0.05 / 8, 0.2 / 8]))
CPU_KERNEL_ROLLOUT = [0.526881732126718, 0.5250896188200161, 0.5232975040712664, 0.5215053893225168]


def test_runs_on_an_exact_line_are_degenerate_not_significant():
    # the four stored values lie on a line up to float32 rounding: ordinary least squares gives a standard error of
    # ~1e-10 and p ~ 1e-16 on 2 degrees of freedom; that is no evidence, so the slope is flagged and not tested
    assert np.ptp(np.diff(np.asarray(CPU_KERNEL_ROLLOUT) * 558)) < 1e-6
    ols = stats.linregress(CPU_X, CPU_KERNEL_ROLLOUT)
    assert 0 < ols.stderr < 1e-9 and ols.pvalue < 1e-12
    slope = block_slope(CPU_X, CPU_KERNEL_ROLLOUT, [0] * 4)
    assert slope.estimate == pytest.approx(ols.slope) and slope.estimate == pytest.approx(-0.5 / 558)
    assert slope.stderr == 0 and not slope.valid and slope.degenerate == "no residual variation"
    assert all(math.isnan(v) for v in (*slope.ci(), slope.p_value, slope.p_below(0.01), slope.p_equivalent(0.01)))
    # the same with one intercept per seed: two seeds on parallel exact lines
    two = block_slope(
        [*CPU_X, *CPU_X], [*CPU_KERNEL_ROLLOUT, *(np.asarray(CPU_KERNEL_ROLLOUT) + 0.1)], [0] * 4 + [1] * 4
    )
    assert two.degenerate == "no residual variation" and two.df == 5
    # one slot off the line (a residual of 1/558) is data: a valid test
    off = block_slope(CPU_X, [*CPU_KERNEL_ROLLOUT[:3], CPU_KERNEL_ROLLOUT[3] - 1 / 558], [0] * 4)
    assert off.valid and not off.degenerate and off.stderr > 1e-4


def test_values_that_do_not_vary_are_degenerate():
    constant = block_slope(CPU_X, [0.421875] * 4, [0] * 4)
    assert (constant.estimate, constant.stderr, constant.degenerate) == (0.0, 0.0, "no variation")
    assert not constant.valid and math.isnan(constant.p_value)
    # constant within each seed, different between seeds: no variation left once the seed is a block
    blocks = block_slope([*CPU_X, *CPU_X], [0.3] * 4 + [0.5] * 4, [0] * 4 + [1] * 4)
    assert blocks.degenerate == "no variation"
    # all zeros (e.g. a label-flip rate that never flips)
    assert block_slope(CPU_X, [0.0] * 4, [0] * 4).degenerate == "no variation"
    # the same through block_regression's contrasts
    fit = block_regression([np.log2([0.05, 0.2, 0.05, 0.2]), np.log2([128, 128, 8, 8])], [0.421875] * 4, [0] * 4)
    assert [fit.contrast(w).degenerate for w in ([1, 0], [0, 1], [1, 1])] == ["no variation"] * 3
    exact = block_regression([CPU_X], CPU_KERNEL_ROLLOUT, [0] * 4).contrast([1])
    assert exact.degenerate == "no residual variation" and exact.estimate == pytest.approx(-0.5 / 558)
    # a valid slope, and one without enough runs, are not degenerate
    assert block_slope([1, 2, 3, 4], [1, 2, 4, 3], [0] * 4).degenerate == ""
    assert block_slope([1, 2], [1, 1], [0, 0]).degenerate == ""


def test_slope_difference_is_welch_satterthwaite():
    a, b = block_slope([1, 2, 3, 4, 5], [1, 2, 4, 3, 6], [0] * 5), block_slope([1, 2, 3, 4], [3, 1, 2, 2], [0] * 4)
    difference = slope_difference(a, b)
    assert difference.estimate == pytest.approx(a.estimate - b.estimate)
    assert difference.stderr == pytest.approx(math.hypot(a.stderr, b.stderr))
    expected_df = (a.stderr**2 + b.stderr**2) ** 2 / (a.stderr**4 / a.df + b.stderr**4 / b.df)
    assert difference.df == pytest.approx(expected_df)


def test_holm_matches_its_definition():
    p = [0.01, 0.04, 0.03, 0.005, float("nan")]
    adjusted = holm(p)
    order = sorted(range(4), key=lambda i: p[i])
    expected = {}
    for rank, i in enumerate(order):
        expected[i] = min(1.0, max((4 - r) * p[order[r]] for r in range(rank + 1)))
    assert adjusted[:4] == pytest.approx([expected[i] for i in range(4)])
    assert math.isnan(adjusted[4])
    assert holm([0.5, 0.6]) == [1.0, 1.0]


@pytest.mark.parametrize("effect", [0.0, 0.01, 0.02])
def test_power_formulas_match_simulation(effect):
    """Analytic power of the slope test and of the TOST against 4000 simulated 3x3x5 studies."""
    x, seeds = _design(5)
    rng = np.random.default_rng(7)
    sims = 4000
    noise = rng.normal(0, 0.04, (sims, x.size)) + rng.normal(0, 0.05, (sims, 5))[:, seeds]
    y = effect * x + noise
    # vectorised block_slope: demean within seeds
    x_dev = x - np.bincount(seeds, x)[seeds] / 9
    y_dev = y - (np.stack([np.bincount(seeds, row) for row in y]) / 9)[:, seeds]
    estimate = y_dev @ x_dev / (x_dev @ x_dev)
    df = x.size - 6
    stderr = np.sqrt(((y_dev - estimate[:, None] * x_dev) ** 2).sum(1) / df / (x_dev @ x_dev))
    t = estimate / stderr
    rejected = np.abs(t) > stats.t.ppf(0.975, df)
    critical = stats.t.ppf(0.95, df)
    equivalent = (estimate - critical * stderr > -0.01) & (estimate + critical * stderr < 0.01)
    expected_se = 0.04 / math.sqrt(x_dev @ x_dev)
    assert rejected.mean() == pytest.approx(power_two_sided(effect, expected_se, df), abs=0.03)
    assert equivalent.mean() == pytest.approx(power_tost(0.01, expected_se, df, effect=effect), abs=0.04)
    # spot check: one simulated study through block_slope gives the vectorised numbers
    one = block_slope(x, y[0], seeds)
    assert (one.estimate, one.stderr) == pytest.approx((estimate[0], stderr[0]))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="confidence"):
        mean_ci([1.0, 2.0], confidence=1.5)
    with pytest.raises(ValueError, match="same length"):
        block_slope([1, 2, 3], [1, 2], [0, 0, 0])
    with pytest.raises(ValueError, match="margin"):
        block_slope([1, 2, 3, 4], [1, 2, 4, 3], [0] * 4).p_equivalent(0.0)
    with pytest.raises(ValueError, match="alpha"):
        power_two_sided(0.1, 0.1, 10, alpha=0)


@pytest.mark.parametrize("df", [1.0, 3.0, 7.5, 40.0])
def test_slope_p_values_are_scipys_t_distribution_bit_for_bit(df):
    slope = Slope(0.3, 0.17, df, 10, 1)
    for bound in (-0.5, 0.0, 0.2, 0.3, 1e6):
        assert slope.p_below(bound) == float(stats.t.cdf((0.3 - bound) / 0.17, df))
        assert slope.p_above(bound) == float(stats.t.sf((0.3 - bound) / 0.17, df))
    assert slope.p_value == float(2 * stats.t.sf(0.3 / 0.17, df))
    assert math.isnan(slope.p_below(math.nan))
    values = [0.31, 0.27, 0.4, 0.35, 0.29, 0.33]
    for confidence in (0.5, 0.95):  # mean_ci's interval: scipy's t.interval to the bit
        found, expected = (
            mean_ci(values, confidence),
            stats.t.interval(confidence, 5, np.mean(values), stats.sem(values)),
        )
        assert (found.low, found.high) == tuple(map(float, expected))
    for confidence in (0.5, 0.9, 0.95, 0.999):  # the interval's quantile, scipy's t.ppf to the bit
        half = float(stats.t.ppf(0.5 + confidence / 2, df)) * 0.17
        assert slope.ci(confidence) == (0.3 - half, 0.3 + half)
