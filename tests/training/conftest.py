"""Tiny float64 ViT/BERT classifiers and batches for the training tests (session-built, deep-copied per test)."""

import copy

import pytest
import torch
from tiny_models import tiny_bert as tiny_base_bert
from tiny_models import tiny_robattr_vit

from hf_robattr.models import (
    RobAttrBertConfig,
    RobAttrBertForSequenceClassification,
    RobAttrViTForImageClassification,
)


# Smaller than tests/tiny_models.py's defaults, dropout off, and a wide init so the penalties are far from zero.
_SIZE = dict(hidden_size=8, num_hidden_layers=1, intermediate_size=16, initializer_range=0.5)
_NO_DROPOUT = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def tiny_vit(attention_type: str = "softmax", seed: int = 0) -> RobAttrViTForImageClassification:
    return tiny_robattr_vit(patch_size=4, attention_type=attention_type, seed=seed, **_SIZE, **_NO_DROPOUT).double()


def tiny_bert(seed: int = 0) -> RobAttrBertForSequenceClassification:
    model = tiny_base_bert(
        RobAttrBertConfig, RobAttrBertForSequenceClassification, seed=seed, vocab_size=20, **_SIZE, **_NO_DROPOUT
    )
    return model.double()


@pytest.fixture(scope="session")
def _vit_models():
    return {name: tiny_vit(name) for name in ("softmax", "kernel")}


@pytest.fixture
def vit(_vit_models):
    return copy.deepcopy(_vit_models["softmax"])


@pytest.fixture
def kernel_vit(_vit_models):
    return copy.deepcopy(_vit_models["kernel"])


@pytest.fixture
def bert():
    return tiny_bert()


@pytest.fixture
def image_batch():
    generator = torch.Generator().manual_seed(1)
    return {
        "pixel_values": torch.randn(3, 3, 8, 8, generator=generator, dtype=torch.float64),
        "labels": torch.tensor([0, 2, 1]),
    }


@pytest.fixture
def text_batch():
    generator = torch.Generator().manual_seed(2)
    input_ids = torch.randint(5, 20, (3, 6), generator=generator)
    attention_mask = torch.ones(3, 6, dtype=torch.long)
    attention_mask[1, 4:] = 0  # one padded row
    input_ids[1, 4:] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": torch.tensor([1, 0, 1])}


@pytest.fixture
def make_vit():
    """The tiny ViT builder (fresh model each call; same seed gives the same weights)."""
    return tiny_vit
