"""What the RobAttr ViT and BERT models add to HF's: the attention switch, its checks and the feature-map weights.

This module imports only ``torch``, ``transformers`` and its siblings: ``save_pretrained`` copies it for
``trust_remote_code``.
"""

from __future__ import annotations

import os
import warnings

from torch import nn
from transformers import initialization as init
from transformers.utils import logging

from .configuration_robattr_common import KERNEL_FIELD_CHECKS, attention_implementation, validate_kernel_config
from .feature_maps import KernelFeatureMap, build_feature_map
from .kernel_attention import KERNEL_ATTENTION, SOFTMAX_ATTENTION


logger = logging.get_logger(__name__)

# Keyword arguments of ``from_pretrained`` that say where a checkpoint's config.json is.
_HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder")

_warned_about_swap = False


class KernelSwapWarning(UserWarning):
    """A softmax checkpoint was loaded with kernel attention without attention transfer."""


def _warn_once_about_swap(checkpoint: str | os.PathLike) -> None:
    global _warned_about_swap
    if _warned_about_swap:
        return
    _warned_about_swap = True
    warnings.warn(
        f"{checkpoint} was trained with softmax attention and is loaded with attention_type='kernel': its attention "
        "was swapped without attention transfer, so the model does not yet compute what the checkpoint learned. "
        "Use hf_robattr.convert_to_kernel to train the kernel attention to match the softmax model (shown once per "
        "process).",
        KernelSwapWarning,
        stacklevel=3,
    )


class RobAttrAttentionMixin:
    """Mixin for a ``PreTrainedModel`` subclass that switches its attention with ``config.attention_type``.

    * ``_attn_implementation`` follows ``attention_type`` (it is not saved in ``config.json``): ``"kernel"`` always
      uses ``"robattr_kernel"`` (another ``attn_implementation`` asked for at build is ignored with a warning, as
      ``"eager"`` is how transformers code asks for attention weights; :meth:`set_attn_implementation` on a built
      model refuses it); ``"softmax"`` uses ``"robattr_softmax"`` unless another implementation (``"eager"``,
      ``"sdpa"``, ...) is requested.
    * The config is validated when the model is built (before its modules) and saved (kernel attention is
      encoder-only). Saving refuses a config whose ``attention_type`` or (kernel mode) ``kernel_*`` fields were
      edited after the build: the modules keep the values they were built with.
    * In kernel mode, every attention module of a class in ``_robattr_attention_classes`` gets a ``feature_map``
      submodule and a ``kernel_eps`` attribute before ``post_init``; softmax mode adds nothing, so its weights are
      exactly HF's. Feature-map weights missing from a checkpoint are initialised by ``_init_weights``.
    * ``from_pretrained`` warns once per process when a softmax checkpoint is loaded in kernel mode.
    """

    _robattr_attention_classes: tuple[type[nn.Module], ...] = ()
    # Auto class name -> model class name in the same modeling file, written to ``auto_map`` on save so that every
    # Auto class (not only the saved model's own) can load the folder with ``trust_remote_code=True``.
    _robattr_auto_map: dict[str, str] = {}

    def post_init(self) -> None:
        """Attach the feature maps (kernel mode), then run ``PreTrainedModel.post_init``."""
        # The modules keep these values; save_pretrained compares the config with them (_check_config_matches_build).
        self._robattr_built_fields = {name: getattr(self.config, name) for name in KERNEL_FIELD_CHECKS}
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
                    shared_qk=self.config.kernel_shared_qk_map,
                )
                module.kernel_eps = self.config.kernel_eps
        super().post_init()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """``PreTrainedModel.from_pretrained``; warns once per process (:class:`KernelSwapWarning`) when a checkpoint
        saved with softmax attention is loaded with ``attention_type="kernel"``."""
        loaded = super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        if model.config.attention_type == "kernel" and pretrained_model_name_or_path is not None:
            hub_kwargs = {name: kwargs[name] for name in _HUB_KWARGS if name in kwargs}
            try:
                saved, _ = cls.config_class.get_config_dict(pretrained_model_name_or_path, **hub_kwargs)
            except (OSError, ValueError):
                saved = {"attention_type": "kernel"}  # no readable config.json: nothing to compare with
            if saved.get("attention_type", "softmax") != "kernel":
                _warn_once_about_swap(pretrained_model_name_or_path)
        return loaded

    def save_pretrained(self, save_directory, *args, **kwargs):
        """``PreTrainedModel.save_pretrained`` after validating the config; with code copying on, ``auto_map`` lists
        all the family's models."""
        validate_kernel_config(self.config)
        self._check_config_matches_build()
        if self.is_remote_code():
            module = type(self).__module__.rsplit(".", 1)[-1]
            auto_map = {auto: f"{module}.{name}" for auto, name in self._robattr_auto_map.items()}
            self.config.auto_map = {**auto_map, **(getattr(self.config, "auto_map", None) or {})}
        return super().save_pretrained(save_directory, *args, **kwargs)

    def _check_config_matches_build(self) -> None:
        """Raise ``ValueError`` if an attention field of the config was edited after the model was built.

        The attention modules read ``attention_type`` and the ``kernel_*`` fields once, when the model is built, so
        such an edit changes nothing in memory while the saved ``config.json`` would load a different model. The
        ``kernel_*`` fields only count in kernel mode: a softmax model does not use them.
        """
        built = getattr(self, "_robattr_built_fields", None)
        if built is None:
            return
        if built["attention_type"] != self.config.attention_type:
            raise ValueError(
                f"config.attention_type was changed to {self.config.attention_type!r} after this model was built "
                f"with {built['attention_type']!r} attention, so the saved config would not describe the saved "
                f"weights. Load the model with from_pretrained(..., attention_type={self.config.attention_type!r}) "
                "instead."
            )
        if built["attention_type"] != "kernel":
            return
        changed = {
            name: (value, getattr(self.config, name))
            for name, value in built.items()
            if name != "attention_type" and getattr(self.config, name) != value
        }
        if changed:
            edits = ", ".join(f"{name} from {old!r} to {new!r}" for name, (old, new) in changed.items())
            kwargs = ", ".join(f"{name}={new!r}" for name, (_, new) in changed.items())
            restore = ", ".join(f"config.{name} = {old!r}" for name, (old, _) in changed.items())
            raise ValueError(
                f"The config was edited after this model was built ({edits}): its attention modules keep the values "
                "they were built with, so the edit has no effect on this model and the saved config would load a "
                f"different one. To apply it, build a new model from the edited config ({type(self).__name__}"
                f"(config)) or load the saved model with from_pretrained(path, {kwargs}); to save the model as "
                f"built, restore {restore}."
            )

    def get_correct_attn_implementation(self, requested_attention: str | None, is_init_check: bool = False) -> str:
        """Derive the attention implementation from ``config.attention_type``.

        ``PreTrainedModel.__init__`` calls this before any module is built: the config is validated here, so that a
        kernel "decoder" is refused with our error rather than failing later inside HF's modules.
        """
        validate_kernel_config(self.config)
        implementation = attention_implementation(self.config)
        if implementation == KERNEL_ATTENTION:
            # Asking for "eager" at build is how transformers code gets attention weights; kernel attention returns
            # them too, so such a request is served, with a note (robattr_softmax: a config copied from a softmax model).
            if requested_attention not in (None, KERNEL_ATTENTION, SOFTMAX_ATTENTION):
                logger.warning_once(
                    f"attn_implementation={requested_attention!r} is ignored: a model with attention_type='kernel' "
                    f"always runs {KERNEL_ATTENTION!r} (which returns attention weights with output_attentions=True). "
                    "For softmax attention, load the model with attention_type='softmax'."
                )
            return KERNEL_ATTENTION
        if requested_attention in (None, KERNEL_ATTENTION):
            requested_attention = SOFTMAX_ATTENTION
        return super().get_correct_attn_implementation(requested_attention, is_init_check)

    def set_attn_implementation(self, attn_implementation, *args, **kwargs) -> None:
        """``PreTrainedModel.set_attn_implementation`` for softmax models; a kernel model only takes its own.

        The attention type is part of the model (feature-map weights, saved ``attention_type``) and cannot be
        switched on a built model: load it again with ``from_pretrained(..., attention_type=...)``.
        """
        requested = attn_implementation.get("", None) if isinstance(attn_implementation, dict) else attn_implementation
        kernel = self.config.attention_type == "kernel"
        if (kernel and requested not in (None, KERNEL_ATTENTION)) or (not kernel and requested == KERNEL_ATTENTION):
            raise ValueError(
                f"set_attn_implementation({requested!r}) cannot change the attention of a model built with "
                f"attention_type={self.config.attention_type!r}. Switch the attention type by loading the model "
                f"again: {type(self).__name__}.from_pretrained(path, attention_type='softmax' or 'kernel')."
            )
        return super().set_attn_implementation(attn_implementation, *args, **kwargs)

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, KernelFeatureMap):
            for name, value in module.initial_state().items():
                target = getattr(module, name)
                init.copy_(target, value.to(device=target.device, dtype=target.dtype))


__all__ = ["KernelSwapWarning", "RobAttrAttentionMixin"]
