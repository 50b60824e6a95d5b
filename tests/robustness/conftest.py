"""Inputs and models for the robustness tests: a one-channel tiny ViT (``vit`` / ``bert`` come from
``tests/conftest.py``) and a linear model."""

import pytest
import torch
from tiny_models import tiny_vit
from torch import nn


@pytest.fixture(scope="session")
def _vit_session():
    return tiny_vit(num_channels=1)


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
