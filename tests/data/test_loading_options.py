"""Size of the generated sets, truncation, and the one filter of model inputs in a collated batch."""

import pytest
import torch

from hf_robattr.data import (
    ANNOTATION_KEYS,
    GENERATED_DATASETS,
    load_classification_dataset,
    make_synthetic_images,
    model_inputs,
    truncate_dataset,
)


@pytest.mark.parametrize("name", GENERATED_DATASETS)
def test_num_examples_reaches_the_generated_set(name):
    candidates = ("sentence",) if name == "synthetic_sentiment" else ("image",)
    splits, _, _ = load_classification_dataset(name, input_candidates=candidates, num_examples=60, seed=3)
    assert sum(len(part) for part in splits.values()) == 60


def test_generated_images_match_the_builder():
    splits, _, _ = load_classification_dataset("synthetic_images", num_examples=40, seed=3)
    direct = make_synthetic_images(num_examples=40, seed=3)
    assert splits["test"]["label"] == direct["test"]["label"]


def test_a_fixed_size_set_refuses_num_examples():
    with pytest.raises(ValueError, match=r"--dataset_num_examples .*'digits' has a fixed size"):
        load_classification_dataset("digits", num_examples=100)


@pytest.mark.parametrize(("limit", "size"), [(None, 5), (3, 3), (5, 5), (50, 5)])  # test split: 10% of 50
def test_truncate_dataset(limit, size):
    splits, _, _ = load_classification_dataset("synthetic_images", num_examples=50, seed=0)
    part = truncate_dataset(splits["test"], limit)
    assert len(part) == size and part["label"] == splits["test"]["label"][:size]


def test_model_inputs_drops_labels_and_annotations():
    batch = {"pixel_values": torch.ones(2, 3), "labels": torch.tensor([0, 1]), "note": ["a", "b"]}
    batch |= {key: torch.zeros(2, 3) for key in ANNOTATION_KEYS}
    assert set(model_inputs(batch)) == {"pixel_values"}
    assert set(model_inputs(batch, labels=True)) == {"pixel_values", "labels"}
