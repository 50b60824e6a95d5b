"""The card's attribution picture: maps of a few samples on the clean input and under the scored attack.

It reuses the scoring core's pieces (input preparation, methods, attacks), so the picture shows exactly what
``evaluate_attribution_robustness`` scored.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..attribution.attention import ATTENTION_METHODS, attention_weights_enabled
from ..attribution.core import get_method
from ..attribution.inputs import IMAGE, forward_logits, frozen_eval, prepare_inputs, twice_differentiable_attention
from ..metrics.compute import unwrap_model
from ..robustness.attacks import AttackSettings, get_attack
from .pictures import plot_attribution_maps


@dataclass(frozen=True)
class AttackedMaps:
    """Clean and attacked attribution maps of a few samples, with the clean and attacked features."""

    clean_maps: torch.Tensor
    attacked_maps: torch.Tensor
    features: torch.Tensor
    attacked_features: torch.Tensor
    is_image: bool


def _head(inputs: Any, count: int) -> Any:
    if isinstance(inputs, torch.Tensor):
        return inputs[:count]
    if isinstance(inputs, Mapping):
        return {key: value[:count] if isinstance(value, torch.Tensor) else value for key, value in inputs.items()}
    raise TypeError(
        f"`inputs` for the attribution picture must be a pixel-values tensor or a tokenized batch, got "
        f"{type(inputs).__name__}."
    )


def attacked_attributions(
    model: torch.nn.Module,
    inputs: Any,
    *,
    method: str = "saliency",
    attack: str = "topk",
    epsilon: float = 8 / 255,
    norm: str = "linf",
    num_steps: int = 10,
    k: int | float = 0.1,
    seed: int = 0,
    method_kwargs: Mapping[str, Any] | None = None,
) -> AttackedMaps:
    """Attribution maps of ``inputs`` before and after ``attack`` (the core's attack, label preserved)."""
    model = unwrap_model(model)
    runner = get_method(method, **dict(method_kwargs or {}))
    settings = AttackSettings(epsilon=float(epsilon), norm=norm, num_steps=num_steps, k=k)
    with contextlib.ExitStack() as stack:
        stack.enter_context(frozen_eval(model))
        stack.enter_context(twice_differentiable_attention())
        if method in ATTENTION_METHODS:
            stack.enter_context(attention_weights_enabled(model))
        prepared = prepare_inputs(model, inputs)
        with torch.no_grad():
            labels = forward_logits(model, prepared).argmax(dim=1)
        clean = runner.explain(model, prepared, labels)
        generator = torch.Generator().manual_seed(seed)
        result = get_attack(attack)(model, runner, prepared, labels, clean.maps, labels, settings, generator)
    return AttackedMaps(
        clean.maps.detach(),
        result.maps.detach(),
        prepared.features.detach(),
        result.features.detach(),
        prepared.kind == IMAGE,
    )


def draw_attribution_picture(
    model: torch.nn.Module,
    inputs: Any,
    path: str | Path,
    robustness_config: Mapping[str, Any] | None = None,
    *,
    num_samples: int = 4,
    tokenizer: Any = None,
) -> Path:
    """Write the card's PNG for the first ``num_samples`` of ``inputs``, attacked as in ``robustness_config``.

    ``robustness_config`` is the ``results.json`` section (``methods``, ``attack``, ``epsilon``, ``norm``,
    ``num_steps``, ``k``); the first method is drawn. A random attack is drawn as given.
    """
    config = dict(robustness_config or {})
    methods = config.get("methods") or ["saliency"]
    method = methods if isinstance(methods, str) else methods[0]
    options = {
        key: config[key] for key in ("attack", "epsilon", "norm", "num_steps", "k") if config.get(key) is not None
    }
    maps = attacked_attributions(model, _head(inputs, num_samples), method=method, **options)
    attack = options.get("attack", "topk")
    title = f"{method}: clean vs. {attack} attack" + (
        f" (epsilon={options['epsilon']:.3g})" if "epsilon" in options else ""
    )
    if maps.is_image:
        return plot_attribution_maps(
            maps.clean_maps,
            maps.attacked_maps,
            path,
            images=maps.features,
            attacked_images=maps.attacked_features,
            title=title,
        )
    clean, attacked, tokens = maps.clean_maps, maps.attacked_maps, None
    if tokenizer is not None and isinstance(inputs, Mapping) and "input_ids" in inputs:
        clean, attacked, tokens = _without_special_tokens(
            clean, attacked, _head(inputs, num_samples)["input_ids"], tokenizer
        )
        title += " (special tokens hidden)"
    return plot_attribution_maps(clean, attacked, path, tokens=tokens, title=title)


def _without_special_tokens(
    clean: torch.Tensor, attacked: torch.Tensor, input_ids: torch.Tensor, tokenizer: Any
) -> tuple[torch.Tensor, torch.Tensor, list[list[str]]]:
    """Drop [CLS]/[SEP]/[PAD]-like positions (they dwarf the words in a bar chart); rows are NaN-padded."""
    special = set(getattr(tokenizer, "all_special_ids", []))
    rows = []
    for ids in input_ids.tolist():
        keep = [position for position, token_id in enumerate(ids) if token_id not in special] or list(range(len(ids)))
        rows.append((keep, tokenizer.convert_ids_to_tokens([ids[p] for p in keep])))
    width = max(len(keep) for keep, _ in rows)
    new_clean = torch.full((len(rows), width), float("nan"))
    new_attacked = torch.full((len(rows), width), float("nan"))
    for row, (keep, _) in enumerate(rows):
        new_clean[row, : len(keep)] = clean[row, keep].float().cpu()
        new_attacked[row, : len(keep)] = attacked[row, keep].float().cpu()
    return new_clean, new_attacked, [tokens for _, tokens in rows]
