"""Tiny seeded models for the robustness tests (built once per session, deep-copied per test)."""

import copy

import pytest
import torch
from torch import nn
from transformers import BertConfig, BertForSequenceClassification, ViTConfig, ViTForImageClassification


@pytest.fixture(scope="session")
def _vit_session():
    torch.manual_seed(0)
    config = ViTConfig(
        image_size=8,
        patch_size=2,
        num_channels=1,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=3,
    )
    return ViTForImageClassification(config).eval()


@pytest.fixture(scope="session")
def _bert_session():
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=40,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=2,
    )
    return BertForSequenceClassification(config).eval()


@pytest.fixture
def vit(_vit_session):
    return copy.deepcopy(_vit_session)


@pytest.fixture
def bert(_bert_session):
    return copy.deepcopy(_bert_session)


@pytest.fixture
def images():
    return torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def linear_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 3))


@pytest.fixture
def text_batch():
    generator = torch.Generator().manual_seed(2)
    ids = torch.randint(1, 40, (4, 7), generator=generator)
    mask = torch.ones(4, 7, dtype=torch.long)
    mask[1, 5:] = 0
    mask[3, 3:] = 0
    ids[mask == 0] = 0
    return {"input_ids": ids, "attention_mask": mask}
