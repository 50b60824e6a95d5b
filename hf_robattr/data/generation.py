"""Pieces shared by the generated image sets: the seeded three-way split and the class textures."""

from __future__ import annotations

import numpy as np
from datasets import Dataset, DatasetDict


__all__ = ["SYNTHETIC_IMAGE_CLASSES", "class_texture", "split_dataset"]

SYNTHETIC_IMAGE_CLASSES = ("horizontal_stripes", "vertical_stripes", "checkerboard", "diagonal_stripes")


def split_dataset(dataset: Dataset, *, validation_size: float, test_size: float, seed: int) -> DatasetDict:
    """Split one dataset into fixed ``train``/``validation``/``test`` parts with a seeded shuffle."""
    first = dataset.train_test_split(test_size=validation_size + test_size, seed=seed)
    second = first["test"].train_test_split(test_size=test_size / (validation_size + test_size), seed=seed)
    return DatasetDict({"train": first["train"], "validation": second["train"], "test": second["test"]})


def class_texture(label: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A ``size x size`` binary texture that identifies class ``label`` of :data:`SYNTHETIC_IMAGE_CLASSES`
    (random phase, fixed pattern of period 4 pixels)."""
    rows, cols = np.mgrid[0:size, 0:size]
    phase = int(rng.integers(0, 2))
    patterns = {
        0: (rows + phase) // 2 % 2,
        1: (cols + phase) // 2 % 2,
        2: ((rows // 2) + (cols // 2) + phase) % 2,
        3: ((rows + cols + phase) // 2) % 2,
    }
    return patterns[label].astype(np.float32)
