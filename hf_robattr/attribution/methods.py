"""Every attribution method by name (one registry, one error path) and the one call shape: :func:`attribute`."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .argument_checks import check_targets
from .attention import ATTENTION_METHODS
from .base import AttributionMethod, Explanation
from .gradient import GRADIENT_METHODS
from .inputs import PreparedInputs, prepare_inputs
from .smoothing import softplus_smoothing


ATTRIBUTION_METHODS: dict[str, type[AttributionMethod]] = {**GRADIENT_METHODS, **ATTENTION_METHODS}


def get_method(name: str) -> type[AttributionMethod]:
    """The attribution method class registered as ``name`` (``ValueError`` listing the names if there is none)."""
    if not isinstance(name, str) or name not in ATTRIBUTION_METHODS:
        raise ValueError(f"unknown attribution `method` {name!r}; expected one of {sorted(ATTRIBUTION_METHODS)}.")
    return ATTRIBUTION_METHODS[name]


def make_method(name: str, **options: Any) -> AttributionMethod:
    """An instance of the method ``name`` with its ``options``; unknown option names raise ``TypeError`` listing the
    accepted ones, bad values the method's own error."""
    cls = get_method(name)
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "kwargs")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(f"attribution method {name!r} got unexpected options {unknown}; it accepts {accepted}.")
    return cls(**options)


def resolve_targets(
    targets: torch.Tensor | int | list[int] | None, logits: torch.Tensor | None, batch_size: int, device: torch.device
) -> torch.Tensor:
    """Class indices ``[B]``: ``targets`` if given (an int is broadcast), else the argmax of ``logits``."""
    if targets is None:
        return logits.argmax(dim=1)
    targets = check_targets(targets).to(device).view(-1)
    if targets.numel() == 1:
        targets = targets.expand(batch_size)
    if targets.shape[0] != batch_size:
        raise ValueError(f"`targets` has {targets.shape[0]} entries but `inputs` has {batch_size} examples.")
    if logits is not None and ((targets < 0) | (targets >= logits.shape[1])).any():
        raise ValueError(f"`targets` must be class indices in [0, {logits.shape[1]}); got {targets.tolist()}.")
    return targets


def explain(
    model: nn.Module,
    inputs: torch.Tensor | Mapping[str, Any] | PreparedInputs,
    *,
    method: str | AttributionMethod = "saliency",
    targets: torch.Tensor | int | list[int] | None = None,
    create_graph: bool = False,
    smoothing_beta: float | None = None,
    **method_kwargs: Any,
) -> Explanation:
    """Like :func:`attribute`, but returns an :class:`Explanation` with the maps and the model's logits."""
    prepared = inputs if isinstance(inputs, PreparedInputs) else prepare_inputs(model, inputs)
    runner = method if isinstance(method, AttributionMethod) else make_method(method, **method_kwargs)
    smoothing = softplus_smoothing(model, smoothing_beta) if smoothing_beta is not None else contextlib.nullcontext()
    with smoothing:
        # No targets: each method explains the predicted class from its own forward pass (no extra pass here).
        target_ids = (
            None if targets is None else resolve_targets(targets, None, prepared.batch_size, prepared.features.device)
        )
        return runner.explain(model, prepared, target_ids, create_graph=create_graph)


def attribute(
    model: nn.Module,
    inputs: torch.Tensor | Mapping[str, Any] | PreparedInputs,
    *,
    method: str | AttributionMethod = "saliency",
    targets: torch.Tensor | int | list[int] | None = None,
    create_graph: bool = False,
    smoothing_beta: float | None = None,
    **method_kwargs: Any,
) -> torch.Tensor:
    """Attribution maps of ``model`` on ``inputs``, one per example.

    Args:
        model: a transformers image or text classifier, or a plain module mapping pixel values to logits.
        inputs: pixel values ``[B, C, H, W]``, a tokenized batch (``input_ids``, ``attention_mask``, ...), or
            :class:`PreparedInputs`.
        method: a name from :data:`ATTRIBUTION_METHODS` or an :class:`AttributionMethod` instance.
        targets: class indices (default: the model's predictions).
        create_graph: keep the maps differentiable with respect to the input (for attacks).
        smoothing_beta: explain with every ReLU replaced by ``softplus_beta`` (Dombrowski et al. 2019).
        **method_kwargs: the method's options (e.g. ``n_steps`` for integrated gradients).

    Returns:
        Images: ``[B, H, W]`` (summed over channels; attention methods at patch resolution). Text: ``[B, T]``, summed
        over the embedding dimension, padding set to 0. The model's train/eval mode is left as it is.
    """
    return explain(
        model,
        inputs,
        method=method,
        targets=targets,
        create_graph=create_graph,
        smoothing_beta=smoothing_beta,
        **method_kwargs,
    ).maps
