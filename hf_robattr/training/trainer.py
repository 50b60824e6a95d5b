"""``RobAttrTrainer``: a ``Trainer`` that adds an explicit regularizer through narrow overrides."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel, Trainer
from transformers.trainer import TRAINING_ARGS_NAME
from transformers.utils import SAFE_WEIGHTS_NAME

from hf_robattr.data import ANNOTATION_KEYS

from .regularizers import Regularizer, get_regularizer
from .training_arguments import RobAttrTrainingArguments


logger = logging.getLogger(__name__)


__all__ = ["TRAINING_ARGS_JSON", "RobAttrTrainer", "build_regularizer", "training_loss"]

TRAINING_ARGS_JSON = "training_args.json"


def training_loss(logs: dict[str, Any]) -> float | None:
    """The data loss of a training log row: ``data_loss`` under an explicit regularizer (``loss`` is then the whole
    objective), ``loss`` otherwise; ``None`` for rows without one (evaluation, diagnostics)."""
    value = logs.get("data_loss", logs.get("loss"))
    return None if value is None else float(value)


@contextlib.contextmanager
def secrets_removed(args: Any) -> Iterator[None]:
    """Blank every ``*_token`` field of ``args`` (e.g. ``hub_token``) for the duration, then restore it.

    ``Trainer`` pickles its arguments with ``torch.save``; inside this context the pickle holds no token.
    """
    secrets = {name: value for name, value in vars(args).items() if name.endswith("_token") and value is not None}
    for name in secrets:
        setattr(args, name, None)
    try:
        yield
    finally:
        for name, value in secrets.items():
            setattr(args, name, value)


def write_training_args_json(args: Any, output_dir: str) -> None:
    """Replace ``training_args.bin`` (a pickle) in ``output_dir`` by ``training_args.json`` (tokens masked)."""
    pickled = os.path.join(output_dir, TRAINING_ARGS_NAME)
    if os.path.exists(pickled):
        os.remove(pickled)
    with open(os.path.join(output_dir, TRAINING_ARGS_JSON), "w", encoding="utf-8") as handle:
        handle.write(args.to_json_string())  # TrainingArguments.to_dict masks every ``*_token`` field


def build_regularizer(args: RobAttrTrainingArguments) -> Regularizer | None:
    """The regularizer that ``args`` names, with its options; ``None`` for ``--regularizer none``."""
    cls = get_regularizer(args.regularizer)
    options: dict[str, dict[str, Any]] = {
        "ig_norm": {"steps": args.ig_steps, "chunk_size": args.ig_chunk_size, "epsilon": args.ig_epsilon},
        "curvature": {"step": args.curvature_step},
    }
    if args.regularizer == "none":
        return None
    return cls(args.regularizer_weight, **options.get(args.regularizer, {}))


class RobAttrTrainer(Trainer):
    """A ``Trainer`` that applies ``args.regularizer`` and binds trainer-aware callbacks.

    - ``--regularizer none`` changes nothing: the step is exactly ``Trainer``'s (the implicit regime under SGD).
    - Penalty regularizers (``input_grad_norm``, ``curvature``, ``igr``, unchunked ``ig_norm``) override only
      ``compute_loss``: it returns ``L + lambda R`` (per-batch means, so the loss has the same scale on 1 or N
      processes), under MATH attention so it can be differentiated twice.
    - ``sam`` and chunked ``ig_norm`` run several backward passes, so they override ``training_step``.

    The data loss ``L`` and penalty ``R`` are averaged between logs (and across processes) and logged as
    ``data_loss`` and ``regularizer_penalty`` beside ``loss`` (the full objective).
    Callbacks with a ``bind_trainer`` method get this trainer (to log through :meth:`log`).
    """

    def __init__(self, *args: Any, regularizer: Regularizer | None = None, **kwargs: Any) -> None:
        training_args = kwargs.get("args", args[1] if len(args) > 1 else None)
        if not isinstance(training_args, RobAttrTrainingArguments):
            raise TypeError(
                f"RobAttrTrainer needs args of type RobAttrTrainingArguments, got {type(training_args).__name__}."
            )
        super().__init__(*args, **kwargs)
        self.regularizer = regularizer if regularizer is not None else build_regularizer(training_args)
        if self.regularizer is not None:
            if self.is_fsdp_enabled or self.is_deepspeed_enabled:
                raise ValueError(
                    f"--regularizer {training_args.regularizer} needs the full parameters on every process; it runs "
                    "single-process or with DDP, not with FSDP/DeepSpeed. Use --regularizer none with FSDP."
                )
            self.loss_is_scaled_for_ga = False  # L + lambda R is a per-batch mean
            logger.info("Explicit regularizer: %r", self.regularizer)
        self._reg_totals = torch.zeros(3, dtype=torch.float64)  # sum L, sum R, count
        self._bind_callbacks()

    def _bind_callbacks(self) -> None:
        for callback in self.callback_handler.callbacks:
            if hasattr(callback, "bind_trainer"):
                callback.bind_trainer(self)

    def add_callback(self, callback: Any) -> None:
        """``Trainer.add_callback``, then bind the callback to this trainer if it asks for it."""
        super().add_callback(callback)
        self._bind_callbacks()

    def _load_callback_state(self) -> None:
        """``Trainer``'s restore of stateful callbacks from a checkpoint (it builds new callback objects from the
        checkpoint's arguments), then bind the new ones to this trainer. A callback whose arguments in the checkpoint
        differ from this run's (e.g. another ``--target_train_loss``) is refused first: restored, it would silently
        keep the checkpoint's values while the run's record states the new ones."""
        if self.args.restore_callback_states_from_checkpoint:
            self._refuse_changed_callback_arguments()
        super()._load_callback_state()
        self._bind_callbacks()

    def _refuse_changed_callback_arguments(self) -> None:
        changed = []
        for callback in self.callback_handler.callbacks:
            flags, stored = (
                getattr(callback, "FLAGS", None),
                self.state.stateful_callbacks.get(type(callback).__name__),
            )
            if not flags or not stored:
                continue
            saved = (stored[0] if isinstance(stored, list) else stored).get("args", {})
            current = callback.state()["args"]
            changed += [
                f"{flags.get(name, name)} {saved[name]!r} in the checkpoint, {value!r} now"
                for name, value in current.items()
                if name in saved and saved[name] != value
            ]
        if changed:
            raise ValueError(
                f"--resume_from_checkpoint: the checkpoint was trained with other stopping settings ({'; '.join(changed)}). "
                "Resume with the checkpoint's values, or start a new run without --resume_from_checkpoint."
            )

    def _prepare_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """``Trainer._prepare_inputs`` without the annotation columns (ground-truth masks, rationales): they ride
        along in the batches for attribution studies but are not model inputs."""
        inputs = {key: value for key, value in inputs.items() if key not in ANNOTATION_KEYS}
        return super()._prepare_inputs(inputs)

    def compute_loss_context_manager(self) -> contextlib.ExitStack:
        """``Trainer``'s context plus MATH attention when the regularizer differentiates twice."""
        stack = super().compute_loss_context_manager()
        if self.regularizer is not None and self.model.training:
            stack.enter_context(self.regularizer.context())
        return stack

    def _record(self, loss: torch.Tensor, penalty: torch.Tensor) -> None:
        self._reg_totals += torch.tensor([float(loss), float(penalty), 1.0], dtype=torch.float64)

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        """``L + lambda R`` while training with a penalty regularizer; ``Trainer.compute_loss`` otherwise."""
        if self.regularizer is None or return_outputs or not model.training:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        core = self.accelerator.unwrap_model(model)
        loss, penalty = self.regularizer.loss_and_penalty(model, inputs, core=core)
        self._record(loss.detach(), penalty.detach())
        return self.regularizer.objective(loss, penalty)

    def _scaled_backward(self, loss: torch.Tensor) -> None:
        self.accelerator.backward(loss / self.current_gradient_accumulation_steps)

    def training_step(
        self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch: torch.Tensor | int | None = None
    ) -> torch.Tensor:
        """``Trainer.training_step``, except for regularizers that run their own backward passes (SAM, chunked IG)."""
        if self.regularizer is None or not self.regularizer.owns_backward():
            return super().training_step(model, inputs, num_items_in_batch)
        model.train()
        inputs = self._prepare_inputs(inputs)
        core = self.accelerator.unwrap_model(model)
        with self.compute_loss_context_manager():
            loss, penalty = self.regularizer.step(model, inputs, core=core, backward=self._scaled_backward)
        self._record(loss, penalty)
        return self.regularizer.objective(loss, penalty).detach() / self.current_gradient_accumulation_steps

    def _load_pretrained_weights(self, checkpoint: str, model: nn.Module | None = None) -> bool:
        """Load ``checkpoint``'s weights into the model through ``from_pretrained``; ``False`` if not applicable.

        transformers 5.x saves ViT weights under the checkpoint layout (``encoder.layer.N.attention.attention.query``)
        but ``Trainer`` reloads its checkpoints with a plain ``load_state_dict`` into the v5 module layout
        (``layers.N.attention.q_proj``): every renamed weight is reported missing and silently keeps its current
        value, so ``--resume_from_checkpoint`` and ``load_best_model_at_end`` would not load. ``from_pretrained``
        applies the renames. FSDP, DeepSpeed and non-``PreTrainedModel`` models keep ``Trainer``'s loaders.
        """
        unwrapped = self.accelerator.unwrap_model(model if model is not None else self.model)
        applicable = isinstance(unwrapped, PreTrainedModel) and not (self.is_fsdp_enabled or self.is_deepspeed_enabled)
        if not applicable or not os.path.isfile(os.path.join(checkpoint, SAFE_WEIGHTS_NAME)):
            return False
        loaded = type(unwrapped).from_pretrained(checkpoint, config=unwrapped.config)
        unwrapped.load_state_dict(loaded.state_dict(), strict=True)
        return True

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        """Resume: load the checkpoint's weights with the key renames applied (see :meth:`_load_pretrained_weights`)."""
        if not self._load_pretrained_weights(resume_from_checkpoint, model):
            super()._load_from_checkpoint(resume_from_checkpoint, model)

    def _load_best_model(self) -> None:
        """``load_best_model_at_end``: as :meth:`_load_from_checkpoint`, from the best checkpoint."""
        if not self._load_pretrained_weights(self.state.best_model_checkpoint):
            super()._load_best_model()

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """``Trainer._save`` (final model and every checkpoint), writing the training arguments as JSON with
        tokens masked instead of the ``training_args.bin`` pickle: no file of a run holds a secret or a pickle of
        the arguments."""
        with secrets_removed(self.args):
            super()._save(output_dir, state_dict=state_dict)
        if self.args.should_save:
            write_training_args_json(self.args, output_dir if output_dir is not None else self.args.output_dir)

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        """``Trainer``'s checkpoint push, with no token in the arguments it pickles."""
        with secrets_removed(self.args):
            super()._push_from_checkpoint(checkpoint_folder)
        if self.args.should_save:
            write_training_args_json(self.args, self.args.output_dir)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add ``data_loss`` and ``regularizer_penalty`` (averaged since the last log) to training-loss logs."""
        if self.regularizer is not None and "loss" in logs:
            totals = self._reg_totals.to(self.args.device)
            if self.args.world_size > 1:
                totals = self.accelerator.reduce(totals, reduction="sum")
            if totals[2] > 0:
                logs["data_loss"] = round(float(totals[0] / totals[2]), 6)
                logs["regularizer_penalty"] = round(float(totals[1] / totals[2]), 6)
            self._reg_totals.zero_()
        super().log(logs, start_time)
