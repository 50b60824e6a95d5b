"""Build the models and pre-processors the recipes train: a tiny one from scratch, or any ViT/BERT checkpoint."""

from __future__ import annotations

from typing import Any

from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer, PreTrainedModel, ViTImageProcessorPil

from hf_robattr.data import build_offline_tokenizer
from hf_robattr.models import (
    RobAttrBertConfig,
    RobAttrBertForSequenceClassification,
    RobAttrViTConfig,
    RobAttrViTForImageClassification,
)

from .arguments import ModelArguments, TextModelArguments, VisionModelArguments


__all__ = ["build_bert_classifier", "build_vit_classifier", "load_image_processor", "load_tokenizer"]


def _label_kwargs(label_names: list[str]) -> dict[str, Any]:
    return {
        "num_labels": len(label_names),
        "id2label": dict(enumerate(label_names)),
        "label2id": {name: i for i, name in enumerate(label_names)},
    }


def _attention_kwargs(args: ModelArguments) -> dict[str, Any]:
    return {"attention_type": args.attention_type, "kernel_feature_map": args.kernel_feature_map}


def _load_kwargs(args: ModelArguments) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"cache_dir": args.cache_dir, "trust_remote_code": args.trust_remote_code}
    if args.attn_implementation is not None:
        kwargs["attn_implementation"] = args.attn_implementation
    return kwargs


def build_vit_classifier(args: VisionModelArguments, *, label_names: list[str]) -> PreTrainedModel:
    """A ``RobAttrViTForImageClassification``: from ``args.model_name_or_path`` (any ViT checkpoint, attention
    swapped to ``args.attention_type``, new classifier head when the labels differ) or a tiny one from scratch."""
    if args.model_name_or_path is not None:
        return RobAttrViTForImageClassification.from_pretrained(
            args.model_name_or_path,
            ignore_mismatched_sizes=True,
            **_attention_kwargs(args),
            **_label_kwargs(label_names),
            **_load_kwargs(args),
        )
    config = RobAttrViTConfig(
        image_size=args.image_size,
        patch_size=args.patch_size,
        num_channels=3,
        hidden_size=args.hidden_size,
        num_hidden_layers=args.num_hidden_layers,
        num_attention_heads=args.num_attention_heads,
        intermediate_size=args.intermediate_size,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        initializer_range=args.initializer_range,
        **_attention_kwargs(args),
        **_label_kwargs(label_names),
    )
    kwargs = {"attn_implementation": args.attn_implementation} if args.attn_implementation else {}
    return RobAttrViTForImageClassification._from_config(config, **kwargs)


def build_bert_classifier(args: TextModelArguments, *, label_names: list[str], tokenizer: Any) -> PreTrainedModel:
    """A ``RobAttrBertForSequenceClassification``: from a BERT checkpoint (attention swapped, new head) or a tiny
    one from scratch whose vocabulary is ``tokenizer``'s."""
    if args.model_name_or_path is not None:
        return RobAttrBertForSequenceClassification.from_pretrained(
            args.model_name_or_path,
            ignore_mismatched_sizes=True,
            **_attention_kwargs(args),
            **_label_kwargs(label_names),
            **_load_kwargs(args),
        )
    config = RobAttrBertConfig(
        vocab_size=len(tokenizer),
        hidden_size=args.hidden_size,
        num_hidden_layers=args.num_hidden_layers,
        num_attention_heads=args.num_attention_heads,
        intermediate_size=args.intermediate_size,
        max_position_embeddings=args.max_position_embeddings,
        pad_token_id=tokenizer.pad_token_id,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        initializer_range=args.initializer_range,
        **_attention_kwargs(args),
        **_label_kwargs(label_names),
    )
    kwargs = {"attn_implementation": args.attn_implementation} if args.attn_implementation else {}
    return RobAttrBertForSequenceClassification._from_config(config, **kwargs)


def load_image_processor(args: VisionModelArguments) -> Any:
    """The checkpoint's image processor, or (from scratch, or a checkpoint without one) a ``ViTImageProcessor``
    that resizes to the model's ``image_size`` and maps ``[0, 1]`` to ``[-1, 1]``, matching the recipes' own
    transform."""
    image_size = args.image_size
    if args.model_name_or_path is not None:
        try:
            return AutoImageProcessor.from_pretrained(args.model_name_or_path, cache_dir=args.cache_dir)
        except OSError:
            config = AutoConfig.from_pretrained(args.model_name_or_path, cache_dir=args.cache_dir)
            image_size = getattr(config, "image_size", image_size)
    return ViTImageProcessorPil(
        size={"height": image_size, "width": image_size},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )


def load_tokenizer(args: TextModelArguments) -> Any:
    """The checkpoint's tokenizer, or the offline tokenizer of the embedded sentiment vocabulary."""
    if args.model_name_or_path is not None:
        return AutoTokenizer.from_pretrained(args.model_name_or_path, cache_dir=args.cache_dir)
    return build_offline_tokenizer(model_max_length=args.max_position_embeddings)
