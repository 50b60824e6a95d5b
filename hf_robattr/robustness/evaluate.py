"""The public entry point: score how robust a model's attributions are, as plain numbers."""

from __future__ import annotations

import contextlib
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

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
)
from hf_robattr.attribution.smoothing import softplus_smoothing

from .attacks import AttackSettings, get_attack
from .batching import count_batches, iter_batches, move
from .config import RobustnessConfig
from .family import perturbed_explanations
from .measures import ATTACK_MEASURES, IMAGE_ONLY_MEASURES, MEASURES
from .perturbations import ball_radius, sample_ball
from .sensitivity import SENSITIVITY_MEASURES, sensitivity_measures, sensitivity_ratio
from .similarity import SIMILARITY_MEASURES


def _targets_for(targets: torch.Tensor | None, offset: int, size: int, device: torch.device) -> torch.Tensor | None:
    if targets is None:
        return None
    part = targets[offset : offset + size]
    if part.shape[0] != size:
        raise ValueError(f"`targets` has {targets.shape[0]} entries, fewer than the examples in `inputs`.")
    return part.to(device)


def similarity_scores(
    clean: torch.Tensor,
    perturbed: torch.Tensor,
    names: Sequence[str],
    k: int | float,
    token_mask: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Similarity measures ``{name: [B]}`` between maps; for text only real tokens count (padding left out).

    Examples with the same number of real tokens are scored together, so padding never enters a ranking.
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
        # An int k longer than a short text is cut to its length.
        group_kwargs = {"topk_intersection": {"k": min(k, length) if isinstance(k, int) else k}}
        for name in names:
            value = SIMILARITY_MEASURES[name](group_clean, group_perturbed, **group_kwargs.get(name, {}))
            scores[name][rows] = value.to(scores[name].dtype)
    return scores


def _score_batch(
    model: nn.Module,
    method: AttributionMethod,
    prepared: PreparedInputs,
    targets: torch.Tensor,
    labels: torch.Tensor,
    *,
    config: RobustnessConfig,
    settings: AttackSettings,
    measures: Sequence[str],
    generator: torch.Generator,
) -> dict[str, torch.Tensor]:
    """Per-example values of ``measures`` for one batch and one method (NaN where an example is excluded)."""
    clean = method.explain(model, prepared, targets)
    scores: dict[str, torch.Tensor] = {}
    wanted = set(measures)
    if wanted & {*SIMILARITY_MEASURES, *ATTACK_MEASURES}:
        result = get_attack(config.attack)(model, method, prepared, targets, clean.maps, labels, settings, generator)
        nan = torch.full((prepared.batch_size,), torch.nan, device=clean.maps.device)
        names = [name for name in SIMILARITY_MEASURES if name in wanted]
        similarity = similarity_scores(clean.maps.abs(), result.maps.abs(), names, settings.k, prepared.token_mask)
        for name, value in similarity.items():
            scores[name] = torch.where(result.perturbed, value.to(nan.dtype), nan)
        if "attack_sensitivity" in wanted:
            value = sensitivity_ratio(clean.maps, result.maps.unsqueeze(1)).squeeze(1)
            scores["attack_sensitivity"] = torch.where(result.perturbed, value.to(nan.dtype), nan)
        if "prediction_change_rate" in wanted:
            scores["prediction_change_rate"] = result.label_changed.to(nan.dtype)
    sensitivity_names = tuple(name for name in SENSITIVITY_MEASURES if name in wanted)
    if sensitivity_names:
        radius = ball_radius(prepared, settings.epsilon, settings.norm)
        offsets = sample_ball(prepared, radius, settings.norm, config.num_samples, generator)
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
    return scores


def _summarise(per_sample: Mapping[str, list[torch.Tensor]], num_examples: int, keep: bool) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    samples: dict[str, list[float]] = {}
    for key, parts in per_sample.items():
        values = torch.cat(parts).double().cpu()
        finite = values[~torch.isnan(values)]
        summary[key] = finite.mean().item() if finite.numel() else math.nan
        summary[f"{key}_std"] = finite.std(unbiased=False).item() if finite.numel() else math.nan
        samples[key] = values.tolist()
    summary["num_samples"] = float(num_examples)
    if keep:
        summary["per_sample"] = samples
    return summary


def evaluate_attribution_robustness(
    model: nn.Module,
    inputs: Any,
    config: RobustnessConfig | Mapping[str, Any] | None = None,
    *,
    targets: torch.Tensor | Sequence[int] | None = None,
    target_region: torch.Tensor | None = None,
    device: torch.device | str | None = None,
    return_per_sample: bool = False,
    progress: bool = True,
    **overrides: Any,
) -> dict[str, Any]:
    """Score the robustness of ``model``'s attributions on ``inputs``.

    For every batch and every attribution method: the clean map is compared with the map after ``attack`` (worst
    case over ``restarts``, label preserved) using the similarity measures, and ``num_samples`` uniform draws from
    the ``epsilon`` ball give the sensitivity family. Similarity measures use the maps' magnitudes ``|a|``.

    Args:
        model: a transformers image/text classifier or a plain module mapping pixel values to logits.
        inputs: pixel values ``[N, C, H, W]``; a tokenized mapping (``input_ids``, ``attention_mask``); a
            ``datasets.Dataset`` with such columns (fixed length); or an iterable of such batches.
        config: the scoring settings (:class:`RobustnessConfig`, or a dict of its fields; default: the defaults).
        targets: class indices ``[N]`` to explain (default: the model's predictions).
        target_region: boolean map for the ``targeted`` attack (default: the clean map's k weakest features).
        device: where to compute (default: the model's device); the model is moved back afterwards.
        return_per_sample: also return ``"per_sample"``: ``{key: [value per example]}`` (NaN = excluded).
        progress: show a tqdm bar over batches.
        **overrides: settings of :class:`RobustnessConfig` that replace those of ``config`` (``methods``,
            ``attack``, ``epsilon``, ``norm``, ``num_steps``, ``step_size``, ``restarts``, ``k``, ``num_samples``,
            ``batch_size``, ``input_range``, ``method_kwargs``, ``measures``, ``smoothing_beta``, ``seed``).

    Returns:
        A flat dict: ``"{method}/{measure}"`` (mean over examples, excluded ones left out) and
        ``"{method}/{measure}_std"`` as floats, plus ``"num_samples"`` (examples scored).
        ``prediction_change_rate`` is the fraction of examples for which the attack met a label-changing point;
        similarity measures skip examples where no label-preserving perturbed point was found.
    """
    config = RobustnessConfig.from_options(config, **overrides)
    method_names = list(config.methods)
    measure_names = list(MEASURES if config.measures is None else config.measures)
    settings = AttackSettings(
        epsilon=config.epsilon,
        norm=config.norm,
        num_steps=config.num_steps,
        step_size=config.step_size,
        k=config.k,
        restarts=config.restarts,
        input_range=config.input_range,
        target_region=target_region,
    )
    runners: dict[str, AttributionMethod] = {}
    for name in method_names:
        runners[name] = get_method(name, **config.method_kwargs.get(name, {}))
        if isinstance(runners[name], SmoothGrad) and runners[name].generator is None:
            runners[name].generator = torch.Generator().manual_seed(config.seed + 1)
    target_tensor = None if targets is None else torch.as_tensor(targets).long().view(-1)
    original_device = model_device(model)
    device = torch.device(device) if device is not None else original_device
    generator = torch.Generator().manual_seed(config.seed)
    per_sample: dict[str, list[torch.Tensor]] = defaultdict(list)
    seen = 0
    needs_weights = any(name in ATTENTION_METHODS for name in method_names)
    with contextlib.ExitStack() as stack:
        if device != original_device:
            model.to(device)
            stack.callback(model.to, original_device)
        stack.enter_context(frozen_eval(model))
        if needs_weights:
            stack.enter_context(attention_weights_enabled(model))
        if config.smoothing_beta is not None:
            stack.enter_context(softplus_smoothing(model, config.smoothing_beta))
        total = count_batches(inputs, config.batch_size)
        for batch in tqdm(
            iter_batches(inputs, config.batch_size), total=total, desc="attribution robustness", disable=not progress
        ):
            prepared = prepare_inputs(model, move(batch, device))
            with torch.no_grad():
                labels = forward_logits(model, prepared).argmax(dim=1)
            batch_targets = _targets_for(target_tensor, seen, prepared.batch_size, device)
            batch_targets = labels if batch_targets is None else batch_targets
            wanted = [m for m in measure_names if prepared.kind == IMAGE or m not in IMAGE_ONLY_MEASURES]
            for name, runner in runners.items():
                scores = _score_batch(
                    model,
                    runner,
                    prepared,
                    batch_targets,
                    labels,
                    config=config,
                    settings=settings,
                    measures=wanted,
                    generator=generator,
                )
                for measure, values in scores.items():
                    per_sample[f"{name}/{measure}"].append(values.detach())
            seen += prepared.batch_size
    if seen == 0:
        raise ValueError("`inputs` holds no examples.")
    if target_tensor is not None and target_tensor.shape[0] != seen:
        raise ValueError(f"`targets` has {target_tensor.shape[0]} entries but `inputs` has {seen} examples.")
    return _summarise(per_sample, seen, return_per_sample)
