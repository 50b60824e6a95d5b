"""ViT and BERT models whose attention switches between softmax and kernel (linear) attention.

Importing this package registers the configs and models with the ``transformers`` Auto classes, and marks them for
``register_for_auto_class`` so that ``save_pretrained`` writes ``auto_map`` and copies the code (for loading with
``trust_remote_code=True`` where hf_robattr is not installed). Registration is idempotent.
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForImageClassification,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
)

from .configuration_robattr_bert import RobAttrBertConfig
from .configuration_robattr_vit import RobAttrViTConfig
from .kernel_attention import (
    ATTENTION_TYPES,
    FEATURE_MAPS,
    KERNEL_ATTENTION,
    SOFTMAX_ATTENTION,
    EluFeatureMap,
    FavorFeatureMap,
    HedgehogFeatureMap,
    KernelFeatureMap,
    ReluFeatureMap,
    RobAttrAttentionMixin,
    build_feature_map,
    kernel_attention_forward,
    key_padding_mask,
    register_attention_functions,
    softmax_attention_forward,
)
from .modeling_robattr_bert import (
    RobAttrBertForMaskedLM,
    RobAttrBertForSequenceClassification,
    RobAttrBertModel,
    RobAttrBertPreTrainedModel,
)
from .modeling_robattr_vit import RobAttrViTForImageClassification, RobAttrViTModel, RobAttrViTPreTrainedModel


_AUTO_CLASSES = {
    RobAttrViTConfig: {AutoModel: RobAttrViTModel, AutoModelForImageClassification: RobAttrViTForImageClassification},
    RobAttrBertConfig: {
        AutoModel: RobAttrBertModel,
        AutoModelForSequenceClassification: RobAttrBertForSequenceClassification,
        AutoModelForMaskedLM: RobAttrBertForMaskedLM,
    },
}


def register_auto_classes() -> None:
    """Register the RobAttr configs and models with the Auto classes and for ``save_pretrained`` code copying."""
    for config_class, models in _AUTO_CLASSES.items():
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
        config_class.register_for_auto_class("AutoConfig")
        for auto_class, model_class in models.items():
            auto_class.register(config_class, model_class, exist_ok=True)
            model_class.register_for_auto_class(auto_class.__name__)


register_auto_classes()

__all__ = [
    "ATTENTION_TYPES",
    "FEATURE_MAPS",
    "KERNEL_ATTENTION",
    "SOFTMAX_ATTENTION",
    "EluFeatureMap",
    "FavorFeatureMap",
    "HedgehogFeatureMap",
    "KernelFeatureMap",
    "ReluFeatureMap",
    "RobAttrAttentionMixin",
    "RobAttrBertConfig",
    "RobAttrBertForMaskedLM",
    "RobAttrBertForSequenceClassification",
    "RobAttrBertModel",
    "RobAttrBertPreTrainedModel",
    "RobAttrViTConfig",
    "RobAttrViTForImageClassification",
    "RobAttrViTModel",
    "RobAttrViTPreTrainedModel",
    "build_feature_map",
    "kernel_attention_forward",
    "key_padding_mask",
    "register_attention_functions",
    "register_auto_classes",
    "softmax_attention_forward",
]
