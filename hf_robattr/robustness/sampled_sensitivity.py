"""The sensitivity family sampled on a model: explain perturbed copies of each example in large batches.

The same perturbed forward passes serve every measure of the family, and their logits serve the label check, so no
pass is spent twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from hf_robattr.attribution.inputs import (
    frozen_eval,
    model_modality,
    prepare_inputs,
)
from hf_robattr.attribution.methods import make_method, resolve_targets
from hf_robattr.attribution.random_streams import ExampleStreams

from .calibration import calibrate_epsilon
from .config import RobustnessConfig
from .perturbations import ball_radius, range_projector, sample_ball, scored_inputs
from .perturbed_maps import perturbed_explanations
from .sensitivity import SENSITIVITY_MEASURES, sensitivity_measures


def sensitivity_family(
    model: nn.Module,
    inputs: torch.Tensor | Mapping[str, Any],
    config: RobustnessConfig | Mapping[str, Any] | None = None,
    *,
    method: str | None = None,
    targets: torch.Tensor | Sequence[int] | None = None,
    perturbations: torch.Tensor | None = None,
    keep_label: bool = True,
    **overrides: Any,
) -> dict[str, torch.Tensor]:
    """Sensitivity measures per example, ``{name: [B]}`` (see :mod:`hf_robattr.robustness.sensitivity`).

    The settings come from ``config`` (a :class:`RobustnessConfig`) and keyword ``overrides`` of its fields:
    ``epsilon``, ``norm``, ``num_samples``, ``seed``, ``batch_size``, ``method_kwargs``, ``measures`` (the sensitivity
    measures among them; default all four). ``method`` names the one attribution method (default: the config's
    ``methods``, which must then name exactly one). ``perturbations`` ``[B, S, *feature_shape]`` are the offsets to
    add (pixels, or embeddings for text), used as given; without them ``num_samples`` uniform draws from the
    ``epsilon`` ball are made from ``seed`` and clamped into the valid input range (``input_range``, default each
    image's own min/max). With ``keep_label``, perturbed copies whose predicted label differs from the clean one are
    left out. Text follows ``special_tokens``: by default the norms run over the word tokens only (special tokens are
    neither perturbed by the draws nor counted in the maps), and a text without a word token gets NaN. The model
    runs in eval mode with frozen parameters; its state is restored afterwards.
    """
    if method is not None:
        overrides["methods"] = (method,)
    config = RobustnessConfig.from_options(config, **overrides)
    if len(config.methods) != 1:
        raise ValueError(f"`methods` must name one method for sensitivity_family; got {list(config.methods)}.")
    (name,) = config.methods
    measures = tuple(SENSITIVITY_MEASURES) if config.measures is None else config.measures
    measures = tuple(m for m in measures if m in SENSITIVITY_MEASURES)
    if not measures:
        raise ValueError(
            f"`measures` names no sensitivity measure; expected some of {list(SENSITIVITY_MEASURES)}, got "
            f"{list(config.measures or ())}."
        )
    config = config.resolved(model_modality(model))
    if config.epsilon == "auto" and perturbations is None:
        config = config.replace(epsilon=calibrate_epsilon(model, inputs, config, targets=targets).value)
    runner = make_method(name, **config.method_kwargs.get(name, {}))
    with frozen_eval(model):
        prepared = scored_inputs(prepare_inputs(model, inputs), config.special_tokens)
        target_ids = None
        if targets is not None:
            target_ids = resolve_targets(targets, None, prepared.batch_size, prepared.features.device)
        # Each example's draws come from its own streams (keyed by the seed, its index and the method), as in
        # evaluate_attribution_robustness: the clean explanation from the method's, the samples (and the noise of
        # their explanations) from the method's "/sensitivity" stream.
        ids = range(prepared.batch_size)
        clean_prepared = prepared.with_streams(ExampleStreams.keyed(config.seed, ids, name))
        prepared = prepared.with_streams(ExampleStreams.keyed(config.seed, ids, f"{name}/sensitivity"))
        # The clean pass also gives the labels to keep (and the targets, if none were given).
        clean_result = runner.explain(model, clean_prepared, target_ids)
        clean, labels = prepared.words_only(clean_result.maps), clean_result.logits.argmax(dim=1)
        target_ids = labels if target_ids is None else target_ids
        if perturbations is None:
            radius = ball_radius(prepared, config.epsilon, config.norm)
            perturbations = sample_ball(prepared, radius, config.norm, config.num_samples)
            # Draws stay in the valid input range (``input_range``, default each image's own min/max).
            x = prepared.features.detach().unsqueeze(1)
            perturbations = range_projector(prepared, config.input_range)(x + perturbations) - x
        expected = (prepared.batch_size, *prepared.features.shape[1:])
        if perturbations.dim() != prepared.features.dim() + 1 or (
            (perturbations.shape[0], *perturbations.shape[2:]) != expected
        ):
            raise ValueError(
                f"`perturbations` must have shape [B, S, *feature_shape] = [{expected[0]}, S, "
                f"{', '.join(map(str, expected[1:]))}]; got {list(perturbations.shape)}."
            )
        perturbations = perturbations.to(prepared.features)
        if not torch.isfinite(perturbations).all():
            raise ValueError("`perturbations` contains NaN or infinite values; expected finite offsets.")
        maps, logits = perturbed_explanations(model, runner, prepared, target_ids, perturbations, config.batch_size)
        valid = logits.argmax(dim=2) == labels.unsqueeze(1) if keep_label else torch.ones_like(logits[..., 0]).bool()
        if prepared.word_mask is not None:
            valid = valid & prepared.word_mask.bool().any(dim=1, keepdim=True)
        x = prepared.features
        return sensitivity_measures(
            clean,
            prepared.words_only(maps),
            inputs=x,
            perturbed_inputs=x.unsqueeze(1) + perturbations,
            valid=valid,
            measures=measures,
        )
