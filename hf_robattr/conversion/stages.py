"""Run the two conversion stages with ``Trainer``: arguments, trainable parameters, LoRA adapters (``peft``)."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn
from transformers import PreTrainedModel, TrainingArguments, set_seed

from hf_robattr.models import KernelFeatureMap

from .config import ConversionConfig
from .inputs import ExampleDataset, PaddingCollator
from .record import StageRecord
from .recovery import RecoveryTrainer
from .stopping import RULE_MEASURES, TARGETS, FidelityCheck, StopCallback, StopRule
from .transfer import AttentionTransferTrainer, DistillationTrainer


__all__ = [
    "ENCODER_LINEAR_MODULES",
    "QUERY_KEY_MODULES",
    "StageInputs",
    "recovery_rule",
    "run_attention_transfer",
    "run_recovery",
    "transfer_rule",
]

logger = logging.getLogger(__name__)

# peft ``target_modules`` regexes (full match on module names), by model family.
QUERY_KEY_MODULES = {
    "bert": r".*encoder\.layer\.\d+\.attention\.self\.(query|key)",
    "vit": r".*layers\.\d+\.attention\.(q_proj|k_proj)",
}
ENCODER_LINEAR_MODULES = {
    "bert": r".*encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense"
    r"|output\.dense)",
    "vit": r".*layers\.\d+\.(attention\.(q_proj|k_proj|v_proj|o_proj)|mlp\.(fc1|fc2))",
}


@dataclass(frozen=True)
class StageInputs:
    """What both stages train from: the frozen softmax ``teacher``, the training ``examples`` (tokenized or pixel
    tensors, with ``labels`` when the data has them), the ``config``, and the pair's ``family`` (``"bert"`` /
    ``"vit"``), ``task`` (the teacher's head) and ``pad_token_id`` (for batching text)."""

    teacher: PreTrainedModel
    examples: list[dict[str, torch.Tensor]]
    config: ConversionConfig
    family: str
    task: str
    pad_token_id: int


def training_arguments(
    config: ConversionConfig, *, steps: int, learning_rate: float, batch_size: int, output_dir: str, **extra
) -> TrainingArguments:
    """``TrainingArguments`` for one stage: ``batch_size`` is global, split evenly across the processes."""
    args = TrainingArguments(
        output_dir=output_dir,
        max_steps=steps,
        learning_rate=learning_rate,
        lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=int(config.warmup_ratio * steps),
        weight_decay=0.0,
        per_device_train_batch_size=batch_size,
        logging_steps=config.logging_steps,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        seed=config.seed,
        data_seed=config.seed,
        remove_unused_columns=False,
        dataloader_drop_last=True,  # equal per-process batches: a global batch splits the same way on any count
        average_tokens_across_devices=False,
        use_cpu=config.use_cpu,
        dataloader_pin_memory=torch.cuda.is_available() and not config.use_cpu,
        disable_tqdm=not config.progress,
        **extra,
    )
    if batch_size % args.world_size:
        raise ValueError(
            f"The global batch size ({batch_size}) must be divisible by the number of processes ({args.world_size})."
        )
    args.per_device_train_batch_size = batch_size // args.world_size
    return args


def _feature_map_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for m in model.modules() if isinstance(m, KernelFeatureMap) for p in m.parameters()]


def _train(trainer, record: StageRecord, student: nn.Module) -> None:
    record.trainable_parameters = sum(p.numel() for p in student.parameters() if p.requires_grad)
    wall, cpu = time.perf_counter(), time.process_time()
    trainer.train()
    record.wall_time_s = round(time.perf_counter() - wall, 3)
    record.cpu_time_s = round(time.process_time() - cpu, 3)
    record.steps = trainer.state.global_step
    record.log_history = trainer.state.log_history


def _lora(student: PreTrainedModel, rank: int, alpha: float | None, targets: Any) -> nn.Module:
    config = LoraConfig(r=rank, lora_alpha=alpha or rank, lora_dropout=0.0, target_modules=targets, bias="none")
    return get_peft_model(student, config)


def _fit(
    trainer: Callable[..., DistillationTrainer],
    trained: nn.Module,
    inputs: StageInputs,
    arguments: dict[str, Any],
    callbacks: list[Any] | None = None,
) -> tuple[PreTrainedModel, StageRecord]:
    """Train ``trained`` (its parameters that have ``requires_grad``) on ``inputs.examples``: ``trainer`` builds the
    stage's ``Trainer`` from ``student``, ``args``, ``train_dataset`` and ``data_collator`` (a stage trainer class
    with its other options bound); ``arguments`` are :func:`training_arguments`'s stage keywords (``steps``,
    ``learning_rate``, ``batch_size``, ...). Returns the student (LoRA adapters merged), frozen and in eval mode, and
    the stage's record.
    """
    record = StageRecord()
    with tempfile.TemporaryDirectory() as output_dir:
        args = training_arguments(inputs.config, output_dir=output_dir, **arguments)
        dataset, collator = ExampleDataset(inputs.examples), PaddingCollator(inputs.pad_token_id)
        built = trainer(student=trained, args=args, train_dataset=dataset, data_collator=collator, callbacks=callbacks)
        _train(built, record, trained)
    student = trained.merge_and_unload() if isinstance(trained, PeftModel) else trained
    return student.requires_grad_(False).eval(), record


def transfer_rule(config: ConversionConfig, task: str, data: str) -> StopRule | None:
    """The stage 1 stop rule of ``config`` for a ``task`` model, checked on ``data`` (a description); ``None`` when
    the task has no targets or ``transfer_check_steps`` is 0."""
    if not (TARGETS[task] and config.transfer_check_steps):
        return None
    return StopRule("attention transfer", RULE_MEASURES[task], dict(TARGETS[task]), config.transfer_check_steps, data)


def recovery_rule(config: ConversionConfig, task: str, data: str) -> StopRule | None:
    """The stage 2 stop rule of ``config`` for a ``task`` model, checked on ``data`` (a description); ``None`` when
    ``recovery_check_steps`` is 0."""
    if not config.recovery_check_steps:
        return None
    return StopRule(
        "recovery",
        RULE_MEASURES[task],
        dict(TARGETS[task]),
        config.recovery_check_steps,
        data,
        min_gain=config.recovery_min_gain,
        patience=config.recovery_patience,
    )


def _skipped(rule: StopRule, student: PreTrainedModel, baseline: dict[str, float], before: str):
    """The record of a stage the rule skips because ``student`` (after ``before``) already meets the targets."""
    rule.checks.append({"step": 0, **baseline})
    values = ", ".join(f"{name}={value:.4f}" for name, value in baseline.items())
    rule.decision = f"skipped: {before} already meets the targets ({values})"
    logger.info("Stop rule: %s. %s.", rule.describe(), rule.decision)
    return student.requires_grad_(False).eval(), StageRecord(stop_rule=rule.to_dict())


def run_attention_transfer(
    student: PreTrainedModel,
    inputs: StageInputs,
    check: FidelityCheck | None = None,
    *,
    cache_teacher_inputs: bool,
    check_data: str = "",
) -> tuple[PreTrainedModel, StageRecord]:
    """Stage 1: train the feature maps (and query/key adapters, merged afterwards); return the student and its record.
    ``cache_teacher_inputs`` keeps the teacher's per-layer attention inputs after their first computation.

    With ``check`` (held-out examples, described by ``check_data``), the stage stops once the task's targets are met
    (skipped when the plain swap meets them already); see :mod:`~hf_robattr.conversion.stopping`."""
    config = inputs.config
    rule = transfer_rule(config, inputs.task, check_data) if check is not None else None
    baseline, skipped = _checked_start(rule, check, student, "the plain swap")
    if skipped is not None:
        return skipped
    set_seed(config.seed)
    student.requires_grad_(False)
    rank = config.effective_qk_lora_rank
    trained = _lora(student, rank, None, QUERY_KEY_MODULES[inputs.family]) if rank else student
    for parameter in _feature_map_parameters(trained):
        parameter.requires_grad_(True)
    objective = {"output_weight": config.transfer_output_weight, "cache_teacher_inputs": cache_teacher_inputs}
    trainer = partial(AttentionTransferTrainer, teacher=inputs.teacher, objective=objective)
    arguments = {
        "steps": config.transfer_steps,
        "learning_rate": config.transfer_learning_rate,
        "batch_size": config.batch_size,
    }
    return _fit_with_rule(trainer, trained, inputs, arguments, rule, check, baseline)


def _checked_start(rule: StopRule | None, check: FidelityCheck | None, student: PreTrainedModel, before: str):
    """The student's measures before a stage with a stop rule (``{}`` without one), and the skipped stage's result
    when they meet the targets already (``None`` otherwise, after logging the rule)."""
    if rule is None:
        return {}, None
    baseline = check(student)
    if rule.meets_targets(baseline):
        return baseline, _skipped(rule, student, baseline, before)
    logger.info("Stop rule: %s.", rule.describe())
    return baseline, None


def _fit_with_rule(trainer, trained, inputs, arguments, rule, check, baseline) -> tuple[PreTrainedModel, StageRecord]:
    """:func:`_fit`, with ``rule`` (if any) applied by a :class:`StopCallback` and recorded."""
    callbacks = [StopCallback(rule, check, trained, baseline)] if rule is not None else None
    student, record = _fit(trainer, trained, inputs, arguments, callbacks)
    if rule is not None:
        record.stop_rule = rule.to_dict()
        logger.info("%s %s; kept the weights of step %s.", rule.stage.capitalize(), rule.decision, rule.kept_step)
    return student, record


def run_recovery(
    student: PreTrainedModel, inputs: StageInputs, check: FidelityCheck | None = None, *, check_data: str = ""
) -> tuple[PreTrainedModel, StageRecord]:
    """Stage 2: LoRA (merged afterwards) or full fine-tuning on the output-matching objective; return the student and
    its record.

    With ``check`` (held-out examples, described by ``check_data``) and ``recovery_check_steps > 0``, the stop rule
    of :mod:`~hf_robattr.conversion.stopping` applies: the stage is skipped when ``student`` already meets the task's
    targets, and otherwise stops once it no longer improves, keeping the best checked weights."""
    config = inputs.config
    rule = recovery_rule(config, inputs.task, check_data) if check is not None else None
    baseline, skipped = _checked_start(rule, check, student, "attention transfer")
    if skipped is not None:
        return skipped
    set_seed(config.seed)
    student.requires_grad_(False)
    if config.recovery == "lora":
        targets = config.lora_target_modules or ENCODER_LINEAR_MODULES[inputs.family]
        trained = _lora(student, config.lora_rank, config.lora_alpha, targets)
    else:
        trained = student.requires_grad_(True)
    has_labels = "labels" in inputs.examples[0]
    objective = {
        "output_weight": config.output_weight,
        "hidden_state_weight": config.hidden_state_weight,
        "task_loss_weight": config.task_loss_weight if has_labels else 0.0,
        "temperature": config.distillation_temperature,
    }
    trainer = partial(
        RecoveryTrainer, teacher=inputs.teacher, family=inputs.family, task=inputs.task, objective=objective
    )
    arguments = {
        "steps": config.recovery_steps,
        "learning_rate": config.effective_recovery_learning_rate,
        "batch_size": config.effective_recovery_batch_size,
        # full fine-tuning also holds weights the objective never reaches (e.g. a base model's pooler)
        "ddp_find_unused_parameters": config.recovery == "full",
    }
    return _fit_with_rule(trainer, trained, inputs, arguments, rule, check, baseline)
