"""Tiny models and inputs for the metric tests."""

import pytest
import torch
from metric_cases import FAST_OPTIONS, TinyImageClassifier
from torch import nn


@pytest.fixture
def image_model() -> nn.Module:
    torch.manual_seed(0)
    return TinyImageClassifier().eval()


@pytest.fixture
def pixel_values() -> torch.Tensor:
    return torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def fast_options() -> dict:
    """Options that keep one core call well under a second on 2 CPU cores (a fresh copy per test)."""
    return {**FAST_OPTIONS, "methods": list(FAST_OPTIONS["methods"])}
