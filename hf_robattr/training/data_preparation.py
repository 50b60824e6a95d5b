"""Turn the data arguments into train/validation/test datasets that yield model inputs, with their collator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from datasets import Dataset
from transformers import default_data_collator

from hf_robattr.data import (
    MASK_COLUMN,
    RATIONALE_COLUMN,
    TEXT_COLUMN_CANDIDATES,
    DataCollatorWithAnnotations,
    ImageClassificationTransform,
    TextClassificationTransform,
    label_names,
    load_classification_dataset,
    model_inputs,
    truncate_dataset,
)

from .data_arguments import DataArguments, ImageDataArguments, TextDataArguments


__all__ = ["PreparedData", "prepare_image_data", "prepare_text_data"]


@dataclass
class PreparedData:
    """Train/validation/test datasets that yield model inputs (``labels`` included), the collator that batches
    them, the class names, and the pre-processor saved with the model (image processor or tokenizer).

    Where the dataset has ground truth for attributions, the examples also carry it (:data:`~hf_robattr.data.
    ANNOTATION_KEYS`: ``masks`` from a ``mask`` column, ``rationale_mask`` from a ``rationale`` column), batched by
    the collator; :func:`~hf_robattr.data.model_inputs` drops them, and so does the trainer.
    """

    train: Dataset
    validation: Dataset
    test: Dataset
    label_names: list[str]
    collator: Callable[[list[dict[str, Any]]], dict[str, Any]]
    processor: Any
    dataset_name: str
    dataset_config_name: str | None = None

    def sample_inputs(self, num_examples: int = 4, split: str = "test") -> torch.Tensor | dict[str, torch.Tensor]:
        """The model inputs of the first ``num_examples`` of ``split``: pixel values ``[N, C, H, W]`` for images,
        a tokenized mapping (``input_ids``, ``attention_mask``, ...) for text. Labels and annotations dropped."""
        dataset = getattr(self, split)
        inputs = model_inputs(self.collator([dataset[i] for i in range(min(num_examples, len(dataset)))]))
        return inputs.get("pixel_values", inputs)


def _load(data_args: DataArguments, seed: int, **columns: Any) -> tuple[Any, str, str]:
    return load_classification_dataset(
        data_args.dataset_name,
        dataset_config_name=data_args.dataset_config_name,
        label_column=data_args.label_column,
        train_split=data_args.train_split_name,
        validation_split=data_args.validation_split_name,
        test_split=data_args.test_split_name,
        validation_fraction=data_args.validation_fraction,
        num_examples=data_args.dataset_num_examples,
        seed=seed,
        **columns,
    )


def _limits(data_args: DataArguments) -> dict[str, int | None]:
    return {
        "train": data_args.max_train_samples,
        "validation": data_args.max_eval_samples,
        "test": data_args.max_eval_samples,
    }


def prepare_image_data(
    data_args: ImageDataArguments,
    *,
    image_size: int,
    image_processor: Any = None,
    transform_with_processor: bool = True,
    seed: int = 0,
    num_channels: int = 3,
) -> PreparedData:
    """Load ``data_args.dataset_name`` and attach the image transform (``pixel_values``, ``labels``) to each split.

    With ``image_processor`` (a checkpoint's own) and ``transform_with_processor``, the processor resizes and
    normalises; otherwise the built-in transform does (resize to ``image_size``, map ``[0, 1]`` to ``[-1, 1]``),
    which the processor of a from-scratch model mirrors. Either way the pixels have the model's ``num_channels``
    (1: grayscale, see :func:`~hf_robattr.data.processed_pixels`). ``image_processor`` is kept as the data's
    ``processor`` (saved with the model). ``seed`` fixes generated sets and carved splits. The image columns stay
    encoded and the transformed tensors are memoised (see
    :meth:`~hf_robattr.data.ImageClassificationTransform.attach`), so later epochs and runs in the process do not
    decode or transform an image again.
    """
    splits, image_column, label_column = _load(data_args, seed, input_column=data_args.image_column)
    transform = ImageClassificationTransform(
        image_column=image_column,
        label_column=label_column,
        image_size=image_size,
        num_channels=num_channels,
        image_processor=image_processor if transform_with_processor else None,
        mask_column=MASK_COLUMN if MASK_COLUMN in splits["train"].column_names else None,
    )
    parts = {
        split: transform.attach(truncate_dataset(splits[split], limit)) for split, limit in _limits(data_args).items()
    }
    return PreparedData(
        **parts,
        label_names=label_names(splits["train"], label_column),
        collator=default_data_collator,
        processor=image_processor,
        dataset_name=data_args.dataset_name,
        dataset_config_name=data_args.dataset_config_name,
    )


def prepare_text_data(data_args: TextDataArguments, *, tokenizer: Any, seed: int = 0) -> PreparedData:
    """Load ``data_args.dataset_name`` and tokenise every split (``input_ids``, ``attention_mask``, ``labels``),
    padded per batch by a ``DataCollatorWithPadding``. ``--max_seq_length`` must leave room for one token beside
    the tokenizer's special tokens."""
    special = tokenizer.num_special_tokens_to_add(pair=False)
    if data_args.max_seq_length <= special:
        raise ValueError(
            f"--max_seq_length ({data_args.max_seq_length}) must be > {special}: the tokenizer adds {special} "
            "special tokens to every text."
        )
    splits, text_column, label_column = _load(
        data_args,
        seed,
        input_column=data_args.text_column,
        input_argument="--text_column",
        input_candidates=TEXT_COLUMN_CANDIDATES,
        input_purpose="text",
    )
    transform = TextClassificationTransform(
        tokenizer,
        text_column=text_column,
        label_column=label_column,
        max_seq_length=data_args.max_seq_length,
        rationale_column=RATIONALE_COLUMN if RATIONALE_COLUMN in splits["train"].column_names else None,
    )
    parts = {}
    for split, limit in _limits(data_args).items():
        part = truncate_dataset(splits[split], limit)
        parts[split] = part.map(transform, batched=True, remove_columns=part.column_names, desc=f"Tokenizing {split}")
    return PreparedData(
        **parts,
        label_names=label_names(splits["train"], label_column),
        collator=DataCollatorWithAnnotations(tokenizer),
        processor=tokenizer,
        dataset_name=data_args.dataset_name,
        dataset_config_name=data_args.dataset_config_name,
    )
