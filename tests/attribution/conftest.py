"""Tiny seeded models for the attribution tests (built once per session, deep-copied per test)."""

import copy

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, ViTConfig, ViTForImageClassification


def tiny_vit(**overrides) -> ViTForImageClassification:
    torch.manual_seed(0)
    config = dict(
        image_size=8,
        patch_size=2,
        num_channels=3,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=3,
    )
    config.update(overrides)
    return ViTForImageClassification(ViTConfig(**config)).eval()


def tiny_bert(**overrides) -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = dict(
        vocab_size=40,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=2,
    )
    config.update(overrides)
    return BertForSequenceClassification(BertConfig(**config)).eval()


@pytest.fixture(scope="session")
def _vit_session():
    return tiny_vit()


@pytest.fixture(scope="session")
def _bert_session():
    return tiny_bert()


@pytest.fixture
def vit(_vit_session):
    return copy.deepcopy(_vit_session)


@pytest.fixture
def bert(_bert_session):
    return copy.deepcopy(_bert_session)


@pytest.fixture
def images():
    return torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def text_batch():
    generator = torch.Generator().manual_seed(2)
    ids = torch.randint(1, 40, (3, 7), generator=generator)
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[1, 5:] = 0
    mask[2, 3:] = 0
    ids[mask == 0] = 0
    return {"input_ids": ids, "attention_mask": mask}
