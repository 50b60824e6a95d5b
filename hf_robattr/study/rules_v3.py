"""Study v3's claim rules: one rule shape for claims 1 and 2, claim 3 only where claim 2 holds (issue 25.6).

Every slope is of a measure oriented so that higher = more robust (max-sensitivity is negated), per doubling of
lr/B, with a cell random effect (:func:`~hf_robattr.study.cell_effects.cell_slope`). Two one-sided tests at level
``alpha`` on each slope, each Holm-adjusted over the methods of one (claim, model, measure):

- **RISES**: null ``slope <= 0`` against ``slope > 0``;
- **SMALL**: null ``slope >= margin`` against ``slope < margin`` (``margin``: the smallest slope that matters).

- **Claim 1** (gradient maps gain): *supported* when RISES rejects and SMALL does not; *contradicted* when SMALL
  rejects; else *inconclusive*.
- **Claim 2** (softmax attention maps gain nothing that matters), the mirror image: *supported* when SMALL rejects
  and the measure's positive control passed; *contradicted* when RISES rejects and SMALL does not; else
  *inconclusive* (a SMALL result without a passing positive control stays inconclusive: an equivalence from a
  measure that has not been shown to move counts for nothing).
- **Claim 3** (kernel attention restores the gain), only for a method whose claim 2 is supported on the family's
  softmax model (else untested, with that reason): *supported* when the kernel slope is judged as in claim 1
  (RISES and not SMALL) and the interaction kernel - softmax is shown > 0 (one-sided); *contradicted* when the
  kernel slope is SMALL; else *inconclusive*.

Error rates of one test (before Holm, which only lowers them): a true slope <= 0 is called claim-1 supported or
claim-2 contradicted at most ``alpha``; a true slope >= ``margin`` is called claim-1 contradicted or claim-2
supported at most ``alpha``; claim 3 is called supported with a true kernel slope or interaction <= 0 at most
``alpha`` (intersection-union). A verdict is *untested*, with its reason, when the caller gates it (the manipulation
check failed, the measure is saturated) or the slope has no estimate or is degenerate; an untested method stays in
its Holm family as a test that does not reject.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from .claims import ClaimTest, Interaction, _holm, _missing
from .stats import Slope, power_two_sided, slope_difference


__all__ = ["RULE_V3", "claim_3_tests_v3", "claim_tests_v3", "decide_slope"]

RULE_V3 = "cell random-effect slope on log2(lr/B); one-sided RISES (> 0) and SMALL (< margin), Holm over methods"


def _untested(slope: Slope, gate: str) -> str:
    return gate or slope.degenerate or _missing(slope)


def decide_slope(claim: int, rises: float, small: float, alpha: float, control: bool = True) -> str:
    """The verdict of claim 1 or 2 from the Holm-adjusted p-values of RISES and SMALL (``control``: whether the
    positive control passed, which claim 2's support needs)."""
    gain = rises < alpha and not small < alpha
    if claim == 1:
        return "supported" if gain else "contradicted" if small < alpha else "inconclusive"
    if small < alpha:
        return "supported" if control else "inconclusive"
    return "contradicted" if gain else "inconclusive"


def claim_tests_v3(
    claim: int,
    model: str,
    measure: str,
    slopes: Mapping[str, Slope],
    margins: Mapping[str, float],
    *,
    alpha: float,
    gates: Mapping[str, str] | None = None,
    controls: Mapping[str, bool] | None = None,
) -> list[ClaimTest]:
    """Claim 1 or 2 for one model and measure: one :class:`ClaimTest` per method of ``slopes`` (``margins``: per
    method; ``gates``: method -> why it is untested; ``controls``: method -> whether its positive control passed,
    claim 2 only)."""
    if claim not in (1, 2):
        raise ValueError(f"`claim` must be 1 or 2, got {claim!r}.")
    gates, controls = gates or {}, controls or {}
    methods = list(slopes)
    reasons = [_untested(slopes[m], gates.get(m, "")) for m in methods]
    skip = [bool(r) for r in reasons]
    rises = _holm([slopes[m].p_above(0.0) for m in methods], skip)
    small = _holm([slopes[m].p_below(margins[m]) for m in methods], skip)
    tests = []
    for i, method in enumerate(methods):
        slope, margin = slopes[method], margins[method]
        control = controls.get(method, False)
        if reasons[i]:
            verdict, p = "inconclusive", math.nan
        else:
            verdict = decide_slope(claim, rises[i], small[i], alpha, control)
            p = small[i] if verdict in (("contradicted",) if claim == 1 else ("supported",)) else rises[i]
            if claim == 2 and small[i] < alpha and not control:
                reasons[i] = "inconclusive: no positive control passed for this method and measure at this scale"
        power = power_two_sided(margin, slope.stderr, slope.df, alpha / max(len(methods), 1))
        tests.append(
            ClaimTest(
                claim, model, method, measure, verdict, f"{RULE_V3} ({len(methods)} methods)",
                slope.estimate, slope.ci(), p, margin, power, slope.n, slope=slope, gate=gates.get(method, "")
                or (reasons[i] if reasons[i].startswith("inconclusive:") else ""),
            )
        )  # fmt: skip
    return tests


def claim_3_tests_v3(
    family: str,
    measure: str,
    kernel: Mapping[str, Slope],
    softmax: Mapping[str, Slope],
    margins: Mapping[str, float],
    *,
    alpha: float,
    gates: Mapping[str, str] | None = None,
) -> tuple[list[ClaimTest], list[Interaction]]:
    """Claim 3 for one family and measure: per method in both ``kernel`` and ``softmax`` (``gates``: method -> why
    it is untested, e.g. claim 2 not supported)."""
    gates = gates or {}
    methods = [m for m in kernel if m in softmax]
    differences = {m: slope_difference(kernel[m], softmax[m]) for m in methods}
    reasons = [_untested(kernel[m], gates.get(m, "")) or _untested(softmax[m], "") for m in methods]
    skip = [bool(r) for r in reasons]
    kernel_rises = _holm([kernel[m].p_above(0.0) for m in methods], skip)
    kernel_small = _holm([kernel[m].p_below(margins[m]) for m in methods], skip)
    interaction = _holm([differences[m].p_above(0.0) for m in methods], skip)
    tests, pairs = [], []
    for i, method in enumerate(methods):
        slope, difference, margin = kernel[method], differences[method], margins[method]
        if reasons[i]:
            verdict, p = "inconclusive", math.nan
        elif decide_slope(1, kernel_rises[i], kernel_small[i], alpha) == "supported" and interaction[i] < alpha:
            verdict, p = "supported", max(kernel_rises[i], interaction[i])
        elif kernel_small[i] < alpha:
            verdict, p = "contradicted", kernel_small[i]
        else:
            verdict, p = "inconclusive", max(kernel_rises[i], interaction[i])
        power = power_two_sided(margin, difference.stderr, difference.df, alpha / max(len(methods), 1))
        power *= power_two_sided(margin, slope.stderr, slope.df, alpha / max(len(methods), 1))
        tests.append(
            ClaimTest(
                3, family, method, measure, verdict, f"{RULE_V3}; interaction kernel - softmax > 0 (one-sided)",
                difference.estimate, difference.ci(), p, margin, power, difference.n, slope=slope,
                reference_slope=softmax[method], gate=gates.get(method, ""),
            )
        )  # fmt: skip
        pairs.append(
            Interaction(
                family, method, measure, difference.estimate, difference.ci(), interaction[i], slope, softmax[method]
            )
        )
    return tests, pairs
