"""Configuration of the RobAttr ViT: a ``ViTConfig`` whose attention switches between softmax and kernel attention."""

from huggingface_hub.dataclasses import strict
from transformers import ViTConfig

from .configuration_robattr_common import RobAttrConfigMixin


@strict
class RobAttrViTConfig(RobAttrConfigMixin, ViTConfig):
    r"""ViT configuration with a switchable attention (``model_type="robattr-vit"``).

    Every ``ViTConfig`` argument is accepted, plus the attention fields of
    :class:`~.configuration_robattr_common.RobAttrConfigMixin` (saved in ``config.json``, validated whenever set).
    """

    model_type = "robattr-vit"
    plain_model_type = ViTConfig.model_type


__all__ = ["RobAttrViTConfig"]
