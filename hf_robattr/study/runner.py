"""Train one run of the study and measure it: accuracy, attribution robustness, curvature, training cost.

:func:`run_one` is the unit of work of the study: it takes a :class:`~hf_robattr.study.grid.RunSpec` and returns
a JSON-ready record. A run ends in one of four states, all of them recorded (never dropped):

- ``ok``: trained (matched budget: the target training loss was reached) and measured;
- ``not_fit``: the matched budget hit its epoch cap before the target loss (measured, reported apart);
- ``diverged``: the training loss became non-finite or exceeded ``divergence_loss`` (not measured);
- ``error``: an exception (message and traceback stored; retried when the study resumes).
"""

from __future__ import annotations

import math
import tempfile
import time
import traceback
from dataclasses import asdict
from typing import Any

import torch
from transformers import PrinterCallback, TrainerCallback, TrainerControl, TrainerState, TrainingArguments, set_seed

from hf_robattr.robustness import (
    attention_entropy,
    evaluate_attribution_robustness,
    hessian_top_eigenvalue,
    hessian_trace,
    input_curvature,
)
from hf_robattr.training import (
    RobAttrTrainer,
    RobAttrTrainingArguments,
    TextModelArguments,
    VisionModelArguments,
    build_bert_classifier,
    build_vit_classifier,
    training_callbacks,
)

from .data import StudyData, load_study_data
from .grid import RunSpec


__all__ = ["ROBUSTNESS_MEASURES", "DivergenceCallback", "run_one", "spec_record"]

ROBUSTNESS_MEASURES = ("topk_intersection", "kendall_tau", "max_sensitivity", "prediction_change_rate")
_NON_INPUT_KEYS = ("labels", "masks", "rationale_mask")


class DivergenceCallback(TrainerCallback):
    """Stop training when the logged training loss is non-finite or above ``limit``, and remember it."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.diverged = False

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        value = None if logs is None else logs.get("data_loss", logs.get("loss"))
        if value is not None and (not math.isfinite(value) or value > self.limit):
            self.diverged = True
            control.should_training_stop = True


def _target_loss(spec: RunSpec) -> float:
    settings = spec.settings
    return settings.target_train_loss if spec.cell.model == "vit" else settings.text_target_train_loss


def _training_arguments(spec: RunSpec, output_dir: str) -> RobAttrTrainingArguments:
    cell, settings = spec.cell, spec.settings
    matched = spec.budget == "matched"
    return RobAttrTrainingArguments(
        output_dir=output_dir,
        optimizer=cell.optimizer,
        learning_rate=cell.learning_rate,
        per_device_train_batch_size=cell.batch_size,
        regularizer=cell.regularizer,
        regularizer_weight=cell.regularizer_weight,
        ig_steps=settings.ig_norm_steps,
        ig_chunk_size=settings.ig_norm_steps,
        num_train_epochs=settings.max_epochs if matched else settings.fixed_epochs,
        target_train_loss=_target_loss(spec) if matched else None,
        logging_steps=settings.logging_steps,
        seed=spec.seed,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
        robustness_num_examples=0,
        dataloader_num_workers=0,
        log_level="error",
    )


def _build_model(spec: RunSpec, data: StudyData) -> torch.nn.Module:
    cell, settings = spec.cell, spec.settings
    common = {
        "attention_type": cell.attention_type,
        "kernel_feature_map": settings.kernel_feature_map,
        "hidden_size": settings.hidden_size,
        "num_hidden_layers": settings.num_hidden_layers,
        "num_attention_heads": settings.num_attention_heads,
        "intermediate_size": settings.intermediate_size,
        "initializer_range": settings.initializer_range if cell.model == "vit" else settings.text_initializer_range,
    }
    if cell.model == "vit":
        args = VisionModelArguments(**common, image_size=settings.image_size, patch_size=settings.patch_size)
        return build_vit_classifier(args, label_names=data.label_names)
    args = TextModelArguments(**common, max_position_embeddings=max(settings.max_seq_length, 8))
    return build_bert_classifier(args, label_names=data.label_names, tokenizer=data.tokenizer)


def _rows(dataset: Any, indices: range | list[int]) -> list[dict[str, Any]]:
    return [dataset[i] for i in indices]


@torch.no_grad()
def _predictions(model: torch.nn.Module, data: StudyData, device: torch.device, batch_size: int = 256) -> torch.Tensor:
    """Predicted class of every test example, and the labels, as ``[N, 2]`` (prediction, label)."""
    model.eval()
    out = []
    for start in range(0, len(data.test), batch_size):
        batch = data.collator(_rows(data.test, range(start, min(start + batch_size, len(data.test)))))
        inputs = {k: v.to(device) for k, v in batch.items() if torch.is_tensor(v) and k not in _NON_INPUT_KEYS}
        logits = model(**inputs).logits
        out.append(torch.stack([logits.argmax(dim=1).cpu(), batch["labels"].cpu()], dim=1))
    return torch.cat(out)


def _final_loss(log_history: list[dict[str, Any]]) -> float | None:
    for row in reversed(log_history):
        for key in ("data_loss", "loss"):
            if key in row:
                return float(row[key])
    return None


def _robustness(model: torch.nn.Module, spec: RunSpec, data: StudyData, correct: list[int]) -> dict[str, float]:
    """Robustness of every method on the correctly classified examples ``correct`` (integrated gradients on the
    first ``ig_eval_examples`` of them); adds ``num_examples/{method}``."""
    settings = spec.settings
    image = spec.cell.model == "vit"
    options = {
        "attack": "topk",
        "epsilon": settings.attack_epsilon if image else settings.text_epsilon,
        "num_steps": settings.attack_steps,
        "k": settings.topk,
        "restarts": settings.attack_restarts,
        "num_samples": settings.sensitivity_samples,
        "seed": spec.seed,
        "batch_size": settings.robustness_batch_size,
        "device": next(model.parameters()).device,
        "measures": ROBUSTNESS_MEASURES,
        "input_range": (-1.0, 1.0) if image and data.dataset_name in ("synthetic_images", "digits") else None,
        "progress": False,
    }
    groups = [
        ([m for m in settings.methods if m != "integrated_gradients"], correct),
        ([m for m in settings.methods if m == "integrated_gradients"], correct[: settings.ig_eval_examples]),
    ]
    scores: dict[str, float] = {}
    for methods, examples in groups:
        if not methods or not examples:
            continue
        batch = data.collator(_rows(data.test, examples))
        inputs = {k: v for k, v in batch.items() if torch.is_tensor(v) and k not in _NON_INPUT_KEYS}
        kwargs = {m: {"n_steps": settings.ig_steps} for m in methods if m == "integrated_gradients"}
        result = evaluate_attribution_robustness(
            model, inputs, targets=batch["labels"], methods=methods, method_kwargs=kwargs, **options
        )
        scores.update({key: float(value) for key, value in result.items() if key != "num_samples"})
        scores.update({f"num_examples/{method}": float(len(examples)) for method in methods})
    return scores


def _estimate(estimate: Any) -> dict[str, float]:
    return {"value": float(estimate.value), "stderr": float(estimate.stderr), "num_probes": int(estimate.num_probes)}


def _diagnostics(model: torch.nn.Module, spec: RunSpec, data: StudyData) -> dict[str, Any]:
    settings = spec.settings
    device = next(model.parameters()).device
    size = min(settings.diagnostics_batch_size, len(data.train))
    batch = data.collator(_rows(data.train, range(size)))
    batch = {k: v.to(device) for k, v in batch.items() if torch.is_tensor(v) and k not in ("masks", "rationale_mask")}
    seed = spec.seed
    trace = hessian_trace(
        model, batch, num_probes=settings.trace_probes, max_probes=settings.trace_max_probes, seed=seed
    )
    top = hessian_top_eigenvalue(model, batch, num_iterations=settings.power_iterations, seed=seed)
    curvature = input_curvature(
        model, batch, num_probes=settings.input_probes, max_probes=settings.input_max_probes, seed=seed
    )
    entropies = attention_entropy(model, batch)
    return {
        "hessian_trace": _estimate(trace),
        "hessian_top_eigenvalue": _estimate(top),
        "input_curvature": _estimate(curvature),
        "attention_entropy": {"value": sum(entropies) / len(entropies), "per_layer": entropies},
    }


def _train(spec: RunSpec, data: StudyData, output_dir: str) -> tuple[torch.nn.Module, dict[str, Any], bool]:
    set_seed(spec.seed)
    model = _build_model(spec, data)
    args = _training_arguments(spec, output_dir)
    divergence = DivergenceCallback(spec.settings.divergence_loss)
    trainer = RobAttrTrainer(
        model=model,
        args=args,
        train_dataset=data.train,
        data_collator=data.collator,
        callbacks=[*training_callbacks(args), divergence],
    )
    trainer.remove_callback(PrinterCallback)  # the study shows its own progress
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    target = next((cb for cb in trainer.callback_handler.callbacks if hasattr(cb, "reached")), None)
    steps = trainer.state.global_step
    training = {
        "global_step": steps,
        "epochs": float(trainer.state.epoch or 0.0),
        "train_seconds": seconds,
        "seconds_per_step": seconds / max(steps, 1),
        "final_train_loss": _final_loss(trainer.state.log_history),
        "target_reached": None if target is None else bool(target.reached),
        "target_reached_at_step": None if target is None else target.reached_at_step,
        "loss_curve": [
            (row["step"], row.get("data_loss", row["loss"])) for row in trainer.state.log_history if "loss" in row
        ],
    }
    return trainer.accelerator.unwrap_model(trainer.model), training, divergence.diverged


def _status(spec: RunSpec, training: dict[str, Any], diverged: bool) -> str:
    if diverged:
        return "diverged"
    if spec.budget == "matched" and not training["target_reached"]:
        return "not_fit"
    return "ok"


def spec_record(spec: RunSpec) -> dict[str, Any]:
    """The identifying part of a run's record: key, cell, regime, strength, seed, budget, settings fingerprint."""
    return {
        "key": spec.key,
        "cell": asdict(spec.cell),
        "regime": spec.cell.regime,
        "strength": spec.cell.strength,
        "seed": spec.seed,
        "budget": spec.budget,
        "settings_fingerprint": spec.settings.fingerprint(),
    }


def run_one(spec: RunSpec, dataset_name: str | None = None) -> dict[str, Any]:
    """Train ``spec`` and measure it; return its record (see the module docstring). Never raises: an exception
    becomes a record with ``status="error"``."""
    record = spec_record(spec)
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        data = load_study_data(spec.cell.model, spec.settings, dataset_name)
        with tempfile.TemporaryDirectory(prefix="robattr-study-") as output_dir:
            model, training, diverged = _train(spec, data, output_dir)
        record["training"] = training
        record["status"] = _status(spec, training, diverged)
        if not diverged:
            device = next(model.parameters()).device
            predictions = _predictions(model, data, device)
            hits = (predictions[:, 0] == predictions[:, 1]).nonzero().squeeze(1).tolist()
            record["accuracy"] = len(hits) / len(predictions)
            correct = hits[: spec.settings.eval_examples]
            record["num_eval_examples"] = len(correct)
            measure_start = time.perf_counter()
            record["robustness"] = _robustness(model, spec, data, correct) if correct else {}
            record["robustness_seconds"] = time.perf_counter() - measure_start
            diag_start = time.perf_counter()
            record["diagnostics"] = _diagnostics(model, spec, data)
            record["diagnostics_seconds"] = time.perf_counter() - diag_start
    except Exception as error:  # a run's failure is data for the report, not a crash of the study
        record["status"] = "error"
        record["error"] = f"{type(error).__name__}: {error}"
        record["traceback"] = traceback.format_exc()
    record["total_seconds"] = time.perf_counter() - start
    record["total_cpu_seconds"] = time.process_time() - cpu_start
    return record
