"""Two-sided matched fit: stop at, or roll back to, the checkpoint whose true training loss is closest to a target,
and say whether it lies within a band around it.

The one-sided rule (:class:`~hf_robattr.training.TargetLossCallback`) stops at the first check at or below the
target. When the loss falls fast, a run overshoots it between two checks, and fast runs end further below the target
than slow ones: their fits are not matched. :class:`MatchedFitCallback` keeps in-memory copies of the model's weights
between checks (cheap for small models), and when a check finds the loss below the band it searches those copies
(bisection on the true loss, which falls along training) for the one closest to the target and loads it.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .output_folder import TRAINER_STATE_FILE
from .record import FitBandRecord, MatchedFitRecord
from .stopping import TargetLossCallback, _total_batch_size


__all__ = ["FIT_OUTCOMES", "MatchedFitCallback"]

FIT_OUTCOMES = ("in_band", "above_band", "below_band")


class MatchedFitCallback(TargetLossCallback):
    """Matched fit within a band: end training on the checkpoint whose true training loss is closest to ``target``.

    The true loss (eval mode, on the first ``num_examples`` training examples, as
    :class:`~hf_robattr.training.TargetLossCallback` measures it) is checked after every ``check_every_examples``
    training examples, once at least ``min_examples`` have been seen. In between, a copy of the weights is kept every
    ``snapshot_every_examples`` examples (0: only at the checks). At a check:

    - inside the band ``[target (1 - band), target (1 + band)]``: training stops there;
    - below it: the copies since the previous check (and that check's weights) are searched by bisection for the
      one whose loss is closest to the target (in ``|log(loss / target)|``), which is loaded; training stops. The
      bisection assumes the true loss falls from copy to copy: where it bounces between checks (a large learning
      rate), the copy found is the closest of those it measured, not always the closest of all;
    - above it: training goes on, and the copies are dropped.

    When training ends (its step or epoch budget) with the last loss above the band, the run stays where it is. The
    outcome (``fit_outcome``) is ``in_band`` when the loss at the stop lies in the band, else ``above_band`` or
    ``below_band`` (e.g. one step jumped over the band, or the loss after ``min_examples`` was already below it):
    a run outside the band did not reach the matched fit. A copy of the weights is taken at the start of training
    (or at ``min_examples``), so even an overshoot at the first check can be rolled back.

    Copies of the weights are kept on the model's device; with ``snapshot_every_examples`` equal to the batch size
    every step is kept until the next check, ``check_every_examples / batch`` copies at most.

    Attributes: those of :class:`TargetLossCallback` (``loss`` is the loss at the stop, ``loss_step`` the step of
    the weights kept), plus ``outcome``, ``rolled_back``, ``stop_examples`` and ``checks`` (every measured
    ``(examples, loss)``, rollback probes included).
    """

    FLAGS = {
        **TargetLossCallback.FLAGS,
        "band": "--target_loss_band",
        "min_examples": "--target_min_examples",
        "snapshot_every_examples": "--target_snapshot_every_examples",
    }

    def __init__(
        self,
        target: float,
        *,
        band: float,
        num_examples: int = 1024,
        check_every_examples: int = 1024,
        batch_size: int = 256,
        min_examples: int = 0,
        snapshot_every_examples: int = 0,
    ) -> None:
        super().__init__(
            target, num_examples=num_examples, check_every_examples=check_every_examples, batch_size=batch_size
        )
        if not 0 < band < 1:
            raise ValueError(f"target_loss_band must be in (0, 1), got {band}.")
        for name, value in (("min_examples", min_examples), ("snapshot_every_examples", snapshot_every_examples)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}.")
        self.band = float(band)
        self.min_examples = int(min_examples)
        self.snapshot_every_examples = int(snapshot_every_examples)
        self.outcome: str | None = None
        self.rolled_back = False
        self.stop_examples: int | None = None
        self.checks: list[tuple[int, float]] = []
        # (step, examples, weights) since the last check, oldest first; the first one is that check's weights.
        self._snapshots: list[tuple[int, int, dict[str, torch.Tensor]]] = []
        self._losses: dict[int, float] = {}  # step -> measured loss, for the copies held now
        self._saved: tuple[int, Path] | None = None  # (step, folder) of the last checkpoint this run saved

    @property
    def low(self) -> float:
        """The band's lower edge, ``target (1 - band)``."""
        return self.target * (1 - self.band)

    @property
    def high(self) -> float:
        """The band's upper edge, ``target (1 + band)``."""
        return self.target * (1 + self.band)

    def _model(self) -> torch.nn.Module:
        return self.trainer.accelerator.unwrap_model(self.trainer.model)

    def _keep(self, step: int, examples: int) -> None:
        weights = {name: value.detach().clone() for name, value in self._model().state_dict().items()}
        self._snapshots.append((step, examples, weights))

    def _distance(self, loss: float) -> float:
        return abs(math.log(max(loss, 1e-300) / self.target))

    def _measure_at(self, args: TrainingArguments, index: int) -> float:
        step, examples, weights = self._snapshots[index]
        if step not in self._losses:
            self._model().load_state_dict(weights)
            self._losses[step] = self.measure(args)
            self.checks.append((examples, self._losses[step]))
        return self._losses[step]

    def _settle(self, args: TrainingArguments, state: TrainerState, loss: float, examples: int) -> None:
        """End the run on the current weights or, when ``loss`` is below the band, on the closest copy."""
        step = state.global_step
        if loss < self.low and self._snapshots:
            current = {name: value.detach().clone() for name, value in self._model().state_dict().items()}
            if self._snapshots[-1][0] != step:
                self._snapshots.append((step, examples, current))
            self._losses[step] = loss
            low, high = 0, len(self._snapshots) - 1  # bisection between a copy above the target and one below
            while high - low > 1:
                middle = (low + high) // 2
                if self._measure_at(args, middle) > self.target:
                    low = middle
                else:
                    high = middle
            self._measure_at(args, low)
            best = min(
                (i for i in range(len(self._snapshots)) if self._snapshots[i][0] in self._losses),
                key=lambda i: (self._distance(self._losses[self._snapshots[i][0]]), -self._snapshots[i][0]),
            )
            step, examples, weights = self._snapshots[best]
            self._model().load_state_dict(weights)
            loss = self._losses[step]
            self.rolled_back = step != state.global_step
        self.loss, self.loss_step, self.stop_examples = loss, step, examples
        self.outcome = (
            "in_band" if self.low <= loss <= self.high else ("below_band" if loss < self.low else "above_band")
        )
        self.reached = self.outcome == "in_band"
        if self.reached:
            self.reached_at_step, self.reached_at_examples = step, examples
        self._snapshots, self._losses = [], {}

    def _log(self, control: TrainerControl, loss: float, examples: int) -> None:
        should_log = control.should_log  # Trainer.log resets it (CallbackHandler.on_log); keep the step's own log
        self.trainer.log({"matched_fit/train_loss": loss, "matched_fit/examples": float(examples)})
        control.should_log = should_log

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """Keep the starting weights (the copy an overshoot at the first check can roll back to); a resume from a
        checkpoint saved after the fit ended is refused (:meth:`TargetLossCallback.on_train_begin`)."""
        if self.trainer is None:
            raise RuntimeError("MatchedFitCallback needs a RobAttrTrainer (it binds the callback to itself).")
        super().on_train_begin(args, state, control, **kwargs)
        if not self._snapshots and self.min_examples == 0:
            self._keep(state.global_step, state.global_step * _total_batch_size(args))

    def _ended(self) -> str | None:
        if self.outcome is None:
            return None
        return f"the run's matched fit ended ({self.outcome}, the weights of step {self.loss_step})"

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """Keep a copy, check, and stop (or roll back) as the class docstring says."""
        if self.trainer is None:
            raise RuntimeError("MatchedFitCallback needs a RobAttrTrainer (it binds the callback to itself).")
        if self.outcome is not None:
            control.should_training_stop = True
            return
        batch = _total_batch_size(args)
        examples = state.global_step * batch
        if examples < self.min_examples:
            return
        first = examples - batch < self.min_examples  # the first step at or past min_examples: always checked
        every = self.check_every_examples
        if not (first or examples // every > (examples - batch) // every):
            snap = self.snapshot_every_examples
            if snap and examples // snap > (examples - batch) // snap:
                self._keep(state.global_step, examples)
            return
        loss = self.measure(args)
        self.checks.append((examples, loss))
        self._log(control, loss, examples)
        if loss <= self.high:  # in the band, or below it (rolled back where copies allow)
            self._settle(args, state, loss, examples)
            control.should_training_stop = True
        else:  # above the band: go on, from a copy of these weights
            self._snapshots, self._losses = [], {state.global_step: loss}
            self._keep(state.global_step, examples)

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """Out of budget: measure the last weights (rolling back if they overshot since the last check; a checkpoint
        of the last step then records the outcome)."""
        if self.trainer is None or self.outcome is not None:
            return
        examples = state.global_step * _total_batch_size(args)
        checked = self.checks and self.checks[-1][0] == examples
        loss = self.checks[-1][1] if checked else self.measure(args)
        if not checked:
            self.checks.append((examples, loss))
        self._settle(args, state, loss, examples)
        if self.rolled_back:
            self._mark_last_checkpoint(args, state)

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """Note the checkpoint this run just saved (the one a rollback at the end of the budget marks)."""
        # the Trainer's folder outside hyperparameter searches (their checkpoints are left unmarked)
        self._saved = (state.global_step, Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")

    def _mark_last_checkpoint(self, args: TrainingArguments, state: TrainerState) -> None:
        """The checkpoint this run saved at the last step holds the weights from before this rollback, and no
        outcome: write the outcome into its state, so that resuming it is refused (:meth:`on_train_begin`) as after
        a stop at a check, instead of ending on weights this run did not keep. Written where the Trainer wrote it
        (``args.should_save``: every node's first process with ``save_on_each_node``), replaced atomically."""
        if self._saved is None or self._saved[0] != state.global_step or not args.should_save:
            return
        path = self._saved[1] / TRAINER_STATE_FILE
        if not path.is_file():
            return
        saved = TrainerState.load_from_json(str(path))
        saved.stateful_callbacks[type(self).__name__] = self.state()  # one matched fit per Trainer
        partial = path.with_name(path.name + ".partial")
        saved.save_to_json(str(partial))
        os.replace(partial, path)

    def fit_record(self) -> MatchedFitRecord:
        """:class:`TargetLossCallback`'s, with the band: its edges, the outcome, whether the run was rolled back,
        where it stopped and every measured loss."""
        band = FitBandRecord(
            target_loss_band=self.band,
            fit_band_low=self.low,
            fit_band_high=self.high,
            fit_outcome=self.outcome,
            rolled_back=self.rolled_back,
            train_examples_at_stop=self.stop_examples,
            target_min_examples=self.min_examples,
            # a resumed run restores its checks from JSON as lists, and appends tuples: compare them as tuples
            fit_checks=[[examples, loss] for examples, loss in sorted(tuple(check) for check in self.checks)],
        )
        return dataclasses.replace(super().fit_record(), band=band)

    def state(self) -> dict[str, Any]:
        """Saved in checkpoints: the arguments and the outcome (the copies of the weights are not saved; a resumed
        run keeps copies from its resumption on)."""
        saved = super().state()
        saved["args"].update(
            band=self.band, min_examples=self.min_examples, snapshot_every_examples=self.snapshot_every_examples
        )
        saved["attributes"].update(
            outcome=self.outcome,
            rolled_back=self.rolled_back,
            stop_examples=self.stop_examples,
            checks=[list(check) for check in self.checks],
        )
        return saved
