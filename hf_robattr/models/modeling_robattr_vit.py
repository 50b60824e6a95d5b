"""RobAttr ViT models: HF's ViT with a softmax/kernel attention switch (``config.attention_type``).

Weight names are HF's own, so every ViT checkpoint loads; kernel attention adds only the feature-map weights
(``...attention.feature_map.*``). This file imports only torch, transformers and its siblings, so that
``save_pretrained`` can copy it for ``trust_remote_code``.
"""

from torch import nn
from transformers import ViTForImageClassification, ViTModel, ViTPreTrainedModel
from transformers.conversion_mapping import get_checkpoint_conversion_mapping, register_checkpoint_conversion_mapping
from transformers.models.vit.modeling_vit import ViTAttention

from .configuration_robattr_vit import RobAttrViTConfig
from .modeling_robattr_common import RobAttrAttentionMixin


class RobAttrViTPreTrainedModel(RobAttrAttentionMixin, ViTPreTrainedModel):
    """Base class of the RobAttr ViT models: config class, attention switch and feature-map initialisation."""

    config_class = RobAttrViTConfig
    config: RobAttrViTConfig
    _robattr_attention_classes = (ViTAttention,)
    _robattr_auto_map = {
        "AutoModel": "RobAttrViTModel",
        "AutoModelForImageClassification": "RobAttrViTForImageClassification",
    }


class RobAttrViTModel(RobAttrViTPreTrainedModel, ViTModel):
    """Bare ViT encoder (HF's ``ViTModel``) with softmax or kernel attention."""


class RobAttrViTForImageClassification(RobAttrViTPreTrainedModel, ViTForImageClassification):
    """ViT with a linear classifier on the [CLS] token (HF's ``ViTForImageClassification``), softmax or kernel attention."""

    def __init__(self, config: RobAttrViTConfig):
        # Same modules as ViTForImageClassification.__init__, but the encoder is a RobAttrViTModel: a sub-model
        # initialises its weights with its own _init_weights, and only ours knows the feature maps.
        RobAttrViTPreTrainedModel.__init__(self, config)
        self.num_labels = config.num_labels
        self.vit = RobAttrViTModel(config, add_pooling_layer=False)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels) if config.num_labels > 0 else nn.Identity()
        self.post_init()


# transformers renames ViT weights between the checkpoint layout (encoder.layer.N.attention.attention.query, still
# what save_pretrained writes) and the v5 module layout (layers.N.attention.q_proj), keyed on the class name
# "ViTModel". Our subclass needs the same entry, or every ViT checkpoint would load with random weights.
register_checkpoint_conversion_mapping(
    "RobAttrViTModel", get_checkpoint_conversion_mapping("ViTModel"), overwrite=True
)

__all__ = ["RobAttrViTForImageClassification", "RobAttrViTModel", "RobAttrViTPreTrainedModel"]
