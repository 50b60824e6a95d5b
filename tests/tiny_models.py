"""Tiny seeded ViT/BERT classifiers shared by the test packages (each conftest picks its overrides)."""

import torch
from torch import nn
from transformers import BertConfig, BertForSequenceClassification, ViTConfig, ViTForImageClassification


_TINY_ENCODER = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
TINY_VIT = dict(image_size=8, patch_size=2, num_channels=3, num_labels=3, **_TINY_ENCODER)
TINY_BERT = dict(vocab_size=40, max_position_embeddings=16, num_labels=2, **_TINY_ENCODER)


def padded_text_batch(lengths: tuple[int, ...], seed: int, length: int = 7) -> dict[str, torch.Tensor]:
    """Random token ids in ``[1, 40)`` (:data:`TINY_BERT`'s vocabulary), one row per entry of ``lengths``: row ``i``
    keeps its first ``lengths[i]`` tokens, the rest is padding (id 0, attention mask 0)."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 40, (len(lengths), length), generator=generator)
    mask = (torch.arange(length) < torch.tensor(lengths)[:, None]).long()
    ids[mask == 0] = 0
    return {"input_ids": ids, "attention_mask": mask}


def tiny_vit(config_class=ViTConfig, model_class=ViTForImageClassification, seed: int = 0, **overrides):
    """A tiny ViT classifier in eval mode, seeded; ``overrides`` replace fields of :data:`TINY_VIT`."""
    torch.manual_seed(seed)
    return model_class(config_class(**{**TINY_VIT, **overrides})).eval()


def tiny_bert(config_class=BertConfig, model_class=BertForSequenceClassification, seed: int = 0, **overrides):
    """A tiny BERT classifier in eval mode, seeded; ``overrides`` replace fields of :data:`TINY_BERT`."""
    torch.manual_seed(seed)
    return model_class(config_class(**{**TINY_BERT, **overrides})).eval()


def tiny_text_bert(tokenizer, **overrides):
    """A one-layer eager BERT classifier over ``tokenizer``'s vocabulary (texts up to 16 tokens)."""
    settings = dict(vocab_size=tokenizer.vocab_size, num_hidden_layers=1, attn_implementation="eager")
    return tiny_bert(**{**settings, **overrides})


def tiny_robattr_vit(**overrides):
    """A tiny ``RobAttrViTForImageClassification`` (``overrides`` as in :func:`tiny_vit`, ``attention_type`` too)."""
    from hf_robattr.models import RobAttrViTConfig, RobAttrViTForImageClassification

    return tiny_vit(RobAttrViTConfig, RobAttrViTForImageClassification, **overrides)


class NoLogits(nn.Module):
    """A linear model over ``in_features`` flattened inputs that returns a dict without ``logits`` (a bad model)."""

    def __init__(self, in_features: int):
        super().__init__()
        self.linear = nn.Linear(in_features, 3)

    def forward(self, x):
        return {"scores": self.linear(x.flatten(1))}


def portable_float64(model: nn.Module, seed: int = 0, std: float = 0.02) -> nn.Module:
    """``model`` in float64 with weights that are the same on every CPU: each parameter that is not a constant
    (LayerNorm's ones and the zero biases stay) is redrawn uniformly with standard deviation ``std``.

    Why: ``torch.randn``/``normal_`` are vectorised differently per CPU capability (under
    ``ATEN_CPU_CAPABILITY=default`` the float32 draws differ from AVX2/AVX-512 ones in the last bit), so a model
    initialised by transformers is not bitwise the same on every machine; float64 ``torch.rand`` is. In float64
    the forward, backward and attacks then agree across CPUs to ~1e-13 (see tests/robustness/test_reference_scores.py).
    """
    generator = torch.Generator().manual_seed(seed)
    model = model.double()
    with torch.no_grad():
        for param in model.parameters():
            flat = param.detach().flatten()
            if flat.numel() > 1 and bool((flat != flat[0]).any()):
                uniform = torch.rand(param.shape, dtype=torch.float64, generator=generator)
                param.copy_((uniform * 2 - 1) * (3**0.5 * std))
    return model
