"""Data arguments of the recipes: which dataset, which columns and splits, how much of it."""

from __future__ import annotations

from dataclasses import dataclass, field

from hf_robattr.attribution.argument_checks import check_range, check_types


__all__ = ["DataArguments", "ImageDataArguments", "TextDataArguments"]


@dataclass
class DataArguments:
    """Which data to train and evaluate on. ``dataset_name`` is an embedded set or a Hub/local dataset."""

    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "Embedded set (digits, synthetic_images, synthetic_sentiment) or Hub id, e.g. uoft-cs/cifar10."
        },
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "Dataset configuration (Hub)."})
    dataset_num_examples: int | None = field(
        default=None,
        metadata={"help": "Size of a generated set (synthetic_images, synthetic_sentiment); default: its own."},
    )
    label_column: str | None = field(
        default=None, metadata={"help": "Column with class labels (default: label or labels)."}
    )
    train_split_name: str = field(default="train", metadata={"help": "Split to train on."})
    validation_split_name: str | None = field(
        default="validation", metadata={"help": "Validation split (carved from train if absent)."}
    )
    test_split_name: str | None = field(
        default="test", metadata={"help": "Split for the final evaluation (carved from train if absent)."}
    )
    validation_fraction: float = field(
        default=0.1, metadata={"help": "Fraction of train carved out for each missing split."}
    )
    split_seed: int | None = field(
        default=None,
        metadata={
            "help": "Seed of the generated sets and carved splits (default: --seed), to fix the data across runs."
        },
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Truncate the training set (debugging, quick runs)."}
    )
    max_eval_samples: int | None = field(default=None, metadata={"help": "Truncate the validation and test sets."})

    def __post_init__(self) -> None:
        check_types(self)
        if not self.dataset_name:
            raise ValueError("--dataset_name must name a dataset (an embedded set or a Hub/local dataset).")
        check_range("--validation_fraction", self.validation_fraction, above=0, below=0.5)
        check_range("--dataset_num_examples", self.dataset_num_examples, minimum=20)
        check_range("--split_seed", self.split_seed, minimum=0)
        check_range("--max_train_samples", self.max_train_samples, minimum=1)
        check_range("--max_eval_samples", self.max_eval_samples, minimum=1)


@dataclass
class ImageDataArguments(DataArguments):
    """Image data: which column holds the images."""

    dataset_name: str | None = field(
        default="synthetic_images",
        metadata={"help": "Embedded set (synthetic_images, digits) or Hub id, e.g. uoft-cs/cifar10."},
    )
    image_column: str | None = field(
        default=None, metadata={"help": "Column with images (default: image, img or pixel_values)."}
    )


@dataclass
class TextDataArguments(DataArguments):
    """Text data: which column holds the text and how long sequences may be."""

    dataset_name: str | None = field(
        default="synthetic_sentiment",
        metadata={"help": "Embedded set (synthetic_sentiment) or Hub id, e.g. stanfordnlp/sst2."},
    )
    text_column: str | None = field(
        default=None, metadata={"help": "Column with text (default: sentence, text, ...)."}
    )
    max_seq_length: int = field(default=64, metadata={"help": "Truncate tokenised inputs to this length."})

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("--max_seq_length", self.max_seq_length, minimum=1)
