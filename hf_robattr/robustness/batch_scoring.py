"""Score one batch: explain, attack, sample the ball, measure; per example and per method, with the maps.

:class:`RobustnessScorer` is what :func:`~hf_robattr.robustness.evaluate_attribution_robustness` runs on every
batch; it is public so that a caller can get the maps behind the scores (the model card picture, the demo).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hf_robattr.attribution.attention import ATTENTION_METHODS, attention_weights_enabled
from hf_robattr.attribution.base import AttributionMethod
from hf_robattr.attribution.core import get_method
from hf_robattr.attribution.gradient import SmoothGrad
from hf_robattr.attribution.inputs import (
    IMAGE,
    PreparedInputs,
    forward_logits,
    frozen_eval,
    model_device,
    prepare_inputs,
    unwrap_model,
)
from hf_robattr.attribution.smoothing import softplus_smoothing

from .attacks import AttackSettings, get_attack
from .batching import move
from .config import RobustnessConfig
from .family import perturbed_explanations
from .measures import ATTACK_MEASURES, IMAGE_ONLY_MEASURES, MEASURES
from .perturbations import ball_radius, sample_ball
from .sensitivity import SENSITIVITY_MEASURES, sensitivity_measures, sensitivity_ratio
from .similarity import SIMILARITY_MEASURES


@dataclass(frozen=True)
class AttackedMaps:
    """One method's maps of a batch, clean and at the attacked point.

    ``labels`` are the clean predictions; the attacked point keeps them (the attack returns label-preserving points
    only; where it found none the example is returned unperturbed with ``perturbed`` false).
    """

    clean_maps: torch.Tensor
    attacked_maps: torch.Tensor
    features: torch.Tensor
    attacked_features: torch.Tensor
    labels: torch.Tensor
    perturbed: torch.Tensor


@dataclass(frozen=True)
class BatchScores:
    """Per-example values ``{"{method}/{measure}": [B]}`` (NaN where an example is left out), the example indices
    they belong to, and, when asked for, each method's maps."""

    per_sample: dict[str, torch.Tensor]
    example_ids: torch.Tensor
    maps: dict[str, AttackedMaps]


def similarity_scores(
    clean: torch.Tensor,
    perturbed: torch.Tensor,
    names: Sequence[str],
    k: int | float,
    token_mask: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Similarity measures ``{name: [B]}`` between maps; for text only real tokens count (padding left out).

    Examples with the same number of real tokens are scored together, so padding never enters a ranking; an
    integer ``k`` longer than a text is cut to its length.
    """
    measure_kwargs = {"topk_intersection": {"k": k}}
    if token_mask is None or bool(token_mask.all()):
        return {name: SIMILARITY_MEASURES[name](clean, perturbed, **measure_kwargs.get(name, {})) for name in names}
    real = token_mask.bool()
    lengths = real.sum(dim=1)
    scores = {name: torch.full((clean.shape[0],), torch.nan, device=clean.device) for name in names}
    for length in lengths.unique().tolist():
        rows = (lengths == length).nonzero().squeeze(1)
        group_mask = real[rows]
        group_clean = clean[rows][group_mask].view(len(rows), length)
        group_perturbed = perturbed[rows][group_mask].view(len(rows), length)
        group_kwargs = {"topk_intersection": {"k": min(k, length) if isinstance(k, int) else k}}
        for name in names:
            value = SIMILARITY_MEASURES[name](group_clean, group_perturbed, **group_kwargs.get(name, {}))
            scores[name][rows] = value.to(scores[name].dtype)
    return scores


class RobustnessScorer:
    """Scores batches of one model under one :class:`RobustnessConfig`.

    Use it as a context manager: on entry the model is moved to ``device`` (default: its own), put in eval mode with
    frozen parameters, switched to attention weights if an attention method needs them, and smoothed if
    ``smoothing_beta`` is set; everything is restored on exit.

    Example:
        >>> import torch
        >>> from hf_robattr import RobustnessConfig, RobustnessScorer
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
        >>> config = RobustnessConfig(epsilon=0.1, num_steps=2, num_samples=2)
        >>> with RobustnessScorer(model, config) as scorer:
        ...     scores = scorer.score_batch(torch.rand(2, 3, 2, 2), keep_maps=True)
        >>> scores.per_sample["saliency/topk_intersection"].shape, scores.maps["saliency"].clean_maps.shape
        (torch.Size([2]), torch.Size([2, 2, 2]))
    """

    def __init__(
        self,
        model: nn.Module,
        config: RobustnessConfig,
        *,
        device: torch.device | str | None = None,
        target_region: torch.Tensor | None = None,
    ) -> None:
        self.model = unwrap_model(model)
        self.config = config
        self.original_device = model_device(self.model)
        self.device = torch.device(device) if device is not None else self.original_device
        self.settings = AttackSettings(
            epsilon=config.epsilon,
            norm=config.norm,
            num_steps=config.num_steps,
            step_size=config.step_size,
            k=config.k,
            restarts=config.restarts,
            input_range=config.input_range,
            target_region=target_region,
        )
        self.methods: dict[str, AttributionMethod] = {}
        for name in config.methods:
            self.methods[name] = get_method(name, **config.method_kwargs.get(name, {}))
            if isinstance(self.methods[name], SmoothGrad) and self.methods[name].generator is None:
                self.methods[name].generator = torch.Generator().manual_seed(config.seed + 1)
        self.generator = torch.Generator().manual_seed(config.seed)
        self._stack: contextlib.ExitStack | None = None

    def __enter__(self) -> RobustnessScorer:
        stack = contextlib.ExitStack()
        if self.device != self.original_device:
            self.model.to(self.device)
            stack.callback(self.model.to, self.original_device)
        stack.enter_context(frozen_eval(self.model))
        if any(name in ATTENTION_METHODS for name in self.methods):
            stack.enter_context(attention_weights_enabled(self.model))
        if self.config.smoothing_beta is not None:
            stack.enter_context(softplus_smoothing(self.model, self.config.smoothing_beta))
        self._stack = stack
        return self

    def __exit__(self, *exc_info: Any) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()

    def score_batch(
        self,
        batch: torch.Tensor | dict[str, Any],
        *,
        targets: torch.Tensor | None = None,
        example_ids: torch.Tensor | Sequence[int] | None = None,
        keep_maps: bool = False,
    ) -> BatchScores:
        """Per-example values of every configured method and measure on ``batch`` (a pixel tensor or a tokenized
        mapping); ``targets`` ``[B]`` default to the predictions; ``example_ids`` (default ``0..B-1``) are the
        examples' indices in the whole input; ``keep_maps`` also returns each method's maps."""
        if self._stack is None:
            raise RuntimeError("use RobustnessScorer as a context manager: `with RobustnessScorer(...) as scorer:`.")
        prepared = prepare_inputs(self.model, move(batch, self.device))
        ids = torch.arange(prepared.batch_size) if example_ids is None else torch.as_tensor(example_ids).long()
        with torch.no_grad():
            labels = forward_logits(self.model, prepared).argmax(dim=1)
        targets = labels if targets is None else targets.to(self.device)
        wanted = [
            m for m in (self.config.measures or MEASURES) if prepared.kind == IMAGE or m not in IMAGE_ONLY_MEASURES
        ]
        per_sample: dict[str, torch.Tensor] = {}
        maps: dict[str, AttackedMaps] = {}
        for name, method in self.methods.items():
            scores, method_maps = self._score_method(method, prepared, targets, labels, wanted)
            per_sample.update({f"{name}/{measure}": values.detach() for measure, values in scores.items()})
            if keep_maps:
                maps[name] = method_maps
        return BatchScores(per_sample, ids, maps)

    def _score_method(
        self,
        method: AttributionMethod,
        prepared: PreparedInputs,
        targets: torch.Tensor,
        labels: torch.Tensor,
        measures: Sequence[str],
    ) -> tuple[dict[str, torch.Tensor], AttackedMaps]:
        """Per-example values of ``measures`` for one method (NaN where an example is excluded), and its maps."""
        model, config, settings = self.model, self.config, self.settings
        clean = method.explain(model, prepared, targets)
        scores: dict[str, torch.Tensor] = {}
        wanted = set(measures)
        nan = torch.full((prepared.batch_size,), torch.nan, device=clean.maps.device)
        attacked_maps, attacked_features = clean.maps, prepared.features
        perturbed = torch.zeros(prepared.batch_size, dtype=torch.bool, device=clean.maps.device)
        if wanted & {*SIMILARITY_MEASURES, *ATTACK_MEASURES}:
            result = get_attack(config.attack)(
                model, method, prepared, targets, clean.maps, labels, settings, self.generator
            )
            attacked_maps, attacked_features, perturbed = result.maps, result.features, result.perturbed
            names = [name for name in SIMILARITY_MEASURES if name in wanted]
            similarity = similarity_scores(clean.maps.abs(), result.maps.abs(), names, config.k, prepared.token_mask)
            for name, value in similarity.items():
                scores[name] = torch.where(result.perturbed, value.to(nan.dtype), nan)
            if "attack_sensitivity" in wanted:
                value = sensitivity_ratio(clean.maps, result.maps.unsqueeze(1)).squeeze(1)
                scores["attack_sensitivity"] = torch.where(result.perturbed, value.to(nan.dtype), nan)
            if "prediction_change_rate" in wanted:
                scores["prediction_change_rate"] = result.label_changed.to(nan.dtype)
        sensitivity_names = tuple(name for name in SENSITIVITY_MEASURES if name in wanted)
        if sensitivity_names:
            radius = ball_radius(prepared, config.epsilon, config.norm)
            offsets = sample_ball(prepared, radius, config.norm, config.num_samples, self.generator)
            maps, logits = perturbed_explanations(model, method, prepared, targets, offsets, config.batch_size)
            x = prepared.features
            scores.update(
                sensitivity_measures(
                    clean.maps,
                    maps,
                    inputs=x,
                    perturbed_inputs=x.unsqueeze(1) + offsets,
                    valid=logits.argmax(dim=2) == labels.unsqueeze(1),
                    measures=sensitivity_names,
                )
            )
        method_maps = AttackedMaps(
            clean.maps.detach(),
            attacked_maps.detach(),
            prepared.features.detach(),
            attacked_features.detach(),
            labels,
            perturbed,
        )
        return scores, method_maps
