"""A ``TrainerCallback`` that only collects model-card data while a ``Trainer`` runs."""

from __future__ import annotations

import logging
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from ..training import model_record, non_default_arguments, training_record
from .card_data import RobAttrModelCardData


logger = logging.getLogger(__name__)


class RobAttrModelCardCallback(TrainerCallback):
    """Fill a :class:`RobAttrModelCardData` from a training run; it never changes the run.

    The sections are built by the same functions that write a recipe's ``results.json``
    (:func:`~hf_robattr.training.model_record`, :func:`~hf_robattr.training.training_record`,
    :func:`~hf_robattr.training.non_default_arguments`), so a card from this callback and a card from a recipe run
    show the same fields.

    Add it with ``trainer.add_callback(callback)`` and pass ``callback.card_data`` to
    :func:`~hf_robattr.hub.save_model_card` at the end. Robustness and sharpness logged by the training callbacks
    end up in ``log_history`` and in the card's training plot.
    """

    def __init__(self, card_data: RobAttrModelCardData | None = None) -> None:
        self.card_data = card_data if card_data is not None else RobAttrModelCardData()

    def _collect_model(self, model: Any) -> None:
        if getattr(model, "config", None) is None:
            return
        name_or_path = getattr(model.config, "_name_or_path", None) or None
        for key, value in model_record(model, name_or_path).to_json().items():
            self.card_data.model.setdefault(key, value)

    def on_init_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, model: Any = None, **kwargs: Any
    ) -> None:
        """Record the model's architecture and attention."""
        self._collect_model(model)

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, model: Any = None, **kwargs: Any
    ) -> None:
        """Record the training regime and the non-default training arguments."""
        self._collect_model(model)
        self.card_data.training.update(training_record(args, state).to_json())
        self.card_data.hyperparameters = non_default_arguments(args)

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        """Keep the latest evaluation accuracy, loss and ``{method}/{measure}`` robustness numbers."""
        for key, value in (metrics or {}).items():
            name = key.removeprefix("eval_")
            if name in ("accuracy", "loss"):
                self.card_data.eval[name] = value
            elif "/" in name:
                self.card_data.robustness[name.removeprefix("robustness/")] = value

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Record how the run ended (steps, runtime, final loss) and the log history."""
        runtime = next((row["train_runtime"] for row in state.log_history if "train_runtime" in row), None)
        self.card_data.training.update(training_record(args, state, train_runtime=runtime).to_json())
        self.card_data.log_history = list(state.log_history)
