"""Study v3's claim rules (``hf_robattr.study.rules_v3``): the one-sided tests against scipy, the rule's truth table,
its error rates on simulated studies with a cell random effect (planted slopes of 0, the margin, and a clear rise),
and the gates: untested verdicts, the positive control claim 2 needs, claim 3 only where claim 2 holds."""

import math

import numpy as np
import pytest
from scipy import stats

from hf_robattr.study.cell_effects import Spread, cell_slope, simulate_error_rates
from hf_robattr.study.rules_v3 import claim_3_tests_v3, claim_tests_v3, decide_slope
from hf_robattr.study.stats import Slope, holm


ALPHA, MARGIN = 0.05, 0.01
CELL_X = [float(np.log2(lr / b)) for lr in (0.05, 0.2, 0.8) for b in (8, 32, 128)]
SIMULATIONS = 600
SE = math.sqrt(ALPHA * (1 - ALPHA) / SIMULATIONS)  # the Monte Carlo error of a rate near alpha


def test_one_sided_p_values_are_scipys_t_tails():
    slope = Slope(0.013, 0.004, 7.0, 40, 9)
    assert slope.p_above(0.0) == pytest.approx(stats.t.sf(0.013 / 0.004, 7))
    assert slope.p_below(MARGIN) == pytest.approx(stats.t.cdf((0.013 - MARGIN) / 0.004, 7))


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


SPREAD = Spread(cell_sd=0.02, run_sd=0.04)  # the order of the cell and run spread the v3 pilot runs show


def _rates(claim: int, slope: float, spread: Spread = SPREAD) -> dict[str, float]:
    def decide(x, y, cells, blocks):
        fitted = cell_slope(x, y, cells, blocks)
        return decide_slope(claim, fitted.p_above(0.0), fitted.p_below(MARGIN), ALPHA)

    return simulate_error_rates(decide, CELL_X, seeds=5, slope=slope, spread=spread, simulations=SIMULATIONS)


def test_claim_1_error_rates_hold_with_a_cell_random_effect():
    assert _rates(1, 0.0).get("supported", 0) <= ALPHA + 3 * SE
    assert _rates(1, MARGIN).get("contradicted", 0) <= ALPHA + 3 * SE
    assert _rates(1, 0.03)["supported"] > 0.9  # a planted, clear rise is found


def test_claim_2_error_rates_are_the_mirror_image():
    assert _rates(2, MARGIN).get("supported", 0) <= ALPHA + 3 * SE
    assert _rates(2, 0.0).get("contradicted", 0) <= ALPHA + 3 * SE
    assert _rates(2, -0.02)["supported"] > 0.9  # a planted fall is shown below the margin


def _slopes(**estimates: float) -> dict[str, Slope]:
    return {name: Slope(value, 0.002, 7.0, 45, 9) for name, value in estimates.items()}


def test_claim_2_needs_a_positive_control_before_an_equivalence_counts():
    slopes = _slopes(raw_attention=0.0, rollout=0.0)
    margins = dict.fromkeys(slopes, MARGIN)
    tests = claim_tests_v3(2, "m", "topk_intersection", slopes, margins, alpha=ALPHA, controls={"rollout": True})
    verdicts = {t.method: (t.verdict, t.untested) for t in tests}
    assert verdicts["rollout"] == ("supported", "")
    assert verdicts["raw_attention"][0] == "inconclusive"
    assert "no positive control" in verdicts["raw_attention"][1]


def test_a_gated_method_is_untested_and_stays_in_the_holm_family():
    slopes = _slopes(saliency=0.02, input_x_gradient=0.015)
    margins = dict.fromkeys(slopes, MARGIN)
    gate = "untested: the treatment had no measurable effect (a reason)"
    tests = claim_tests_v3(1, "m", "kendall_tau", slopes, margins, alpha=ALPHA, gates={"saliency": gate})
    gated, kept = tests
    assert (gated.verdict, gated.untested) == ("inconclusive", gate) and math.isnan(gated.p)
    expected = holm([1.0, slopes["input_x_gradient"].p_above(0.0)])[1]
    assert kept.verdict == "supported" and kept.p == pytest.approx(expected)


def test_claim_3_only_where_claim_2_holds():
    kernel, softmax = _slopes(raw_attention=0.03, rollout=0.03), _slopes(raw_attention=0.0, rollout=0.0)
    margins = dict.fromkeys(kernel, MARGIN)
    gates = {"rollout": "untested: claim 2 is not supported for this method"}
    tests, pairs = claim_3_tests_v3("vit", "topk_intersection", kernel, softmax, margins, alpha=ALPHA, gates=gates)
    verdicts = {t.method: (t.verdict, t.untested) for t in tests}
    assert verdicts["raw_attention"] == ("supported", "")
    assert verdicts["rollout"] == ("inconclusive", gates["rollout"])
    assert [p.estimate for p in pairs] == pytest.approx([0.03, 0.03])
    flat = claim_3_tests_v3("vit", "t", _slopes(raw_attention=-0.01), _slopes(raw_attention=0.0), {"raw_attention": MARGIN}, alpha=ALPHA)  # fmt: skip
    assert flat[0][0].verdict == "contradicted"


def test_an_unknown_claim_is_refused():
    with pytest.raises(ValueError, match="`claim` must be 1 or 2"):
        claim_tests_v3(3, "m", "t", _slopes(a=0.0), {"a": MARGIN}, alpha=ALPHA)
