"""Study v3's claim rules (``hf_robattr.study.rules_v3``): the one-sided tests and their power against scipy and a
simulation, the rules' truth tables, their error rates on simulated studies with a cell random effect (planted slopes
of 0, the margin, and a clear rise), and the gates: untested verdicts with their reasons, the positive control claim
2 needs (none, or failed), claim 3 only where claim 2 holds."""

import math

import numpy as np
import pytest
from scipy import stats

from hf_robattr.study.cell_effects import Spread, cell_slope, simulate_error_rates
from hf_robattr.study.rules_v3 import (
    NO_CONTROL,
    claim_3_tests_v3,
    claim_tests_v3,
    decide_claim_3,
    decide_slope,
    untested_reason,
)
from hf_robattr.study.stats import Slope, holm, power_one_sided, slope_difference


ALPHA, MARGIN = 0.05, 0.01
CELL_X = [float(np.log2(lr / b)) for lr in (0.05, 0.2, 0.8) for b in (8, 32, 128)]
SIMULATIONS = 600
SE = math.sqrt(ALPHA * (1 - ALPHA) / SIMULATIONS)  # the Monte Carlo error of a rate near alpha


def test_one_sided_p_values_are_scipys_t_tails():
    slope = Slope(0.013, 0.004, 7.0, 40, 9)
    assert slope.p_above(0.0) == pytest.approx(stats.t.sf(0.013 / 0.004, 7))
    assert slope.p_below(MARGIN) == pytest.approx(stats.t.cdf((0.013 - MARGIN) / 0.004, 7))


def test_one_sided_power_matches_a_simulated_t_test():
    rng = np.random.default_rng(0)
    effect, stderr, df, draws = 0.01, 0.004, 7, 40_000
    estimates = rng.normal(effect, stderr, draws)
    stderrs = stderr * np.sqrt(rng.chisquare(df, draws) / df)
    rejected = np.mean(estimates / stderrs > stats.t.ppf(1 - ALPHA, df))
    assert power_one_sided(effect, stderr, df, ALPHA) == pytest.approx(rejected, abs=0.01)
    assert math.isnan(power_one_sided(effect, 0.0, df, ALPHA))


@pytest.mark.parametrize(
    "claim, rises, small, control, verdict",
    [
        (1, 0.01, 0.5, True, "supported"),
        (1, 0.01, 0.01, True, "contradicted"),  # a rise smaller than the margin does not matter
        (1, 0.5, 0.01, True, "contradicted"),
        (1, 0.5, 0.5, True, "inconclusive"),
        (2, 0.5, 0.01, True, "supported"),
        (2, 0.5, 0.01, False, "inconclusive"),  # an equivalence needs a measure shown to move
        (2, 0.01, 0.5, True, "contradicted"),
        (2, 0.01, 0.01, True, "supported"),
        (2, 0.5, 0.5, True, "inconclusive"),
    ],
)
def test_one_rule_shape_for_claims_1_and_2(claim, rises, small, control, verdict):
    assert decide_slope(claim, rises, small, ALPHA, control) == verdict


@pytest.mark.parametrize(
    "rises, small, interaction, verdict",
    [
        (0.01, 0.5, 0.01, "supported"),
        (0.01, 0.5, 0.5, "inconclusive"),  # the kernel slope rises, but not shown to rise more than softmax's
        (0.01, 0.01, 0.01, "contradicted"),  # the kernel slope is shown below the margin
        (0.5, 0.5, 0.01, "inconclusive"),
    ],
)
def test_claim_3_truth_table(rises, small, interaction, verdict):
    assert decide_claim_3(rises, small, interaction, ALPHA) == verdict


SPREAD = Spread(cell_sd=0.02, run_sd=0.04)  # the order of the cell and run spread the v3 pilot runs show


def _rates(claim: int, slope: float, spread: Spread = SPREAD) -> dict[str, float]:
    def decide(x, y, cells, blocks):
        fitted = cell_slope(x, y, cells, blocks)
        return decide_slope(claim, fitted.p_above(0.0), fitted.p_below(MARGIN), ALPHA)

    return simulate_error_rates(decide, CELL_X, seeds=5, slope=slope, spread=spread, simulations=SIMULATIONS)


def test_claim_1_error_rates_hold_with_a_cell_random_effect():
    assert _rates(1, 0.0).get("supported", 0) <= ALPHA + 3 * SE
    assert _rates(1, MARGIN).get("contradicted", 0) <= ALPHA + 3 * SE
    assert _rates(1, 0.03)["supported"] > 0.9  # a planted slope three times the margin is found


def test_claim_2_error_rates_are_the_mirror_image():
    assert _rates(2, MARGIN).get("supported", 0) <= ALPHA + 3 * SE
    assert _rates(2, 0.0).get("contradicted", 0) <= ALPHA + 3 * SE
    assert _rates(2, -0.02)["supported"] > 0.9  # a planted fall is shown below the margin


def test_a_zero_slope_under_a_huge_cell_spread_is_inconclusive():
    rates = _rates(1, 0.0, Spread(cell_sd=0.5, run_sd=0.04))
    # each of RISES and SMALL rejects about alpha of the time: the margin is tiny against the slope's error
    assert rates["inconclusive"] > 0.85
    assert max(rates.get("supported", 0), rates.get("contradicted", 0)) <= ALPHA + 3 * SE


def _slopes(**estimates: float) -> dict[str, Slope]:
    return {name: Slope(value, 0.002, 7.0, 45, 9) for name, value in estimates.items()}


def test_claim_2_needs_a_positive_control_before_an_equivalence_counts():
    slopes = _slopes(raw_attention=0.0, rollout=0.0, grad_attention=0.0)
    margins = dict.fromkeys(slopes, MARGIN)
    controls = {"rollout": True, "grad_attention": False}  # raw attention has none
    tests = claim_tests_v3(2, "m", "topk_intersection", slopes, margins, alpha=ALPHA, controls=controls)
    found = {t.method: t for t in tests}
    assert (found["rollout"].verdict, found["rollout"].note, found["rollout"].untested) == ("supported", "", "")
    assert (found["raw_attention"].verdict, found["raw_attention"].note) == ("inconclusive", NO_CONTROL)
    assert found["grad_attention"].verdict == "inconclusive"
    assert found["grad_attention"].note.startswith("inconclusive: the positive control failed")
    # the equivalence test was run: its Holm p is reported
    expected = holm([s.p_below(MARGIN) for s in slopes.values()])
    assert [t.p for t in tests] == pytest.approx(expected)


def test_a_gated_method_is_untested_and_stays_in_the_holm_family():
    slopes = _slopes(saliency=0.02, input_x_gradient=0.015)
    margins = dict.fromkeys(slopes, MARGIN)
    gate = "untested: the treatment had no measurable effect (a reason)"
    tests = claim_tests_v3(1, "m", "kendall_tau", slopes, margins, alpha=ALPHA, gates={"saliency": gate})
    gated, kept = tests
    assert (gated.verdict, gated.untested) == ("untested", gate) and math.isnan(gated.p)
    expected = holm([1.0, slopes["input_x_gradient"].p_above(0.0)])[1]
    assert kept.verdict == "supported" and kept.p == pytest.approx(expected)


def test_slopes_without_an_estimate_or_degenerate_are_untested_with_their_reason():
    two_cells = cell_slope([0.0, 0.0, 1.0, 1.0], [1.0, 1.1, 2.0, 2.1], [0, 0, 1, 1])
    assert untested_reason(two_cells) == (
        "untested: no estimate (4 runs in 2 cells of lr and B; a slope with a cell random effect needs at least 3)"
    )
    flat = Slope(0.0, 0.0, 7.0, 45, 9)
    assert untested_reason(flat) == "untested: no variation (standard error 0)"
    assert untested_reason(None) == "untested: no estimate (no runs)"
    assert untested_reason(flat, "untested: saturated (9 of 9 runs)") == "untested: saturated (9 of 9 runs)"
    tests = claim_tests_v3(1, "m", "t", {"saliency": two_cells}, {"saliency": MARGIN}, alpha=ALPHA)
    assert tests[0].verdict == "untested" and tests[0].untested.startswith("untested: no estimate")


def test_claim_3_only_where_claim_2_holds():
    kernel, softmax = _slopes(raw_attention=0.03, rollout=0.03), _slopes(raw_attention=0.0, rollout=0.0)
    margins = dict.fromkeys(kernel, MARGIN)
    gates = {"rollout": "untested: claim 2 is inconclusive for this method and measure"}
    tests, pairs = claim_3_tests_v3("vit", "topk_intersection", kernel, softmax, margins, alpha=ALPHA, gates=gates)
    verdicts = {t.method: (t.verdict, t.untested) for t in tests}
    assert verdicts["raw_attention"] == ("supported", "")
    assert verdicts["rollout"] == ("untested", gates["rollout"])
    difference = slope_difference(kernel["raw_attention"], softmax["raw_attention"])
    assert [p.estimate for p in pairs] == pytest.approx([0.03, 0.03])
    # Holm over two methods, the gated one counting as a test that does not reject
    assert pairs[0].p == pytest.approx(holm([difference.p_above(0.0), 1.0])[0])
    flat = claim_3_tests_v3("vit", "t", _slopes(raw_attention=-0.01), _slopes(raw_attention=0.0), {"raw_attention": MARGIN}, alpha=ALPHA)  # fmt: skip
    assert flat[0][0].verdict == "contradicted"


def test_claim_3_is_untested_when_the_softmax_slope_has_no_estimate():
    missing = {"raw_attention": Slope(math.nan, math.nan, 0, 4, 2)}
    tests, _ = claim_3_tests_v3(
        "vit", "t", _slopes(raw_attention=0.03), missing, {"raw_attention": MARGIN}, alpha=ALPHA
    )
    assert tests[0].verdict == "untested" and tests[0].untested.endswith("(the softmax runs)")


def test_an_unknown_claim_is_refused():
    with pytest.raises(ValueError, match="`claim` must be 1 or 2"):
        claim_tests_v3(3, "m", "t", _slopes(a=0.0), {"a": MARGIN}, alpha=ALPHA)
