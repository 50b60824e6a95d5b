"""How faithfully a kernel student reproduces its softmax teacher on held-out inputs.

Both models run end to end on their own hidden states (as users run them), in eval mode, without gradients.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from scipy import stats
from torch import nn

from .inputs import ExampleDataset, PaddingCollator
from .losses import attention_kl, logit_kl, pooled_embedding


__all__ = ["FIDELITY_HEADLINES", "measure_fidelity"]

# The number that sums up each task's fidelity (what the model card and the benchmark lead with).
FIDELITY_HEADLINES = {
    "base": ("embedding_cosine_mean", "pairwise_similarity_correlation"),
    "classification": ("top1_agreement", "student_accuracy"),
    "masked_lm": ("top1_agreement",),
}


def _batches(examples: list[dict], batch_size: int, collator: Callable) -> list[dict[str, torch.Tensor]]:
    dataset = ExampleDataset(examples)
    return [collator([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
            for start in range(0, len(dataset), batch_size)]  # fmt: skip


def _token_cosine(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Per-example mean cosine over real tokens."""
    cosine = nn.functional.cosine_similarity(student.float(), teacher.float(), dim=-1)
    if mask is None:
        return cosine.mean(-1)
    mask = mask.to(cosine.dtype)
    return (cosine * mask).sum(-1) / mask.sum(-1).clamp_min(1)


@torch.no_grad()
def measure_fidelity(
    teacher: nn.Module,
    student: nn.Module,
    examples: list[dict[str, torch.Tensor]],
    *,
    family: str,
    task: str,
    batch_size: int = 64,
    pad_token_id: int = 0,
    device: torch.device | str | None = None,
) -> dict[str, Any]:
    """Compare ``student`` with ``teacher`` on ``examples`` (per-example input dicts).

    Returns plain numbers:

    * ``attention_kl``: per layer, the mean KL(teacher row || student row) over heads and real query tokens;
    * ``hidden_state_cosine``: per layer, the mean cosine between the two models' hidden states over real tokens;
    * base models: ``embedding_cosine_mean`` / ``_min`` between pooled embeddings (mean over real tokens for BERT,
      [CLS] for ViT) and ``pairwise_similarity_correlation``, the Pearson correlation between the two models'
      pairwise embedding cosine similarities (needs at least 3 examples);
    * classifiers and masked LM: ``top1_agreement`` (per real token for masked LM) and ``logit_kl``; with labels,
      ``teacher_accuracy``, ``student_accuracy`` and ``accuracy_drop`` (teacher minus student);
    * ``num_examples``.

    Raises:
        ValueError: no examples, or ``labels`` whose shape does not match the predictions (a classifier predicts one
            class per example, a masked LM one token per input token); a base model's labels are ignored.
    """
    if not examples:
        raise ValueError("measure_fidelity needs at least one example.")
    if task != "base":
        _check_label_shapes(examples, task)
    device = torch.device(device) if device is not None else next(student.parameters()).device
    teacher_mode, student_mode = teacher.training, student.training
    teacher.eval(), student.eval()
    sums: dict[str, Any] = {}
    embeddings: dict[str, list[torch.Tensor]] = {"teacher": [], "student": []}
    agree = total = correct_teacher = correct_student = labelled = 0
    logit_kls: list[torch.Tensor] = []
    for batch in _batches(examples, batch_size, PaddingCollator(pad_token_id)):
        batch = {k: v.to(device) for k, v in batch.items() if k != "example_index"}
        labels = batch.pop("labels", None)
        mask = batch.get("attention_mask")
        t = teacher(**batch, output_hidden_states=True, output_attentions=True)
        s = student(**batch, output_hidden_states=True, output_attentions=True)
        _accumulate(sums, "attention_kl", [attention_kl(a, b, mask) for a, b in zip(t.attentions, s.attentions)])
        cosines = [_token_cosine(b, a, mask) for a, b in zip(t.hidden_states[1:], s.hidden_states[1:])]
        _accumulate(sums, "hidden_state_cosine", cosines)
        if task == "base":
            embeddings["teacher"].append(pooled_embedding(t.last_hidden_state, mask, family=family).float().cpu())
            embeddings["student"].append(pooled_embedding(s.last_hidden_state, mask, family=family).float().cpu())
            continue
        token_mask = mask if task == "masked_lm" else None
        logit_kls.append(logit_kl(t.logits, s.logits, token_mask).cpu())
        t_pred, s_pred = t.logits.argmax(-1), s.logits.argmax(-1)
        valid = torch.ones_like(t_pred, dtype=torch.bool) if token_mask is None else token_mask.bool()
        agree += int(((t_pred == s_pred) & valid).sum())
        total += int(valid.sum())
        if labels is not None:
            scored = labels != -100
            correct_teacher += int(((t_pred == labels) & scored).sum())
            correct_student += int(((s_pred == labels) & scored).sum())
            labelled += int(scored.sum())
    teacher.train(teacher_mode), student.train(student_mode)

    result: dict[str, Any] = {
        name: [round(float(v) / len(examples), 6) for v in values] for name, values in sums.items()
    }
    if task == "base":
        result.update(_embedding_fidelity(torch.cat(embeddings["teacher"]), torch.cat(embeddings["student"])))
    else:
        result["top1_agreement"] = agree / max(total, 1)
        result["logit_kl"] = float(torch.cat(logit_kls).mean())
        if labelled:
            result["teacher_accuracy"] = correct_teacher / labelled
            result["student_accuracy"] = correct_student / labelled
            result["accuracy_drop"] = result["teacher_accuracy"] - result["student_accuracy"]
    result["num_examples"] = len(examples)
    return result


def _check_label_shapes(examples: list[dict[str, torch.Tensor]], task: str) -> None:
    """Refuse labels that are not one per prediction: a 0-d class id per example (classifier), or one per token of
    ``input_ids`` (masked LM)."""
    for index, example in enumerate(examples):
        labels = example.get("labels")
        if labels is None:
            continue
        expected = tuple(example["input_ids"].shape) if task == "masked_lm" else ()
        if tuple(labels.shape) != expected:
            kind = "one token id (or -100) per input token" if task == "masked_lm" else "one class id per example"
            raise ValueError(
                f"measure_fidelity: examples[{index}] has labels of shape {tuple(labels.shape)}, but a {task} model's "
                f"predictions for it have shape {expected}: labels must be {kind}."
            )


def _accumulate(sums: dict[str, Any], name: str, per_layer: list[torch.Tensor]) -> None:
    totals = [float(v.sum()) for v in per_layer]
    sums[name] = totals if name not in sums else [a + b for a, b in zip(sums[name], totals)]


def _embedding_fidelity(teacher: torch.Tensor, student: torch.Tensor) -> dict[str, float | None]:
    cosine = nn.functional.cosine_similarity(student, teacher, dim=-1)
    result: dict[str, float | None] = {
        "embedding_cosine_mean": float(cosine.mean()),
        "embedding_cosine_min": float(cosine.min()),
        "pairwise_similarity_correlation": None,
    }
    if len(teacher) >= 3:
        unit_t = nn.functional.normalize(teacher, dim=-1)
        unit_s = nn.functional.normalize(student, dim=-1)
        upper = np.triu_indices(len(teacher), k=1)
        sim_t, sim_s = (unit_t @ unit_t.T).numpy()[upper], (unit_s @ unit_s.T).numpy()[upper]
        if np.ptp(sim_t) > 0 and np.ptp(sim_s) > 0:
            correlation = float(stats.pearsonr(sim_t, sim_s).statistic)
            result["pairwise_similarity_correlation"] = correlation if math.isfinite(correlation) else None
    return result
