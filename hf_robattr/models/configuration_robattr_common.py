"""The attention fields that the RobAttr ViT and BERT configs add to HF's, and their validation.

Every field is checked whenever it is set: in the constructor, by ``from_pretrained(..., attention_type=...)``
keyword arguments (``transformers`` sets those as attributes after construction) and by plain assignment
(``config.kernel_eps = 0.0`` raises). So are the sizes of HF's own fields that a model is built from
(``hidden_size``, ``num_attention_heads``, ... must be positive; dropout probabilities lie in [0, 1]), which
``transformers`` does not check (``num_attention_heads=0`` used to end in a ``ZeroDivisionError`` inside the
model). Rules that involve other fields (kernel attention is encoder-only; ``hidden_size`` is a multiple of
``num_attention_heads``) are checked by :func:`validate_kernel_config` when a config is built or saved and when a
model is built. A key the config does not know that looks like one of its attention fields (``attention_tpye``) is
a warning that names the field it probably meant: ``transformers`` keeps unknown keys silently.

This module imports only ``transformers``, ``huggingface_hub`` (which ``transformers`` requires) and its siblings:
``save_pretrained`` copies it for ``trust_remote_code``.
"""

from __future__ import annotations

import difflib
import math
import warnings
from dataclasses import dataclass
from typing import Any

from .feature_maps import FEATURE_MAPS
from .kernel_attention import KERNEL_ATTENTION, SOFTMAX_ATTENTION


# Attention type -> the attention implementation it runs by default.
ATTENTION_IMPLEMENTATIONS: dict[str, str] = {"softmax": SOFTMAX_ATTENTION, "kernel": KERNEL_ATTENTION}
ATTENTION_TYPES: tuple[str, ...] = tuple(ATTENTION_IMPLEMENTATIONS)
# Attention implementations that return weights; transformers' own config check only knows "eager".
WEIGHT_RETURNING_ATTENTIONS: tuple[str, ...] = ("eager", KERNEL_ATTENTION, SOFTMAX_ATTENTION)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_attention_type(value: Any) -> None:
    if value not in ATTENTION_TYPES:
        raise ValueError(f"attention_type must be one of {list(ATTENTION_TYPES)}, got {value!r}.")


def _check_feature_map(value: Any) -> None:
    if not isinstance(value, str) or value not in FEATURE_MAPS:
        raise ValueError(f"kernel_feature_map must be one of {sorted(FEATURE_MAPS)}, got {value!r}.")


def _check_num_features(value: Any) -> None:
    if value is not None and not (_is_int(value) and value > 0):
        raise ValueError(f"kernel_num_features must be a positive int or None (the map's default), got {value!r}.")


def _check_redraw_interval(value: Any) -> None:
    if not (_is_int(value) and value >= 0):
        raise ValueError(
            f"kernel_redraw_interval must be an int >= 0 (0 never redraws the FAVOR+ features), got {value!r}."
        )


def _check_eps(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"kernel_eps must be a finite float > 0, got {value!r}.")


def _check_seed(value: Any) -> None:
    if not _is_int(value):
        raise ValueError(f"kernel_seed must be an int, got {value!r}.")


def _check_shared_qk_map(value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"kernel_shared_qk_map must be a bool, got {value!r}.")


# HF's fields that a ViT/BERT is built from: each must be an int >= 1 (image_size / patch_size: or a pair of them).
POSITIVE_SIZE_FIELDS: tuple[str, ...] = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "image_size",
    "patch_size",
    "num_channels",
    "encoder_stride",
    "vocab_size",
    "max_position_embeddings",
    "type_vocab_size",
)
PROBABILITY_FIELDS: tuple[str, ...] = ("hidden_dropout_prob", "attention_probs_dropout_prob")


def _check_positive_size(name: str, value: Any) -> None:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values or not all(_is_int(v) and v >= 1 for v in values):
        expected = "an int >= 1 (or a pair of them)" if name in ("image_size", "patch_size") else "an int >= 1"
        raise ValueError(f"{name} must be {expected}, got {value!r}.")


def _check_probability(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}.")


def _check_layer_norm_eps(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"layer_norm_eps must be a finite float > 0, got {value!r}.")


def check_model_field(name: str, value: Any) -> None:
    """Check one of HF's size, probability or epsilon fields (:data:`POSITIVE_SIZE_FIELDS`, ...); other names pass."""
    if name in POSITIVE_SIZE_FIELDS:
        _check_positive_size(name, value)
    elif name in PROBABILITY_FIELDS:
        _check_probability(name, value)
    elif name == "layer_norm_eps":
        _check_layer_norm_eps(value)


KERNEL_FIELD_CHECKS = {
    "attention_type": _check_attention_type,
    "kernel_feature_map": _check_feature_map,
    "kernel_num_features": _check_num_features,
    "kernel_seed": _check_seed,
    "kernel_redraw_interval": _check_redraw_interval,
    "kernel_eps": _check_eps,
    "kernel_shared_qk_map": _check_shared_qk_map,
}


def validate_kernel_config(config: Any) -> None:
    """Check every attention field and model size of a RobAttr config and the rules between fields; ``ValueError``
    names the field, the bad value and what is allowed."""
    for name, check in KERNEL_FIELD_CHECKS.items():
        check(getattr(config, name))
    for name in (*POSITIVE_SIZE_FIELDS, *PROBABILITY_FIELDS, "layer_norm_eps"):
        if hasattr(config, name):
            check_model_field(name, getattr(config, name))
    heads = getattr(config, "num_attention_heads", None)
    if heads is not None and getattr(config, "hidden_size", heads) % heads:
        raise ValueError(
            f"hidden_size ({config.hidden_size}) must be a multiple of num_attention_heads "
            f"({config.num_attention_heads}): each head gets hidden_size / num_attention_heads dimensions."
        )
    is_decoder = getattr(config, "is_decoder", False)
    cross_attention = getattr(config, "add_cross_attention", False)
    if config.attention_type == "kernel" and (is_decoder or cross_attention):
        raise ValueError(
            "attention_type='kernel' supports encoders only (kernel attention here is non-causal and has no "
            f"cross-attention): is_decoder and add_cross_attention must be False, got is_decoder={is_decoder!r}, "
            f"add_cross_attention={cross_attention!r}. Use attention_type='softmax' for a decoder."
        )


def warn_unknown_attention_keys(config: Any, keys: Any) -> None:
    """Warn about each of ``keys`` (keys the config does not know, which ``transformers`` keeps silently) that looks
    like an attention field: it starts with ``attention_`` or ``kernel_``, or it is close to one. The warning names
    the field it probably meant and the value the model uses instead."""
    known = list(KERNEL_FIELD_CHECKS)
    for key in keys:
        if not isinstance(key, str) or key in known:
            continue
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
        if not (close or key.startswith(("attention_", "kernel_"))):
            continue
        meant = (
            f" Did you mean {close[0]!r}? The model uses {close[0]}={getattr(config, close[0])!r}." if close else ""
        )
        warnings.warn(
            f"{type(config).__name__} got the unknown key {key!r}; it is kept but ignored.{meant} The attention "
            f"fields are {known}.",
            UserWarning,
            stacklevel=4,
        )


def attention_implementation(config: Any) -> str:
    """The attention implementation that ``config.attention_type`` runs; ``ValueError`` for an unknown type."""
    _check_attention_type(config.attention_type)
    return ATTENTION_IMPLEMENTATIONS[config.attention_type]


def check_output_attentions(attn_implementation: str | None, output_attentions: bool) -> None:
    """Raise ``ValueError`` if ``output_attentions`` is on with an implementation that returns no weights."""
    if output_attentions and attn_implementation not in (None, *WEIGHT_RETURNING_ATTENTIONS):
        raise ValueError(
            f"output_attentions=True needs attn_implementation in {list(WEIGHT_RETURNING_ATTENTIONS)}, "
            f"got {attn_implementation!r}."
        )


@dataclass(kw_only=True, repr=False)
class RobAttrConfigMixin:
    r"""Attention fields of the RobAttr configs (put it before HF's config class in the bases).

    Args:
        attention_type (`str`, defaults to `"softmax"`):
            `"softmax"` (HF's attention, SDPA by default) or `"kernel"` (linear attention, O(N)).
        kernel_feature_map (`str`, defaults to `"elu"`):
            Positive feature map of kernel attention: `"elu"`, `"relu"`, `"favor"` or `"hedgehog"`.
        kernel_num_features (`int`, *optional*):
            Feature size of `"favor"` (random features, default `2 * head_dim`) and `"hedgehog"` (projection size,
            default `head_dim`). Ignored by the other maps.
        kernel_seed (`int`, defaults to 0):
            Seed of the FAVOR+ random features (layer `i` uses `kernel_seed + i`).
        kernel_redraw_interval (`int`, defaults to 0):
            Redraw the FAVOR+ features every this many training forward passes; 0 never redraws.
        kernel_eps (`float`, defaults to 1e-6):
            Epsilon added to the kernel-attention normaliser; finite and > 0.
        kernel_shared_qk_map (`bool`, defaults to `False`):
            `"hedgehog"` only: one learnable map shared by queries and keys instead of one each. Hedgehog
            checkpoints saved before this field existed had one shared map and load with `True`.
    """

    attention_type: str = "softmax"
    kernel_feature_map: str = "elu"
    kernel_num_features: int | None = None
    kernel_seed: int = 0
    kernel_redraw_interval: int = 0
    kernel_eps: float = 1e-6
    kernel_shared_qk_map: bool = False

    # model_type of the HF config this one extends; checkpoints of that type are read as ours.
    plain_model_type = ""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in KERNEL_FIELD_CHECKS:
            KERNEL_FIELD_CHECKS[name](value)
        else:
            check_model_field(name, value)
        super().__setattr__(name, value)

    def __post_init__(self, **kwargs):
        # A plain ViT/BERT checkpoint's config.json carries its own model_type; it must not shadow ours.
        kwargs.pop("model_type", None)
        validate_kernel_config(self)
        warn_unknown_attention_keys(self, kwargs)
        super().__post_init__(**kwargs)

    @property
    def output_attentions(self) -> bool:
        """Whether the model returns attention weights (``robattr_*`` attention returns them, unlike SDPA)."""
        return self._output_attentions

    @output_attentions.setter
    def output_attentions(self, value: bool) -> None:
        check_output_attentions(self._attn_implementation, value)
        self._output_attentions = value

    def validate_output_attentions(self) -> None:
        """Strict-dataclass validator: ``output_attentions`` needs an implementation that returns weights."""
        check_output_attentions(self._attn_implementation, self.output_attentions)

    def validate_kernel_attention(self) -> None:
        """Strict-dataclass validator (run on save): the attention fields and the rules between them."""
        validate_kernel_config(self)

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs):
        """``PreTrainedConfig.from_dict`` (every loading path ends here), validated again after ``kwargs``
        (``from_pretrained``'s overrides) are set one by one, so that the rules between fields hold for the config
        returned. A Hedgehog config saved before ``kernel_shared_qk_map`` existed keeps its shared map."""
        legacy_hedgehog = config_dict.get("attention_type") == "kernel" and (
            config_dict.get("kernel_feature_map") == "hedgehog" and "kernel_shared_qk_map" not in config_dict
        )
        if legacy_hedgehog:
            config_dict = {**config_dict, "kernel_shared_qk_map": True}
        result = super().from_dict(config_dict, **kwargs)
        validate_kernel_config(result[0] if isinstance(result, tuple) else result)
        return result

    @classmethod
    def get_config_dict(cls, pretrained_model_name_or_path, **kwargs) -> tuple[dict, dict]:
        """Read a config dict; a plain ViT/BERT checkpoint is read as ours (same weights, default attention fields)."""
        config_dict, kwargs = super().get_config_dict(pretrained_model_name_or_path, **kwargs)
        # Without this, loading any ViT/BERT checkpoint warns that the model types differ and "can yield errors".
        if config_dict.get("model_type") == cls.plain_model_type:
            config_dict = {**config_dict, "model_type": cls.model_type}
        return config_dict, kwargs


__all__ = [
    "ATTENTION_IMPLEMENTATIONS",
    "ATTENTION_TYPES",
    "KERNEL_FIELD_CHECKS",
    "POSITIVE_SIZE_FIELDS",
    "PROBABILITY_FIELDS",
    "RobAttrConfigMixin",
    "attention_implementation",
    "check_model_field",
    "check_output_attentions",
    "validate_kernel_config",
    "warn_unknown_attention_keys",
]
