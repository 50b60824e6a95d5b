"""The recipe steps that are not argument wiring: data preparation, metrics, final evaluation, results, saving.

The recipes (``recipes/train_vit.py``, ``recipes/train_bert.py``) call these in order; tests call them directly.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
from dataclasses import dataclass
from typing import Any

import datasets
import numpy as np
import torch
import transformers
from datasets import Dataset
from transformers import EvalPrediction, HfArgumentParser, Trainer, TrainerCallback

from hf_robattr.data import (
    TEXT_COLUMN_CANDIDATES,
    ImageClassificationTransform,
    TextClassificationTransform,
    label_names,
    load_classification_dataset,
)

from .arguments import ImageDataArguments, ModelArguments, RobAttrTrainingArguments, TextDataArguments
from .callbacks import DiagnosticsCallback, TargetLossCallback, robustness_options


__all__ = [
    "PreparedData",
    "build_results",
    "compute_accuracy",
    "evaluate_test_robustness",
    "parse_arguments",
    "prepare_image_data",
    "prepare_text_data",
    "save_outputs",
    "setup_logging",
    "training_callbacks",
]

logger = logging.getLogger(__name__)


def parse_arguments(parser: HfArgumentParser, argv: list[str] | None = None) -> tuple[Any, ...]:
    """Parse CLI flags, or a single ``.json`` path holding all arguments (the transformers examples' convention)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(json_file=os.path.abspath(argv[0]))
    return parser.parse_args_into_dataclasses(args=argv)


def setup_logging(training_args: RobAttrTrainingArguments) -> None:
    """Log to stdout; INFO on the main process, WARNING elsewhere (``--log_level`` overrides)."""
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    level = training_args.get_process_log_level()
    logger.setLevel(level)
    logging.getLogger("hf_robattr").setLevel(level)
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()


@dataclass
class PreparedData:
    """Train/validation/test datasets that yield model inputs, and the class names."""

    train: Dataset
    validation: Dataset
    test: Dataset
    label_names: list[str]
    dataset_name: str
    dataset_config_name: str | None


def _truncate(dataset: Dataset, limit: int | None) -> Dataset:
    return dataset if limit is None or limit >= len(dataset) else dataset.select(range(limit))


def prepare_image_data(
    data_args: ImageDataArguments, *, image_size: int, image_processor: Any = None, seed: int = 0
) -> PreparedData:
    """Load ``data_args.dataset_name`` and attach the image transform (``pixel_values``, ``labels``) to each split.

    ``image_processor=None`` uses the built-in transform (resize to ``image_size``, map to ``[-1, 1]``).
    """
    splits, image_column, label_column = load_classification_dataset(
        data_args.dataset_name,
        dataset_config_name=data_args.dataset_config_name,
        input_column=data_args.image_column,
        label_column=data_args.label_column,
        train_split=data_args.train_split_name,
        validation_split=data_args.validation_split_name,
        test_split=data_args.test_split_name,
        validation_fraction=data_args.validation_fraction,
        seed=seed,
    )
    transform = ImageClassificationTransform(
        image_column=image_column, label_column=label_column, image_size=image_size, image_processor=image_processor
    )
    names = label_names(splits["train"], label_column)
    limits = {
        "train": data_args.max_train_samples,
        "validation": data_args.max_eval_samples,
        "test": data_args.max_eval_samples,
    }
    parts = {split: _truncate(splits[split], limits[split]).with_transform(transform) for split in limits}
    return PreparedData(
        **parts,
        label_names=names,
        dataset_name=data_args.dataset_name,
        dataset_config_name=data_args.dataset_config_name,
    )


def prepare_text_data(data_args: TextDataArguments, *, tokenizer: Any, seed: int = 0) -> PreparedData:
    """Load ``data_args.dataset_name`` and tokenise every split (``input_ids``, ``attention_mask``, ``labels``)."""
    splits, text_column, label_column = load_classification_dataset(
        data_args.dataset_name,
        dataset_config_name=data_args.dataset_config_name,
        input_column=data_args.text_column,
        input_argument="--text_column",
        input_candidates=TEXT_COLUMN_CANDIDATES,
        input_purpose="text",
        label_column=data_args.label_column,
        train_split=data_args.train_split_name,
        validation_split=data_args.validation_split_name,
        test_split=data_args.test_split_name,
        validation_fraction=data_args.validation_fraction,
        seed=seed,
    )
    transform = TextClassificationTransform(
        tokenizer, text_column=text_column, label_column=label_column, max_seq_length=data_args.max_seq_length
    )
    names = label_names(splits["train"], label_column)
    limits = {
        "train": data_args.max_train_samples,
        "validation": data_args.max_eval_samples,
        "test": data_args.max_eval_samples,
    }
    parts = {}
    for split, limit in limits.items():
        part = _truncate(splits[split], limit)
        parts[split] = part.map(transform, batched=True, remove_columns=part.column_names, desc=f"Tokenizing {split}")
    return PreparedData(
        **parts,
        label_names=names,
        dataset_name=data_args.dataset_name,
        dataset_config_name=data_args.dataset_config_name,
    )


def compute_accuracy(prediction: EvalPrediction) -> dict[str, float]:
    """``compute_metrics`` for the Trainer: top-1 accuracy."""
    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    return {"accuracy": float((np.argmax(logits, axis=-1) == prediction.label_ids).mean())}


def training_callbacks(args: RobAttrTrainingArguments) -> list[TrainerCallback]:
    """The callbacks ``args`` asks for: target-loss stopping and periodic diagnostics."""
    callbacks: list[TrainerCallback] = []
    if args.target_train_loss is not None:
        callbacks.append(TargetLossCallback(args.target_train_loss))
    if args.diagnostics_steps:
        callbacks.append(DiagnosticsCallback())
    return callbacks


def evaluate_test_robustness(
    model: torch.nn.Module, dataset: Dataset, collator: Any, args: RobAttrTrainingArguments
) -> dict[str, float]:
    """Score attribution robustness on the first ``args.robustness_num_examples`` test examples (true labels as
    attribution targets) with :func:`hf_robattr.robustness.evaluate_attribution_robustness`.

    Returns its flat dict (``"{method}/{measure}"``, ``"{method}/{measure}_std"``, ``"num_samples"`` = examples
    scored), or ``{}`` when ``robustness_num_examples`` is 0.
    """
    from hf_robattr.robustness import evaluate_attribution_robustness

    if args.robustness_num_examples == 0:
        return {}
    size = min(args.robustness_num_examples, len(dataset))
    batch = collator([dataset[i] for i in range(size)])
    inputs = {k: v for k, v in batch.items() if torch.is_tensor(v) and k not in ("labels", "masks", "rationale_mask")}
    model.eval()
    scores = evaluate_attribution_robustness(
        model,
        inputs,
        targets=batch["labels"],
        batch_size=args.robustness_batch_size,
        seed=args.seed,
        device=args.device,
        progress=not args.disable_tqdm,
        **robustness_options(args),
    )
    return {key: float(value) for key, value in scores.items()}


def build_results(
    *,
    trainer: Trainer,
    model_args: ModelArguments,
    data: PreparedData,
    train_runtime: float,
    test_metrics: dict[str, float],
    robustness: dict[str, float],
) -> dict[str, Any]:
    """The ``results.json`` record (its schema is what ``hf_robattr.hub`` reads to write the model card)."""
    args: RobAttrTrainingArguments = trainer.args
    config = trainer.accelerator.unwrap_model(trainer.model).config
    target = next((cb for cb in trainer.callback_handler.callbacks if isinstance(cb, TargetLossCallback)), None)
    return {
        "model": {
            "architecture": config.architectures[0] if config.architectures else type(trainer.model).__name__,
            "attention_type": getattr(config, "attention_type", "softmax"),
            "kernel_feature_map": getattr(config, "kernel_feature_map", None),
            "model_name_or_path": model_args.model_name_or_path,
        },
        "training": {
            "optimizer": args.optimizer,
            "momentum": args.momentum if args.optimizer == "momentum_sgd" else 0.0,
            "learning_rate": args.learning_rate,
            "per_device_train_batch_size": args.per_device_train_batch_size,
            "total_train_batch_size": args.per_device_train_batch_size
            * args.gradient_accumulation_steps
            * args.world_size,
            "regularizer": args.regularizer,
            "regularizer_weight": args.regularizer_weight if args.regularizer != "none" else 0.0,
            "num_train_epochs": args.num_train_epochs,
            "max_steps": args.max_steps,
            "seed": args.seed,
            "target_train_loss": args.target_train_loss,
            "target_reached": None if target is None else target.reached,
            "target_reached_at_step": None if target is None else target.reached_at_step,
            "train_runtime_s": round(train_runtime, 3),
            "global_step": trainer.state.global_step,
        },
        "dataset": {
            "name": data.dataset_name,
            "config": data.dataset_config_name,
            "eval_split": "test",
            "num_eval_samples": len(data.test),
        },
        "eval": {"accuracy": test_metrics.get("test_accuracy"), "loss": test_metrics.get("test_loss")},
        "robustness": {k: v for k, v in robustness.items() if k != "num_samples"},
        "robustness_config": {
            **{k: (list(v) if isinstance(v, tuple) else v) for k, v in robustness_options(args).items()},
            "num_examples": int(robustness.get("num_samples", 0)),
        },
        "log_history": trainer.state.log_history,
    }


def save_outputs(trainer: Trainer, results: dict[str, Any]) -> str:
    """Save the model (safetensors, with ``auto_map`` code), its pre-processor and ``results.json``.

    Only the main process writes; every process waits for it. Returns the path of ``results.json``.
    """
    trainer.save_model()  # writes on the main process only (and the processing class)
    path = os.path.join(trainer.args.output_dir, "results.json")
    if trainer.is_world_process_zero():
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2, default=str)
        logger.info("Wrote %s", path)
    trainer.accelerator.wait_for_everyone()
    return path


def finish_run(trainer: Trainer) -> None:
    """End a recipe run: wait for every process, free leftover autograd graphs, then close the trackers and the
    process group.

    Under a multi-process CPU launch, a rank that exits with the gloo process group still open (or with attribution
    graphs still to be collected) can abort at interpreter shutdown ("terminate called without an active
    exception"), failing the launch after all outputs were written.
    """
    trainer.accelerator.wait_for_everyone()
    gc.collect()
    trainer.accelerator.end_training()
