"""Tiny softmax teachers with peaked attention (so that a plain kernel swap is visibly wrong) and their data."""

import copy

import pytest
import torch
from conversion_helpers import sharp_teacher
from transformers import BertForMaskedLM, BertForSequenceClassification, BertModel, ViTForImageClassification, ViTModel


@pytest.fixture(scope="package", autouse=True)
def _prose_cache(tmp_path_factory):
    """Harvested prose goes to a temporary cache, not the user's, for this package's tests only (a session fixture
    kept it for every later test of the worker, whose first use of all the prose then harvested it again)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_ROBATTR_CACHE", str(tmp_path_factory.mktemp("prose_cache")))
        yield


@pytest.fixture(scope="session")
def _teachers():
    return {
        "bert": sharp_teacher(BertModel),
        "bert_classifier": sharp_teacher(BertForSequenceClassification),
        "bert_mlm": sharp_teacher(BertForMaskedLM),
        "vit": sharp_teacher(ViTModel),
        "vit_classifier": sharp_teacher(ViTForImageClassification),
    }


@pytest.fixture
def teachers(_teachers):
    """Fresh copies of the tiny teachers, by name."""
    return copy.deepcopy(_teachers)


@pytest.fixture(scope="session")
def text_ids():
    """64 conversion and 16 held-out token sequences (length 12, every fourth right-padded after 7 tokens)."""
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(1, 40, (80, 12), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[::4, 7:] = 0
    input_ids = input_ids * attention_mask
    return {"input_ids": input_ids[:64], "attention_mask": attention_mask[:64]}, {
        "input_ids": input_ids[64:],
        "attention_mask": attention_mask[64:],
    }


@pytest.fixture(scope="session")
def images():
    """64 conversion and 16 held-out 8x8 RGB images."""
    pixels = torch.randn(80, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    return pixels[:64], pixels[64:]
