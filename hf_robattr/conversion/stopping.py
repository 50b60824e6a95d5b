"""When the conversion stages stop: once the fidelity measures users read meet their targets, or stop improving.

The rules, per task, on held-out examples (the ``validation_inputs`` of
:func:`~hf_robattr.conversion.convert_to_kernel`, else its ``eval_inputs``):

* **attention transfer** (stage 1) checks every ``transfer_check_steps`` steps and stops once the task's targets
  are met (:data:`TARGETS`: a classifier or masked LM whose top-1 predictions agree with the teacher's on at least
  98% of the examples);
* **recovery** (stage 2) is skipped when attention transfer already meets the targets; otherwise it checks every
  ``recovery_check_steps`` steps and stops once ``recovery_patience`` checks in a row raised the mean of the rule's
  measures (:data:`RULE_MEASURES`) by no more than ``recovery_min_gain`` over the best check so far, or once the
  targets are met; at the end it keeps the best checked weights (the transfer's own when no check beat them; on a
  tie, the later ones).

A check whose measures are not finite (the student diverged: NaN or infinite outputs) never counts as a gain: recovery
goes on to its plateau stop and then restores its best checked weights; attention transfer stops at such a check and
restores the weights of its last finite check (the plain swap's own when there is none).

Base models (sentence or image embeddings) have no target: how faithful an embedding is depends on the data it is
used on, which the conversion does not see, so both stages run their steps, recovery for as long as it improves.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from transformers import TrainerCallback

from .fidelity import _batches, _embedding_fidelity
from .inputs import PaddingCollator
from .losses import pooled_embedding


__all__ = ["RULE_MEASURES", "TARGETS", "FidelityCheck", "StopCallback", "StopRule"]

logger = logging.getLogger(__name__)

# The measures the rule follows, per task (all higher-is-better, at most 1).
RULE_MEASURES: dict[str, tuple[str, ...]] = {
    "base": ("embedding_cosine_mean", "pairwise_similarity_correlation"),
    "classification": ("top1_agreement",),
    "masked_lm": ("top1_agreement",),
}
# Targets that end attention transfer and make recovery unnecessary, per task (the documented fidelity targets of
# classifiers).
TARGETS: dict[str, dict[str, float]] = {
    "base": {},
    "classification": {"top1_agreement": 0.98},
    "masked_lm": {"top1_agreement": 0.98},
}


class FidelityCheck:
    """The rule's measures of a student against the frozen teacher on fixed examples (the teacher's side is computed
    once). Calling it returns ``{measure: value}``; the student runs in eval mode without gradients."""

    def __init__(
        self,
        teacher: nn.Module,
        examples: list[dict[str, torch.Tensor]],
        *,
        family: str,
        task: str,
        batch_size: int = 64,
        pad_token_id: int = 0,
    ):
        if not examples:
            raise ValueError("the stop rule needs at least one held-out example.")
        self.family, self.task = family, task
        self.batches = [
            {k: v for k, v in batch.items() if k not in ("example_index", "labels")}
            for batch in _batches(examples, batch_size, PaddingCollator(pad_token_id))
        ]
        self.num_examples = len(examples)
        self.teacher_side = [self._read(teacher, batch)[0] for batch in self.batches]

    @torch.no_grad()
    def _read(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, bool]:
        """The model's pooled embeddings (base) or top-1 predictions on ``batch``, and whether its outputs are all
        finite (the argmax of NaN logits is a valid index, so predictions alone would hide a diverged model)."""
        device = next(model.parameters()).device  # the Trainer may have moved the student since
        batch = {k: v.to(device) for k, v in batch.items()}
        mode = model.training
        model.eval()
        try:
            outputs = model(**batch)
        finally:
            model.train(mode)
        if self.task == "base":
            embedding = pooled_embedding(outputs.last_hidden_state, batch.get("attention_mask"), family=self.family)
            return embedding.float().cpu(), bool(torch.isfinite(embedding).all())
        return outputs.logits.argmax(-1).cpu(), bool(torch.isfinite(outputs.logits).all())

    def __call__(self, student: nn.Module) -> dict[str, float]:
        student_side = []
        for batch in self.batches:
            predictions, finite = self._read(student, batch)
            if not finite:  # a diverged student: every measure is NaN, which no rule counts as a gain
                return {name: math.nan for name in RULE_MEASURES[self.task]}
            student_side.append(predictions)
        if self.task == "base":
            numbers = _embedding_fidelity(torch.cat(self.teacher_side), torch.cat(student_side))
            return {name: numbers[name] for name in RULE_MEASURES["base"] if numbers[name] is not None}
        agree = total = 0
        for batch, teacher, student_pred in zip(self.batches, self.teacher_side, student_side):
            valid = torch.ones_like(teacher, dtype=torch.bool)
            if self.task == "masked_lm" and "attention_mask" in batch:
                valid = batch["attention_mask"].bool()
            agree += int(((teacher == student_pred) & valid).sum())
            total += int(valid.sum())
        return {"top1_agreement": agree / max(total, 1)}


@dataclass
class StopRule:
    """A stage's stop rule: its settings and what it decided (stored as ``results.json``
    ``stages.<stage>.stop_rule``). ``patience=None`` stops on the targets only (attention transfer); otherwise the
    rule also stops on a plateau and keeps the best checked weights (recovery)."""

    stage: str
    measures: tuple[str, ...]
    targets: dict[str, float]
    check_steps: int
    data: str
    min_gain: float = 0.0
    patience: int | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    decision: str = ""
    kept_step: int | None = None

    def describe(self) -> str:
        """The rule in one sentence (logged, and shown on the model card)."""
        targets = " and ".join(f"{name} >= {value}" for name, value in self.targets.items())
        if self.patience is None:
            return f"{self.stage} stops once {targets} on {self.data}, checked every {self.check_steps} steps"
        skip = f"skipped when attention transfer already reaches {targets}; otherwise " if targets else ""
        return (
            f"{self.stage} is {skip}checked every {self.check_steps} steps on {self.data} and stops once "
            f"{self.patience} checks in a row raise the mean of {', '.join(self.measures)} by no more than "
            f"{self.min_gain}{' or the targets are met' if targets else ''}; the best checked weights are kept"
        )

    def meets_targets(self, values: dict[str, float]) -> bool:
        """Whether ``values`` reach every target (False without targets)."""
        return bool(self.targets) and all(values.get(name, -1.0) >= value for name, value in self.targets.items())

    def diverged(self, values: dict[str, float]) -> bool:
        """Whether one of the rule's measures in ``values`` is not finite (NaN: the student's outputs are not)."""
        return any(not math.isfinite(values[name]) for name in self.measures if values.get(name) is not None)

    def score(self, values: dict[str, float]) -> float:
        """The mean of the rule's measures in ``values``; ``-inf`` (below any check) when there are none or one is
        not finite, so that a diverged check never counts as a gain."""
        present = [values[name] for name in self.measures if values.get(name) is not None]
        if not present or self.diverged(values):
            return float("-inf")
        return sum(present) / len(present)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record, with the rule's sentence."""
        return {"rule": self.describe(), **asdict(self), "measures": list(self.measures)}


def _trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


class StopCallback(TrainerCallback):
    """Applies a :class:`StopRule` during a stage: checks the student every ``rule.check_steps`` steps, stops the
    ``Trainer`` when the rule says so, and restores trainable weights at the end: with a plateau rule (recovery) those
    of the best check; without one (attention transfer) those of the last finite check, when the last check diverged
    (stage 1 stops at such a check). ``baseline`` is the student's check before the stage."""

    def __init__(self, rule: StopRule, check: FidelityCheck, student: nn.Module, baseline: dict[str, float]):
        self.rule, self.check, self.student = rule, check, student
        self.keeps_best = rule.patience is not None
        self.best_score, self.best_step = rule.score(baseline), 0
        # the weights a restore goes back to: the best check's (recovery), or the last finite check's (transfer)
        self.saved_state, self.saved_step = _trainable_state(student), 0
        self.stale = 0
        rule.checks.append({"step": 0, **baseline})

    def on_step_end(self, args, state, control, **kwargs):
        step = state.global_step
        if step % self.rule.check_steps and step < state.max_steps:
            return control
        values = self.check(self.student)
        self.rule.checks.append({"step": step, **values})
        logger.info("%s check at step %d: %s", self.rule.stage.capitalize(), step, values)
        diverged = self.rule.diverged(values)
        if diverged:
            logger.warning("%s check at step %d is not finite: the student diverged.", self.rule.stage, step)
        score = self.rule.score(values)  # -inf when diverged: no gain
        if score > self.best_score + self.rule.min_gain:
            self.best_score, self.best_step, self.stale = score, step, 0
            if self.keeps_best:
                self.saved_state, self.saved_step = _trainable_state(self.student), step
        else:
            self.stale += 1
        if not self.keeps_best and not diverged:
            self.saved_state, self.saved_step = _trainable_state(self.student), step
        if self.rule.meets_targets(values):
            self.rule.decision = f"stopped at step {step} of {state.max_steps}: the targets are met"
            control.should_training_stop = True
        elif not self.keeps_best and diverged:
            self.rule.decision = (
                f"stopped at step {step} of {state.max_steps}: the check is not finite (the student diverged)"
            )
            control.should_training_stop = True
        elif self.keeps_best and self.stale >= self.rule.patience and step < state.max_steps:
            self.rule.decision = (
                f"stopped at step {step} of {state.max_steps}: {self.stale} checks in a row without a gain above "
                f"{self.rule.min_gain}"
            )
            control.should_training_stop = True
        return control

    def on_train_end(self, args, state, control, **kwargs):
        last = self.rule.checks[-1]
        # recovery: the last check is not the best (a diverged one scores -inf); transfer: the last check diverged
        restore = self.rule.score(last) < self.best_score if self.keeps_best else self.rule.diverged(last)
        if restore:
            with torch.no_grad():
                for name, parameter in self.student.named_parameters():
                    if name in self.saved_state:
                        parameter.copy_(self.saved_state[name])
            self.rule.kept_step = self.saved_step
        else:
            self.rule.kept_step = last["step"]
        if not self.rule.decision:
            still = "the measures still improved" if self.keeps_best else "the targets were not met"
            self.rule.decision = f"ran all {state.global_step} steps: {still}"
        self.saved_state = {}
        return control
