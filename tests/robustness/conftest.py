"""Inputs and models for the robustness tests: a one-channel tiny ViT (``vit`` / ``bert`` come from
``tests/conftest.py``) and a linear model."""

import pytest
import torch
from tiny_models import padded_text_batch, tiny_vit
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
    return padded_text_batch((7, 5, 7, 3), seed=2)
