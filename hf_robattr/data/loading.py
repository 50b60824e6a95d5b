"""Load a dataset by name (embedded offline default or Hugging Face Hub) and check its columns.

Every loader returns a :class:`datasets.DatasetDict` with exactly the splits ``train``, ``validation`` and
``test``. Missing validation or test splits are carved out of ``train`` with a seeded split, so the splits are
fixed for a given seed.
"""

from __future__ import annotations

from collections.abc import Sequence

from datasets import ClassLabel, Dataset, DatasetDict, load_dataset

from .embedded import EMBEDDED_DATASETS, GENERATED_DATASETS, load_embedded_dataset


__all__ = [
    "IMAGE_COLUMN_CANDIDATES",
    "TEXT_COLUMN_CANDIDATES",
    "label_names",
    "load_classification_dataset",
    "resolve_column",
    "standardize_splits",
    "truncate_dataset",
]

IMAGE_COLUMN_CANDIDATES = ("image", "img", "pixel_values")
TEXT_COLUMN_CANDIDATES = ("sentence", "text", "content", "review", "sentence1")


def resolve_column(
    dataset: Dataset, column: str | None, *, argument: str, candidates: Sequence[str] = (), purpose: str
) -> str:
    """Return the column to use for ``purpose``, or raise a ``ValueError`` that names the argument to set.

    ``column`` is what the user asked for (``None`` means: take the first of ``candidates`` that exists).
    """
    available = list(dataset.column_names)
    if column is not None:
        if column not in available:
            raise ValueError(
                f"{argument}={column!r} is not a column of the dataset; it has the columns {available}. "
                f"Pass {argument} with the column that holds the {purpose}."
            )
        return column
    for candidate in candidates:
        if candidate in available:
            return candidate
    raise ValueError(
        f"Could not find the {purpose} column: none of {list(candidates)} is among the dataset's columns "
        f"{available}. Pass {argument} to name it."
    )


def _check_labels(dataset: DatasetDict, label_column: str | None) -> str:
    """Check that every split has a label column with real labels; return the column's name."""
    train = dataset["train"]
    if label_column is None:
        label_column = "label" if "label" in train.column_names else "labels"
    if label_column not in train.column_names:
        raise ValueError(
            f"--label_column={label_column!r} is not a column of the dataset (columns: {train.column_names}). "
            "The recipes train classifiers and need labelled data: pass --label_column with the column that "
            "holds the class labels."
        )
    for split, part in dataset.items():
        if label_column not in part.column_names:
            raise ValueError(f"Split {split!r} has no label column {label_column!r} (columns: {part.column_names}).")
        if len(part) and all(label is None or label < 0 for label in part[label_column][:1000]):
            raise ValueError(
                f"Split {split!r} has no labels: its column {label_column!r} holds only -1/None (Hub test splits "
                "are often unlabelled). Choose a labelled split with --test_split_name / --validation_split_name."
            )
    return label_column


def standardize_splits(
    dataset: DatasetDict,
    *,
    train_split: str = "train",
    validation_split: str | None = "validation",
    test_split: str | None = "test",
    validation_fraction: float = 0.1,
    seed: int = 0,
) -> DatasetDict:
    """Rename/carve splits so the result has exactly ``train``, ``validation`` and ``test``.

    ``train_split`` must exist. A split given as ``None`` or absent from the dataset is carved out
    of ``train`` (``validation_fraction`` of it each), with a seeded shuffle.
    """
    if train_split not in dataset:
        raise ValueError(f"--train_split_name={train_split!r} is not a split of the dataset; it has {list(dataset)}.")
    train = dataset[train_split]
    parts: dict[str, Dataset] = {}
    for target, source in (("test", test_split), ("validation", validation_split)):
        if source is not None and source in dataset and source != train_split:
            parts[target] = dataset[source]
        else:
            carved = train.train_test_split(test_size=validation_fraction, seed=seed)
            train, parts[target] = carved["train"], carved["test"]
    return DatasetDict({"train": train, "validation": parts["validation"], "test": parts["test"]})


def load_classification_dataset(
    dataset_name: str,
    *,
    dataset_config_name: str | None = None,
    input_column: str | None = None,
    input_argument: str = "--image_column",
    input_candidates: Sequence[str] = IMAGE_COLUMN_CANDIDATES,
    input_purpose: str = "images",
    label_column: str | None = None,
    train_split: str = "train",
    validation_split: str | None = "validation",
    test_split: str | None = "test",
    validation_fraction: float = 0.1,
    cache_dir: str | None = None,
    num_examples: int | None = None,
    seed: int = 0,
) -> tuple[DatasetDict, str, str]:
    """Load a classification dataset by name and resolve its input and label columns.

    ``dataset_name`` is either an embedded dataset (see :data:`~hf_robattr.data.EMBEDDED_DATASETS`), a local
    directory/file understood by :func:`datasets.load_dataset`, or a Hub id such as ``uoft-cs/cifar10``.

    ``num_examples`` sets the size of a generated embedded set (``synthetic_images``, ``synthetic_sentiment``;
    default: the builder's own); other datasets have a fixed size and refuse it.

    Returns ``(splits, input_column, label_column)``, where ``splits`` has ``train``/``validation``/``test``.
    Raises ``ValueError`` naming the argument to fix when a column or labels are missing.
    """
    if num_examples is not None and dataset_name not in GENERATED_DATASETS:
        raise ValueError(
            f"--dataset_num_examples sets the size of a generated set ({', '.join(GENERATED_DATASETS)}); "
            f"--dataset_name {dataset_name!r} has a fixed size. Use --max_train_samples to train on fewer examples."
        )
    if dataset_name in EMBEDDED_DATASETS:
        options = {} if num_examples is None else {"num_examples": num_examples}
        raw = load_embedded_dataset(dataset_name, seed=seed, **options)
    else:
        raw = load_dataset(dataset_name, dataset_config_name, cache_dir=cache_dir)
        if isinstance(raw, Dataset):
            raw = DatasetDict({"train": raw})
    splits = standardize_splits(
        raw,
        train_split=train_split,
        validation_split=validation_split,
        test_split=test_split,
        validation_fraction=validation_fraction,
        seed=seed,
    )
    input_column = resolve_column(
        splits["train"], input_column, argument=input_argument, candidates=input_candidates, purpose=input_purpose
    )
    label_column = _check_labels(splits, label_column)
    return splits, input_column, label_column


def truncate_dataset(dataset: Dataset, limit: int | None) -> Dataset:
    """The first ``limit`` examples of ``dataset`` (all of them for ``None`` or a limit past its end)."""
    return dataset if limit is None or limit >= len(dataset) else dataset.select(range(limit))


def label_names(dataset: Dataset, label_column: str) -> list[str]:
    """Class names from a ``ClassLabel`` feature, else the sorted distinct label values as strings."""
    feature = dataset.features[label_column]
    if isinstance(feature, ClassLabel):
        return list(feature.names)
    return [str(value) for value in sorted(set(dataset[label_column]))]
