"""The verdict rules of the three claims, checked by simulation: planted effects are found, null effects are not,
at the error rates the rules state (``hf_robattr.study.claims``)."""

import math

import numpy as np
import pytest

from hf_robattr.study.claims import claim_1_tests, claim_2_tests, claim_3_tests
from hf_robattr.study.stats import block_slope


MARGIN = 0.01
ALPHA = 0.05
METHODS = ("a", "b", "c")
SIMS = 400


def _design(seeds=5):
    lr, batch = np.meshgrid([0.05, 0.1, 0.2], [8, 32, 128])
    x = np.log2(lr / batch).ravel()
    return np.tile(x, seeds), np.repeat(np.arange(seeds), x.size)


X, SEEDS = _design()


def _slopes(rng, effects, noise=0.04):
    """One simulated 3x3x5 study: a slope per method, with seed effects shared by the methods."""
    seed_effect = rng.normal(0, 0.05, 5)[SEEDS]
    return {
        method: block_slope(X, effect * X + seed_effect + rng.normal(0, noise, X.size), SEEDS)
        for method, effect in zip(METHODS, effects)
    }


def _rates(simulate, sims=SIMS):
    verdicts = [simulate(np.random.default_rng(i)) for i in range(sims)]
    return {
        v: np.mean([[t.verdict == v for t in tests] for tests in verdicts], axis=0)
        for v in ("supported", "contradicted", "inconclusive")
    }


def _bound(rate, sims=SIMS):
    """``rate`` plus three binomial standard errors: the most a simulation may show for a true rate <= ``rate``."""
    return rate + 3 * math.sqrt(rate * (1 - rate) / sims)


def _claim_1(effects, noise=0.04):
    return lambda rng: claim_1_tests("m", _slopes(rng, effects, noise), measure="y", margin=MARGIN, alpha=ALPHA)


def test_claim_1_null_is_rarely_supported():
    rates = _rates(_claim_1((0.0, 0.0, 0.0)))
    assert rates["supported"].max() <= _bound(ALPHA / 2)


def test_claim_1_planted_effect_is_found_and_never_contradicted():
    rates = _rates(_claim_1((3 * MARGIN, 3 * MARGIN, 0.0)))
    assert rates["supported"][:2].min() >= 0.9
    assert rates["contradicted"][:2].max() == 0
    assert rates["supported"][2] <= _bound(ALPHA / 2)


def test_claim_1_effect_at_the_margin_is_rarely_contradicted():
    rates = _rates(_claim_1((MARGIN, MARGIN, MARGIN)))
    assert rates["contradicted"].max() <= _bound(ALPHA)


def test_claim_1_absent_effect_with_precise_data_is_contradicted():
    rates = _rates(_claim_1((0.0, 0.0, 0.0), noise=0.01))
    assert rates["contradicted"].min() >= 0.9


def _claim_2(effects, noise=0.04):
    return lambda rng: claim_2_tests("m", _slopes(rng, effects, noise), measure="y", margin=MARGIN, alpha=ALPHA)


def test_claim_2_slope_at_the_margin_is_rarely_called_equivalent():
    rates = _rates(_claim_2((MARGIN, -MARGIN, MARGIN)))
    assert rates["supported"].max() <= _bound(ALPHA)


def test_claim_2_true_null_is_supported_as_often_as_its_stated_power():
    simulate = _claim_2((0.0, 0.0, 0.0), noise=0.02)
    rates = _rates(simulate)
    stated = np.mean([[t.power_equivalence for t in simulate(np.random.default_rng(1000 + i))] for i in range(50)])
    # the stated power uses Bonferroni (alpha / 3); Holm can only do better
    assert rates["supported"].mean() >= stated - 0.08
    assert rates["contradicted"].max() <= _bound(ALPHA / 2)


def test_claim_2_planted_gain_under_softmax_is_contradicted():
    rates = _rates(_claim_2((4 * MARGIN, 4 * MARGIN, 4 * MARGIN)))
    assert rates["contradicted"].min() >= 0.9 and rates["supported"].max() == 0


def _claim_3(kernel_effects, softmax_effects, noise=0.04):
    def simulate(rng):
        kernel, softmax = _slopes(rng, kernel_effects, noise), _slopes(rng, softmax_effects, noise)
        tests, interactions = claim_3_tests("m", kernel, softmax, measure="y", margin=MARGIN, alpha=ALPHA)
        assert [i.estimate for i in interactions] == [t.estimate for t in tests]
        return tests

    return simulate


def test_claim_3_planted_interaction_is_found():
    rates = _rates(_claim_3((4 * MARGIN,) * 3, (0.0,) * 3))
    assert rates["supported"].min() >= 0.85 and rates["contradicted"].max() == 0


def test_claim_3_equal_slopes_are_rarely_supported():
    rates = _rates(_claim_3((2 * MARGIN,) * 3, (2 * MARGIN,) * 3))
    assert rates["supported"].max() <= _bound(ALPHA / 2)


def test_claim_3_kernel_without_gain_is_not_supported_even_when_softmax_falls():
    rates = _rates(_claim_3((0.0,) * 3, (-3 * MARGIN,) * 3))
    assert rates["supported"].max() <= _bound(ALPHA / 2)


def test_claim_3_true_effects_at_the_margin_are_rarely_contradicted():
    rates = _rates(_claim_3((MARGIN,) * 3, (0.0,) * 3))
    assert rates["contradicted"].max() <= _bound(ALPHA)


@pytest.mark.parametrize("claim", [1, 2, 3])
def test_tests_carry_their_numbers(claim):
    rng = np.random.default_rng(0)
    slopes = _slopes(rng, (0.02, 0.0, 0.0))
    if claim == 3:
        tests, _ = claim_3_tests("m", slopes, _slopes(rng, (0, 0, 0)), measure="y", margin=MARGIN)
    else:
        tests = (claim_1_tests if claim == 1 else claim_2_tests)("m", slopes, measure="y", margin=MARGIN)
    for test in tests:
        assert test.claim == claim and test.verdict in ("supported", "contradicted", "inconclusive")
        assert test.ci[0] <= test.estimate <= test.ci[1] and 0 <= test.p <= 1 and 0 <= test.power <= 1
        assert test.n == (90 if claim == 3 else 45)
