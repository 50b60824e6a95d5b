"""Callbacks that stop training: at a matched fit (a target training loss, measured for real) or on divergence.

Both keep their state in checkpoints (``ExportableState``), so a resumed run remembers whether and when it stopped.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
import torch.nn.functional as F
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_callback import ExportableState

from hf_robattr.data import model_inputs

from .record import MatchedFitRecord, TrainingRecord
from .trainer import training_loss


__all__ = ["DivergenceCallback", "TargetLossCallback", "true_training_loss"]


def _total_batch_size(args: TrainingArguments) -> int:
    return args.per_device_train_batch_size * args.gradient_accumulation_steps * max(args.world_size, 1)


@torch.no_grad()
def true_training_loss(
    model: torch.nn.Module, dataset: Any, collator: Any, num_examples: int = 1024, batch_size: int = 256
) -> float:
    """The loss :class:`TargetLossCallback` checks, in one process: the mean cross-entropy of ``model`` in eval mode
    (its mode restored after) on the first ``num_examples`` examples of ``dataset``, collated by ``collator``."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        size = min(num_examples, len(dataset))
        for first in range(0, size, batch_size):
            batch = collator([dataset[i] for i in range(first, min(first + batch_size, size))])
            inputs = {key: value.to(device) for key, value in model_inputs(batch).items()}
            logits = model(**inputs).logits
            losses = F.cross_entropy(logits.float(), batch["labels"].to(device), reduction="none").double()
            total, count = total + float(losses.sum()), count + len(losses)
    finally:
        model.train(was_training)
    return total / count


class TargetLossCallback(TrainerCallback, ExportableState):
    """Matched fit: stop once the true training loss is ``<= target``, judged every fixed number of examples.

    After every ``check_every_examples`` training examples (an optimizer step counts as ``total_train_batch_size``
    examples, so runs with different batch sizes are checked at the same points of their data stream), it computes
    the mean cross-entropy of the model **in eval mode** on a fixed subset, the first ``num_examples`` training
    examples, and stops at the first check where that loss is ``<= target``. Minibatch losses are never used: they
    average over a handful of examples under changing weights and dropout.

    Under DDP the subset is split into equal blocks across processes (padded with zero-weight examples, so every
    process runs the same forwards) and the sums are all-reduced: every process sees the same loss and stops at
    the same step. When training ends without reaching the target, the loss is measured once more at the last step.

    Attributes (saved in checkpoints): ``reached``, ``reached_at_step``, ``reached_at_examples``, ``loss`` (the last
    measured loss: at the stop, or at the end of training) and ``loss_step`` (the step it was measured at).
    Checks are logged as ``matched_fit/train_loss``.
    """

    # The training flag behind each saved argument (a resumed run must ask for the checkpoint's values).
    FLAGS = {
        "target": "--target_train_loss",
        "num_examples": "--target_loss_examples",
        "check_every_examples": "--target_check_every_examples",
        "batch_size": "--target_loss_batch_size",
    }

    def __init__(
        self,
        target: float,
        *,
        num_examples: int = 1024,
        check_every_examples: int = 1024,
        batch_size: int = 256,
    ) -> None:
        if not target > 0:
            raise ValueError(f"target_train_loss must be > 0, got {target}.")
        for name, value in (
            ("num_examples", num_examples),
            ("check_every_examples", check_every_examples),
            ("batch_size", batch_size),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}.")
        self.target = float(target)
        self.num_examples = int(num_examples)
        self.check_every_examples = int(check_every_examples)
        self.batch_size = int(batch_size)
        self.reached = False
        self.reached_at_step: int | None = None
        self.reached_at_examples: int | None = None
        self.loss: float | None = None
        self.loss_step: int | None = None
        self.trainer: Any = None
        self._batches: list[tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]] | None = None

    def bind_trainer(self, trainer: Any) -> None:
        """Remember the trainer: its model, training data, collator, and the accelerator for the all-reduce."""
        self.trainer = trainer

    def _subset_batches(self, args: TrainingArguments) -> list[tuple[dict[str, torch.Tensor], torch.Tensor, Any]]:
        """This process's block of the fixed subset, collated once: ``(inputs, labels, weights)`` per batch."""
        if self._batches is None:
            dataset = self.trainer.train_dataset
            size = min(self.num_examples, len(dataset))
            block = math.ceil(size / max(args.world_size, 1))
            start = args.process_index * block
            indices = [i for i in range(start, start + block) if i < size]
            weights = [1.0] * len(indices) + [0.0] * (block - len(indices))
            indices += [0] * (block - len(indices))  # padding: same forwards on every process, weight 0
            self._batches = []
            for first in range(0, block, self.batch_size):
                chunk = indices[first : first + self.batch_size]
                batch = self.trainer.data_collator([dataset[i] for i in chunk])
                inputs = {key: value.to(args.device) for key, value in model_inputs(batch).items()}
                weight = torch.tensor(weights[first : first + self.batch_size], dtype=torch.float64)
                self._batches.append((inputs, batch["labels"].to(args.device), weight.to(args.device)))
        return self._batches

    @torch.no_grad()
    def measure(self, args: TrainingArguments) -> float:
        """The mean cross-entropy of the model in eval mode over the fixed training subset (all processes)."""
        model = self.trainer.accelerator.unwrap_model(self.trainer.model)
        was_training = model.training
        model.eval()
        totals = torch.zeros(2, dtype=torch.float64, device=args.device)
        try:
            for inputs, labels, weights in self._subset_batches(args):
                logits = model(**inputs).logits
                losses = F.cross_entropy(logits.float(), labels, reduction="none").double()
                totals += torch.stack([(losses * weights).sum(), weights.sum()])
        finally:
            model.train(was_training)
        if args.world_size > 1:
            totals = self.trainer.accelerator.reduce(totals, reduction="sum")
        return float(totals[0] / totals[1])

    def _check(self, args: TrainingArguments, state: TrainerState, control: TrainerControl) -> None:
        self.loss, self.loss_step = self.measure(args), state.global_step
        examples = state.global_step * _total_batch_size(args)
        if self.loss <= self.target and not self.reached:
            self.reached, self.reached_at_step, self.reached_at_examples = True, state.global_step, examples
        # Trainer.log resets control.should_log (CallbackHandler.on_log); keep the step's own loss log.
        should_log = control.should_log
        self.trainer.log({"matched_fit/train_loss": self.loss, "matched_fit/examples": float(examples)})
        control.should_log = should_log

    def _ended(self) -> str | None:
        """How this run's stop already happened (a state restored from a checkpoint saved after it), or ``None``."""
        if not self.reached:
            return None
        return f"the run reached --target_train_loss {self.target:g} (at step {self.reached_at_step})"

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """Refuse to resume from a checkpoint saved after the stop: the run would take a step past it before
        stopping again."""
        ended = self._ended()
        if ended:
            raise ValueError(
                f"This checkpoint was saved after {ended}: resuming would train past it. The finished model is the "
                "one saved in the run's output_dir; start a new run to train again."
            )

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """Check when this step crossed a multiple of ``check_every_examples``; stop once the target is reached."""
        if self.trainer is None:
            raise RuntimeError("TargetLossCallback needs a RobAttrTrainer (it binds the callback to itself).")
        every, batch = self.check_every_examples, _total_batch_size(args)
        examples = state.global_step * batch
        if not self.reached and examples // every > (examples - batch) // every:
            self._check(args, state, control)
        if self.reached:
            control.should_training_stop = True

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """Measure the loss at the last step when the target was not reached there (the true loss at the stop)."""
        if self.trainer is not None and not self.reached and self.loss_step != state.global_step:
            self.loss, self.loss_step = self.measure(args), state.global_step

    def fit_record(self) -> MatchedFitRecord:
        """The stop's settings and where its loss was measured (:attr:`TrainingRecord.matched_fit`)."""
        return MatchedFitRecord(
            train_loss_at_stop_step=self.loss_step,
            target_loss_examples=self.num_examples,
            target_check_every_examples=self.check_every_examples,
        )

    def fill(self, training: TrainingRecord) -> TrainingRecord:
        """``training`` (the ``"training"`` section) with this stop's outcome and :meth:`fit_record`."""
        return dataclasses.replace(
            training,
            target_reached=self.reached,
            target_reached_at_step=self.reached_at_step,
            target_reached_at_examples=self.reached_at_examples,
            train_loss_at_stop=self.loss,
            matched_fit=self.fit_record(),
        )

    def record(self) -> dict[str, Any]:
        """The ``"training"`` section's JSON object (``results.json["training"]``) with this stop's fields filled in
        (:meth:`fill`), the others unset."""
        return self.fill(TrainingRecord()).to_json()

    def state(self) -> dict[str, Any]:
        return {
            "args": {
                "target": self.target,
                "num_examples": self.num_examples,
                "check_every_examples": self.check_every_examples,
                "batch_size": self.batch_size,
            },
            "attributes": {
                "reached": self.reached,
                "reached_at_step": self.reached_at_step,
                "reached_at_examples": self.reached_at_examples,
                "loss": self.loss,
                "loss_step": self.loss_step,
            },
        }


class DivergenceCallback(TrainerCallback, ExportableState):
    """Stop training, and record it, when it diverges: the logged training (data) loss is non-finite or above
    ``limit``, or a parameter of the model is non-finite.

    Parameters are checked too because ``Trainer`` replaces NaN/inf step losses by the running mean in its logs
    (``logging_nan_inf_filter``), so a NaN run can log finite losses. Checks run at every log, on every process
    alike (the logged loss is averaged across processes, DDP parameters agree), so all processes stop together.
    """

    FLAGS = {"limit": "--divergence_loss"}

    def __init__(self, limit: float) -> None:
        if not limit > 0:
            raise ValueError(f"divergence_loss must be > 0, got {limit}.")
        self.limit = float(limit)
        self.diverged = False
        self.diverged_at_step: int | None = None

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, float] | None = None,
        model: torch.nn.Module | None = None,
        **kwargs: Any,
    ) -> None:
        value = None if logs is None else training_loss(logs)
        bad_loss = value is not None and (not math.isfinite(value) or value > self.limit)
        bad_weights = (
            value is not None
            and model is not None
            and not all(bool(torch.isfinite(param).all()) for param in model.parameters())
        )
        if (bad_loss or bad_weights) and not self.diverged:
            self.diverged, self.diverged_at_step = True, state.global_step
        if self.diverged:
            control.should_training_stop = True

    def state(self) -> dict[str, Any]:
        return {
            "args": {"limit": self.limit},
            "attributes": {"diverged": self.diverged, "diverged_at_step": self.diverged_at_step},
        }
