"""RobAttr BERT models: HF's BERT with a softmax/kernel attention switch (``config.attention_type``).

Weight names are HF's own, so every BERT checkpoint loads; kernel attention adds only the feature-map weights
(``...attention.self.feature_map.*``). Encoder only: kernel attention is non-causal. This file imports only torch,
transformers and its siblings, so that ``save_pretrained`` can copy it for ``trust_remote_code``.
"""

from torch import nn
from transformers import BertForMaskedLM, BertForSequenceClassification, BertModel, BertPreTrainedModel
from transformers.models.bert.modeling_bert import BertOnlyMLMHead, BertSelfAttention

from .configuration_robattr_bert import RobAttrBertConfig
from .modeling_robattr_common import RobAttrAttentionMixin


class RobAttrBertPreTrainedModel(RobAttrAttentionMixin, BertPreTrainedModel):
    """Base class of the RobAttr BERT models: config class, attention switch and feature-map initialisation."""

    config_class = RobAttrBertConfig
    config: RobAttrBertConfig
    _robattr_attention_classes = (BertSelfAttention,)
    _robattr_auto_map = {
        "AutoModel": "RobAttrBertModel",
        "AutoModelForSequenceClassification": "RobAttrBertForSequenceClassification",
        "AutoModelForMaskedLM": "RobAttrBertForMaskedLM",
    }


class RobAttrBertModel(RobAttrBertPreTrainedModel, BertModel):
    """Bare BERT encoder (HF's ``BertModel``) with softmax or kernel attention."""


class RobAttrBertForSequenceClassification(RobAttrBertPreTrainedModel, BertForSequenceClassification):
    """BERT with a classifier on the pooled output (HF's ``BertForSequenceClassification``), softmax or kernel attention."""

    def __init__(self, config: RobAttrBertConfig):
        # Same modules as BertForSequenceClassification.__init__, but the encoder is a RobAttrBertModel: a sub-model
        # initialises its weights with its own _init_weights, and only ours knows the feature maps.
        RobAttrBertPreTrainedModel.__init__(self, config)
        self.num_labels = config.num_labels
        self.bert = RobAttrBertModel(config)
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()


class RobAttrBertForMaskedLM(RobAttrBertPreTrainedModel, BertForMaskedLM):
    """BERT with a masked-language-modelling head (HF's ``BertForMaskedLM``), softmax or kernel attention."""

    def __init__(self, config: RobAttrBertConfig):
        RobAttrBertPreTrainedModel.__init__(self, config)
        self.bert = RobAttrBertModel(config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config)
        self.post_init()


__all__ = [
    "RobAttrBertForMaskedLM",
    "RobAttrBertForSequenceClassification",
    "RobAttrBertModel",
    "RobAttrBertPreTrainedModel",
]
