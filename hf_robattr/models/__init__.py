"""ViT and BERT models whose attention switches between softmax and kernel (linear) attention.

Importing this package registers the configs and models with the ``transformers`` Auto classes, and marks them for
``register_for_auto_class`` so that ``save_pretrained`` writes ``auto_map`` and copies the code (for loading with
``trust_remote_code=True`` where hf_robattr is not installed). Registration is idempotent.

The folder is flat on purpose: ``save_pretrained`` copies a modeling file and the sibling files it imports.

* ``feature_maps.py``: the positive feature maps of kernel attention and their registry;
* ``kernel_attention.py``: the attention functions, masks, explicit attention weights and the recording of each
  layer's queries and keys (attention transfer);
* ``configuration_robattr_common.py`` / ``modeling_robattr_common.py``: the attention fields and their validation,
  and the model mixin that switches the attention;
* ``configuration_robattr_{vit,bert}.py`` / ``modeling_robattr_{vit,bert}.py``: one config and the models per family.
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForImageClassification,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
)

from .configuration_robattr_bert import RobAttrBertConfig
from .configuration_robattr_common import ATTENTION_TYPES, RobAttrConfigMixin, validate_kernel_config
from .configuration_robattr_vit import RobAttrViTConfig
from .feature_maps import (
    FEATURE_MAPS,
    EluFeatureMap,
    FavorFeatureMap,
    HedgehogFeatureMap,
    KernelFeatureMap,
    ReluFeatureMap,
    build_feature_map,
    get_feature_map,
)
from .kernel_attention import (
    KERNEL_ATTENTION,
    SOFTMAX_ATTENTION,
    AttentionInputs,
    kernel_attention_forward,
    kernel_attention_weights,
    key_padding_mask,
    record_attention_inputs,
    register_attention_functions,
    softmax_attention_forward,
    softmax_attention_weights,
)
from .modeling_robattr_bert import (
    RobAttrBertForMaskedLM,
    RobAttrBertForSequenceClassification,
    RobAttrBertModel,
    RobAttrBertPreTrainedModel,
)
from .modeling_robattr_common import KernelSwapWarning, RobAttrAttentionMixin
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
    "AttentionInputs",
    "EluFeatureMap",
    "FavorFeatureMap",
    "HedgehogFeatureMap",
    "KernelFeatureMap",
    "KernelSwapWarning",
    "ReluFeatureMap",
    "RobAttrAttentionMixin",
    "RobAttrBertConfig",
    "RobAttrBertForMaskedLM",
    "RobAttrBertForSequenceClassification",
    "RobAttrBertModel",
    "RobAttrBertPreTrainedModel",
    "RobAttrConfigMixin",
    "RobAttrViTConfig",
    "RobAttrViTForImageClassification",
    "RobAttrViTModel",
    "RobAttrViTPreTrainedModel",
    "build_feature_map",
    "get_feature_map",
    "kernel_attention_forward",
    "kernel_attention_weights",
    "key_padding_mask",
    "record_attention_inputs",
    "register_attention_functions",
    "register_auto_classes",
    "softmax_attention_forward",
    "softmax_attention_weights",
    "validate_kernel_config",
]
