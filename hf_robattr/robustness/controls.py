"""Planted robustness: a model made more robust than a given one *by construction*, for positive controls.

A robustness measure is only worth reading if it can tell a more robust model from a less robust one. These
constructions take a classifier and return one whose attributions provably move less under any perturbation, so a
measure that does not rank the pair the right way is broken (or saturated) on that data:

- :class:`AnchoredClassifier` (gradient methods): logits ``(1 - mix) f(x) + mix <W, x>`` with a fixed random ``W``
  (one pattern per class over the input features). Its input gradient is ``(1 - mix)`` times the model's plus a map
  that does not depend on ``x``: perturbed maps move ``(1 - mix)`` times as much (local Lipschitz, sensitivities,
  centre-of-mass shift fall) around a fixed pattern that dominates their direction and ranking (rank and cosine
  similarities rise).
- :func:`pin_attention` (attention methods): every attention row becomes ``(1 - mix) softmax(q k^T) + mix P`` with a
  fixed random row pattern ``P`` (renormalised over the kept keys): raw attention, rollout and gradient x attention
  are pulled toward a map the input cannot move.

``mix = 0`` gives back the model's own numbers, the negative control. ``W`` is scaled so that the anchor's gradient
map has the norm of the model's own on ``reference_inputs`` (the pattern then matters without swamping the model).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import AttentionInterface, AttentionMaskInterface
from transformers.masking_utils import eager_mask
from transformers.modeling_outputs import SequenceClassifierOutput

from hf_robattr.attribution.inputs import IMAGE, forward_logits, prepare_inputs


PINNED_ATTENTION = "robattr_pinned"


def _check_mix(mix: float) -> float:
    if isinstance(mix, bool) or not isinstance(mix, int | float) or not 0 <= mix < 1:
        raise ValueError(f"`mix` must be a number in [0, 1) (the weight of the fixed part); got {mix!r}.")
    return float(mix)


class AnchoredClassifier(nn.Module):
    """``(1 - mix) * model(x) + mix * <W, x>``: a classifier whose gradient maps are more robust than ``model``'s by
    construction (see the module docstring).

    Args:
        model: a transformers image or text classifier (its ``config``, attention outputs and input embeddings are
            passed through).
        reference_inputs: a batch of the inputs it will explain (pixel values or a tokenized mapping), used once to
            scale ``W`` to the norm of the model's own gradient maps.
        mix: the weight of the fixed part, in [0, 1).
        seed: seeds ``W``.
    """

    def __init__(self, model: nn.Module, reference_inputs: Any, *, mix: float = 0.5, seed: int = 0) -> None:
        super().__init__()
        self.model = model
        self.config = model.config
        self.mix = _check_mix(mix)
        prepared = prepare_inputs(model, reference_inputs)
        self.kind = prepared.kind
        generator = torch.Generator().manual_seed(seed)
        shape = prepared.features.shape[1:]
        if prepared.kind != IMAGE:  # one pattern per position, so that it ranks the tokens
            shape = (getattr(model.config, "max_position_embeddings", shape[0]), shape[-1])
        labels = model.config.num_labels
        pattern = torch.randn((labels, *shape), generator=generator, dtype=torch.float64)
        features = prepared.features.detach().requires_grad_(True)
        with torch.enable_grad():
            logits = forward_logits(model, prepared, features)
            (grad,) = torch.autograd.grad(logits.max(dim=1).values.sum(), features)
        own = grad.flatten(1).norm(dim=1).mean().item()
        used = pattern[0] if prepared.kind == IMAGE else pattern[0, : features.shape[1]]
        scale = own / used.norm().item()
        self.register_buffer("pattern", (pattern * scale).to(prepared.features.dtype), persistent=False)

    def get_input_embeddings(self) -> nn.Module:
        """The wrapped model's input embeddings."""
        return self.model.get_input_embeddings()

    def set_attn_implementation(self, implementation: Any) -> None:
        """Passed to the wrapped model."""
        self.model.set_attn_implementation(implementation)

    def _anchor(self, features: torch.Tensor) -> torch.Tensor:
        if self.kind == IMAGE:
            return features.flatten(1) @ self.pattern.flatten(1).T.to(features.dtype)
        tokens = features.shape[1]
        return torch.einsum("btd,ltd->bl", features, self.pattern[:, :tokens].to(features.dtype))

    def forward(self, **inputs: Any) -> SequenceClassifierOutput:
        """The mixed logits (``attentions`` passed through from the model)."""
        if "input_ids" in inputs and inputs.get("inputs_embeds") is None:
            inputs["inputs_embeds"] = self.get_input_embeddings()(inputs.pop("input_ids"))
        output = self.model(**inputs)
        features = inputs["pixel_values"] if self.kind == IMAGE else inputs["inputs_embeds"]
        logits = (1 - self.mix) * output.logits + self.mix * self._anchor(features).to(output.logits.dtype)
        return SequenceClassifierOutput(logits=logits, attentions=getattr(output, "attentions", None))


def _pattern(length: int, seed: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed * 100_003 + length)
    return torch.rand((length, length), generator=generator, dtype=torch.float64).to(device=device, dtype=dtype)


def pinned_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eager softmax attention with every row mixed with a fixed pattern (``module._robattr_pinned``: ``(mix,
    seed)``); the transformers attention-function signature, weights always returned (on the autograd path)."""
    mix, seed = getattr(module, "_robattr_pinned", (0.0, 0))
    scaling = query.size(-1) ** -0.5 if scaling is None else scaling
    scores = (query @ key.transpose(-1, -2)) * scaling
    keep = torch.ones_like(scores[:1, :1])
    if attention_mask is not None:
        scores = scores + attention_mask
        keep = (attention_mask > torch.finfo(attention_mask.dtype).min / 2).to(scores.dtype)
    weights = scores.softmax(dim=-1)
    pattern = _pattern(key.shape[-2], seed, query.device, query.dtype)[-query.shape[-2] :] * keep
    pattern = pattern / pattern.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    weights = (1 - mix) * weights + mix * pattern
    weights = nn.functional.dropout(weights, p=dropout, training=module.training)
    return (weights @ value).transpose(1, 2).contiguous(), weights


AttentionInterface.register(PINNED_ATTENTION, pinned_attention_forward)
AttentionMaskInterface.register(PINNED_ATTENTION, eager_mask)


def pin_attention(model: nn.Module, *, mix: float = 0.5, seed: int = 0) -> nn.Module:
    """Switch ``model`` (a transformers model using the attention interface: ViT, BERT, ...) to attention rows
    ``(1 - mix) softmax + mix P`` (see the module docstring), in place; returns it. ``mix=0`` keeps its numbers."""
    mix = _check_mix(mix)
    if not hasattr(model, "set_attn_implementation"):
        raise TypeError(
            f"`model` must be a transformers model with set_attn_implementation; got {type(model).__name__}."
        )
    for module in model.modules():
        module._robattr_pinned = (mix, seed)
    model.set_attn_implementation(PINNED_ATTENTION)
    return model


__all__ = ["PINNED_ATTENTION", "AnchoredClassifier", "pin_attention", "pinned_attention_forward"]
