"""When a measure cannot rank models: its scores sit at the ceiling, at the floor, or no lower than random noise.

A robustness score only ranks models when it can move both ways. For every method x measure the scorer computes,
on the same examples, two baselines per example:

- ``chance``: the measure between the clean map and the same map with its scored features shuffled (words or
  patches; padding and special tokens stay put) - what *unrelated* maps score;
- ``noise``: the measure at the worst of the ``num_samples`` uniform draws from the ball that keep the label
  (attack measures only) - what random perturbations of the same size score.

:func:`find_saturation` then flags a measure as

- ``ceiling``: at least :data:`CEILING_SHARE` of the examples score exactly the perfect value (1 for the
  similarities, 0 for a shift or a sensitivity): the perturbation does not move the maps, so every model looks
  perfectly robust (``epsilon`` too small for this model);
- ``floor``: the scores are not shown better than ``chance`` (a paired one-sided test at level :data:`ALPHA`): the
  attacked maps are no closer to the clean ones than shuffled maps are, so every model looks equally broken
  (``epsilon`` too large, or a map the attack can always scramble);
- ``noise``: in at most half of the examples (:data:`NOISE_SHARE`; examples where the attacked and the noise score
  both sit at the perfect value are left to the ceiling rule) the attack scores worse than ``noise``: the attack
  typically finds nothing that random draws do not (e.g. a gradient through a piecewise-constant map), so the score
  is not a worst case.

The floor test fits the measure: for the bounded similarities (in [-1, 1]; top-k sets are 0/1 per example for a
one-word top-k) the mean difference against its standard error (a t test); for the unbounded shift and
sensitivities, whose per-example values are heavy-tailed (one scrambled example can hold a sensitivity of 10 while
the rest sit near 0.1), Wilcoxon's signed-rank test (examples exactly tied with chance dropped; with fewer than 5
left it cannot reach 5%, and the floor's sentence says so). The noise rule counts examples instead of testing: an
attack that helps in most examples is working even when a few examples cannot show it significantly. Both need at least
:data:`MIN_EXAMPLES` scored examples; with fewer, only ``ceiling`` is checked.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import scipy.stats
import torch

from ..warning_types import SaturationWarning


CEILING_SHARE = 0.9
ALPHA = 0.05
NOISE_SHARE = 0.5
MIN_EXAMPLES = 5
# Margins within TIE of 0 are ties with the baseline, which the signed-rank test drops; with all n examples left
# better, its one-sided p is 2^-n, so it needs MIN_UNTIED of them to reach ALPHA.
TIE = 1e-12
MIN_UNTIED = next(n for n in range(1, 64) if 0.5**n < ALPHA)
# Measures bounded in [-1, 1]: a t test of their mean difference; the others (unbounded): a signed-rank test.
BOUNDED = ("topk_intersection", "kendall_tau", "spearman", "pearson", "cosine")

# measure -> (the perfectly robust value, +1 if higher is more robust else -1)
PERFECT: dict[str, tuple[float, int]] = {
    **dict.fromkeys(("topk_intersection", "kendall_tau", "spearman", "pearson", "cosine"), (1.0, 1)),
    **dict.fromkeys(
        (
            "center_of_mass_shift",
            "attack_sensitivity",
            "max_sensitivity",
            "avg_sensitivity",
            "local_lipschitz",
            "relative_input_stability",
        ),
        (0.0, -1),
    ),
}
# Separator of a baseline's per-example key: "saliency/topk_intersection@noise".
BASELINE_SEPARATOR = "@"
BASELINES = ("chance", "noise")


@dataclass(frozen=True)
class Saturation:
    """Why one ``method/measure`` cannot rank models on these inputs.

    Attributes:
        kind: ``"ceiling"``, ``"floor"`` or ``"noise"`` (see the module docstring).
        examples: how many of the ``judged`` examples sit there (for ``floor``/``noise``: score no better than the
            baseline).
        scored: how many examples were scored.
        mean: the measure's mean; baseline: the baseline's mean (``None`` for ``ceiling``).
        why: one sentence for a user.
        judged: how many examples the rule compared: every scored one for ``ceiling``, those with a baseline score
            for ``floor``, and for ``noise`` those less the examples at the perfect value under both (left to the
            ceiling rule).
    """

    kind: str
    examples: int
    scored: int
    mean: float
    baseline: float | None
    why: str
    judged: int

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return asdict(self)


def baseline_key(key: str, baseline: str) -> str:
    """The per-example key of ``baseline`` for ``key`` (``"method/measure"``)."""
    return f"{key}{BASELINE_SEPARATOR}{baseline}"


def split_baselines(
    per_sample: Mapping[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, torch.Tensor]]]:
    """``per_sample`` without its baseline keys, and the baselines as ``{key: {baseline: values}}``."""
    scores, baselines = {}, {}
    for key, values in per_sample.items():
        if BASELINE_SEPARATOR in key:
            measure_key, baseline = key.split(BASELINE_SEPARATOR, 1)
            baselines.setdefault(measure_key, {})[baseline] = values
        else:
            scores[key] = values
    return scores, baselines


def shown_positive(margin: torch.Tensor, *, bounded: bool) -> bool:
    """Whether the per-example ``margin`` is shown positive at level :data:`ALPHA`, one-sided: a t test of its mean
    for a bounded measure, Wilcoxon's signed-rank test (ties at 0 dropped) for an unbounded one."""
    values = margin.double().numpy()
    if bounded:
        if values.size >= 2 and np.isfinite(values).all() and (values == values[0]).all():
            # Equal margins (every example 1/3 better than chance): scipy's t is +-inf or NaN (p 0, 1 or NaN), and
            # it warns that their mean was rounded; its verdict without the warning.
            return bool(values[0] > 0)
        with warnings.catch_warnings():  # nearly equal margins: the same warning, and scipy's verdict stands
            warnings.filterwarnings("ignore", "Precision loss occurred in moment calculation", RuntimeWarning)
            result = scipy.stats.ttest_1samp(values, 0.0, alternative="greater")
    else:
        nonzero = values[np.abs(values) > TIE]
        if nonzero.size == 0:
            return False
        result = scipy.stats.wilcoxon(nonzero, alternative="greater")
    return bool(np.isfinite(result.pvalue) and result.pvalue < ALPHA)


def measure_saturation(
    measure: str, values: torch.Tensor, baselines: Mapping[str, torch.Tensor] | None = None
) -> Saturation | None:
    """The saturation of one measure from its per-example ``values`` (NaN = not scored) and per-example
    ``baselines`` (``chance``, ``noise``), or ``None`` when it can rank models."""
    if measure not in PERFECT:
        return None
    perfect, sign = PERFECT[measure]
    values = values.double().cpu()
    scored = ~torch.isnan(values)
    count = int(scored.sum())
    if count == 0:
        return None
    mean = values[scored].mean().item()
    at_ceiling = int(((values[scored] - perfect).abs() <= 1e-6 * max(1.0, abs(perfect))).sum())
    if at_ceiling >= CEILING_SHARE * count:
        why = (
            f"{at_ceiling} of {count} examples score the perfect {perfect:g}: the perturbation does not move the "
            "maps, so every model looks perfectly robust (epsilon may be too small for this model; try "
            "epsilon='auto')."
        )
        return Saturation("ceiling", at_ceiling, count, mean, None, why, count)
    for kind in BASELINES:
        baseline = (baselines or {}).get(kind)
        if baseline is None:
            continue
        baseline = baseline.double().cpu()
        both = scored & ~torch.isnan(baseline)
        if int(both.sum()) < MIN_EXAMPLES:
            continue
        # chance: robust means scoring better than shuffled maps; noise: the attack should score worse than noise.
        tolerance = 1e-6 * max(1.0, abs(perfect))
        if kind == "noise":  # examples at the perfect value under both belong to the ceiling rule
            both &= ~(((values - perfect).abs() <= tolerance) & ((baseline - perfect).abs() <= tolerance))
            if int(both.sum()) < MIN_EXAMPLES:
                continue
        margin = sign * (values[both] - baseline[both]) if kind == "chance" else sign * (baseline[both] - values[both])
        better = margin > tolerance
        stuck_here = (
            not shown_positive(margin, bounded=measure in BOUNDED)
            if kind == "chance"
            else int(better.sum()) <= NOISE_SHARE * margin.numel()
        )
        if stuck_here:
            base_mean = baseline[both].mean().item()
            stuck, judged = int((~better).sum()), int(both.sum())
            why = _WHY[kind].format(mean=mean, base=base_mean, stuck=stuck, count=judged)
            untied = int((margin.abs() > TIE).sum())
            if kind == "chance" and measure not in BOUNDED and untied < MIN_UNTIED:
                why += (
                    f" Only {untied} examples differ from chance at all: too few for the signed-rank test to show "
                    f"anything at the {ALPHA:g} level (it needs {MIN_UNTIED}); score more examples."
                )
            return Saturation("floor" if kind == "chance" else "noise", stuck, count, mean, base_mean, why, judged)
    return None


_WHY = {
    "chance": (
        "the scores are not shown better than chance; in {stuck} of {count} examples the attacked maps are no closer to the clean maps than shuffled maps are "
        "(mean {mean:.3g} vs {base:.3g} for unrelated maps), so every model looks equally broken (epsilon may be too "
        "large for this model; try epsilon='auto')."
    ),
    "noise": (
        "in {stuck} of {count} examples the attack does no better than random draws from the same ball (mean "
        "{mean:.3g} vs {base:.3g} under noise): the score is not a worst case (the map's gradient may be "
        "uninformative, e.g. saliency of a piecewise-linear model, or the radius too small to matter; compare models "
        "with the sensitivity measures, more attack steps or epsilon='auto')."
    ),
}


def find_saturation(
    per_sample: Mapping[str, torch.Tensor], baselines: Mapping[str, Mapping[str, torch.Tensor]]
) -> dict[str, Saturation]:
    """``{"method/measure": Saturation}`` for every saturated key of ``per_sample`` (see the module docstring)."""
    found = {}
    for key, values in per_sample.items():
        measure = key.split("/", 1)[-1]
        saturation = measure_saturation(measure, values, baselines.get(key))
        if saturation is not None:
            found[key] = saturation
    return found


def warn_saturation(saturated: Mapping[str, Saturation], stacklevel: int = 3) -> None:
    """One :class:`SaturationWarning` listing the saturated measures."""
    if not saturated:
        return
    lines = "; ".join(f"{key} at its {s.kind}: {s.why}" for key, s in saturated.items())
    warnings.warn(
        f"attribution robustness: {len(saturated)} measure(s) cannot rank models on these inputs and should be read "
        f"as untested ('saturated' in the result). {lines}",
        SaturationWarning,
        stacklevel=stacklevel,
    )
