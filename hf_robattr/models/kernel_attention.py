"""Attention functions of the RobAttr models: kernel (linear) attention, softmax attention, their masks and weights.

Kernel attention replaces ``softmax(q k^T / sqrt(d)) v`` by ``phi(q) (phi(k)^T v) / (phi(q) . sum_j phi(k_j))`` with a
positive feature map ``phi`` (Katharopoulos et al. 2020; the maps live in :mod:`.feature_maps`). The product is
associated right-to-left, so time and memory are O(N) in the sequence length N. The N x N weights are only built when
they are requested (``output_attentions=True``); then ``A @ V`` is computed from them so that they lie on the autograd
path.

This module imports only ``torch``, ``transformers`` and its siblings: ``save_pretrained`` copies it next to the
modeling files for ``trust_remote_code``. Importing it registers two attention implementations with ``transformers``:

* ``"robattr_kernel"``: :func:`kernel_attention_forward` with the O(N) key-padding mask :func:`key_padding_mask`;
* ``"robattr_softmax"``: :func:`softmax_attention_forward` (SDPA, or explicit softmax when weights are requested)
  with ``transformers``' own SDPA mask.

For attention transfer (training feature maps so that kernel weights match a softmax teacher's), it also offers
:func:`kernel_attention_weights`, :func:`softmax_attention_weights` and :func:`record_attention_inputs`, which records
the queries and keys every attention layer of a model computes with.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn
from transformers import AttentionInterface, AttentionMaskInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import sdpa_mask

from .feature_maps import KernelFeatureMap


KERNEL_ATTENTION = "robattr_kernel"
SOFTMAX_ATTENTION = "robattr_softmax"
DEFAULT_KERNEL_EPS = 1e-6


def accumulation_dtype(tensor: torch.Tensor) -> torch.dtype:
    """The dtype attention sums run in: fp32 for half precisions (sums over N tokens overflow fp16 and lose
    precision in bf16), the tensor's own dtype when it is fp32 or fp64 (a float64 model stays float64 throughout)."""
    return torch.promote_types(tensor.dtype, torch.float32)


def attention_keep_mask(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """Turn an attention mask into a float keep-mask of 0s and 1s that broadcasts against ``[batch, heads, q, kv]``.

    Accepts None, a 2D ``[batch, kv_len]`` padding mask (``transformers``' ``attention_mask``: 1 or True keeps a
    token), or a 4D ``[batch, 1, q_len or 1, kv_len]`` mask, boolean (True keeps) or additive float (0 keeps, the
    dtype's minimum drops).
    """
    if attention_mask is None:
        return None
    if attention_mask.dim() == 2:
        return attention_mask[:, None, None, :].to(torch.bool).float()
    if attention_mask.dim() != 4:
        raise ValueError(
            f"attention_mask must be 2D [batch, kv_len] or 4D [batch, 1, q_len, kv_len], got shape "
            f"{tuple(attention_mask.shape)}."
        )
    if attention_mask.dtype == torch.bool:
        return attention_mask.float()
    if not attention_mask.is_floating_point():
        return attention_mask.to(torch.bool).float()
    return (attention_mask > torch.finfo(attention_mask.dtype).min / 2).float()


def _normalised_weights(
    phi_q: torch.Tensor, phi_k: torch.Tensor, keep: torch.Tensor | None, eps: float
) -> torch.Tensor:
    """``s_ij / (sum_j s_ij + eps)`` with ``s_ij = phi(q_i) . phi(k_j)``, masked keys contributing nothing."""
    scores = phi_q @ phi_k.transpose(-1, -2)
    if keep is not None:
        scores = scores * keep
    return scores / (scores.sum(dim=-1, keepdim=True) + eps)


def kernel_attention_weights(
    feature_map: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    eps: float = DEFAULT_KERNEL_EPS,
) -> torch.Tensor:
    """The explicit ``[batch, heads, q_len, kv_len]`` kernel attention weights (fp32) of ``query`` and ``key``.

    ``feature_map`` is a layer's :class:`~.feature_maps.KernelFeatureMap` (``module.feature_map``); ``query`` and
    ``key`` are ``[batch, heads, tokens, head_dim]``; ``attention_mask`` is any form :func:`attention_keep_mask`
    accepts. Rows sum to 1 over the kept keys (up to ``eps``; ``relu`` rows may sum to less). Differentiable with
    respect to the feature map's parameters and the inputs: the weights that a kernel model returns with
    ``output_attentions=True``, without dropout, are exactly these.
    """
    dtype = accumulation_dtype(query)
    phi_q, phi_k = feature_map(query.to(dtype), key.to(dtype))
    return _normalised_weights(phi_q, phi_k, attention_keep_mask(attention_mask), eps)


def softmax_attention_weights(
    query: torch.Tensor,
    key: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    scaling: float | None = None,
) -> torch.Tensor:
    """The ``[batch, heads, q_len, kv_len]`` softmax attention weights (fp32): ``softmax(q k^T * scaling)``.

    ``scaling`` defaults to ``head_dim ** -0.5``; ``attention_mask`` is None, a 2D padding mask or a 4D boolean
    keep-mask (masked keys get weight 0), or a 4D additive float mask (added to the scores, as in ``transformers``'
    eager attention). These are the teacher's weights for attention transfer.
    """
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    dtype = accumulation_dtype(query)
    scores = (query.to(dtype) @ key.to(dtype).transpose(-1, -2)) * scaling
    if attention_mask is not None:
        if attention_mask.is_floating_point() and attention_mask.dim() == 4:
            scores = scores + attention_mask.to(dtype)
        else:
            keep = attention_keep_mask(attention_mask).to(torch.bool)
            scores = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)
    return scores.softmax(dim=-1)


def _key_dropout(phi_k: torch.Tensor, dropout: float, training: bool) -> torch.Tensor | None:
    """One dropout mask per (batch, head, key), scaled by 1 / (1 - p), or None when dropout is off.

    Dropping entries of the N x N weights would need them materialised; dropping whole keys is its O(N) analogue.
    Both code paths draw this same mask, so they agree under a fixed seed.
    """
    if not training or dropout <= 0.0:
        return None
    ones = torch.ones(phi_k.shape[:-1], dtype=phi_k.dtype, device=phi_k.device)
    return nn.functional.dropout(ones, p=dropout, training=True)


def _wants_weights(module: nn.Module, kwargs: dict) -> bool:
    requested = kwargs.get("output_attentions")
    if requested is None:
        requested = getattr(getattr(module, "config", None), "output_attentions", False)
    return bool(requested)


def kernel_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Non-causal kernel attention with the signature of ``transformers``' ``eager_attention_forward``.

    ``query/key/value`` are ``[batch, heads, tokens, head_dim]``; ``module.feature_map`` is the
    :class:`~.feature_maps.KernelFeatureMap` and ``module.kernel_eps`` the normaliser's epsilon. ``attention_mask``
    is None, a key-padding mask ``[batch, 1, 1, kv_len]`` or a full 4D mask (boolean keep-mask or additive float
    mask); a full mask needs the explicit O(N^2) path. ``scaling`` is unused: feature maps apply their own scale.

    Returns ``(output [batch, tokens, heads, head_dim], weights [batch, heads, tokens, kv_len] or None)``. Weights
    are returned when ``output_attentions`` is requested (as a kwarg or in ``module.config``); they are the
    normalised kernel weights (rows sum to 1 before dropout), in the query's dtype, and the output is computed from
    that very tensor, so that gradients reach it in every precision.
    """
    if (recording := _recording_of(module)) is not None:
        recording.add(module, query, key, value, attention_mask, scaling)
        if recording.softmax_outputs:
            return _softmax_attention(module, query, key, value, attention_mask, scaling, dropout, **kwargs)
    feature_map: KernelFeatureMap = module.feature_map
    eps = getattr(module, "kernel_eps", DEFAULT_KERNEL_EPS)
    # fp32 accumulation (fp64 stays fp64): the feature sums over N tokens overflow fp16 and lose precision in bf16.
    dtype = accumulation_dtype(query)
    phi_q, phi_k = feature_map(query.to(dtype), key.to(dtype))
    values = value.to(dtype)
    keep = attention_keep_mask(attention_mask)
    key_drop = _key_dropout(phi_k, dropout, module.training)

    if _wants_weights(module, kwargs) or (keep is not None and keep.shape[-2] != 1):
        weights = _normalised_weights(phi_q, phi_k, keep, eps)
        if key_drop is not None:
            weights = weights * key_drop[:, :, None, :]
        weights = weights.to(query.dtype)
        output = weights.to(values.dtype) @ values
        return output.transpose(1, 2).contiguous().to(query.dtype), weights

    # A column of ones appended to the values makes one matmul give both phi_k^T v and the normaliser's sum_j phi_k.
    # Padded keys are zeroed in both columns; dropped keys only in the values (the normaliser precedes dropout).
    ones = torch.ones_like(values[..., :1])
    if keep is not None:
        key_keep = keep[:, :, 0, :, None]
        values, ones = values * key_keep, ones * key_keep
    if key_drop is not None:
        values = values * key_drop[..., None]
    context = phi_k.transpose(-1, -2) @ torch.cat([values, ones.expand(*values.shape[:-1], 1)], dim=-1)
    projected = phi_q @ context
    output = projected[..., :-1] / (projected[..., -1:] + eps)
    return output.transpose(1, 2).contiguous().to(query.dtype), None


def softmax_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Softmax attention: PyTorch SDPA, or explicit softmax weights (on the autograd path) when they are requested.

    Same signature and return shapes as :func:`kernel_attention_forward`. ``attention_mask`` is ``transformers``'
    SDPA mask (boolean keep-mask) or a user's additive float mask.
    """
    if (recording := _recording_of(module)) is not None:
        recording.add(module, query, key, value, attention_mask, scaling)
    return _softmax_attention(module, query, key, value, attention_mask, scaling, dropout, **kwargs)


def _softmax_attention(module, query, key, value, attention_mask, scaling, dropout, **kwargs):
    if not _wants_weights(module, kwargs):
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    weights = softmax_attention_weights(query, key, attention_mask, scaling).to(query.dtype)
    weights = nn.functional.dropout(weights, p=dropout, training=module.training)
    output = weights @ value
    return output.transpose(1, 2).contiguous(), weights


def key_padding_mask(
    batch_size: int,
    q_length: int,
    kv_length: int,
    attention_mask: torch.Tensor | None = None,
    **kwargs,
) -> torch.Tensor | None:
    """Attention-mask builder for kernel attention: an O(N) boolean key-padding mask ``[batch, 1, 1, kv_length]``.

    Registered with ``AttentionMaskInterface``; without it a custom attention function gets no padding mask at all.
    Returns None when no ``attention_mask`` is given. It never looks at the mask's values (a mask of all ones is
    returned as is), so a model that uses it can be traced and exported. Only bidirectional (encoder) masks are
    supported.
    """
    if attention_mask is None:
        return None
    return attention_mask[:, -kv_length:].to(torch.bool)[:, None, None, :]


def register_attention_functions() -> None:
    """Register ``"robattr_kernel"`` and ``"robattr_softmax"`` with the attention and mask interfaces (idempotent)."""
    AttentionInterface.register(KERNEL_ATTENTION, kernel_attention_forward)
    AttentionMaskInterface.register(KERNEL_ATTENTION, key_padding_mask)
    AttentionInterface.register(SOFTMAX_ATTENTION, softmax_attention_forward)
    AttentionMaskInterface.register(SOFTMAX_ATTENTION, sdpa_mask)


register_attention_functions()


# --- recording the inputs of every attention layer (attention transfer) -------------------------------------------


@dataclass
class AttentionInputs:
    """What one attention layer computed with during a forward pass recorded by :func:`record_attention_inputs`.

    ``query``, ``key`` and ``value`` are ``[batch, heads, tokens, head_dim]`` (after the layer's projections, with
    their autograd graph); ``attention_mask`` is the mask the layer received (None, a boolean key-padding mask
    ``[batch, 1, 1, kv_len]`` or a 4D mask: pass it on to the weight functions as is); ``scaling`` is softmax
    attention's ``1 / sqrt(head_dim)``. ``module`` is the attention module (``module.feature_map`` and
    ``module.kernel_eps`` in kernel mode) and ``name`` its qualified name in the model.
    """

    name: str
    module: nn.Module
    query: torch.Tensor
    key: torch.Tensor
    value: torch.Tensor
    attention_mask: torch.Tensor | None
    scaling: float | None

    def softmax_weights(self) -> torch.Tensor:
        """:func:`softmax_attention_weights` of this layer's queries and keys (the teacher's weights)."""
        return softmax_attention_weights(self.query, self.key, self.attention_mask, self.scaling)

    def kernel_weights(self, feature_map: nn.Module | None = None, eps: float | None = None) -> torch.Tensor:
        """:func:`kernel_attention_weights` of this layer's queries and keys, with the layer's own feature map and
        epsilon unless others are given."""
        feature_map = feature_map if feature_map is not None else self.module.feature_map
        eps = eps if eps is not None else getattr(self.module, "kernel_eps", DEFAULT_KERNEL_EPS)
        return kernel_attention_weights(feature_map, self.query, self.key, self.attention_mask, eps)


@dataclass
class _Recording:
    names: dict[int, str]
    softmax_outputs: bool
    records: list[AttentionInputs] = field(default_factory=list)

    def add(self, module, query, key, value, attention_mask, scaling) -> None:
        self.records.append(
            AttentionInputs(self.names[id(module)], module, query, key, value, attention_mask, scaling)
        )


_RECORDINGS: list[_Recording] = []


def _recording_of(module: nn.Module) -> _Recording | None:
    for recording in reversed(_RECORDINGS):
        if id(module) in recording.names:
            return recording
    return None


@contextlib.contextmanager
def record_attention_inputs(model: nn.Module, softmax_outputs: bool = False) -> Iterator[list[AttentionInputs]]:
    """Record the queries, keys and mask of every attention call of ``model`` in the ``with`` block.

    Yields a list that fills with one :class:`AttentionInputs` per attention call, in the order of the calls (layer
    0 first; a second forward pass appends). Works for RobAttr models in either mode (their attention runs
    ``"robattr_kernel"`` or ``"robattr_softmax"``).

    With ``softmax_outputs=True``, the kernel layers of a kernel-mode model pass on softmax attention's output
    computed from the same queries, keys and values: the whole forward pass is then the softmax model's (the
    teacher's), and each layer's recorded queries and keys are the ones the teacher computes. Training each layer's
    feature map on ``record.kernel_weights()`` against ``record.softmax_weights()`` is the layer-local attention
    transfer of LoLCATs (Zhang et al. 2024). Detach the queries and keys for a strictly layer-local loss; keep them
    to train the projections too.
    """
    implementation = getattr(getattr(model, "config", None), "_attn_implementation", None)
    if implementation not in (KERNEL_ATTENTION, SOFTMAX_ATTENTION):
        raise ValueError(
            f"record_attention_inputs needs a RobAttr model whose attention is {KERNEL_ATTENTION!r} or "
            f"{SOFTMAX_ATTENTION!r}; got attn_implementation={implementation!r}. For a softmax RobAttr model, call "
            f"model.set_attn_implementation({SOFTMAX_ATTENTION!r}) first."
        )
    recording = _Recording({id(module): name for name, module in model.named_modules()}, bool(softmax_outputs))
    _RECORDINGS.append(recording)
    try:
        yield recording.records
    finally:
        _RECORDINGS.remove(recording)


__all__ = [
    "DEFAULT_KERNEL_EPS",
    "KERNEL_ATTENTION",
    "SOFTMAX_ATTENTION",
    "AttentionInputs",
    "attention_keep_mask",
    "kernel_attention_forward",
    "kernel_attention_weights",
    "key_padding_mask",
    "record_attention_inputs",
    "register_attention_functions",
    "softmax_attention_forward",
    "softmax_attention_weights",
]
