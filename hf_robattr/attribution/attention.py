"""Attention attribution methods: raw attention, attention rollout and gradient-weighted attention.

They read the per-layer attention weights ``[B, heads, N, N]`` that a transformers model returns with
``output_attentions=True``. Softmax models running SDPA or flash kernels return no weights, so those are switched to
eager attention for the call and switched back after; models with their own attention function (e.g. kernel
attention) are used as they are and must return weights that lie on the autograd path.

Maps are the ``[CLS]`` row (first token). Images drop the ``[CLS]`` column and come back at patch resolution
``[B, H/p, W/p]``; text keeps one score per token ``[B, T]`` with the ``[CLS]`` position and padding set to 0.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import nn

from .base import AttributionMethod, Explanation, select_target_logits
from .inputs import IMAGE, PreparedInputs, logits_from_output, model_output


# Implementations that compute attention without materialising the weights.
_WEIGHTLESS_IMPLEMENTATIONS = frozenset({"sdpa", "flash_attention_2", "flash_attention_3", "flex_attention"})


@contextlib.contextmanager
def attention_weights_enabled(model: nn.Module) -> Iterator[None]:
    """Switch a model whose attention backend drops the weights to eager attention, and back on exit."""
    config = getattr(model, "config", None)
    implementation = getattr(config, "_attn_implementation", None)
    if implementation not in _WEIGHTLESS_IMPLEMENTATIONS or not hasattr(model, "set_attn_implementation"):
        yield
        return
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(implementation)


def forward_with_attentions(
    model: nn.Module, prepared: PreparedInputs, features: torch.Tensor
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """Logits and the tuple of per-layer attention weights ``[B, heads, N, N]``."""
    if prepared.positional:
        raise TypeError(
            "attention methods need a transformers model that returns `attentions` with `output_attentions=True`; "
            f"got a plain {type(model).__name__}."
        )
    with attention_weights_enabled(model):
        output = model_output(model, prepared, features, output_attentions=True)
    attentions = getattr(output, "attentions", None)
    if not attentions or any(weights is None for weights in attentions):
        raise TypeError(
            f"`model` ({type(model).__name__}) returned no attention weights with `output_attentions=True`; "
            "attention methods need them."
        )
    return logits_from_output(output), tuple(attentions)


def _identity_like(weights: torch.Tensor) -> torch.Tensor:
    return torch.eye(weights.shape[-1], dtype=weights.dtype, device=weights.device).expand_as(weights)


def cls_row_to_map(row: torch.Tensor, prepared: PreparedInputs) -> torch.Tensor:
    """Turn ``[B, N]`` scores of the ``[CLS]`` row into a patch grid (images) or a per-token map (text)."""
    if prepared.kind == IMAGE:
        patches = row[:, 1:]
        count = patches.shape[1]
        height, width = prepared.features.shape[-2:] if prepared.features.dim() == 4 else (1, 1)
        grid_h = max(1, round(math.sqrt(count * height / width)))
        if count % grid_h or prepared.features.dim() != 4:
            raise ValueError(
                f"cannot lay {count} patch scores out on the image's patch grid; attention maps of images need a "
                "ViT-style model with one [CLS] token followed by the patches."
            )
        return patches.reshape(row.shape[0], grid_h, count // grid_h)
    cls_off = torch.ones_like(row)
    cls_off[:, 0] = 0
    return row * cls_off * prepared.token_mask


class AttentionMethod(AttributionMethod):
    """Base class of the attention methods: subclasses turn the per-layer weights into a ``[CLS]``-row score."""

    needs_gradient = False

    def scores(self, attentions: tuple[torch.Tensor, ...], gradients: tuple[torch.Tensor, ...] | None) -> torch.Tensor:
        """``[B, N]`` scores of the ``[CLS]`` row."""
        raise NotImplementedError

    def explain(
        self, model: nn.Module, prepared: PreparedInputs, targets: torch.Tensor | None, *, create_graph: bool = False
    ) -> Explanation:
        """See :class:`AttributionMethod`."""
        features = prepared.features
        if self.needs_gradient and not features.requires_grad:
            # Without a leaf that needs grad, frozen models build no graph through the attention weights.
            features = features.detach().requires_grad_(True)
        with torch.enable_grad() if (self.needs_gradient or create_graph) else torch.no_grad():
            logits, attentions = forward_with_attentions(model, prepared, features)
            gradients = None
            if self.needs_gradient:
                gradients = torch.autograd.grad(
                    select_target_logits(logits, targets).sum(), attentions, create_graph=create_graph
                )
            row = self.scores(attentions, gradients)
        result = Explanation(cls_row_to_map(row, prepared), logits)
        return result if create_graph else result.detached()


class RawAttention(AttentionMethod):
    """Last layer's attention from ``[CLS]`` to every token, averaged over heads."""

    name = "raw_attention"

    def scores(self, attentions: tuple[torch.Tensor, ...], gradients: tuple[torch.Tensor, ...] | None) -> torch.Tensor:
        """See :class:`AttentionMethod`."""
        return attentions[-1].mean(dim=1)[:, 0]


class AttentionRollout(AttentionMethod):
    """Attention rollout (Abnar & Zuidema 2020): the product over layers of ``0.5 * mean_h(A) + 0.5 * I``,
    rows renormalised, read at the ``[CLS]`` row."""

    name = "rollout"

    def scores(self, attentions: tuple[torch.Tensor, ...], gradients: tuple[torch.Tensor, ...] | None) -> torch.Tensor:
        """See :class:`AttentionMethod`."""
        rollout = None
        for weights in attentions:
            mixed = 0.5 * weights.mean(dim=1) + 0.5 * _identity_like(weights[:, 0])
            mixed = mixed / mixed.sum(dim=-1, keepdim=True)
            rollout = mixed if rollout is None else mixed @ rollout
        return rollout[:, 0]


class GradAttention(AttentionMethod):
    """Generic gradient-weighted attention relevance (Chefer, Gur & Wolf, ICCV 2021, self-attention rule).

    ``R = I``; for every layer ``R <- R + mean_h[(dy/dA * A)^+] @ R``; the map is the ``[CLS]`` row of ``R`` without
    the identity (the ``[CLS]`` column is dropped for images and zeroed for text).
    """

    name = "grad_attention"
    needs_gradient = True

    def scores(self, attentions: tuple[torch.Tensor, ...], gradients: tuple[torch.Tensor, ...] | None) -> torch.Tensor:
        """See :class:`AttentionMethod`."""
        identity = _identity_like(attentions[0][:, 0])
        relevance = identity
        for weights, grad in zip(attentions, gradients):
            cam = (grad * weights).clamp(min=0).mean(dim=1)
            relevance = relevance + cam @ relevance
        return (relevance - identity)[:, 0]


ATTENTION_METHODS: dict[str, type[AttentionMethod]] = {
    cls.name: cls for cls in (RawAttention, AttentionRollout, GradAttention)
}
