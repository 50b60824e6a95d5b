"""Study v3's claim rules: one rule shape for claims 1 and 2, claim 3 only where claim 2 holds (issue 25.6).

Every slope is of a measure oriented so that higher = more robust (max-sensitivity is negated), per doubling of
lr/B, with a cell random effect (:func:`~hf_robattr.study.cell_effects.cell_slope`). Two one-sided t tests at level
``alpha`` on each slope, each Holm-adjusted over the methods of one (claim, model, measure):

- **RISES**: null ``slope <= 0`` against ``slope > 0``;
- **SMALL**: null ``slope >= margin`` against ``slope < margin`` (``margin``: the smallest slope that matters).

The verdicts:

- **Claim 1** (gradient maps gain): *supported* when RISES rejects and SMALL does not; *contradicted* when SMALL
  rejects; else *inconclusive*.
- **Claim 2** (softmax attention maps gain nothing that matters), the mirror image: *supported* when SMALL rejects
  and the method's positive control passed; *contradicted* when RISES rejects and SMALL does not; else
  *inconclusive*. A SMALL result without a passing control stays inconclusive, with the reason in
  :attr:`~.claims.ClaimTest.note` (an equivalence from a measure that has not been shown to move counts for
  nothing).
- **Claim 3** (kernel attention restores the gain), only for a method whose claim 2 is supported on the family's
  softmax model (else *untested*, with that reason): *supported* when the kernel slope passes claim 1's rule
  (RISES and not SMALL) and the interaction kernel - softmax is shown > 0 (one-sided, Holm); *contradicted* when
  the kernel slope is SMALL; else *inconclusive*.

Error rates, per test before Holm (which only lowers them; Holm keeps the family-wise rate over the methods of one
claim, model and measure at ``alpha``):

- claim 1 is called *supported* with a true slope <= 0, and claim 2 *contradicted* with a true slope <= 0, at most
  ``alpha`` of the time (RISES is a level-``alpha`` test);
- claim 1 is called *contradicted*, and claim 2 *supported*, with a true slope >= ``margin`` at most ``alpha`` of
  the time (SMALL is a level-``alpha`` test);
- claim 3 is called *supported* with a true kernel slope <= 0 or a true interaction <= 0 at most ``alpha`` (an
  intersection-union test), and *contradicted* with a true kernel slope >= ``margin`` at most ``alpha``.

These hold for the cell-means t test under its model (normal cell effects, a balanced grid); the error rates of
each rule at the spread the runs show, with the margin estimated as the rule does, are simulated
(:mod:`~hf_robattr.study.error_rates_v3`) and stated in the report. Nothing bounds *inconclusive*: its rate is the
price of the power the grid has, reported per test (:attr:`~.claims.ClaimTest.power`: the chance that RISES
rejects at a true slope of ``margin``, which equals the chance that SMALL rejects at a true slope of 0; one-sided,
at the Bonferroni level ``alpha / methods``; claim 3: the product of the kernel slope's and the interaction's).

A verdict is *untested*, with its reason in :attr:`~.claims.ClaimTest.untested` (always ``"untested: ..."``), when
the caller gates it (the manipulation check failed, the measure is saturated, claim 2 does not hold) or the slope
has no estimate or is degenerate; an untested method stays in its Holm family as a test that does not reject.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from .claims import ClaimTest, Interaction, _holm
from .stats import Slope, power_one_sided, slope_difference


__all__ = [
    "NO_CONTROL",
    "RULE_V3",
    "VERDICTS_V3",
    "claim_3_tests_v3",
    "claim_tests_v3",
    "decide_claim_3",
    "decide_slope",
    "untested_reason",
]

RULE_V3 = "cell random-effect slope on log2(lr/B); one-sided RISES (> 0) and SMALL (< margin), Holm over methods"
VERDICTS_V3 = ("supported", "contradicted", "inconclusive", "untested")
NO_CONTROL = "inconclusive: no positive control for this method at this scale"
FAILED_CONTROL = (
    "inconclusive: the positive control failed for this method and measure at this scale (the measure did not "
    "detect a planted, more robust model)"
)


def untested_reason(slope: Slope | None, gate: str = "") -> str:
    """Why a slope is not tested (``"untested: ..."``): the caller's ``gate``, no estimate, or a degenerate fit;
    ``""`` for a slope the rules can decide."""
    if gate:
        return gate
    if slope is None:
        return "untested: no estimate (no runs)"
    if slope.degenerate:
        return f"untested: {slope.degenerate} (standard error 0)"
    if not math.isfinite(slope.estimate) or not slope.valid:
        if slope.blocks < 3:
            return (
                f"untested: no estimate ({slope.n} runs in {slope.blocks} cell{'s' if slope.blocks != 1 else ''} of "
                "lr and B; a slope with a cell random effect needs at least 3)"
            )
        return f"untested: no estimate (lr/B takes one value over the {slope.blocks} cells)"
    return ""


def decide_slope(claim: int, rises: float, small: float, alpha: float, control: bool = True) -> str:
    """The verdict of claim 1 or 2 from the Holm-adjusted p-values of RISES and SMALL (``control``: whether the
    positive control passed, which claim 2's support needs)."""
    gain = rises < alpha and not small < alpha
    if claim == 1:
        return "supported" if gain else "contradicted" if small < alpha else "inconclusive"
    if small < alpha:
        return "supported" if control else "inconclusive"
    return "contradicted" if gain else "inconclusive"


def decide_claim_3(kernel_rises: float, kernel_small: float, interaction: float, alpha: float) -> str:
    """The verdict of claim 3 from the Holm-adjusted p-values of the kernel slope's RISES and SMALL and of the
    one-sided test of the interaction (kernel - softmax) > 0."""
    if decide_slope(1, kernel_rises, kernel_small, alpha) == "supported" and interaction < alpha:
        return "supported"
    return "contradicted" if kernel_small < alpha else "inconclusive"


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
    method; ``gates``: method -> why it is untested, ``"untested: ..."``; ``controls``: method -> whether its
    positive control passed, a method without one left out; claim 2 only)."""
    if claim not in (1, 2):
        raise ValueError(f"`claim` must be 1 or 2, got {claim!r}.")
    gates, controls = gates or {}, controls or {}
    methods = list(slopes)
    reasons = [untested_reason(slopes[m], gates.get(m, "")) for m in methods]
    skip = [bool(r) for r in reasons]
    rises = _holm([slopes[m].p_above(0.0) for m in methods], skip)
    small = _holm([slopes[m].p_below(margins[m]) for m in methods], skip)
    level = alpha / max(len(methods), 1)
    tests = []
    for i, method in enumerate(methods):
        slope, margin, note = slopes[method], margins[method], ""
        if reasons[i]:
            verdict, p = "untested", math.nan
        else:
            verdict = decide_slope(claim, rises[i], small[i], alpha, controls.get(method, False))
            # the claim's own test (claim 1: RISES, claim 2: SMALL), or the one that contradicted it
            own, other = (rises[i], small[i]) if claim == 1 else (small[i], rises[i])
            p = other if verdict == "contradicted" else own
            if claim == 2 and small[i] < alpha and not controls.get(method, False):
                note = NO_CONTROL if method not in controls else FAILED_CONTROL
        power = power_one_sided(margin, slope.stderr, slope.df, level)
        tests.append(
            ClaimTest(
                claim, model, method, measure, verdict, f"{RULE_V3} ({len(methods)} methods)", slope.estimate,
                slope.ci(1 - 2 * alpha), p, margin, power, slope.n, slope=slope, gate=reasons[i], note=note,
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
    """Claim 3 for one family and measure: per method in both ``kernel`` and ``softmax`` (``margins``: the kernel
    model's; ``gates``: method -> why it is untested, e.g. claim 2 not supported)."""
    gates = gates or {}
    methods = [m for m in kernel if m in softmax]
    differences = {m: slope_difference(kernel[m], softmax[m]) for m in methods}
    reasons = []
    for m in methods:
        reason = untested_reason(kernel[m], gates.get(m, ""))
        softmax_reason = untested_reason(softmax[m])
        reasons.append(reason or (f"{softmax_reason} (the softmax runs)" if softmax_reason else ""))
    skip = [bool(r) for r in reasons]
    kernel_rises = _holm([kernel[m].p_above(0.0) for m in methods], skip)
    kernel_small = _holm([kernel[m].p_below(margins[m]) for m in methods], skip)
    interaction = _holm([differences[m].p_above(0.0) for m in methods], skip)
    level = alpha / max(len(methods), 1)
    tests, pairs = [], []
    for i, method in enumerate(methods):
        slope, difference, margin = kernel[method], differences[method], margins[method]
        if reasons[i]:
            verdict, p = "untested", math.nan
        else:
            verdict = decide_claim_3(kernel_rises[i], kernel_small[i], interaction[i], alpha)
            p = kernel_small[i] if verdict == "contradicted" else max(kernel_rises[i], interaction[i])
        # a lower bound: the kernel slope and the interaction are positively correlated
        power = power_one_sided(margin, slope.stderr, slope.df, level)
        power *= power_one_sided(margin, difference.stderr, difference.df, level)
        tests.append(
            ClaimTest(
                3, family, method, measure, verdict, f"{RULE_V3}; interaction kernel - softmax > 0 (one-sided)",
                difference.estimate, difference.ci(1 - 2 * alpha), p, margin, power, difference.n, slope=slope,
                reference_slope=softmax[method], gate=reasons[i],
            )
        )  # fmt: skip
        pairs.append(
            Interaction(
                family,
                method,
                measure,
                difference.estimate,
                difference.ci(1 - 2 * alpha),
                interaction[i],
                slope,
                softmax[method],
            )
        )
    return tests, pairs
