"""Inputs for the attribution tests (the tiny models ``vit`` / ``bert`` come from ``tests/conftest.py``)."""

import pytest
import torch


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
