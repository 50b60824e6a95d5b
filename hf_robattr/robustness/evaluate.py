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
from .family import perturbed_explanations
from .perturbations import ball_radius, sample_ball
from .sensitivity import SENSITIVITY_MEASURES, sensitivity_measures, sensitivity_ratio
from .similarity import SIMILARITY_MEASURES


ATTACK_MEASURES = ("attack_sensitivity", "prediction_change_rate")
IMAGE_ONLY_MEASURES = ("center_of_mass_shift",)
MEASURES: tuple[str, ...] = (*SIMILARITY_MEASURES, *ATTACK_MEASURES, *SENSITIVITY_MEASURES)


def _validate(
    methods: Sequence[str],
    attack: str,
    measures: Sequence[str],
    epsilon: float,
    num_samples: int,
    batch_size: int,
) -> None:
    if not isinstance(epsilon, int | float) or not epsilon > 0 or not math.isfinite(epsilon):
        raise ValueError(f"`epsilon` must be a finite number > 0; got {epsilon!r}.")
    if num_samples < 1:
        raise ValueError(f"`num_samples` must be >= 1; got {num_samples}.")
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1; got {batch_size}.")
    unknown = [name for name in measures if name not in MEASURES]
    if unknown:
        raise ValueError(f"unknown `measures` {unknown}; expected names from {list(MEASURES)}.")
    get_attack(attack)
    if not methods:
        raise ValueError("`methods` is empty; name at least one attribution method.")


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
    attack: str,
    settings: AttackSettings,
    measures: Sequence[str],
    num_samples: int,
    batch_size: int,
    generator: torch.Generator,
) -> dict[str, torch.Tensor]:
    """Per-example values of ``measures`` for one batch and one method (NaN where an example is excluded)."""
    clean = method.explain(model, prepared, targets)
    scores: dict[str, torch.Tensor] = {}
    wanted = set(measures)
    if wanted & {*SIMILARITY_MEASURES, *ATTACK_MEASURES}:
        result = get_attack(attack)(model, method, prepared, targets, clean.maps, labels, settings, generator)
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
        offsets = sample_ball(prepared, radius, settings.norm, num_samples, generator)
        maps, logits = perturbed_explanations(model, method, prepared, targets, offsets, batch_size)
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
    *,
    targets: torch.Tensor | Sequence[int] | None = None,
    methods: str | Sequence[str] = ("saliency",),
    attack: str = "topk",
    epsilon: float = 8 / 255,
    norm: str = "linf",
    num_steps: int = 10,
    step_size: float | None = None,
    k: int | float = 0.1,
    restarts: int = 1,
    num_samples: int = 10,
    seed: int = 0,
    batch_size: int = 32,
    device: torch.device | str | None = None,
    return_per_sample: bool = False,
    measures: Sequence[str] | None = None,
    method_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    smoothing_beta: float | None = None,
    input_range: tuple[float, float] | None = None,
    target_region: torch.Tensor | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score the robustness of ``model``'s attributions on ``inputs``.

    For every batch and every attribution method: the clean map is compared with the map after ``attack`` (worst
    case over ``restarts``, label preserved) using the similarity measures, and ``num_samples`` uniform draws from
    the ``epsilon`` ball give the sensitivity family. Similarity measures use the maps' magnitudes ``|a|``.

    Args:
        model: a transformers image/text classifier or a plain module mapping pixel values to logits.
        inputs: pixel values ``[N, C, H, W]``; a tokenized mapping (``input_ids``, ``attention_mask``); a
            ``datasets.Dataset`` with such columns (fixed length); or an iterable of such batches.
        targets: class indices ``[N]`` to explain (default: the model's predictions).
        methods: attribution method names (see ``hf_robattr.ATTRIBUTION_METHODS``).
        attack: ``"random"``, ``"topk"``, ``"mass_center"`` or ``"targeted"``.
        epsilon: ball radius; pixels: absolute; text: relative to each token's embedding norm.
        norm: ``"linf"`` or ``"l2"``.
        num_steps / step_size: PGD steps and step length (units of ``epsilon``; default ``2.5 * epsilon / num_steps``).
        k: top-k size for ``topk_intersection`` and the top-k attack: a count, or a fraction in (0, 1).
        restarts: attack restarts (random starts); the worst label-preserving result is scored.
        num_samples: random draws per example for the sensitivity family.
        seed: seeds every random draw; the same seed gives identical results.
        batch_size: examples per forward pass (perturbed copies included).
        device: where to compute (default: the model's device); the model is moved back afterwards.
        return_per_sample: also return ``"per_sample"``: ``{key: [value per example]}`` (NaN = excluded).
        measures: subset of :data:`MEASURES` (default: all; ``center_of_mass_shift`` only for images).
        method_kwargs: options per method name, e.g. ``{"integrated_gradients": {"n_steps": 32}}``.
        smoothing_beta: explain with ReLUs replaced by ``softplus_beta`` (Dombrowski et al. 2019).
        input_range: valid ``(low, high)`` of pixel values for attacks (default: each image's own min/max).
        target_region: boolean map for the ``targeted`` attack (default: the clean map's k weakest features).
        progress: show a tqdm bar over batches.

    Returns:
        A flat dict: ``"{method}/{measure}"`` (mean over examples, excluded ones left out) and
        ``"{method}/{measure}_std"`` as floats, plus ``"num_samples"`` (examples scored).
        ``prediction_change_rate`` is the fraction of examples for which the attack met a label-changing point;
        similarity measures skip examples where no label-preserving perturbed point was found.
    """
    method_names = [methods] if isinstance(methods, str) else list(methods)
    measure_names = list(MEASURES if measures is None else measures)
    _validate(method_names, attack, measure_names, epsilon, num_samples, batch_size)
    settings = AttackSettings(
        epsilon=float(epsilon),
        norm=norm,
        num_steps=num_steps,
        step_size=step_size,
        k=k,
        restarts=restarts,
        input_range=input_range,
        target_region=target_region,
    )
    options = dict(method_kwargs or {})
    stray = sorted(set(options) - set(method_names))
    if stray:
        raise ValueError(f"`method_kwargs` names methods that are not in `methods` ({method_names}): {stray}.")
    runners: dict[str, AttributionMethod] = {}
    for name in method_names:
        runners[name] = get_method(name, **options.get(name, {}))
        if isinstance(runners[name], SmoothGrad) and runners[name].generator is None:
            runners[name].generator = torch.Generator().manual_seed(seed + 1)
    target_tensor = None if targets is None else torch.as_tensor(targets).long().view(-1)
    original_device = model_device(model)
    device = torch.device(device) if device is not None else original_device
    generator = torch.Generator().manual_seed(seed)
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
        if smoothing_beta is not None:
            stack.enter_context(softplus_smoothing(model, smoothing_beta))
        total = count_batches(inputs, batch_size)
        for batch in tqdm(
            iter_batches(inputs, batch_size), total=total, desc="attribution robustness", disable=not progress
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
                    attack=attack,
                    settings=settings,
                    measures=wanted,
                    num_samples=num_samples,
                    batch_size=batch_size,
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
