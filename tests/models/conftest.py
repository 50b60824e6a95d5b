"""Tiny ViT/BERT configurations and inputs shared by the model tests."""

import pytest
import torch


VIT_KWARGS = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "image_size": 16,
    "patch_size": 4,
    "num_labels": 3,
}
BERT_KWARGS = {
    "vocab_size": 64,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "max_position_embeddings": 32,
    "num_labels": 3,
}


@pytest.fixture
def vit_kwargs() -> dict:
    """Keyword arguments of a tiny 2-layer ViT (16x16 images, 4x4 patches, 17 tokens, 3 labels)."""
    return dict(VIT_KWARGS)


@pytest.fixture
def bert_kwargs() -> dict:
    """Keyword arguments of a tiny 2-layer BERT (64-token vocabulary, 3 labels)."""
    return dict(BERT_KWARGS)


@pytest.fixture
def pixel_values() -> torch.Tensor:
    """Two random 16x16 RGB images."""
    return torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def text_batch() -> dict[str, torch.Tensor]:
    """Three token sequences of length 10; the second and third are right-padded after 6 and 3 tokens."""
    input_ids = torch.randint(1, BERT_KWARGS["vocab_size"], (3, 10), generator=torch.Generator().manual_seed(0))
    attention_mask = torch.ones(3, 10, dtype=torch.long)
    attention_mask[1, 6:] = 0
    attention_mask[2, 3:] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}
