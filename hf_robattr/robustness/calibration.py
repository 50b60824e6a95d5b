"""``epsilon="auto"``: a perturbation radius calibrated to the model and the data.

A fixed radius means different things for different models: 8/255 may not move a smooth model's maps at all (every
measure at its ceiling) and scramble a sharp one's (every measure at its floor). The rule here picks, per model and
data, the radius at which *random* noise starts to matter, so that the attack has room both ways:

    epsilon = the smallest radius at which uniform noise in the ball moves the median example's map by
    :data:`NOISE_TARGET` (5%) of its norm, ``||a(x + d) - a(x)|| / ||a(x)||`` averaged over
    :data:`CALIBRATION_DRAWS` label-keeping draws ``d``; the smallest such radius over the scored methods.

It is found by bisection on a log scale (:data:`BISECTION_STEPS` halvings of [hi / 2^20, hi], ``hi`` the inputs' value
range for images, 1 (the embedding's own norm) for text) on the first :data:`CALIBRATION_EXAMPLES` examples, with
the same draws at every radius (common random numbers, from the examples' streams keyed by ``seed``): the same seed
gives the same radius.

Why 5%: random noise is a weak perturbation; the attack at the same radius moves maps 5-15 times as much. On the
trained controls of the test suite (a ViT on digits, a BERT on sentences) a radius that moves maps by 5% under
noise leaves the attacked top-k intersection of saliency in the middle of its range (about 0.6-0.85), where the
measures neither sit at their ceiling nor at their floor; 10% already put the attack at the floor on text.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from hf_robattr.attribution.inputs import IMAGE, PreparedInputs, prepare_inputs
from hf_robattr.attribution.random_streams import ExampleStreams

from .batch_scoring import RobustnessScorer
from .batching import iter_batches, move
from .config import RobustnessConfig
from .perturbations import ball_radius, range_projector, sample_ball, scored_inputs
from .perturbed_maps import perturbed_explanations
from .sensitivity import sensitivity_ratio


AUTO = "auto"
NOISE_TARGET = 0.05
CALIBRATION_DRAWS = 4
CALIBRATION_EXAMPLES = 32
BISECTION_STEPS = 12
OCTAVES = 20


@dataclass(frozen=True)
class EpsilonCalibration:
    """The radius ``epsilon="auto"`` chose, and how.

    Attributes:
        value: the chosen radius (the smallest of ``per_method``).
        per_method: each method's radius.
        moved: each method's median relative map change under noise at its radius (about the target).
        target, draws, examples: the rule's settings; rule: the rule in words.
    """

    value: float
    per_method: dict[str, float]
    moved: dict[str, float]
    target: float
    draws: int
    examples: int
    rule: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


RULE = (
    "the smallest radius at which uniform noise in the ball moves the median example's map by {target:g} of its norm "
    "(||a(x+d) - a(x)|| / ||a(x)||, mean over {draws} label-keeping draws), found by bisection on a log scale on the "
    "first {examples} examples; the smallest over the methods"
)


def _first_examples(inputs: Any, count: int) -> Any | None:
    """The first batch of at most ``count`` examples (``None`` for no example)."""
    for batch, _ in iter_batches(inputs, count):
        return batch
    return None


def _median_change(
    scorer: RobustnessScorer, method_name: str, prepared: PreparedInputs, unit: torch.Tensor, radius: float
) -> float:
    """Median over examples of the mean relative map change at ``radius`` (``unit``: draws at radius 1); examples
    whose every draw flips the label count as moved without bound."""
    method = scorer.methods[method_name]
    with torch.no_grad():
        clean = method.explain(scorer.model, prepared, None)
    labels, clean_maps = clean.logits.argmax(dim=1), prepared.words_only(clean.maps)
    x = prepared.features.detach().unsqueeze(1)
    offsets = range_projector(prepared, scorer.config.input_range)(x + radius * unit) - x
    maps, logits = perturbed_explanations(scorer.model, method, prepared, labels, offsets, scorer.config.batch_size)
    ratio = sensitivity_ratio(clean_maps, prepared.words_only(maps))
    valid = logits.argmax(dim=2) == labels.unsqueeze(1)
    total = torch.where(valid, ratio, torch.zeros_like(ratio)).sum(dim=1)
    mean = torch.where(valid.any(dim=1), total / valid.sum(dim=1).clamp_min(1), torch.full_like(total, math.inf))
    return float(mean.double().median())


def _upper_radius(prepared: PreparedInputs, config: RobustnessConfig) -> float:
    """The largest radius worth trying: the valid pixel range (``input_range``, else the widest image's own), per pixel
    (an L2 ball spreads it over every pixel), or the embedding's own norm for text (radii are relative there)."""
    if prepared.kind != IMAGE:
        return 1.0
    flat = prepared.features.detach().flatten(1)
    if config.input_range is not None:
        width = config.input_range[1] - config.input_range[0]
    else:
        width = float((flat.amax(dim=1) - flat.amin(dim=1)).max().clamp_min(1e-12))
    norm = config.norm
    return width * math.sqrt(flat.shape[1]) if norm == "l2" else width


def calibrate_epsilon(
    model: nn.Module,
    inputs: Any,
    config: RobustnessConfig,
    *,
    methods: Sequence[str] | None = None,
    target: float = NOISE_TARGET,
    device: torch.device | str | None = None,
) -> EpsilonCalibration:
    """The radius of ``epsilon="auto"`` for ``model`` on ``inputs`` under ``config`` (its norm, methods, input range,
    seed and batch size; its ``epsilon`` is ignored); see the module docstring for the rule.

    A method whose maps noise as large as the inputs' range cannot move by ``target`` is left out of the choice
    (with a warning; its measures will read as saturated at the ceiling).

    Raises:
        ValueError: if no method's maps move by ``target`` (maps that do not depend on the input, e.g. saliency of a
            linear model): pass a fixed ``epsilon`` instead.
    """
    if not 0 < target < 1:
        raise ValueError(f"`target` must be a fraction of the map's norm in (0, 1); got {target!r}.")
    config = config.replace(epsilon=1.0)
    names = tuple(methods or config.methods)
    batch = _first_examples(inputs, CALIBRATION_EXAMPLES)
    if batch is None:
        raise ValueError("`inputs` holds no examples to calibrate epsilon on.")
    per_method, moved, stuck = {}, {}, {}
    with RobustnessScorer(model, config, device=device) as scorer:
        prepared = scored_inputs(prepare_inputs(scorer.model, move(batch, scorer.device)), config.special_tokens)
        streams = ExampleStreams.keyed(config.seed, torch.arange(prepared.batch_size), "epsilon/auto")
        radius = ball_radius(prepared, 1.0, config.norm)
        unit = sample_ball(prepared.with_streams(streams), radius, config.norm, CALIBRATION_DRAWS)
        high = _upper_radius(prepared, config)
        for name in names:
            change = lambda radius, name=name: _median_change(scorer, name, prepared, unit, radius)  # noqa: E731
            if change(high) < target:
                stuck[name] = high
                continue
            low_log, high_log = math.log2(high) - OCTAVES, math.log2(high)
            for _ in range(BISECTION_STEPS):
                middle = (low_log + high_log) / 2
                if change(2.0**middle) >= target:
                    high_log = middle
                else:
                    low_log = middle
            per_method[name] = 2.0**high_log
            moved[name] = change(per_method[name])
    if not per_method:
        raise ValueError(
            f"epsilon='auto': uniform noise as large as the inputs' range ({high:.4g}) moves no method's maps "
            f"({list(stuck)}) of the median example by {target:g} of their norm: they hardly depend on the input "
            "(e.g. saliency of a linear model, or near-uniform attention). Pass a fixed `epsilon` instead."
        )
    if stuck:
        warnings.warn(
            f"epsilon='auto': noise as large as the inputs' range does not move the {sorted(stuck)} maps by {target:g} "
            "of their norm; the radius is chosen from the other methods, and these will likely read as saturated "
            "at their ceiling.",
            UserWarning,
            stacklevel=3,
        )
    examples = int(prepared.batch_size)
    rule = RULE.format(target=target, draws=CALIBRATION_DRAWS, examples=examples)
    return EpsilonCalibration(min(per_method.values()), per_method, moved, target, CALIBRATION_DRAWS, examples, rule)
