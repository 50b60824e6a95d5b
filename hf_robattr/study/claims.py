"""The pre-registered tests of the paper's three claims, and the rules that turn them into verdicts.

Each claim is tested per model and per attribution method, on the slope of a robustness measure (higher = more
robust) against ``log2(lr / B)`` over the plain-SGD runs, with the seed as a block (:func:`~.stats.block_slope`).
``margin`` is the smallest slope that matters (fixed in the settings before any run); ``alpha`` the level. Holm's
correction runs over the methods of one claim and model, separately for each kind of test.

- **Claim 1** (gradient methods, each model): *supported* when the slope is positive and its two-sided test
  rejects 0 (Holm); *contradicted* when not supported and the slope is shown to be below ``margin`` (one-sided,
  Holm): a true null is called supported at most ``alpha / 2`` of the time, a true slope >= ``margin`` is called
  contradicted at most ``alpha``.
- **Claim 2** (attention methods, softmax models): an equivalence statement. *Supported* when the two one-sided
  tests (TOST, Holm) show ``|slope| < margin``; else *contradicted* when the slope is positive and its two-sided
  test rejects 0 (Holm); a true ``|slope| >= margin`` is called supported at most ``alpha`` of the time, a true
  slope <= 0 contradicted at most ``alpha / 2``.
- **Claim 3** (attention methods, kernel vs softmax of one model family): *supported* when both the interaction
  (kernel slope - softmax slope) and the kernel slope are positive with two-sided tests rejecting 0 (Holm; an
  intersection-union test, so a true interaction or kernel slope <= 0 is called supported at most ``alpha / 2``);
  *contradicted* when not supported and either is shown to be below ``margin`` (one-sided at ``alpha / 2`` each,
  Holm: at most ``alpha`` when both are truly >= ``margin``).

A **degenerate** slope (:attr:`~.stats.Slope.degenerate`: the measure does not vary within any seed, or its runs lie
exactly on a line, so the standard error is 0 and every p-value would be 0) is not tested: its verdict is
*inconclusive* with that reason (:attr:`ClaimTest.degenerate`), and it stays in its Holm family as a test that does
not reject (p = 1), so that no other verdict gets stronger. For claim 3 a method is untested when either attention
type's slope is degenerate. A slope **without an estimate** (too few runs, or lr/B does not vary within any seed: a
partial study, or the two-run cells of ``--scale ci``) is untested in the same way, with that reason
(:attr:`ClaimTest.untested` names the reason of every untested verdict).

Everything else is *inconclusive*, reported with its power: the probability that the test would detect a slope
of ``margin`` (two-sided, at the Bonferroni level ``alpha / m``; claim 3: the product of the interaction's and the
kernel slope's, a lower bound as the two estimates are positively correlated), and for claim 2 the probability
that the TOST shows equivalence when the true slope is 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .stats import Slope, holm, power_tost, power_two_sided, slope_difference


__all__ = [
    "VERDICTS",
    "ClaimTest",
    "Interaction",
    "claim_1_tests",
    "claim_2_tests",
    "claim_3_tests",
]

VERDICTS = ("supported", "contradicted", "inconclusive")
SLOPE_TEST = "fixed-effects OLS slope on log2(lr/B), seed blocks"


@dataclass(frozen=True)
class ClaimTest:
    """The verdict on one claim for one model and method, with the numbers that decided it.

    ``estimate`` / ``ci`` are the slope (claim 3: the interaction) per doubling of lr/B with its CI (v2: 95%; v3: two-sided
    at 1 - 2 alpha, matching its one-sided tests); ``p`` is
    the Holm-adjusted p-value of the test that decided the verdict (for inconclusive verdicts: of the claim's
    primary test); ``power`` is the power to detect a slope of ``margin``; ``power_equivalence`` (claim 2 only) the
    chance that the TOST shows equivalence when the true slope is 0.
    """

    claim: int
    model: str
    method: str
    measure: str
    verdict: str
    test: str
    estimate: float
    ci: tuple[float, float]
    p: float
    margin: float
    power: float
    n: int
    power_equivalence: float = math.nan
    slope: Slope | None = None
    reference_slope: Slope | None = None
    gate: str = ""  # v3: why the verdict was not decided by its test (e.g. the manipulation check failed)
    note: str = ""  # v3: why a tested verdict is inconclusive where its test alone would decide (e.g. no control)

    @property
    def untested(self) -> str:
        """Why no test decided the verdict: the caller's :attr:`gate`, a degenerate slope (:attr:`degenerate`) or
        one without an estimate (:attr:`missing`); ``""`` when the test was run."""
        return self.gate or self.degenerate or self.missing

    @property
    def missing(self) -> str:
        """Why the slope has no estimate (claim 3: either attention type's), e.g. ``"no estimate: 2 runs in 2 seed
        blocks, a slope needs at least 4"``; ``""`` when it has one."""
        if self.claim != 3:
            return _missing(self.slope)
        for name, slope in (("kernel", self.slope), ("softmax", self.reference_slope)):
            reason = _missing(slope)
            if reason:
                return f"{reason} (the {name} runs)"
        return ""

    @property
    def degenerate(self) -> str:
        """Why the test was not run on the runs there are: ``"no variation"`` or ``"no residual variation"`` (see
        :attr:`~.stats.Slope.degenerate`; claim 3: ``"... in the kernel runs"`` / ``"... in the softmax runs"``);
        ``""`` when it was run (or lacked runs)."""
        if self.claim != 3:
            return self.slope.degenerate if self.slope is not None else ""
        for name, slope in (("kernel", self.slope), ("softmax", self.reference_slope)):
            if slope is not None and slope.degenerate:
                return f"{slope.degenerate} in the {name} runs"
        return ""


@dataclass(frozen=True)
class Interaction:
    """Kernel slope minus softmax slope for one model family and attention method (Welch-Satterthwaite)."""

    family: str
    method: str
    measure: str
    estimate: float
    ci: tuple[float, float]
    p: float
    kernel: Slope
    softmax: Slope


def _missing(slope: Slope | None) -> str:
    """Why ``slope`` has no estimate; ``""`` when it has one."""
    if slope is None:
        return "no estimate: no runs"
    if math.isfinite(slope.estimate):
        return ""
    if slope.n < slope.blocks + 2:
        return (
            f"no estimate: {slope.n} run{'s' if slope.n != 1 else ''} in {slope.blocks} seed "
            f"block{'s' if slope.blocks != 1 else ''}, a slope needs at least {slope.blocks + 2}"
        )
    return "no estimate: lr/B does not vary within any seed"


def _untested_slope(slope: Slope) -> bool:
    """Whether a slope is not tested: degenerate, or without an estimate."""
    return bool(slope.degenerate or _missing(slope))


def _holm(p_values: list[float], untested: list[bool]) -> list[float]:
    """Holm over a claim's family of methods, where an untested (degenerate) method counts as a test that does not
    reject (p = 1): the family keeps its pre-registered size, so no other verdict gets stronger. The untested
    methods' own adjusted p-values are NaN."""
    adjusted = holm([1.0 if skip else p for p, skip in zip(p_values, untested)])
    return [math.nan if skip else p for p, skip in zip(adjusted, untested)]


def _power(slope: Slope, margin: float, alpha: float, tests: int) -> float:
    return power_two_sided(margin, slope.stderr, slope.df, alpha / max(tests, 1))


def _slope_tests(
    claim: int,
    model: str,
    slopes: Mapping[str, Slope],
    decide: Callable[[int, Slope], tuple[str, float, dict[str, Any]]],
    *,
    test: str,
    measure: str,
    margin: float,
    alpha: float,
) -> list[ClaimTest]:
    """One :class:`ClaimTest` per method of ``slopes`` for a claim decided on the slope alone (claims 1 and 2):
    ``decide(i, slope)`` gives the ``i``-th method's verdict, its p-value and any extra :class:`ClaimTest` fields."""
    out = []
    for i, (method, slope) in enumerate(slopes.items()):
        verdict, p, extra = decide(i, slope)
        power = _power(slope, margin, alpha, len(slopes))
        fields = dict(estimate=slope.estimate, ci=slope.ci(), p=p, margin=margin, power=power, n=slope.n)
        out.append(ClaimTest(claim, model, method, measure, verdict, test, **fields, slope=slope, **extra))
    return out


def claim_1_tests(
    model: str, slopes: Mapping[str, Slope], *, measure: str, margin: float, alpha: float = 0.05
) -> list[ClaimTest]:
    """Claim 1 for one model: one :class:`ClaimTest` per gradient method in ``slopes``."""
    untested = [_untested_slope(slope) for slope in slopes.values()]
    rises = _holm([slope.p_value for slope in slopes.values()], untested)
    small = _holm([slope.p_below(margin) for slope in slopes.values()], untested)

    def decide(i: int, slope: Slope) -> tuple[str, float, dict[str, Any]]:
        if rises[i] < alpha and slope.estimate > 0:
            return "supported", rises[i], {}
        if small[i] < alpha:
            return "contradicted", small[i], {}
        return "inconclusive", rises[i], {}

    test = f"{SLOPE_TEST}, Holm over {len(slopes)} methods"
    return _slope_tests(1, model, slopes, decide, test=test, measure=measure, margin=margin, alpha=alpha)


def claim_2_tests(
    model: str, slopes: Mapping[str, Slope], *, measure: str, margin: float, alpha: float = 0.05
) -> list[ClaimTest]:
    """Claim 2 for one softmax model: one :class:`ClaimTest` per attention method in ``slopes``."""
    untested = [_untested_slope(slope) for slope in slopes.values()]
    equivalent = _holm([slope.p_equivalent(margin) for slope in slopes.values()], untested)
    rises = _holm([slope.p_value for slope in slopes.values()], untested)

    def decide(i: int, slope: Slope) -> tuple[str, float, dict[str, Any]]:
        extra = {"power_equivalence": power_tost(margin, slope.stderr, slope.df, alpha / max(len(slopes), 1))}
        if equivalent[i] < alpha:
            return "supported", equivalent[i], extra
        if rises[i] < alpha and slope.estimate > 0:
            return "contradicted", rises[i], extra
        return "inconclusive", equivalent[i], extra

    test = f"TOST |slope| < {margin:g} ({SLOPE_TEST}), Holm over {len(slopes)} methods"
    return _slope_tests(2, model, slopes, decide, test=test, measure=measure, margin=margin, alpha=alpha)


def claim_3_tests(
    family: str,
    kernel: Mapping[str, Slope],
    softmax: Mapping[str, Slope],
    *,
    measure: str,
    margin: float,
    alpha: float = 0.05,
) -> tuple[list[ClaimTest], list[Interaction]]:
    """Claim 3 for one model family: the kernel - softmax interaction and the kernel slope per attention method
    present in both ``kernel`` and ``softmax``."""
    methods = [m for m in kernel if m in softmax]
    differences = {m: slope_difference(kernel[m], softmax[m]) for m in methods}
    # a method with a degenerate or missing slope on either side is not tested
    untested = [_untested_slope(kernel[m]) or _untested_slope(softmax[m]) for m in methods]
    interaction_rises = _holm([differences[m].p_value for m in methods], untested)
    kernel_rises = _holm([kernel[m].p_value for m in methods], untested)
    interaction_small = _holm([differences[m].p_below(margin) for m in methods], untested)
    kernel_small = _holm([kernel[m].p_below(margin) for m in methods], untested)
    tests, interactions = [], []
    for i, method in enumerate(methods):
        difference, slope = differences[method], kernel[method]
        both_rise = (
            interaction_rises[i] < alpha and difference.estimate > 0 and kernel_rises[i] < alpha and slope.estimate > 0
        )
        shown_small = [q for q in (interaction_small[i], kernel_small[i]) if q < alpha / 2]
        if both_rise:
            verdict, p = "supported", max(interaction_rises[i], kernel_rises[i])
        elif shown_small:
            verdict, p = "contradicted", min(shown_small)
        else:
            verdict, p = "inconclusive", max(interaction_rises[i], kernel_rises[i])
        tests.append(
            ClaimTest(
                3,
                family,
                method,
                measure,
                verdict,
                f"interaction (kernel - softmax slope) and kernel slope ({SLOPE_TEST}), "
                f"Welch-Satterthwaite, Holm over {len(methods)} methods",
                difference.estimate,
                difference.ci(),
                p,
                margin,
                _power(difference, margin, alpha, len(methods)) * _power(slope, margin, alpha, len(methods)),
                difference.n,
                slope=slope,
                reference_slope=softmax[method],
            )
        )
        interactions.append(
            Interaction(
                family,
                method,
                measure,
                difference.estimate,
                difference.ci(),
                interaction_rises[i],
                slope,
                softmax[method],
            )
        )
    return tests, interactions
