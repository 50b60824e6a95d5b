"""Attention attribution methods: raw attention, attention rollout and gradient-weighted attention.

They read the per-layer attention weights ``[B, heads, N, N]`` that a transformers model returns with
``output_attentions=True``. Softmax models running SDPA or flash kernels return no weights, so those are switched to
eager attention for the call and switched back after; models with their own attention function (e.g. kernel
attention) are used as they are and must return weights that lie on the autograd path.

Maps are the ``[CLS]`` row (first token). Images keep the patch columns only and come back at patch resolution
``[B, H/p, W/p]``: the tokens before the patches (ViT's ``[CLS]``; DeiT's ``[CLS]`` and distillation token) are not
patches, and their number is the token count minus the patch count (``config.patch_size``). Text keeps one score
per token ``[B, T]`` with the ``[CLS]`` position and padding set to 0 (robustness scores then rank the word tokens
only, see :class:`~hf_robattr.attribution.inputs.PreparedInputs`). Models without one global attention row (Swin's
windows, ConvNeXt's convolutions, pooled or hierarchical tokens) get a ``ValueError`` that names the gradient
methods, which work on any classifier.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import nn

from .base import AttributionMethod, Explanation, select_target_logits
from .gradient import GRADIENT_METHODS
from .inputs import IMAGE, TEXT, PreparedInputs, logits_from_output, model_output


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
    """Logits and the tuple of per-layer attention weights (``[B, heads, N, N]`` for a global-attention model)."""
    if prepared.positional:
        raise TypeError(
            "attention methods need a transformers model that returns `attentions` with `output_attentions=True`; "
            f"got a plain {type(model).__name__}."
        )
    with attention_weights_enabled(model):
        output = model_output(model, prepared, features, output_attentions=True)
    attentions = getattr(output, "attentions", None)
    if not attentions or any(weights is None for weights in attentions):
        raise ValueError(
            unsupported_model_message(model, "returns no attention weights with `output_attentions=True`")
        )
    return logits_from_output(output), tuple(attentions)


def unsupported_model_message(model: nn.Module, reason: str) -> str:
    """Why attention methods cannot explain ``model`` (its type and ``reason``), and which methods can."""
    model_type = getattr(getattr(model, "config", None), "model_type", None) or "this model"
    return (
        f"attention methods ({sorted(ATTENTION_METHODS)}) need one global attention row: a [CLS] token attending to "
        f"every token, in every layer; {model_type} ({type(model).__name__}) {reason}. Use a gradient method, which "
        f"works on any classifier: {sorted(GRADIENT_METHODS)}."
    )


def patch_grid(model: nn.Module, prepared: PreparedInputs) -> tuple[int, int] | None:
    """``(rows, columns)`` of an image's patch grid from ``model.config.patch_size`` (``None`` for text, or for a
    model without a patch size)."""
    size = getattr(getattr(model, "config", None), "patch_size", None)
    if prepared.kind != IMAGE or prepared.features.dim() != 4 or size is None:
        return None
    height, width = (size, size) if isinstance(size, int) else tuple(size)[:2]
    return prepared.features.shape[-2] // height, prepared.features.shape[-1] // width


def check_global_attention(
    model: nn.Module, attentions: tuple[torch.Tensor, ...], prepared: PreparedInputs, grid: tuple[int, int] | None
) -> None:
    """Raise ``ValueError`` unless every layer gives ``[B, heads, N, N]`` weights over the same ``N`` tokens: the
    text's tokens, or (images) the patches plus at least one token before them."""
    shapes = [tuple(weights.shape) for weights in attentions]
    tokens = shapes[0][-1]
    same = all(len(s) == 4 and s[0] == prepared.batch_size and s[2] == s[3] == tokens for s in shapes)
    if prepared.kind == TEXT:
        same = same and tokens == prepared.features.shape[1]
    elif grid is not None:
        same = same and tokens > grid[0] * grid[1]
    if not same:
        where = f" for {grid[0] * grid[1]} patches" if grid is not None else ""
        raise ValueError(
            unsupported_model_message(
                model,
                f"returns attention weights of shapes {shapes}{where}, not one [{prepared.batch_size}, heads, N, N] "
                "map over the same tokens in every layer (windowed, pooled or hierarchical attention has no such row)",
            )
        )


def _identity_like(weights: torch.Tensor) -> torch.Tensor:
    return torch.eye(weights.shape[-1], dtype=weights.dtype, device=weights.device).expand_as(weights)


def cls_row_to_map(row: torch.Tensor, prepared: PreparedInputs, grid: tuple[int, int] | None = None) -> torch.Tensor:
    """Turn ``[B, N]`` scores of the ``[CLS]`` row into a patch grid (images) or a per-token map (text).

    Images keep the last ``rows * columns`` entries of ``grid`` (the patches; the tokens before them, such as
    ``[CLS]`` and DeiT's distillation token, are dropped). Without a ``grid`` one ``[CLS]`` token is assumed and the
    grid is taken to have the image's aspect ratio.
    """
    if prepared.kind == IMAGE:
        if grid is not None:
            return row[:, row.shape[1] - grid[0] * grid[1] :].reshape(row.shape[0], *grid)
        patches = row[:, 1:]
        count = patches.shape[1]
        height, width = prepared.features.shape[-2:] if prepared.features.dim() == 4 else (1, 1)
        grid_h = max(1, round(math.sqrt(count * height / width)))
        if count % grid_h or prepared.features.dim() != 4:
            raise ValueError(
                f"cannot lay {count} patch scores out on the image's patch grid; attention maps of images need a "
                "ViT-style model with `config.patch_size`, or one [CLS] token followed by the patches."
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
            grid = patch_grid(model, prepared)
            check_global_attention(model, attentions, prepared, grid)
            gradients = None
            if self.needs_gradient:
                gradients = torch.autograd.grad(
                    select_target_logits(logits, targets).sum(), attentions, create_graph=create_graph
                )
            row = self.scores(attentions, gradients)
        result = Explanation(cls_row_to_map(row, prepared, grid), logits)
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
