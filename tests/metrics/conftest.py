"""Tiny models and inputs for the metric tests."""

import pytest
import torch
from torch import nn


class TinyImageClassifier(nn.Module):
    """A plain module mapping pixel values ``[B, 3, 8, 8]`` to 3 logits (non-linear, so maps change)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4 * 8 * 8, 3)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.conv(pixel_values)).flatten(1))


@pytest.fixture
def image_model() -> nn.Module:
    torch.manual_seed(0)
    return TinyImageClassifier().eval()


@pytest.fixture
def pixel_values() -> torch.Tensor:
    return torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def fast_options() -> dict:
    """Options that keep one core call well under a second on 2 CPU cores."""
    return {
        "methods": ["saliency", "input_x_gradient"],
        "attack": "topk",
        "epsilon": 0.05,
        "num_steps": 2,
        "k": 8,
        "num_samples": 2,
        "batch_size": 4,
        "seed": 3,
        "progress": False,
    }
