"""The tiny model and fast options of the metric tests, shared by ``conftest.py`` and ``distributed_script.py``."""

import torch
from torch import nn


FAST_OPTIONS = {
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
"""Options that keep one core call well under a second on 2 CPU cores."""


class TinyImageClassifier(nn.Module):
    """A plain module mapping pixel values ``[B, 3, 8, 8]`` to 3 logits (non-linear, so maps change)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4 * 8 * 8, 3)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.conv(pixel_values)).flatten(1))
