"""Study data: the train/test splits a run needs, built once per worker process and cached.

The embedded generated sets are built larger than their library defaults (``StudySettings.num_images`` /
``num_sentences``) so that at least ``eval_examples`` test examples are classified correctly. Any other name is
loaded through :func:`hf_robattr.data.load_classification_dataset` (embedded or Hub).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from datasets import Dataset
from transformers import AutoTokenizer, DataCollatorWithPadding, default_data_collator

from hf_robattr.data import (
    IMAGE_COLUMN_CANDIDATES,
    TEXT_COLUMN_CANDIDATES,
    ImageClassificationTransform,
    TextClassificationTransform,
    build_offline_tokenizer,
    label_names,
    load_classification_dataset,
    load_embedded_dataset,
)

from .grid import StudySettings


__all__ = ["StudyData", "load_study_data"]

# Embedded sets whose size the study chooses: name -> (input column, settings field with the size).
_SIZED = {"synthetic_images": ("image", "num_images"), "synthetic_sentiment": ("sentence", "num_sentences")}


@dataclass
class StudyData:
    """Train and test splits that yield model inputs, their collator, class names and (text) the tokenizer."""

    train: Dataset
    test: Dataset
    collator: Any
    label_names: list[str]
    dataset_name: str
    tokenizer: Any = None


def _splits(name: str, settings: StudySettings, candidates: tuple[str, ...], argument: str, purpose: str):
    if name in _SIZED:
        column, size_field = _SIZED[name]
        return load_embedded_dataset(name, seed=0, num_examples=getattr(settings, size_field)), column, "label"
    return load_classification_dataset(
        name,
        input_column=None,
        input_argument=argument,
        input_candidates=candidates,
        input_purpose=purpose,
        seed=0,
    )


def _truncate(dataset: Dataset, limit: int | None) -> Dataset:
    return dataset if limit is None or limit >= len(dataset) else dataset.select(range(limit))


@functools.lru_cache(maxsize=4)
def load_study_data(model: str, settings: StudySettings, dataset_name: str | None = None) -> StudyData:
    """The data of ``model`` (``vit``: images, ``bert``: text) under ``settings``; ``dataset_name`` overrides
    the settings' dataset. Splits are fixed (seed 0) whatever the run's seed; cached per process."""
    if model == "vit":
        name = dataset_name or settings.image_dataset
        splits, column, label_column = _splits(name, settings, IMAGE_COLUMN_CANDIDATES, "--dataset_name", "images")
        transform = ImageClassificationTransform(
            image_column=column, label_column=label_column, image_size=settings.image_size
        )
        train = _truncate(splits["train"], settings.max_train_samples).with_transform(transform)
        test = splits["test"].with_transform(transform)
        return StudyData(train, test, default_data_collator, label_names(splits["train"], label_column), name)
    if model == "bert":
        name = dataset_name or settings.text_dataset
        splits, column, label_column = _splits(name, settings, TEXT_COLUMN_CANDIDATES, "--dataset_name", "text")
        if settings.text_tokenizer is None:
            tokenizer = build_offline_tokenizer(model_max_length=settings.max_seq_length)
        else:
            tokenizer = AutoTokenizer.from_pretrained(settings.text_tokenizer)
        transform = TextClassificationTransform(
            tokenizer, text_column=column, label_column=label_column, max_seq_length=settings.max_seq_length
        )
        parts = {}
        for split in ("train", "test"):
            part = splits[split] if split == "test" else _truncate(splits[split], settings.max_train_samples)
            parts[split] = part.map(transform, batched=True, remove_columns=part.column_names)
        names = label_names(splits["train"], label_column)
        return StudyData(parts["train"], parts["test"], DataCollatorWithPadding(tokenizer), names, name, tokenizer)
    raise ValueError(f"Unknown model {model!r}; expected 'vit' or 'bert'.")
