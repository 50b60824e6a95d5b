"""Inputs for the attribution tests (the tiny models ``vit`` / ``bert`` come from ``tests/conftest.py``)."""

import pytest
import torch
from tiny_models import padded_text_batch


@pytest.fixture
def images():
    return torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def text_batch():
    return padded_text_batch((7, 5, 3), seed=2)
