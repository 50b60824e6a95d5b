"""A collect-only callback of a study run: the weights training started from, and the CPU seconds of training."""

from __future__ import annotations

import time
from typing import Any

import torch
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments


__all__ = ["TrainingWatch"]


class TrainingWatch(TrainerCallback):
    """Keeps a copy of the model's weights at the start of training (``start_weights``: for a model trained from
    scratch, the untrained model of the run's seed; else the checkpoint it started from, with its new head) and the
    CPU seconds of this process between the start and the end of training (``cpu_seconds``)."""

    def __init__(self) -> None:
        self.start_weights: dict[str, torch.Tensor] | None = None
        self.cpu_seconds: float | None = None
        self._cpu_start: float | None = None

    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: torch.nn.Module | None = None,
        **kwargs: Any,
    ) -> None:
        if model is not None and self.start_weights is None:
            self.start_weights = {name: value.detach().clone() for name, value in model.state_dict().items()}
        self._cpu_start = time.process_time()

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        if self._cpu_start is not None:
            self.cpu_seconds = time.process_time() - self._cpu_start
