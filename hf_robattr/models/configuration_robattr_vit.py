"""Configuration of the RobAttr ViT: a ``ViTConfig`` whose attention switches between softmax and kernel attention."""

from huggingface_hub.dataclasses import strict
from transformers import ViTConfig

from .kernel_attention import check_output_attentions, validate_kernel_config


@strict
class RobAttrViTConfig(ViTConfig):
    r"""ViT configuration with a switchable attention (``model_type="robattr-vit"``).

    Every ``ViTConfig`` argument is accepted; the fields below are added and saved in ``config.json``.

    Args:
        attention_type (`str`, defaults to `"softmax"`):
            `"softmax"` (HF's ViT attention, SDPA by default) or `"kernel"` (linear attention, O(N)).
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
            Epsilon added to the kernel-attention normaliser.
    """

    model_type = "robattr-vit"

    attention_type: str = "softmax"
    kernel_feature_map: str = "elu"
    kernel_num_features: int | None = None
    kernel_seed: int = 0
    kernel_redraw_interval: int = 0
    kernel_eps: float = 1e-6

    def __post_init__(self, **kwargs):
        # A plain ViT checkpoint's config.json carries model_type="vit"; it must not shadow ours.
        kwargs.pop("model_type", None)
        validate_kernel_config(self)
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

    @classmethod
    def get_config_dict(cls, pretrained_model_name_or_path, **kwargs) -> tuple[dict, dict]:
        """Read a config dict; a plain ``vit`` checkpoint is read as ours (same weights, default attention fields)."""
        config_dict, kwargs = super().get_config_dict(pretrained_model_name_or_path, **kwargs)
        # Without this, loading any ViT checkpoint warns that the model types differ and "can yield errors".
        if config_dict.get("model_type") == ViTConfig.model_type:
            config_dict = {**config_dict, "model_type": cls.model_type}
        return config_dict, kwargs


__all__ = ["RobAttrViTConfig"]
