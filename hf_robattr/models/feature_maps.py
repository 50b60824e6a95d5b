"""Positive feature maps ``phi`` of kernel attention, and the registry that builds them by name.

Kernel attention approximates ``exp(q . k / sqrt(d))`` by ``phi(q) . phi(k)``. A feature map here is an ``nn.Module``
called on the queries and keys of one attention layer together, ``phi_q, phi_k = feature_map(query, key)``, both
``[batch, heads, tokens, head_dim]``, and returning non-negative features ``[batch, heads, tokens, num_features]``.

This module imports only ``torch``: ``save_pretrained`` copies it next to the modeling files for
``trust_remote_code``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class FeatureMapOptions:
    """The options a config holds for its feature maps; each map reads the ones that concern it.

    ``num_features``: FAVOR+ random features / Hedgehog projections (None: the map's default); ``seed`` and
    ``redraw_interval``: FAVOR+; ``shared_qk``: Hedgehog (one map for queries and keys).
    """

    num_features: int | None = None
    seed: int = 0
    redraw_interval: int = 0
    shared_qk: bool = False


class KernelFeatureMap(nn.Module):
    """Base class of the feature maps. Subclasses set :attr:`name` and implement :meth:`feature` (or ``forward``).

    Taking queries and keys in one call lets a map treat them differently (FAVOR+ stabilises queries only, Hedgehog
    may learn one map for each) and update its state once per attention call (FAVOR+ redraws).
    """

    name: str = ""

    def __init__(self, num_heads: int, head_dim: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_dim

    @classmethod
    def from_options(cls, num_heads: int, head_dim: int, options: FeatureMapOptions) -> KernelFeatureMap:
        """Build the map from the options a config holds; each map uses the ones that concern it (none here)."""
        return cls(num_heads, head_dim)

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

    name = "elu"

    def feature(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``elu(x) + 1``."""
        return nn.functional.elu(x) + 1.0


class ReluFeatureMap(KernelFeatureMap):
    """``phi(x) = relu(x)``; rows whose features are all zero fall back on the normaliser's epsilon."""

    name = "relu"

    def feature(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``relu(x)``."""
        return nn.functional.relu(x)


def orthogonal_gaussian_features(
    num_features: int, head_dim: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Draw ``[num_features, head_dim]`` fp32 orthogonal random features whose row norms follow a chi(head_dim) law.

    Blocks of ``head_dim`` rows are orthonormalised by QR, then rescaled by the norms of Gaussian vectors, so each
    row is marginally Gaussian but rows within a block are exactly orthogonal (Choromanski et al. 2021).
    """
    # Explicit device: under a meta-device context (``from_pretrained``) the draw must still be real. Explicit fp32:
    # under a half-precision default dtype (``from_pretrained(..., dtype=torch.float16)``) QR has no CPU kernel.
    device = generator.device if generator is not None else torch.device("cpu")
    options = {"generator": generator, "device": device, "dtype": torch.float32}
    num_blocks = math.ceil(num_features / head_dim)
    q, _ = torch.linalg.qr(torch.randn(num_blocks, head_dim, head_dim, **options))
    features = q.transpose(-1, -2).reshape(num_blocks * head_dim, head_dim)[:num_features]
    norms = torch.randn(num_features, head_dim, **options).norm(dim=1, keepdim=True)
    return features * norms


class FavorFeatureMap(KernelFeatureMap):
    """FAVOR+ positive orthogonal random features (Choromanski et al. 2021, "Rethinking Attention with Performers").

    ``phi(x) = exp(W x' - |x'|^2 / 2)`` with ``x' = x * head_dim^-1/4`` gives an unbiased estimate of the softmax
    kernel: ``E[phi(q) . phi(k)] / m = exp(q . k / sqrt(head_dim))``. The ``1 / m`` (and a per-query shift of the
    exponent) cancels in the normalised output; leaving it out keeps the normaliser's epsilon negligible. ``W`` is
    drawn from ``seed`` (a persistent buffer, so a saved model keeps the features it was trained with) and is redrawn
    every ``redraw_interval`` training calls when that is positive.
    """

    name = "favor"

    def __init__(self, num_heads: int, head_dim: int, num_features: int, seed: int = 0, redraw_interval: int = 0):
        super().__init__(num_heads, head_dim)
        self._num_features = num_features
        self.seed = seed
        self.redraw_interval = redraw_interval
        self._calls = 0
        self._draws = 0
        self.register_buffer("projection", self.initial_state()["projection"], persistent=True)

    @classmethod
    def from_options(cls, num_heads: int, head_dim: int, options: FeatureMapOptions) -> FavorFeatureMap:
        """``num_features`` random features (default ``2 * head_dim``), ``seed`` and ``redraw_interval``."""
        size = options.num_features if options.num_features is not None else 2 * head_dim
        return cls(num_heads, head_dim, size, seed=options.seed, redraw_interval=options.redraw_interval)

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
    """Learnable Hedgehog feature maps (Zhang et al. 2024, "The Hedgehog & the Porcupine").

    ``phi(x) = [softmax(x W_h + b_h), softmax(-(x W_h + b_h))]`` per head ``h``, with ``W_h`` (``head_dim x
    num_features``, initialised to the identity) and ``b_h`` (zeros); the output has ``2 * num_features`` entries.

    By default queries and keys have a map each (``query_weight``/``query_bias`` and ``key_weight``/``key_bias``), as
    in Hedgehog and LoLCATs: one shared map cannot make ``phi(q) . phi(k)`` asymmetric, and attention transfer with
    one levels off early. ``shared_qk=True`` gives the single map (``weight``/``bias``) of checkpoints saved before.
    These are the only weights that kernel attention adds to a ViT/BERT checkpoint.
    """

    name = "hedgehog"

    def __init__(self, num_heads: int, head_dim: int, num_features: int, shared_qk: bool = False):
        super().__init__(num_heads, head_dim)
        self._num_features = num_features
        self.shared_qk = shared_qk
        for attribute, value in self.initial_state().items():
            setattr(self, attribute, nn.Parameter(value))

    @classmethod
    def from_options(cls, num_heads: int, head_dim: int, options: FeatureMapOptions) -> HedgehogFeatureMap:
        """``num_features`` projections per half (default ``head_dim``) and ``shared_qk``."""
        size = options.num_features if options.num_features is not None else head_dim
        return cls(num_heads, head_dim, size, shared_qk=options.shared_qk)

    @property
    def num_features(self) -> int:
        """Twice the projection size (positive and negative softmax halves)."""
        return 2 * self._num_features

    def _prefixes(self) -> tuple[str, ...]:
        return ("",) if self.shared_qk else ("query_", "key_")

    def initial_state(self) -> dict[str, torch.Tensor]:
        """Identity projections and zero biases, for the shared map or for the query and key maps."""
        eye = torch.eye(self.head_dim, self._num_features).expand(self.num_heads, -1, -1)
        state = {}
        for prefix in self._prefixes():
            state[f"{prefix}weight"] = eye.clone()
            state[f"{prefix}bias"] = torch.zeros(self.num_heads, self._num_features)
        return state

    @staticmethod
    def _softmax_halves(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        projected = torch.einsum("bhnd,hdf->bhnf", x, weight.to(x.dtype)) + bias.to(x.dtype)[:, None]
        return torch.cat([projected.softmax(dim=-1), (-projected).softmax(dim=-1)], dim=-1)

    def forward(self, query: torch.Tensor, key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(phi_q(query), phi_k(key))``: the two softmax halves of each, concatenated on the last dim."""
        if self.shared_qk:
            return (
                self._softmax_halves(query, self.weight, self.bias),
                self._softmax_halves(key, self.weight, self.bias),
            )
        return (
            self._softmax_halves(query, self.query_weight, self.query_bias),
            self._softmax_halves(key, self.key_weight, self.key_bias),
        )


FEATURE_MAPS: dict[str, type[KernelFeatureMap]] = {
    cls.name: cls for cls in (EluFeatureMap, ReluFeatureMap, FavorFeatureMap, HedgehogFeatureMap)
}


def get_feature_map(name: str) -> type[KernelFeatureMap]:
    """The feature-map class registered as ``name`` in :data:`FEATURE_MAPS`; ``ValueError`` listing them otherwise."""
    if not isinstance(name, str) or name not in FEATURE_MAPS:
        raise ValueError(f"Unknown kernel feature map {name!r}; allowed values: {sorted(FEATURE_MAPS)}.")
    return FEATURE_MAPS[name]


def build_feature_map(
    name: str,
    num_heads: int,
    head_dim: int,
    num_features: int | None = None,
    seed: int = 0,
    redraw_interval: int = 0,
    shared_qk: bool = False,
) -> KernelFeatureMap:
    """Build the feature map called ``name`` for ``num_heads`` heads of size ``head_dim``.

    ``num_features`` sizes the maps that have a size: FAVOR+ draws that many random features (default
    ``2 * head_dim``), Hedgehog projects to that many (default ``head_dim``). ``seed`` and ``redraw_interval`` only
    concern FAVOR+, ``shared_qk`` only Hedgehog.
    """
    options = FeatureMapOptions(num_features, seed, redraw_interval, shared_qk)
    return get_feature_map(name).from_options(num_heads, head_dim, options)


__all__ = [
    "FEATURE_MAPS",
    "EluFeatureMap",
    "FavorFeatureMap",
    "FeatureMapOptions",
    "HedgehogFeatureMap",
    "KernelFeatureMap",
    "ReluFeatureMap",
    "build_feature_map",
    "get_feature_map",
    "orthogonal_gaussian_features",
]
