"""Embedded offline datasets: fixed splits, masks/rationales that mark the class evidence, transforms."""

import numpy as np
import pytest
import torch

from hf_robattr.data import (
    SENTIMENT_NEGATIVE_WORDS,
    SENTIMENT_POSITIVE_WORDS,
    ImageClassificationTransform,
    TextClassificationTransform,
    build_offline_tokenizer,
    load_embedded_dataset,
    make_digits,
    make_synthetic_images,
    make_synthetic_sentiment,
)


@pytest.fixture(scope="module")
def images():
    return make_synthetic_images(num_examples=200, seed=0)


def test_splits_are_fixed_and_disjoint(images):
    again = make_synthetic_images(num_examples=200, seed=0)
    assert list(images) == ["train", "validation", "test"]
    assert [len(images[s]) for s in images] == [160, 20, 20]
    for split in images:
        assert np.array_equal(np.asarray(images[split][0]["image"]), np.asarray(again[split][0]["image"]))
    other = make_synthetic_images(num_examples=200, seed=1)
    assert not np.array_equal(np.asarray(images["train"][0]["image"]), np.asarray(other["train"][0]["image"]))


def test_synthetic_images_have_masks_over_the_class_texture(images):
    example = images["train"][0]
    image, mask = np.asarray(example["image"]), np.asarray(example["mask"])
    assert image.shape == (32, 32, 3) and mask.shape == (32, 32)
    rows, cols = np.nonzero(mask)
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (8, 8)
    assert rows.min() % 4 == 0 and cols.min() % 4 == 0  # on the ViT patch grid
    assert set(images["train"]["label"]) == {0, 1, 2, 3}


def test_image_transform_outputs_normalised_pixels_and_masks(images):
    transform = ImageClassificationTransform(image_size=16, mask_column="mask")
    out = images["train"].with_transform(transform)[:2]
    assert out["pixel_values"][0].shape == (3, 16, 16)
    assert float(out["pixel_values"][0].min()) >= -1.0 and float(out["pixel_values"][0].max()) <= 1.0
    assert out["masks"][0].shape == (16, 16) and float(out["masks"][0].sum()) == 16.0  # 8x8 -> 4x4
    assert out["labels"] == images["train"]["label"][:2]


def test_digits_are_real_images_with_ten_classes():
    digits = make_digits()
    assert sum(len(digits[s]) for s in digits) == 1797
    assert digits["train"].features["label"].num_classes == 10
    pixels = ImageClassificationTransform(image_size=32)({"image": [digits["test"][0]["image"]], "label": [0]})
    assert pixels["pixel_values"][0].shape == (3, 32, 32)


def test_sentiment_rationales_point_at_sentiment_words():
    data = make_synthetic_sentiment(num_examples=100)
    for example in data["train"].select(range(20)):
        words = example["sentence"].split(" ")
        lexicon = SENTIMENT_POSITIVE_WORDS if example["label"] == 1 else SENTIMENT_NEGATIVE_WORDS
        assert example["rationale"] and all(words[i] in lexicon for i in example["rationale"])


def test_offline_tokenizer_and_token_level_rationale():
    tokenizer = build_offline_tokenizer()
    data = make_synthetic_sentiment(num_examples=50)["train"].select(range(4))
    transform = TextClassificationTransform(tokenizer, rationale_column="rationale")
    encoded = data.map(transform, batched=True, remove_columns=data.column_names)
    for example, raw in zip(encoded, data):
        assert tokenizer.unk_token_id not in example["input_ids"]  # every word is in the vocabulary
        marked = [
            tokenizer.convert_ids_to_tokens(t) for t, m in zip(example["input_ids"], example["rationale_mask"]) if m
        ]
        words = raw["sentence"].split(" ")
        assert marked == [words[i] for i in raw["rationale"]]
        assert example["labels"] == raw["label"]


def test_unknown_embedded_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="synthetic_images"):
        load_embedded_dataset("cifar")


def test_embedded_options_reach_the_builder_and_unknown_ones_are_named():
    small = load_embedded_dataset("synthetic_sentiment", num_examples=100)
    assert sum(len(split) for split in small.values()) == 100
    assert (
        load_embedded_dataset("synthetic_sentiment", num_examples=100)["train"]["sentence"]
        == small["train"]["sentence"]
    )
    with pytest.raises(TypeError, match="num_examples"):
        load_embedded_dataset("digits", num_examples=10)


def test_transform_rejects_bad_channels():
    with pytest.raises(ValueError, match="num_channels"):
        ImageClassificationTransform(num_channels=2)
    assert torch.is_tensor(ImageClassificationTransform(num_channels=1)._pixels(np.zeros((4, 4), np.uint8)))
