"""Per-example distillation losses shared by the two stages and the fidelity report.

Every function returns one value per example (shape ``[batch]``): the trainers average them over the batch, so a
global batch split across processes (whose gradients DDP averages) gives the same update as one process.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


__all__ = ["attention_kl", "logit_kl", "pooled_embedding", "relative_squared_error"]

_TINY = 1e-12


def attention_kl(
    teacher_weights: torch.Tensor, student_weights: torch.Tensor, query_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """KL(teacher row || student row) of attention weights ``[batch, heads, queries, keys]``, averaged over heads and
    real query rows (``query_mask [batch, queries]``, 1 = real token). Rows are distributions over keys; padded keys
    hold 0 in both."""
    teacher, student = teacher_weights.float(), student_weights.float()
    rows = (torch.xlogy(teacher, teacher) - teacher * torch.log(student.clamp_min(_TINY))).sum(-1)
    if query_mask is None:
        return rows.mean(dim=(1, 2))
    mask = query_mask.to(rows.dtype)[:, None, :]
    return (rows * mask).sum(dim=(1, 2)) / (mask.sum(dim=(1, 2)) * rows.shape[1]).clamp_min(1)


def relative_squared_error(
    student: torch.Tensor, teacher: torch.Tensor, token_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """``|student - teacher|^2 / |teacher|^2`` per example, over real tokens (``token_mask [batch, tokens]``) and
    features of ``[batch, tokens, features]`` tensors: scale-free, 0 when equal."""
    error = (student.float() - teacher.float()).pow(2).sum(-1)
    scale = teacher.float().pow(2).sum(-1)
    if token_mask is not None:
        mask = token_mask.to(error.dtype)
        error, scale = error * mask, scale * mask
    return error.sum(-1) / scale.sum(-1).clamp_min(_TINY)


def pooled_embedding(hidden_states: torch.Tensor, token_mask: torch.Tensor | None, *, family: str) -> torch.Tensor:
    """The sentence/image embedding users read from a base model: the mean over real tokens for BERT
    (sentence-transformers' pooling), the [CLS] token for ViT."""
    if family == "vit":
        return hidden_states[:, 0]
    if token_mask is None:
        return hidden_states.mean(dim=1)
    mask = token_mask.to(hidden_states.dtype)[..., None]
    return (hidden_states * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1)


def logit_kl(
    teacher_logits: torch.Tensor,
    student_logits: torch.Tensor,
    token_mask: torch.Tensor | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """``T^2 KL(softmax(teacher / T) || softmax(student / T))`` per example; for per-token logits
    ``[batch, tokens, vocab]`` averaged over real tokens."""
    teacher = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    student = F.log_softmax(student_logits.float() / temperature, dim=-1)
    kl = (teacher.exp() * (teacher - student)).sum(-1) * temperature**2
    if kl.dim() == 1:
        return kl
    if token_mask is None:
        return kl.mean(-1)
    mask = token_mask.to(kl.dtype)
    return (kl * mask).sum(-1) / mask.sum(-1).clamp_min(1)


def cosine_distance(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """``1 - cos`` per example of ``[batch, features]`` embeddings."""
    return 1 - F.cosine_similarity(student.float(), teacher.float(), dim=-1)
