"""Configuration of the RobAttr BERT: a ``BertConfig`` whose attention switches between softmax and kernel attention."""

from huggingface_hub.dataclasses import strict
from transformers import BertConfig

from .configuration_robattr_common import RobAttrConfigMixin


@strict
class RobAttrBertConfig(RobAttrConfigMixin, BertConfig):
    r"""BERT configuration with a switchable attention (``model_type="robattr-bert"``).

    Every ``BertConfig`` argument is accepted; the attention fields of
    :class:`~.configuration_robattr_common.RobAttrConfigMixin` (``attention_type``, ``kernel_feature_map``,
    ``kernel_num_features``, ``kernel_seed``, ``kernel_redraw_interval``, ``kernel_eps``, ``kernel_shared_qk_map``)
    are added, saved in ``config.json`` and validated whenever they are set. Kernel attention is encoder-only:
    ``is_decoder`` and ``add_cross_attention`` must stay False with ``attention_type="kernel"``.
    """

    model_type = "robattr-bert"
    plain_model_type = BertConfig.model_type


__all__ = ["RobAttrBertConfig"]
