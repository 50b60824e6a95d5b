"""Dataset loading by name: split standardisation and the column checks (on local Datasets, no network)."""

import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, Value

from hf_robattr.data import (
    TEXT_COLUMN_CANDIDATES,
    label_names,
    load_classification_dataset,
    resolve_column,
    standardize_splits,
)


def text_dataset(n=40, label_values=None, with_labels=True):
    data = {"text": [f"example {i}" for i in range(n)]}
    if with_labels:
        data["label"] = label_values if label_values is not None else [i % 2 for i in range(n)]
    return Dataset.from_dict(data)


def test_missing_splits_are_carved_from_train_with_a_seed():
    splits = standardize_splits(DatasetDict({"train": text_dataset(100)}), seed=0)
    assert [len(splits[s]) for s in ("train", "validation", "test")] == [81, 9, 10]
    again = standardize_splits(DatasetDict({"train": text_dataset(100)}), seed=0)
    assert splits["test"]["text"] == again["test"]["text"]


def test_existing_splits_are_kept_and_renamed():
    raw = DatasetDict({"train": text_dataset(20), "dev": text_dataset(5), "test": text_dataset(6)})
    splits = standardize_splits(raw, validation_split="dev")
    assert [len(splits[s]) for s in ("train", "validation", "test")] == [20, 5, 6]


def test_unknown_train_split_is_named():
    with pytest.raises(ValueError, match="--train_split_name='training'"):
        standardize_splits(DatasetDict({"train": text_dataset()}), train_split="training")


def test_input_column_autodetected_or_named():
    data = text_dataset()
    assert (
        resolve_column(data, None, argument="--text_column", candidates=TEXT_COLUMN_CANDIDATES, purpose="text")
        == "text"
    )
    with pytest.raises(ValueError, match=r"--text_column='review' is not a column.*\['text', 'label'\]"):
        resolve_column(data, "review", argument="--text_column", purpose="text")
    with pytest.raises(ValueError, match=r"none of \['image', 'img'\].*Pass --image_column"):
        resolve_column(data, None, argument="--image_column", candidates=("image", "img"), purpose="images")


def save_local(tmp_path, dataset_dict):
    path = tmp_path / "local_dataset"
    for split, part in dataset_dict.items():
        part.to_json(str(path / f"{split}.jsonl"))
    return str(path)


def load_text(name, **kwargs):
    return load_classification_dataset(
        name,
        input_argument="--text_column",
        input_candidates=TEXT_COLUMN_CANDIDATES,
        input_purpose="text",
        **kwargs,
    )


def test_local_dataset_by_path_loads_with_columns(tmp_path):
    path = save_local(tmp_path, {"train": text_dataset(30), "test": text_dataset(10)})
    splits, text_column, label_column = load_text(path)
    assert (text_column, label_column) == ("text", "label")
    assert len(splits["test"]) == 10


def test_dataset_without_labels_fails_naming_label_column(tmp_path):
    path = save_local(tmp_path, {"train": text_dataset(30, with_labels=False)})
    with pytest.raises(ValueError, match=r"--label_column='label'.*needs? labelled data|labelled data"):
        load_text(path)


def test_unlabelled_test_split_fails_naming_the_split(tmp_path):
    path = save_local(tmp_path, {"train": text_dataset(30), "test": text_dataset(10, label_values=[-1] * 10)})
    with pytest.raises(ValueError, match=r"Split 'test' has no labels.*--test_split_name"):
        load_text(path)


def test_missing_input_column_in_hub_style_dataset(tmp_path):
    path = save_local(tmp_path, {"train": text_dataset(30)})
    with pytest.raises(ValueError, match="--image_column"):
        load_classification_dataset(path)


def test_label_names_from_classlabel_or_values():
    features = Features({"image": Image(), "label": ClassLabel(names=["cat", "dog"])})
    assert label_names(Dataset.from_dict({"image": [], "label": []}, features=features), "label") == ["cat", "dog"]
    plain = Dataset.from_dict(
        {"x": [1, 2, 3], "y": [3, 1, 3]}, features=Features({"x": Value("int32"), "y": Value("int32")})
    )
    assert label_names(plain, "y") == ["1", "3"]
