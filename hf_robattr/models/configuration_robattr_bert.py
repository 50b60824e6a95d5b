"""Configuration of the RobAttr BERT: a ``BertConfig`` whose attention switches between softmax and kernel attention."""

from huggingface_hub.dataclasses import strict
from transformers import BertConfig

from .configuration_robattr_common import RobAttrConfigMixin


@strict
class RobAttrBertConfig(RobAttrConfigMixin, BertConfig):
    r"""BERT configuration with a switchable attention (``model_type="robattr-bert"``).

    Every ``BertConfig`` argument is accepted, plus the attention fields of
    :class:`~.configuration_robattr_common.RobAttrConfigMixin` (saved in ``config.json``, validated whenever set).
    Kernel attention is encoder-only: ``is_decoder`` and ``add_cross_attention`` must stay False with
    ``attention_type="kernel"``.
    """

    model_type = "robattr-bert"
    plain_model_type = BertConfig.model_type


__all__ = ["RobAttrBertConfig"]
