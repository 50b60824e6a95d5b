"""Kernel (linear) attention for ViT and BERT: positive feature maps, the attention functions and their masks.

Kernel attention replaces ``softmax(q k^T / sqrt(d)) v`` by ``phi(q) (phi(k)^T v) / (phi(q) . sum_j phi(k_j))`` with a
positive feature map ``phi`` (Katharopoulos et al. 2020). The product is associated right-to-left, so time and memory
are O(N) in the sequence length N. The N x N weights are only built when they are requested
(``output_attentions=True``); then ``A @ V`` is computed from them so that they lie on the autograd path.

This module imports only ``torch`` and ``transformers``: ``save_pretrained`` copies it next to the modeling files for
``trust_remote_code``. Importing it registers two attention implementations with ``transformers``:

* ``"robattr_kernel"``: :func:`kernel_attention_forward` with the O(N) key-padding mask :func:`key_padding_mask`;
* ``"robattr_softmax"``: :func:`softmax_attention_forward` (SDPA, or explicit softmax when weights are requested)
  with ``transformers``' own SDPA mask.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import AttentionInterface, AttentionMaskInterface
from transformers import initialization as init
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import sdpa_mask


KERNEL_ATTENTION = "robattr_kernel"
SOFTMAX_ATTENTION = "robattr_softmax"


class KernelFeatureMap(nn.Module):
    """Base class of the positive feature maps ``phi`` used by kernel attention.

    A feature map is called on the query and key tensors together, ``phi_q, phi_k = feature_map(query, key)``, both
    of shape ``[batch, heads, tokens, head_dim]``, and returns non-negative features ``[batch, heads, tokens,
    num_features]``. Taking both at once lets a map treat them differently (FAVOR+ stabilises queries only) and
    update its state once per attention call (FAVOR+ redraws).
    """

    def __init__(self, num_heads: int, head_dim: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_dim

    @property
    def num_features(self) -> int:
        """Size of the feature vector ``phi(x)``."""
        return self.head_dim

    def feature(self, x: torch.Tensor) -> torch.Tensor:
        """Map one tensor ``[..., head_dim]`` to its features ``[..., num_features]``."""
        raise NotImplementedError

    def forward(self, query: torch.Tensor, key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(phi(query), phi(key))``."""
        return self.feature(query), self.feature(key)

    def initial_state(self) -> dict[str, torch.Tensor]:
        """Initial values of the map's parameters and persistent buffers, by attribute name (empty if none)."""
        return {}


class EluFeatureMap(KernelFeatureMap):
    """``phi(x) = elu(x) + 1`` (Katharopoulos et al. 2020, "Transformers are RNNs")."""

    def feature(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``elu(x) + 1``."""
        return nn.functional.elu(x) + 1.0


class ReluFeatureMap(KernelFeatureMap):
    """``phi(x) = relu(x)``; rows whose features are all zero fall back on the normaliser's epsilon."""

    def feature(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``relu(x)``."""
        return nn.functional.relu(x)


def orthogonal_gaussian_features(
    num_features: int, head_dim: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Draw ``[num_features, head_dim]`` orthogonal random features whose row norms follow a chi(head_dim) law.

    Blocks of ``head_dim`` rows are orthonormalised by QR, then rescaled by the norms of Gaussian vectors, so each
    row is marginally Gaussian but rows within a block are exactly orthogonal (Choromanski et al. 2021).
    """
    # Explicit device: under a meta-device context (``from_pretrained``) the draw must still be real.
    device = generator.device if generator is not None else torch.device("cpu")
    num_blocks = math.ceil(num_features / head_dim)
    gaussian = torch.randn(num_blocks, head_dim, head_dim, generator=generator, device=device)
    q, _ = torch.linalg.qr(gaussian)
    features = q.transpose(-1, -2).reshape(num_blocks * head_dim, head_dim)[:num_features]
    norms = torch.randn(num_features, head_dim, generator=generator, device=device).norm(dim=1, keepdim=True)
    return features * norms


class FavorFeatureMap(KernelFeatureMap):
    """FAVOR+ positive orthogonal random features (Choromanski et al. 2021, "Rethinking Attention with Performers").

    ``phi(x) = exp(W x' - |x'|^2 / 2)`` with ``x' = x * head_dim^-1/4`` gives an unbiased estimate of the softmax
    kernel: ``E[phi(q) . phi(k)] / m = exp(q . k / sqrt(head_dim))``. The ``1 / m`` (and a per-query shift of the
    exponent) cancels in the normalised output; leaving it out keeps the normaliser's epsilon negligible. ``W`` is drawn from
    ``seed`` (a persistent buffer, so a saved model keeps the features it was trained with) and is redrawn every
    ``redraw_interval`` training calls when that is positive.
    """

    def __init__(self, num_heads: int, head_dim: int, num_features: int, seed: int = 0, redraw_interval: int = 0):
        super().__init__(num_heads, head_dim)
        self._num_features = num_features
        self.seed = seed
        self.redraw_interval = redraw_interval
        self._calls = 0
        self._draws = 0
        self.register_buffer("projection", self.initial_state()["projection"], persistent=True)

    @property
    def num_features(self) -> int:
        """Number of random features ``m``."""
        return self._num_features

    def initial_state(self) -> dict[str, torch.Tensor]:
        """The random features drawn from ``seed``."""
        generator = torch.Generator().manual_seed(self.seed)
        return {"projection": orthogonal_gaussian_features(self._num_features, self.head_dim, generator)}

    @torch.no_grad()
    def redraw(self) -> None:
        """Draw fresh random features (deterministic given ``seed`` and the number of earlier redraws)."""
        self._draws += 1
        generator = torch.Generator().manual_seed(self.seed + 1_000_003 * self._draws)
        new = orthogonal_gaussian_features(self._num_features, self.head_dim, generator)
        self.projection.copy_(new.to(self.projection))

    def _log_features(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.head_dim**-0.25
        projection = self.projection.to(device=x.device, dtype=x.dtype)
        return x @ projection.T - 0.5 * (x * x).sum(-1, keepdim=True)

    def forward(self, query: torch.Tensor, key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(phi(query), phi(key))``, redrawing the features first when due."""
        if self.training and self.redraw_interval > 0:
            if self._calls > 0 and self._calls % self.redraw_interval == 0:
                self.redraw()
            self._calls += 1
        log_q = self._log_features(query)
        # A per-query shift cancels in the normalised output. Keys get none: a shared key shift would depend on
        # padded tokens, and the exponent is bounded above by |w|^2 / 2 (about head_dim / 2), safe in fp32.
        log_q = log_q - log_q.amax(dim=-1, keepdim=True).detach()
        return torch.exp(log_q), torch.exp(self._log_features(key))


class HedgehogFeatureMap(KernelFeatureMap):
    """Learnable Hedgehog feature map (Zhang et al. 2024, "The Hedgehog & the Porcupine").

    ``phi(x) = [softmax(x W_h + b_h), softmax(-(x W_h + b_h))]`` with one ``W_h`` (``head_dim x num_features``,
    initialised to the identity) and ``b_h`` (zeros) per head ``h``; the output has ``2 * num_features`` entries.
    These are the only weights that kernel attention adds to a ViT/BERT checkpoint.
    """

    def __init__(self, num_heads: int, head_dim: int, num_features: int):
        super().__init__(num_heads, head_dim)
        self._num_features = num_features
        state = self.initial_state()
        self.weight = nn.Parameter(state["weight"])
        self.bias = nn.Parameter(state["bias"])

    @property
    def num_features(self) -> int:
        """Twice the projection size (positive and negative softmax halves)."""
        return 2 * self._num_features

    def initial_state(self) -> dict[str, torch.Tensor]:
        """Identity projections and zero biases."""
        eye = torch.eye(self.head_dim, self._num_features)
        return {
            "weight": eye.expand(self.num_heads, -1, -1).clone(),
            "bias": torch.zeros(self.num_heads, self._num_features),
        }

    def feature(self, x: torch.Tensor) -> torch.Tensor:
        """Return the two softmax halves, concatenated on the last dimension."""
        projected = torch.einsum("bhnd,hdf->bhnf", x, self.weight.to(x.dtype)) + self.bias.to(x.dtype)[:, None]
        return torch.cat([projected.softmax(dim=-1), (-projected).softmax(dim=-1)], dim=-1)


FEATURE_MAPS: dict[str, type[KernelFeatureMap]] = {
    "elu": EluFeatureMap,
    "relu": ReluFeatureMap,
    "favor": FavorFeatureMap,
    "hedgehog": HedgehogFeatureMap,
}


def build_feature_map(
    name: str,
    num_heads: int,
    head_dim: int,
    num_features: int | None = None,
    seed: int = 0,
    redraw_interval: int = 0,
) -> KernelFeatureMap:
    """Build the feature map called ``name`` (one of :data:`FEATURE_MAPS`).

    ``num_features`` sizes the maps that have a size: FAVOR+ draws that many random features (default
    ``2 * head_dim``), Hedgehog projects to that many (default ``head_dim``). ``seed`` and ``redraw_interval`` only
    concern FAVOR+.
    """
    if name not in FEATURE_MAPS:
        raise ValueError(f"Unknown kernel feature map {name!r}; allowed values: {sorted(FEATURE_MAPS)}.")
    if name == "favor":
        size = num_features if num_features is not None else 2 * head_dim
        return FavorFeatureMap(num_heads, head_dim, size, seed=seed, redraw_interval=redraw_interval)
    if name == "hedgehog":
        return HedgehogFeatureMap(num_heads, head_dim, num_features if num_features is not None else head_dim)
    return FEATURE_MAPS[name](num_heads, head_dim)


DEFAULT_KERNEL_EPS = 1e-6


def _keep_mask(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """Turn a 4D mask (boolean keep-mask or additive float mask) into a float keep-mask of 0s and 1s."""
    if attention_mask is None:
        return None
    if attention_mask.dtype == torch.bool:
        return attention_mask.float()
    return (attention_mask > torch.finfo(attention_mask.dtype).min / 2).float()


def _key_dropout(phi_k: torch.Tensor, dropout: float, training: bool) -> torch.Tensor | None:
    """One dropout mask per (batch, head, key), scaled by 1 / (1 - p), or None when dropout is off.

    Dropping entries of the N x N weights would need them materialised; dropping whole keys is its O(N) analogue.
    Both code paths draw this same mask, so they agree under a fixed seed.
    """
    if not training or dropout <= 0.0:
        return None
    ones = torch.ones(phi_k.shape[:-1], dtype=phi_k.dtype, device=phi_k.device)
    return nn.functional.dropout(ones, p=dropout, training=True)


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
    :class:`KernelFeatureMap` and ``module.kernel_eps`` the normaliser's epsilon. ``attention_mask`` is None, a
    key-padding mask ``[batch, 1, 1, kv_len]`` or a full 4D mask (boolean keep-mask or additive float mask); a full
    mask needs the explicit O(N^2) path. ``scaling`` is unused: feature maps apply their own scale.

    Returns ``(output [batch, tokens, heads, head_dim], weights [batch, heads, tokens, kv_len] or None)``. Weights
    are returned when ``output_attentions`` is requested (as a kwarg or in ``module.config``); they are the
    normalised kernel weights (rows sum to 1 before dropout) and the output is computed from them.
    """
    feature_map: KernelFeatureMap = module.feature_map
    eps = getattr(module, "kernel_eps", DEFAULT_KERNEL_EPS)
    # fp32 accumulation: the feature sums over N tokens overflow fp16 and lose precision in bf16.
    phi_q, phi_k = feature_map(query.float(), key.float())
    values = value.float()
    keep = _keep_mask(attention_mask)
    key_drop = _key_dropout(phi_k, dropout, module.training)

    if _wants_weights(module, kwargs) or (keep is not None and keep.shape[-2] != 1):
        scores = phi_q @ phi_k.transpose(-1, -2)
        if keep is not None:
            scores = scores * keep
        weights = scores / (scores.sum(dim=-1, keepdim=True) + eps)
        if key_drop is not None:
            weights = weights * key_drop[:, :, None, :]
        output = weights @ values
        return output.transpose(1, 2).contiguous().to(query.dtype), weights.to(query.dtype)

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


def _wants_weights(module: nn.Module, kwargs: dict) -> bool:
    requested = kwargs.get("output_attentions")
    if requested is None:
        requested = getattr(getattr(module, "config", None), "output_attentions", False)
    return bool(requested)


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
    if not _wants_weights(module, kwargs):
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    scores = (query @ key.transpose(-1, -2)) * scaling
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + attention_mask
    weights = scores.softmax(dim=-1, dtype=torch.float32).to(query.dtype)
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
    Returns None when there is no padding. Only bidirectional (encoder) masks are supported.
    """
    if attention_mask is None:
        return None
    keep = attention_mask[:, -kv_length:].to(torch.bool)
    if bool(keep.all()):
        return None
    return keep[:, None, None, :]


def register_attention_functions() -> None:
    """Register ``"robattr_kernel"`` and ``"robattr_softmax"`` with the attention and mask interfaces (idempotent)."""
    AttentionInterface.register(KERNEL_ATTENTION, kernel_attention_forward)
    AttentionMaskInterface.register(KERNEL_ATTENTION, key_padding_mask)
    AttentionInterface.register(SOFTMAX_ATTENTION, softmax_attention_forward)
    AttentionMaskInterface.register(SOFTMAX_ATTENTION, sdpa_mask)


register_attention_functions()


class RobAttrAttentionMixin:
    """Mixin for a ``PreTrainedModel`` subclass that switches its attention with ``config.attention_type``.

    * ``_attn_implementation`` follows ``attention_type`` (it is not saved in ``config.json``): ``"kernel"`` always
      uses ``"robattr_kernel"``; ``"softmax"`` uses ``"robattr_softmax"`` unless another implementation (``"eager"``,
      ``"sdpa"``, ...) is requested explicitly.
    * In kernel mode, every attention module of a class in ``_robattr_attention_classes`` gets a ``feature_map``
      submodule and a ``kernel_eps`` attribute before ``post_init``; softmax mode adds nothing, so its weights are
      exactly HF's.
    * Feature-map weights missing from a checkpoint are initialised by ``_init_weights``.
    """

    _robattr_attention_classes: tuple[type[nn.Module], ...] = ()
    # Auto class name -> model class name in the same modeling file, written to ``auto_map`` on save so that every
    # Auto class (not only the saved model's own) can load the folder with ``trust_remote_code=True``.
    _robattr_auto_map: dict[str, str] = {}

    def post_init(self) -> None:
        """Attach the feature maps (kernel mode), then run ``PreTrainedModel.post_init``."""
        if self.config.attention_type == "kernel":
            attention_modules = [m for m in self.modules() if isinstance(m, self._robattr_attention_classes)]
            for layer_idx, module in enumerate(attention_modules):
                if hasattr(module, "feature_map"):
                    continue
                module.feature_map = build_feature_map(
                    self.config.kernel_feature_map,
                    num_heads=self.config.num_attention_heads,
                    head_dim=self.config.hidden_size // self.config.num_attention_heads,
                    num_features=self.config.kernel_num_features,
                    seed=self.config.kernel_seed + layer_idx,
                    redraw_interval=self.config.kernel_redraw_interval,
                )
                module.kernel_eps = self.config.kernel_eps
        super().post_init()

    def save_pretrained(self, save_directory, *args, **kwargs):
        """``PreTrainedModel.save_pretrained``; with code copying on, ``auto_map`` lists all the family's models."""
        if self.is_remote_code():
            module = type(self).__module__.rsplit(".", 1)[-1]
            auto_map = {auto: f"{module}.{name}" for auto, name in self._robattr_auto_map.items()}
            self.config.auto_map = {**auto_map, **(getattr(self.config, "auto_map", None) or {})}
        return super().save_pretrained(save_directory, *args, **kwargs)

    def get_correct_attn_implementation(self, requested_attention: str | None, is_init_check: bool = False) -> str:
        """Derive the attention implementation from ``config.attention_type``."""
        if self.config.attention_type == "kernel":
            return KERNEL_ATTENTION
        if requested_attention in (None, KERNEL_ATTENTION):
            requested_attention = SOFTMAX_ATTENTION
        return super().get_correct_attn_implementation(requested_attention, is_init_check)

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, KernelFeatureMap):
            for name, value in module.initial_state().items():
                target = getattr(module, name)
                init.copy_(target, value.to(device=target.device, dtype=target.dtype))


ATTENTION_TYPES: tuple[str, ...] = ("softmax", "kernel")
# Attention implementations that return weights; transformers' own config check only knows "eager".
WEIGHT_RETURNING_ATTENTIONS: tuple[str, ...] = ("eager", KERNEL_ATTENTION, SOFTMAX_ATTENTION)


def check_output_attentions(attn_implementation: str | None, output_attentions: bool) -> None:
    """Raise ``ValueError`` if ``output_attentions`` is on with an implementation that returns no weights."""
    if output_attentions and attn_implementation not in (None, *WEIGHT_RETURNING_ATTENTIONS):
        raise ValueError(
            f"output_attentions=True needs attn_implementation in {list(WEIGHT_RETURNING_ATTENTIONS)}, "
            f"got {attn_implementation!r}."
        )


def validate_kernel_config(config: object) -> None:
    """Check the kernel-attention fields of a RobAttr config; raise ``ValueError`` naming the field and its allowed values."""
    if config.attention_type not in ATTENTION_TYPES:
        raise ValueError(f"attention_type must be one of {list(ATTENTION_TYPES)}, got {config.attention_type!r}.")
    if config.kernel_feature_map not in FEATURE_MAPS:
        raise ValueError(
            f"kernel_feature_map must be one of {sorted(FEATURE_MAPS)}, got {config.kernel_feature_map!r}."
        )
    if config.kernel_num_features is not None and config.kernel_num_features <= 0:
        raise ValueError(
            f"kernel_num_features must be a positive int or None (the map's default), got {config.kernel_num_features!r}."
        )
    if config.kernel_redraw_interval < 0:
        raise ValueError(
            "kernel_redraw_interval must be >= 0 (0 never redraws the FAVOR+ features), "
            f"got {config.kernel_redraw_interval!r}."
        )
    if not config.kernel_eps > 0:
        raise ValueError(f"kernel_eps must be a float > 0, got {config.kernel_eps!r}.")
