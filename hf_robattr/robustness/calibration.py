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
gives the same radius. A method's own randomness (SmoothGrad's noise) is common too: each perturbed copy of an
example draws the noise its clean map drew, so only the input moves.

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
from .batching import iter_batches, move, slice_batch, stack_rows
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


def _padded_cat(parts: list[torch.Tensor]) -> torch.Tensor:
    """Rows of several batches in one, padded as :func:`~.batching.iter_batches` pads unpadded columns."""
    return stack_rows([row for part in parts for row in part])


def _first_examples(inputs: Any, count: int) -> tuple[Any, torch.Tensor] | None:
    """The first ``count`` examples, across batches when ``inputs`` is a list of smaller ones, and their indices in
    ``inputs`` (``None`` for no example)."""
    batches, ids, seen = [], [], 0
    for batch, batch_ids in iter_batches(inputs, count):
        batches.append(slice_batch(batch, 0, count - seen))
        ids.append(batch_ids[: count - seen])
        seen += len(ids[-1])
        if seen >= count:
            break
    if not batches:
        return None
    if isinstance(batches[0], torch.Tensor):
        return _padded_cat(batches), torch.cat(ids)
    if len(batches) > 1:  # padding added to join batches must be masked out
        batches = [_with_attention_mask(batch) for batch in batches]
    if len({frozenset(batch) for batch in batches}) > 1:
        raise ValueError(
            f"the batches of `inputs` must have the same keys; got {sorted({tuple(sorted(b)) for b in batches})}."
        )
    return {key: _padded_cat([batch[key] for batch in batches]) for key in batches[0]}, torch.cat(ids)


def _with_attention_mask(batch: dict[str, Any]) -> dict[str, Any]:
    """A tokenized batch with its attention mask (all ones, as the model assumes, when it has none)."""
    tokens = batch.get("input_ids", batch.get("inputs_embeds"))
    if "attention_mask" in batch or tokens is None:
        return batch
    return {**batch, "attention_mask": torch.ones(tokens.shape[:2], dtype=torch.long, device=tokens.device)}


def _median_change(
    scorer: RobustnessScorer,
    method_name: str,
    prepared: PreparedInputs,
    ids: torch.Tensor,
    targets: torch.Tensor | None,
    unit: torch.Tensor,
    radius: float,
) -> float:
    """Median over examples of the mean relative map change at ``radius`` (``unit``: draws at radius 1) of the maps
    of ``targets`` (default: the predictions); examples whose every draw flips the label count as moved without
    bound, examples whose clean map is all zeros (nothing to move) are left out.

    A method's own randomness (SmoothGrad's noise) is drawn afresh from streams keyed by the seed, the example
    (``ids``) and the method at every radius, and every perturbed copy of an example draws what its clean map drew:
    only the input moves, so the change falls to 0 with the radius and the same seed gives the same radius."""
    method = scorer.methods[method_name]
    key, seed, samples = f"{method_name}/epsilon-auto", scorer.config.seed, unit.shape[1]
    with torch.no_grad():
        clean = method.explain(scorer.model, prepared.with_streams(ExampleStreams.keyed(seed, ids, key)), targets)
    labels, clean_maps = clean.logits.argmax(dim=1), prepared.words_only(clean.maps)
    x = prepared.features.detach().unsqueeze(1)
    offsets = range_projector(prepared, scorer.config.input_range)(x + radius * unit) - x
    explained = labels if targets is None else targets
    copies = ExampleStreams.keyed(seed, ids.repeat_interleave(samples), key)
    maps, logits = perturbed_explanations(
        scorer.model, method, prepared, explained, offsets, scorer.config.batch_size, streams=copies
    )
    ratio = sensitivity_ratio(clean_maps, prepared.words_only(maps))
    valid = logits.argmax(dim=2) == labels.unsqueeze(1)
    total = torch.where(valid, ratio, torch.zeros_like(ratio)).sum(dim=1)
    mean = torch.where(valid.any(dim=1), total / valid.sum(dim=1).clamp_min(1), torch.full_like(total, math.inf))
    nonzero = clean_maps.flatten(1).abs().amax(dim=1) > 0
    return float(mean[nonzero].double().median()) if nonzero.any() else 0.0


def _targets_of(targets: torch.Tensor | None, ids: torch.Tensor, device: torch.device) -> torch.Tensor | None:
    """The classes to explain for the examples ``ids`` (``targets``: ``[N]`` or one for all; ``None``: predictions)."""
    if targets is None:
        return None
    targets = torch.as_tensor(targets)
    if targets.dim() == 1 and len(ids) and int(ids.max()) >= len(targets):
        raise ValueError(f"`targets` has {len(targets)} entries, fewer than the examples in `inputs`.")
    return (targets.expand(len(ids)) if targets.dim() == 0 else targets[ids]).to(device)


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
    targets: torch.Tensor | None = None,
) -> EpsilonCalibration:
    """The radius of ``epsilon="auto"`` for ``model`` on ``inputs`` under ``config`` (its norm, methods, input range,
    seed and batch size; its ``epsilon`` is ignored); see the module docstring for the rule.

    The first :data:`CALIBRATION_EXAMPLES` examples are read across batches; those that scoring would leave out (an
    image that cannot be perturbed, a text without a word token, a clean map of zeros) are left out here too.
    ``targets`` (``[N]`` class indices or one for all; default: the predictions) are the classes explained, as in
    :func:`~.scoring.evaluate_attribution_robustness`.

    A method whose maps noise as large as the inputs' range cannot move by ``target`` is left out of the choice
    (with a warning; its measures will read as saturated at the ceiling).

    Raises:
        ValueError: if no method's maps move by ``target`` (maps that do not depend on the input, e.g. saliency of a
            linear model): pass a fixed ``epsilon`` instead; or if none of the first examples can be perturbed.
    """
    if not 0 < target < 1:
        raise ValueError(f"`target` must be a fraction of the map's norm in (0, 1); got {target!r}.")
    names = tuple(methods or config.methods)
    # the scorer builds the methods asked for here, with their options from ``config``
    options = {name: value for name, value in config.method_kwargs.items() if name in names}
    config = config.replace(epsilon=1.0, methods=names, method_kwargs=options)
    first = _first_examples(inputs, CALIBRATION_EXAMPLES)
    if first is None:
        raise ValueError("`inputs` holds no examples to calibrate epsilon on.")
    batch, ids = first
    per_method, moved, stuck = {}, {}, {}
    with RobustnessScorer(model, config, device=device) as scorer:
        prepared = scored_inputs(prepare_inputs(scorer.model, move(batch, scorer.device)), config.special_tokens)
        rows = scorer.perturbable(prepared).nonzero().squeeze(1)
        if len(rows) == 0:
            raise ValueError(
                f"epsilon='auto': none of the first {len(ids)} examples can be perturbed (constant images under the "
                "per-image input range, or texts without a word token); pass other inputs or a fixed `epsilon`."
            )
        prepared, ids = prepared.select(rows), ids[rows.cpu()]
        chosen = _targets_of(targets, ids, prepared.features.device)
        streams = ExampleStreams.keyed(config.seed, ids, "epsilon/auto")
        radius = ball_radius(prepared, 1.0, config.norm)
        unit = sample_ball(prepared.with_streams(streams), radius, config.norm, CALIBRATION_DRAWS)
        high = _upper_radius(prepared, config)
        for name in names:
            change = lambda radius, name=name: _median_change(scorer, name, prepared, ids, chosen, unit, radius)  # noqa: E731
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
