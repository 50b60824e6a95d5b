"""The record of a run, ``results.json``: the one producer of the data a model card shows.

The sections are built by small functions that the recipes (through :func:`build_run_record`, which returns the
typed :class:`~hf_robattr.training.RunRecord`) and the Hub's card
callback share: :func:`model_record`, :func:`training_record` and :func:`non_default_arguments`. The file is
written atomically, as strict JSON (a NaN is written as ``null``), by :mod:`hf_robattr.results_io`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from transformers import TrainingArguments

from .record import DatasetRecord, EvalRecord, HubRecord, ModelRecord, RunRecord, ScoringRecord, TrainingRecord
from .trainer import training_loss


__all__ = [
    "build_run_record",
    "model_record",
    "non_default_arguments",
    "training_record",
]

# Arguments that describe the machine or the bookkeeping, not the training regime.
_IGNORED_ARGUMENTS = {
    "output_dir", "logging_dir", "run_name", "report_to", "push_to_hub", "hub_model_id", "hub_token",
    "hub_strategy", "hub_private_repo", "hub_always_push", "hub_revision", "overwrite_output_dir", "do_train",
    "do_eval", "do_predict", "local_rank", "ddp_backend", "use_cpu", "dataloader_num_workers", "disable_tqdm",
    "save_strategy", "save_steps", "save_total_limit", "logging_steps", "logging_strategy", "eval_steps",
    "resume_from_checkpoint", "accelerator_config", "per_gpu_train_batch_size", "per_gpu_eval_batch_size", "deepspeed", "fsdp_config",
    "dataloader_pin_memory", "keep_checkpoints",
}  # fmt: skip


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


def model_record(model: Any, model_name_or_path: str | None = None) -> ModelRecord:
    """The ``"model"`` section: architecture, attention type, kernel feature map, the checkpoint trained from."""
    config = getattr(model, "config", None)
    architectures = getattr(config, "architectures", None) or [type(model).__name__]
    return ModelRecord(
        architecture=architectures[0],
        attention_type=getattr(config, "attention_type", "softmax"),
        kernel_feature_map=getattr(config, "kernel_feature_map", None),
        model_name_or_path=model_name_or_path,
    )


def _optimizer(args: TrainingArguments) -> str:
    value = getattr(args, "optimizer", None) or args.optim
    return str(_plain(value))


def training_record(
    args: TrainingArguments,
    state: Any,
    *,
    stop: Any = None,
    divergence: Any = None,
    train_runtime: float | None = None,
) -> TrainingRecord:
    """The ``"training"`` section: the regime, the budget and how the run ended.

    ``args`` may be a plain ``TrainingArguments`` (fields it lacks are recorded as their neutral values);
    ``state`` is the ``TrainerState``; ``stop`` the :class:`~hf_robattr.training.TargetLossCallback` of the run,
    which fills in its outcome (:meth:`~hf_robattr.training.TargetLossCallback.fill`); ``divergence`` its
    :class:`~hf_robattr.training.DivergenceCallback`, if any.
    """
    optimizer = _optimizer(args)
    regularizer = getattr(args, "regularizer", "none")
    total = args.per_device_train_batch_size * args.gradient_accumulation_steps * max(args.world_size, 1)
    losses = [value for value in map(training_loss, state.log_history) if value is not None]
    record = TrainingRecord(
        optimizer=optimizer,
        momentum=getattr(args, "momentum", 0.0) if optimizer == "momentum_sgd" else 0.0,
        learning_rate=args.learning_rate,
        per_device_train_batch_size=args.per_device_train_batch_size,
        total_train_batch_size=total,
        regularizer=regularizer,
        regularizer_weight=getattr(args, "regularizer_weight", 0.0) if regularizer != "none" else 0.0,
        num_train_epochs=args.num_train_epochs,
        max_steps=args.max_steps,
        seed=args.seed,
        target_train_loss=getattr(args, "target_train_loss", None),
        divergence_loss=getattr(args, "divergence_loss", None),
        diverged=None if divergence is None else divergence.diverged,
        diverged_at_step=None if divergence is None else divergence.diverged_at_step,
        train_runtime_s=None if train_runtime is None else round(train_runtime, 3),
        global_step=state.global_step,
        epochs=float(state.epoch or 0.0),
        num_train_examples_seen=state.global_step * total,
        final_train_loss=losses[-1] if losses else None,
    )
    return record if stop is None else stop.fill(record)  # the matched-fit outcome and its settings


def build_run_record(
    *,
    model: Any,
    args: TrainingArguments,
    state: Any,
    model_name_or_path: str | None,
    dataset: Mapping[str, Any],
    test_metrics: Mapping[str, float],
    robustness: Mapping[str, Any],
    robustness_config: Mapping[str, Any] | None,
    stop: Any = None,
    divergence: Any = None,
    train_runtime: float | None = None,
    diagnostics: Mapping[str, Any] | None = None,
    push_to: str | None = None,
) -> RunRecord:
    """The :class:`~hf_robattr.training.RunRecord` of a run (``results.json``, what ``hf_robattr.hub`` reads to
    write the model card).

    ``dataset`` is the ``"dataset"`` section (name, config, eval split, sizes); ``robustness`` the result of
    :func:`~hf_robattr.training.score_test_robustness`: its scores (``"{method}/{measure}"`` and ``_std``) form the
    ``"robustness"`` section, its counts go to ``"dataset"``: ``num_robustness_examples`` (examples given) and
    ``num_robustness_skipped`` (``{"any": n, method: n}``). ``robustness_config`` is the
    ``RobustnessConfig.to_dict()`` they were scored with (the ``"epsilon_calibration"`` record joins it when the
    radius was ``"auto"``). The scorer's nested entries get their own sections: ``"robustness_saturated"`` (the
    measures that cannot rank models on these inputs, with why) and ``"robustness_baselines"`` (each measure's chance
    and noise means). ``push_to`` is the Hub repo a push was asked for (the ``"hub"`` section), if any.
    """
    scores = {key: value for key, value in robustness.items() if not _is_count(key) and not isinstance(value, Mapping)}
    skipped = {
        key.rpartition("/")[0] or "any": int(value)
        for key, value in robustness.items()
        if key.split("/")[-1] == "num_skipped"
    }
    counts = {"num_robustness_examples": int(robustness.get("num_samples", 0)), "num_robustness_skipped": skipped}
    return RunRecord(
        model=model_record(model, model_name_or_path),
        training=training_record(args, state, stop=stop, divergence=divergence, train_runtime=train_runtime),
        dataset=DatasetRecord.from_json({**dataset, **counts}),
        eval=EvalRecord(accuracy=test_metrics.get("test_accuracy"), loss=test_metrics.get("test_loss")),
        robustness=scores,
        robustness_saturated=dict(robustness.get("saturated", {})),
        robustness_baselines=dict(robustness.get("baselines", {})),
        robustness_config=ScoringRecord(
            settings=dict(robustness_config or {}), epsilon_calibration=robustness.get("epsilon_calibration")
        ),
        hyperparameters=non_default_arguments(args),
        log_history=state.log_history,
        diagnostics=None if diagnostics is None else dict(diagnostics),
        hub=None if push_to is None else HubRecord(push_requested=True, repo_id=push_to),
    )


def _is_count(key: str) -> bool:
    """Bookkeeping of the scoring core (examples given, examples left out), not a robustness score."""
    return key == "num_samples" or key.split("/")[-1] == "num_skipped"
