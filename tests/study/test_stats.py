"""The study's statistics against scipy computed directly."""

import math

import numpy as np
import pytest
from scipy import stats

from hf_robattr.study.stats import difference_ci, mean_ci, rank_trend


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


def test_rank_trend_matches_spearmanr_and_bootstrap_is_seeded():
    rng = np.random.default_rng(0)
    x = np.repeat([0.001, 0.003, 0.01, 0.03], 5)
    y = np.log(x) + rng.normal(0, 1.0, size=x.size)
    trend = rank_trend(x, y, seed=3)
    reference = stats.spearmanr(x, y)
    assert trend.rho == pytest.approx(reference.statistic)
    assert trend.p_value == pytest.approx(reference.pvalue)
    assert trend.low <= trend.rho <= trend.high
    assert rank_trend(x, y, seed=3) == trend
    boot = stats.bootstrap(
        (x, y), lambda a, b: stats.spearmanr(a, b).statistic, paired=True, vectorized=False, n_resamples=2000,
        confidence_level=0.95, method="percentile", rng=np.random.default_rng(3),
    )  # fmt: skip
    assert (trend.low, trend.high) == pytest.approx(tuple(boot.confidence_interval))
    assert trend.direction == "rises"
    assert rank_trend(x, -y).direction == "falls"


def test_rank_trend_degenerate_inputs_give_nan():
    assert math.isnan(rank_trend([1, 2], [1, 2]).rho)
    assert math.isnan(rank_trend([1, 1, 1, 1], [1, 2, 3, 4]).rho)
    trend = rank_trend([1, 2, 3, float("nan"), 5], [2, 1, 4, 3, None])
    assert trend.n == 3


def test_difference_ci_matches_welch():
    a, b = [0.8, 0.82, 0.79, 0.85], [0.7, 0.72, 0.69, 0.75, 0.71]
    result = difference_ci(a, b)
    reference = stats.ttest_ind(a, b, equal_var=False)
    interval = reference.confidence_interval(0.95)
    assert result.difference == pytest.approx(np.mean(a) - np.mean(b))
    assert (result.low, result.high, result.p_value) == pytest.approx((interval.low, interval.high, reference.pvalue))
    assert math.isnan(difference_ci([1.0], [2.0, 3.0]).low)
    assert math.isnan(difference_ci([], [2.0]).difference)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="confidence"):
        mean_ci([1.0, 2.0], confidence=1.5)
    with pytest.raises(ValueError, match="same length"):
        rank_trend([1, 2, 3], [1, 2])
