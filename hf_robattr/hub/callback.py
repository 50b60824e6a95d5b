"""A ``TrainerCallback`` that only collects model-card data while a ``Trainer`` runs."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from .card_data import RobAttrModelCardData


logger = logging.getLogger(__name__)

# Arguments that describe the machine or the bookkeeping, not the training regime.
_IGNORED_ARGUMENTS = {
    "output_dir", "logging_dir", "run_name", "report_to", "push_to_hub", "hub_model_id", "hub_token",
    "hub_strategy", "hub_private_repo", "hub_always_push", "hub_revision", "overwrite_output_dir", "do_train",
    "do_eval", "do_predict", "local_rank", "ddp_backend", "use_cpu", "dataloader_num_workers", "disable_tqdm",
    "save_strategy", "save_steps", "save_total_limit", "logging_steps", "logging_strategy", "eval_steps",
    "resume_from_checkpoint", "accelerator_config", "per_gpu_train_batch_size", "per_gpu_eval_batch_size", "deepspeed", "fsdp_config",
}  # fmt: skip


def _optimizer_name(args: TrainingArguments) -> str:
    for name in ("optimizer", "optimizer_regime", "optim"):
        value = getattr(args, name, None)
        if value is not None:
            return str(getattr(value, "value", value))
    return "unknown"


def _plain(value: Any) -> Any:
    return getattr(value, "value", value)  # enums (``optim``, strategies) compare by value


def non_default_arguments(args: TrainingArguments) -> dict[str, Any]:
    """The training arguments that differ from their declared defaults (for the card).

    Defaults are read from the dataclass fields: building a second ``TrainingArguments`` during training would
    reset accelerate's shared state.
    """
    current = args.to_dict()
    changed = {}
    for spec in dataclasses.fields(args):
        name = spec.name
        if name in _IGNORED_ARGUMENTS or name.startswith("_") or name not in current or not spec.init:
            continue
        if spec.default is not dataclasses.MISSING:
            default = spec.default
        elif spec.default_factory is not dataclasses.MISSING:
            default = spec.default_factory()
        else:
            continue
        value = current[name]
        unset = default is None or default == ""  # post-init fills these (False, [], {}): not a user choice
        if _plain(value) != _plain(default) and not (unset and not value):
            changed[name] = value
    return changed


class RobAttrModelCardCallback(TrainerCallback):
    """Fill a :class:`RobAttrModelCardData` from a training run; it never changes the run.

    Add it with ``trainer.add_callback(callback)`` and pass ``callback.card_data`` to
    :func:`~hf_robattr.hub.save_model_card` at the end. Robustness and sharpness logged by the training callbacks
    end up in ``log_history`` and in the card's training plot.
    """

    def __init__(self, card_data: RobAttrModelCardData | None = None) -> None:
        self.card_data = card_data if card_data is not None else RobAttrModelCardData()

    def _collect_model(self, model: Any) -> None:
        config = getattr(model, "config", None)
        if config is None:
            return
        architectures = getattr(config, "architectures", None) or [type(model).__name__]
        info = self.card_data.model
        info.setdefault("architecture", architectures[0])
        info.setdefault("attention_type", getattr(config, "attention_type", "softmax"))
        info.setdefault("kernel_feature_map", getattr(config, "kernel_feature_map", None))
        info.setdefault("model_name_or_path", getattr(config, "_name_or_path", None) or None)

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
        total = args.per_device_train_batch_size * args.gradient_accumulation_steps * max(args.world_size, 1)
        self.card_data.training.update(
            optimizer=_optimizer_name(args),
            learning_rate=args.learning_rate,
            per_device_train_batch_size=args.per_device_train_batch_size,
            total_train_batch_size=total,
            regularizer=getattr(args, "regularizer", None),
            regularizer_weight=getattr(args, "regularizer_weight", None),
            num_train_epochs=args.num_train_epochs,
            max_steps=args.max_steps,
            seed=args.seed,
        )
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
        """Record the log history, the step count and the runtime."""
        self.card_data.log_history = list(state.log_history)
        self.card_data.training["global_step"] = state.global_step
        for row in state.log_history:
            if "train_runtime" in row:
                self.card_data.training["train_runtime_s"] = row["train_runtime"]
