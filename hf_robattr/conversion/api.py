"""``convert_to_kernel``: turn a pretrained softmax ViT/BERT into a kernel-attention model that still works."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import PreTrainedModel

from .checks import check_examples, count_shared_examples, dry_run
from .config import ConversionConfig
from .fidelity import measure_fidelity
from .inputs import max_text_length, to_examples
from .record import ConversionDataRecord, ConversionRecord, StageRecord, StudentRecord, TeacherRecord
from .saving import save_conversion
from .stages import StageInputs, run_attention_transfer, run_recovery
from .stopping import FidelityCheck
from .student import build_model_pair, check_convertible, model_family


__all__ = ["CONVERSION_STAGES", "ConversionResult", "convert_to_kernel"]

logger = logging.getLogger(__name__)

CONVERSION_STAGES = ("plain_swap", "attention_transfer", "recovery")
CACHE_LIMIT_BYTES = 2 * 1024**3


@dataclass
class ConversionResult:
    """What :func:`convert_to_kernel` returns.

    Attributes:
        model: the kernel-attention student (a RobAttr model, adapters merged, eval mode).
        teacher: the frozen softmax copy it was converted from.
        config: the :class:`ConversionConfig` used.
        fidelity: per stage reached (``"plain_swap"``, ``"attention_transfer"``, ``"recovery"``), the
            :func:`~hf_robattr.conversion.measure_fidelity` numbers on ``eval_inputs`` (empty without them).
        stages: per stage run, its :class:`StageRecord` (steps, trainable parameters, wall/CPU time, log).
        data: conversion and evaluation data sizes (and whatever the caller adds, e.g. the data set's name).
        teacher_name: the teacher's ``name_or_path``.
    """

    model: PreTrainedModel
    teacher: PreTrainedModel
    config: ConversionConfig
    fidelity: dict[str, dict[str, Any]] = field(default_factory=dict)
    stages: dict[str, StageRecord] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    teacher_name: str | None = None

    def record(self) -> ConversionRecord:
        """The typed ``results.json`` record: teacher, student, settings, data, fidelity per stage and stage
        records."""
        config = self.model.config
        return ConversionRecord(
            teacher=TeacherRecord(
                name_or_path=self.teacher_name, architecture=type(self.teacher).__name__, attention_type="softmax"
            ),
            student=StudentRecord(
                architecture=type(self.model).__name__,
                attention_type=config.attention_type,
                kernel_feature_map=config.kernel_feature_map,
                kernel_num_features=config.kernel_num_features,
            ),
            conversion=self.config.to_dict(),
            data=ConversionDataRecord.from_json(self.data),
            fidelity=dict(self.fidelity),
            stages=dict(self.stages),
        )

    def to_results(self) -> dict[str, Any]:
        """The ``results.json`` object (:meth:`record` as JSON)."""
        return self.record().to_json()

    def save_pretrained(self, output_dir: str | Path, **kwargs: Any) -> Path:
        """Write the Hub folder (model + code, ``results.json``, ``README.md``); see
        :func:`~hf_robattr.conversion.save_conversion`."""
        return save_conversion(self, output_dir, **kwargs)


def _check_sizes(config: ConversionConfig, num_examples: int) -> None:
    for stage, runs, batch in (
        ("stage 1", config.runs_transfer, config.batch_size),
        ("stage 2", config.runs_recovery, config.effective_recovery_batch_size),
    ):
        if runs and num_examples < batch:
            raise ValueError(
                f"inputs holds {num_examples} examples, fewer than the {stage} global batch size ({batch}): "
                "pass more examples or a smaller batch_size / recovery_batch_size."
            )


def _without_labels(examples: list[dict] | None) -> list[dict] | None:
    """``examples`` without ``labels`` (a base model has no use for them: no task loss, no accuracy)."""
    if examples is None:
        return None
    return [{key: value for key, value in example.items() if key != "labels"} for example in examples]


def _cache_fits(teacher: PreTrainedModel, examples: list[dict]) -> bool:
    key = "input_ids" if "input_ids" in examples[0] else None
    tokens = sum(e[key].numel() for e in examples) if key else len(examples) * _vit_tokens(teacher.config)
    size = tokens * teacher.config.hidden_size * teacher.config.num_hidden_layers * teacher.dtype.itemsize
    return size <= CACHE_LIMIT_BYTES


def _vit_tokens(config) -> int:
    return (config.image_size // config.patch_size) ** 2 + 1


def _measure(result: ConversionResult, stage: str, examples: list[dict] | None, **options: Any) -> None:
    """Record the fidelity of ``result.model`` after ``stage`` (nothing without held-out examples)."""
    if examples is None:
        return
    start = time.perf_counter()
    result.fidelity[stage] = measure_fidelity(result.teacher, result.model, examples, **options)
    logger.info("Fidelity after %s (%.1f s): %s", stage, time.perf_counter() - start, result.fidelity[stage])


def _stop_check(
    teacher: PreTrainedModel,
    validation: list[dict] | None,
    evaluation: list[dict] | None,
    measure: dict[str, Any],
    config: ConversionConfig,
) -> tuple[FidelityCheck | None, str]:
    """The held-out examples that the stages' stop rules check, and their description (none: no rule)."""
    examples, name = (validation, "validation_inputs") if validation else (evaluation, "eval_inputs")
    wanted = (config.runs_transfer and config.transfer_check_steps) or (
        config.runs_recovery and config.recovery_check_steps
    )
    if not examples or not wanted:
        return None, ""
    check = FidelityCheck(
        teacher,
        examples,
        family=measure["family"],
        task=measure["task"],
        batch_size=measure["batch_size"],
        pad_token_id=measure["pad_token_id"],
    )
    return check, f"{len(examples)} examples of {name}"


def convert_to_kernel(
    model: PreTrainedModel,
    inputs: Any,
    feature_map: str | None = None,
    *,
    tokenizer: Any = None,
    eval_inputs: Any = None,
    validation_inputs: Any = None,
    config: ConversionConfig | None = None,
    **settings: Any,
) -> ConversionResult:
    """Convert a softmax ViT/BERT model to kernel attention by attention transfer (stage 1) and recovery (stage 2).

    Args:
        model: a ``BertModel``, ``BertForSequenceClassification``, ``BertForMaskedLM``, ``ViTModel`` or
            ``ViTForImageClassification`` (plain transformers or RobAttr, softmax attention). It is not changed.
        inputs: the conversion data: texts (with ``tokenizer``), a tensor (``pixel_values`` / ``input_ids``), a
            mapping of batched tensors, or a dataset / list of example dicts. ``labels`` are used only by the
            optional task loss (a classifier's: one class id per example; a masked LM's: one token id or -100 per
            token; a base model's are dropped).
        feature_map: ``"hedgehog"`` (learnable; the default unless ``config`` names another), ``"elu"``, ``"relu"``
            or ``"favor"``.
        tokenizer: tokenizes texts in ``inputs`` / ``eval_inputs``.
        eval_inputs: held-out data (same forms) on which fidelity is measured after every stage (with labels, the
            accuracies too). ``results.json`` counts those equal to a conversion example
            (``data.num_eval_examples_in_training``); the card calls them held out only when there are none.
        validation_inputs: held-out data (same forms) for the stages' stop rules (see
            :mod:`~hf_robattr.conversion.stopping`); default ``eval_inputs`` (then the reported fidelity is not
            independent of the rules; the records say which data decided). With neither, every step runs.
        config: a :class:`ConversionConfig`; ``settings`` (its field names) override its fields.

    Returns:
        A :class:`ConversionResult`; ``result.model`` is the kernel model and ``result.save_pretrained(dir)``
        writes the Hub folder.

    Raises:
        TypeError: ``model`` is not a supported ViT/BERT model, or an unknown setting is passed.
        ValueError: ``model`` already uses kernel attention, ``feature_map`` is unknown, a setting is out of range,
            the data is empty or does not fit the model (every example of ``inputs``, ``eval_inputs`` and
            ``validation_inputs`` is checked: token ids, lengths, masks, image sizes, labels; the message names the
            argument and the example). All of these are raised before any training.

    Example::

        >>> import torch
        >>> from transformers import BertConfig, BertModel
        >>> from hf_robattr import convert_to_kernel
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> bert = BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        ...                             intermediate_size=32))
        >>> ids = torch.randint(1, 50, (16, 12))
        >>> result = convert_to_kernel(bert, ids[:12], "hedgehog", eval_inputs=ids[12:], batch_size=8,
        ...                            transfer_steps=5, recovery_steps=5, progress=False)
        >>> result.model.config.attention_type
        'kernel'
        >>> sorted(result.fidelity)
        ['attention_transfer', 'plain_swap', 'recovery']
    """
    base = config.to_dict() if config is not None else {}
    if feature_map is not None:
        base["feature_map"] = feature_map
    config = ConversionConfig.from_dict({**base, **settings})
    check_convertible(model)
    family = model_family(model)
    max_length = max_text_length(model.config, config.max_length)
    tokenize = {"family": family, "tokenizer": tokenizer, "max_length": max_length}
    examples = to_examples(inputs, argument="inputs", **tokenize)
    eval_examples = to_examples(eval_inputs, argument="eval_inputs", **tokenize) if eval_inputs is not None else None
    validation_examples = (
        to_examples(validation_inputs, argument="validation_inputs", **tokenize)
        if validation_inputs is not None
        else None
    )
    _check_sizes(config, len(examples))

    pair = build_model_pair(model, feature_map=config.feature_map, num_features=config.num_features)
    if pair.task == "base":
        examples, eval_examples, validation_examples = map(
            _without_labels, (examples, eval_examples, validation_examples)
        )
    pad_token_id = getattr(pair.teacher.config, "pad_token_id", None) or 0
    checked = {"inputs": examples, "eval_inputs": eval_examples, "validation_inputs": validation_examples}
    for argument, data in checked.items():
        if data:
            check_examples(pair.teacher, data, task=pair.task, argument=argument)
    for argument, data in checked.items():
        if data:
            dry_run(pair.teacher, data, pad_token_id, argument)
    result = ConversionResult(
        model=pair.student,
        teacher=pair.teacher,
        config=config,
        teacher_name=pair.teacher.config._name_or_path or None,
        data=ConversionDataRecord(
            num_examples=len(examples),
            num_eval_examples=len(eval_examples) if eval_examples else 0,
            num_eval_examples_in_training=count_shared_examples(examples, eval_examples) if eval_examples else None,
        ).to_json(),
    )

    measure = {"family": family, "task": pair.task, "batch_size": config.eval_batch_size, "pad_token_id": pad_token_id}
    _measure(result, "plain_swap", eval_examples, **measure)
    stage_inputs = StageInputs(pair.teacher, examples, config, family, pair.task, pad_token_id)
    check, check_data = _stop_check(pair.teacher, validation_examples, eval_examples, measure, config)
    if config.runs_transfer:
        cache = config.cache_teacher_inputs
        if cache is None:
            cache = _cache_fits(pair.teacher, examples)
        result.model, record = run_attention_transfer(
            result.model, stage_inputs, check, cache_teacher_inputs=cache, check_data=check_data
        )
        result.stages["attention_transfer"] = record
        if record.steps:
            _measure(result, "attention_transfer", eval_examples, **measure)
    if config.runs_recovery:
        result.model, record = run_recovery(result.model, stage_inputs, check, check_data=check_data)
        result.stages["recovery"] = record
        if record.steps:
            _measure(result, "recovery", eval_examples, **measure)
    result.model.eval()
    return result
