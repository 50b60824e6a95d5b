"""Stage 2, recovery: fine-tune the kernel student end to end (its own hidden states) to match the teacher's outputs.

The objective is what users read from the model: logits (KL, for classifiers and masked LM) or, for base models, the
last hidden state and the pooled embedding; optionally every layer's hidden state and the task loss. Training uses
LoRA adapters through ``peft`` (merged afterwards) or full fine-tuning.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .losses import cosine_distance, logit_kl, pooled_embedding, relative_squared_error
from .transfer import DistillationTrainer


__all__ = ["RecoveryModel", "RecoveryTrainer", "output_loss", "task_loss"]


def output_loss(
    student_outputs, teacher_outputs, token_mask: torch.Tensor | None, *, family: str, task: str, temperature: float
) -> torch.Tensor:
    """Per-example mismatch of what users read from the model (see the module docstring)."""
    if task == "base":
        student, teacher = student_outputs.last_hidden_state, teacher_outputs.last_hidden_state
        pooled = cosine_distance(
            pooled_embedding(student, token_mask, family=family), pooled_embedding(teacher, token_mask, family=family)
        )
        return relative_squared_error(student, teacher, token_mask) + pooled
    student, teacher = student_outputs.logits, teacher_outputs.logits
    if student.shape[-1] == 1:  # a regression head: no distribution to compare
        return relative_squared_error(student[:, None], teacher[:, None])
    return logit_kl(teacher, student, token_mask if task == "masked_lm" else None, temperature=temperature)


def task_loss(student_outputs, labels: torch.Tensor, *, task: str) -> torch.Tensor:
    """Per-example task loss: cross-entropy (MSE for a one-output regression head); for masked LM the mean over the
    labelled tokens of each example (0 for an example without any)."""
    logits = student_outputs.logits.float()
    if task == "masked_lm":
        losses = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100, reduction="none")
        counts = (labels != -100).sum(-1)
        return losses.sum(-1) / counts.clamp_min(1)
    if logits.shape[-1] == 1:
        return (logits.squeeze(-1) - labels.float()).pow(2)
    return F.cross_entropy(logits, labels, reduction="none")


class RecoveryModel(nn.Module):
    """The stage 2 objective as a module whose ``forward`` returns ``{"loss", "metrics"}`` (the batch means of the
    enabled loss terms, see :meth:`metric_names`). The frozen ``teacher`` is not a submodule."""

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        *,
        family: str,
        task: str,
        output_weight: float = 1.0,
        hidden_state_weight: float = 0.0,
        task_loss_weight: float = 0.0,
        temperature: float = 1.0,
    ):
        super().__init__()
        self.student = student
        object.__setattr__(self, "teacher", teacher)
        self.family, self.task = family, task
        self.output_weight = output_weight
        self.hidden_state_weight = hidden_state_weight
        self.task_loss_weight = task_loss_weight
        self.temperature = temperature

    def forward(self, example_index: torch.Tensor | None = None, **inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """The weighted sum of the output, hidden-state and task losses, averaged over the batch."""
        self.student.eval()  # no dropout: the student must match a deterministic teacher
        labels = inputs.pop("labels", None)
        token_mask = inputs.get("attention_mask")
        hidden = self.hidden_state_weight > 0
        with torch.no_grad():
            teacher_outputs = self.teacher(**inputs, output_hidden_states=hidden)
        student_outputs = self.student(**inputs, output_hidden_states=hidden)
        terms = []
        if self.output_weight:
            terms.append(
                self.output_weight
                * output_loss(
                    student_outputs,
                    teacher_outputs,
                    token_mask,
                    family=self.family,
                    task=self.task,
                    temperature=self.temperature,
                )
            )
        if hidden:
            layers = zip(student_outputs.hidden_states[1:], teacher_outputs.hidden_states[1:])
            errors = torch.stack([relative_squared_error(s, t, token_mask) for s, t in layers])
            terms.append(self.hidden_state_weight * errors.mean(0))
        if self.task_loss_weight and labels is not None and self.task != "base":
            terms.append(self.task_loss_weight * task_loss(student_outputs, labels, task=self.task))
        terms = torch.stack(terms)
        return {"loss": terms.sum(0).mean(), "metrics": terms.detach().mean(1)}

    def metric_names(self) -> list[str]:
        """Names of the enabled loss terms, in the order of ``forward(...)["metrics"]``."""
        names = ["recovery/output_loss"] if self.output_weight else []
        names += ["recovery/hidden_state_loss"] if self.hidden_state_weight else []
        return names + (["recovery/task_loss"] if self.task_loss_weight and self.task != "base" else [])


class RecoveryTrainer(DistillationTrainer):
    """Stage 2 ``Trainer``: the student's trainable parameters (LoRA adapters, or all) against the teacher's outputs;
    logs each weighted loss term."""

    def __init__(self, *, student: nn.Module, teacher: nn.Module, family: str, task: str, objective: dict, **kwargs):
        module = RecoveryModel(student, teacher, family=family, task=task, **objective)
        super().__init__(model=module, **kwargs)
        teacher.to(self.args.device)
