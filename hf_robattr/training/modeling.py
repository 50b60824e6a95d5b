"""Build the models and pre-processors the recipes train: a tiny one from scratch, or any ViT/BERT checkpoint."""

from __future__ import annotations

from typing import Any

from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer, PreTrainedModel, ViTImageProcessorPil

from hf_robattr.attribution.inputs import SPECIAL_TOKEN_ID_FIELDS
from hf_robattr.data import build_offline_tokenizer
from hf_robattr.models import (
    RobAttrBertConfig,
    RobAttrBertForSequenceClassification,
    RobAttrViTConfig,
    RobAttrViTForImageClassification,
)

from .model_arguments import ModelArguments, TextModelArguments, VisionModelArguments


__all__ = [
    "build_bert_classifier",
    "build_classifier",
    "build_vit_classifier",
    "load_image_processor",
    "load_processor",
    "load_tokenizer",
    "name_special_tokens",
]


def _label_kwargs(label_names: list[str]) -> dict[str, Any]:
    return {
        "num_labels": len(label_names),
        "id2label": dict(enumerate(label_names)),
        "label2id": {name: i for i, name in enumerate(label_names)},
    }


def _attention_kwargs(args: ModelArguments) -> dict[str, Any]:
    """The attention settings given (unset ones keep the checkpoint's, or the config's defaults from scratch)."""
    chosen = {"attention_type": args.attention_type, "kernel_feature_map": args.kernel_feature_map}
    return {name: value for name, value in chosen.items() if value is not None}


def _implementation_kwargs(args: ModelArguments) -> dict[str, Any]:
    return {"attn_implementation": args.attn_implementation} if args.attn_implementation else {}


def _from_checkpoint(cls: type[PreTrainedModel], args: ModelArguments, label_names: list[str]) -> PreTrainedModel:
    """``cls`` from ``args.model_name_or_path`` with the attention swapped and a new head when the labels differ."""
    return cls.from_pretrained(
        args.model_name_or_path,
        ignore_mismatched_sizes=True,
        cache_dir=args.cache_dir,
        trust_remote_code=args.trust_remote_code,
        **_attention_kwargs(args),
        **_label_kwargs(label_names),
        **_implementation_kwargs(args),
    )


def _scratch_kwargs(args: ModelArguments, label_names: list[str]) -> dict[str, Any]:
    """The config fields every from-scratch model takes from the arguments (no dropout: the regimes differ only in
    their optimizer and regularizer)."""
    return {
        "hidden_size": args.hidden_size,
        "num_hidden_layers": args.num_hidden_layers,
        "num_attention_heads": args.num_attention_heads,
        "intermediate_size": args.intermediate_size,
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "initializer_range": args.initializer_range,
        **_attention_kwargs(args),
        **_label_kwargs(label_names),
    }


def build_vit_classifier(args: VisionModelArguments, *, label_names: list[str]) -> PreTrainedModel:
    """A ``RobAttrViTForImageClassification``: from ``args.model_name_or_path`` (any ViT checkpoint, attention
    swapped to ``args.attention_type``, new classifier head when the labels differ) or a tiny one from scratch."""
    if args.model_name_or_path is not None:
        return _from_checkpoint(RobAttrViTForImageClassification, args, label_names)
    config = RobAttrViTConfig(
        image_size=args.image_size, patch_size=args.patch_size, num_channels=3, **_scratch_kwargs(args, label_names)
    )
    return RobAttrViTForImageClassification._from_config(config, **_implementation_kwargs(args))


def build_bert_classifier(args: TextModelArguments, *, label_names: list[str], tokenizer: Any) -> PreTrainedModel:
    """A ``RobAttrBertForSequenceClassification``: from a BERT checkpoint (attention swapped, new head) or a tiny
    one from scratch whose vocabulary is ``tokenizer``'s. Either way its config names ``tokenizer``'s special token
    ids (:func:`name_special_tokens`), saved with the model, so robustness scores leave [CLS]/[SEP] out."""
    if args.model_name_or_path is not None:
        model = _from_checkpoint(RobAttrBertForSequenceClassification, args, label_names)
    else:
        config = RobAttrBertConfig(
            vocab_size=len(tokenizer),
            max_position_embeddings=args.max_position_embeddings,
            pad_token_id=tokenizer.pad_token_id,
            **_scratch_kwargs(args, label_names),
        )
        model = RobAttrBertForSequenceClassification._from_config(config, **_implementation_kwargs(args))
    name_special_tokens(model.config, tokenizer)
    return model


def name_special_tokens(config: Any, tokenizer: Any) -> None:
    """Set ``config``'s ``cls_token_id`` / ``sep_token_id`` / ``bos_token_id`` / ``eos_token_id`` / ``pad_token_id``
    from ``tokenizer`` where the config leaves them unset (BERT configs name only ``pad_token_id``): the ids that
    ``prepare_inputs`` reads to tell word tokens from special tokens."""
    for name in SPECIAL_TOKEN_ID_FIELDS:
        value = getattr(tokenizer, name, None)
        if getattr(config, name, None) is None and isinstance(value, int):
            setattr(config, name, value)


def load_image_processor(args: VisionModelArguments) -> Any:
    """The checkpoint's image processor, or (from scratch, or a checkpoint without one) a ``ViTImageProcessor``
    that resizes to the model's ``image_size`` and maps ``[0, 1]`` to ``[-1, 1]`` in each of its ``num_channels``,
    matching the recipes' own transform."""
    image_size, channels = args.image_size, 3
    if args.model_name_or_path is not None:
        try:
            return AutoImageProcessor.from_pretrained(args.model_name_or_path, cache_dir=args.cache_dir)
        except OSError:
            config = AutoConfig.from_pretrained(args.model_name_or_path, cache_dir=args.cache_dir)
            image_size = getattr(config, "image_size", image_size)
            channels = getattr(config, "num_channels", channels)
    return ViTImageProcessorPil(
        size={"height": image_size, "width": image_size},
        image_mean=[0.5] * channels,
        image_std=[0.5] * channels,
    )


def load_tokenizer(args: TextModelArguments) -> Any:
    """``--tokenizer_name``'s tokenizer, else the checkpoint's, else (from scratch) the offline tokenizer of the
    embedded sentiment vocabulary."""
    name = args.tokenizer_name or args.model_name_or_path
    if name is not None:
        return AutoTokenizer.from_pretrained(name, cache_dir=args.cache_dir)
    return build_offline_tokenizer(model_max_length=args.max_position_embeddings)


def load_processor(args: ModelArguments) -> Any:
    """The pre-processor of the run's modality: :func:`load_image_processor` or :func:`load_tokenizer`."""
    if isinstance(args, VisionModelArguments):
        return load_image_processor(args)
    if isinstance(args, TextModelArguments):
        return load_tokenizer(args)
    raise TypeError(f"model arguments must be VisionModelArguments or TextModelArguments, got {type(args).__name__}.")


def build_classifier(args: ModelArguments, *, label_names: list[str], processor: Any) -> PreTrainedModel:
    """The classifier of the run's modality: :func:`build_vit_classifier` for :class:`VisionModelArguments`,
    :func:`build_bert_classifier` (vocabulary from the tokenizer ``processor``) for :class:`TextModelArguments`."""
    if isinstance(args, VisionModelArguments):
        return build_vit_classifier(args, label_names=label_names)
    if isinstance(args, TextModelArguments):
        return build_bert_classifier(args, label_names=label_names, tokenizer=processor)
    raise TypeError(f"model arguments must be VisionModelArguments or TextModelArguments, got {type(args).__name__}.")
