"""The run pipeline: data -> model -> Trainer -> save -> test evaluation -> robustness -> diagnostics -> results.

:func:`run_pipeline` is what ``recipes/train_vit.py``, ``recipes/train_bert.py`` and the study run, so a study run
means exactly what a recipe run means. It takes the argument dataclasses (from the command line, a JSON file or
Python) and returns a :class:`RunResult`; the recipes add only the model card and the Hub upload.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import AutoConfig, PreTrainedModel, TrainerCallback, set_seed

from hf_robattr.attribution.inputs import model_modality
from hf_robattr.robustness import RobustnessConfig
from hf_robattr.robustness.measures import check_k_count, check_measures_for_text, ranked_features

from .data_arguments import DataArguments, ImageDataArguments, TextDataArguments
from .data_preparation import PreparedData, prepare_image_data, prepare_text_data
from .diagnostics import DiagnosticsCallback, diagnose, diagnostics_batch
from .evaluation import compute_accuracy, score_test_robustness
from .matched_fit import MatchedFitCallback
from .model_arguments import ModelArguments, TextModelArguments, VisionModelArguments
from .modeling import build_classifier, load_processor
from .output_folder import (
    SetAsidePreviousResults,
    check_resume_checkpoint,
    discard_previous_results,
    refuse_finished_run,
    remove_checkpoints,
)
from .record import RunRecord
from .run_record import build_run_record
from .stopping import DivergenceCallback, TargetLossCallback
from .trainer import RobAttrTrainer
from .training_arguments import RobAttrTrainingArguments


__all__ = [
    "RunResult",
    "check_run_arguments",
    "finish_run",
    "prepare_data",
    "refuse_finished_run",
    "remove_checkpoints",
    "run_pipeline",
    "take_over_hub_push",
    "training_callbacks",
]

_PUSH_TAKEN_OVER = "_hf_robattr_push_requested"  # where the arguments remember a push the pipeline took over

logger = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What :func:`run_pipeline` returns.

    Attributes:
        record: the typed run record, what ``results.json`` holds (``record.training``: steps, epochs, examples
            seen, runtime, matched fit and divergence; ``record.push_requested``: whether ``--push_to_hub`` asked
            for the folder to be published).
        model: the trained model, unwrapped, in eval mode.
        data: the prepared splits, collator, class names and pre-processor.
        trainer: the :class:`~hf_robattr.training.RobAttrTrainer` (its ``state`` holds the log history).
        results_path: where ``results.json`` was written (``None`` with ``save_model=False`` or off the main
            process).
    """

    record: RunRecord
    model: PreTrainedModel
    data: PreparedData
    trainer: RobAttrTrainer
    results_path: Path | None = None

    @property
    def results(self) -> dict[str, Any]:
        """The record as the ``results.json`` dict (:meth:`RunRecord.to_json`)."""
        return self.record.to_json()

    @property
    def training(self) -> dict[str, Any]:
        """The training record as a dict, ``results["training"]``."""
        return self.record.training.to_json()

    @property
    def push_requested(self) -> bool:
        """Whether ``--push_to_hub`` asked for the finished folder to be published (the pipeline took the push over
        from the ``Trainer``; :func:`~hf_robattr.hub.publish_run_result` does it)."""
        return self.record.push_requested

    @property
    def is_main_process(self) -> bool:
        """Whether this process wrote the outputs (the main process of a distributed run)."""
        return self.trainer.is_world_process_zero()


def take_over_hub_push(args: Any) -> str | None:
    """Turn off the ``Trainer``'s own push and return the repo a push was asked for (``None`` if none was).

    With ``push_to_hub=True`` a ``Trainer`` creates the repo when it is built (so an offline run fails before
    training), uploads every checkpoint and replaces ``README.md`` with its generic card; the pipeline publishes the
    finished folder instead. ``args`` remember the request, so calling this twice (or running the pipeline twice on
    the same arguments) gives the same answer. :func:`run_pipeline` calls it; a recipe need not.

    Raises:
        ValueError: a push is asked for without ``--hub_model_id``.
    """
    requested = bool(getattr(args, "push_to_hub", False) or getattr(args, _PUSH_TAKEN_OVER, False))
    if requested and not getattr(args, "hub_model_id", None):
        raise ValueError(
            "`--push_to_hub` needs `--hub_model_id NAME` (in your namespace) or `--hub_model_id ORG/NAME`: the Hub "
            "repo to create and upload to."
        )
    args.push_to_hub = False
    setattr(args, _PUSH_TAKEN_OVER, requested)
    return args.hub_model_id if requested else None


def check_run_arguments(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: RobAttrTrainingArguments,
    robustness: RobustnessConfig | None = None,
) -> None:
    """The checks across argument groups (with the scoring settings ``robustness``), and the output folder (a
    finished run is refused unless asked; ``--resume_from_checkpoint`` must name a checkpoint): everything that can
    be known before loading."""
    if not isinstance(training_args, RobAttrTrainingArguments):
        raise TypeError(f"training_args must be RobAttrTrainingArguments, got {type(training_args).__name__}.")
    pairs = ((VisionModelArguments, ImageDataArguments), (TextModelArguments, TextDataArguments))
    if not any(isinstance(model_args, m) and isinstance(data_args, d) for m, d in pairs):
        raise TypeError(
            "model and data arguments must be of one modality: (VisionModelArguments, ImageDataArguments) or "
            f"(TextModelArguments, TextDataArguments); got ({type(model_args).__name__}, {type(data_args).__name__})."
        )
    scratch = model_args.model_name_or_path is None
    if (
        scratch
        and isinstance(model_args, TextModelArguments)
        and model_args.max_position_embeddings < data_args.max_seq_length
    ):
        raise ValueError(
            f"--max_position_embeddings ({model_args.max_position_embeddings}) must be >= --max_seq_length "
            f"({data_args.max_seq_length}): the model needs a position for every token."
        )
    if isinstance(data_args, TextDataArguments) and robustness is not None:
        check_measures_for_text(robustness.measures, argument="--robustness_measures")
    scores_attributions = training_args.robustness_num_examples or (  # the diagnostic scores with the same k
        "attribution_robustness" in training_args.diagnostics
        and (training_args.diagnostics_at_end or training_args.diagnostics_steps)
    )
    if robustness is not None and scores_attributions:
        _check_topk_count(model_args, data_args, robustness)
    _check_feature_map_use(model_args)
    refuse_finished_run(training_args)
    check_resume_checkpoint(training_args)


def _checkpoint_config(model_args: ModelArguments) -> Any:
    """The checkpoint's config (``None`` when it cannot be read here: loading the model reports it)."""
    try:
        return AutoConfig.from_pretrained(
            model_args.model_name_or_path,
            cache_dir=model_args.cache_dir,
            trust_remote_code=model_args.trust_remote_code,
        )
    except (OSError, ValueError):
        return None


def _check_feature_map_use(model_args: ModelArguments) -> None:
    """``--kernel_feature_map`` without ``--attention_type`` on a softmax checkpoint would train softmax attention
    while the record names the feature map: refused (from scratch :class:`ModelArguments` refuses it itself)."""
    if None in (model_args.kernel_feature_map, model_args.model_name_or_path) or model_args.attention_type:
        return
    config = _checkpoint_config(model_args)
    attention = None if config is None else getattr(config, "attention_type", "softmax")
    if attention not in (None, "kernel"):
        raise ValueError(
            f"--kernel_feature_map {model_args.kernel_feature_map!r} needs --attention_type kernel: the checkpoint "
            f"--model_name_or_path {model_args.model_name_or_path!r} has {attention} attention, which uses no "
            "feature map, so the run would train softmax attention. Add --attention_type kernel to swap it."
        )


def _image_geometry(model_args: VisionModelArguments) -> tuple[int, int] | None:
    """``(image_size, patch_size)`` of the model the run trains: its own flags from scratch, else the checkpoint's
    config (``None`` when that cannot be read here: loading the model reports it)."""
    if model_args.model_name_or_path is None:
        return model_args.image_size, model_args.patch_size
    config = _checkpoint_config(model_args)
    if config is None:
        return None
    sizes = getattr(config, "image_size", None), getattr(config, "patch_size", None)
    return sizes if all(isinstance(v, int) and v > 0 for v in sizes) else None


def _check_topk_count(model_args: ModelArguments, data_args: DataArguments, robustness: RobustnessConfig) -> None:
    """A ``--robustness_k`` count no map of the run can hold fails now, not after training."""
    if isinstance(data_args, TextDataArguments):
        features = ranked_features(robustness.methods, max_seq_length=data_args.max_seq_length)
        why = f"--max_seq_length {data_args.max_seq_length} leaves at most {data_args.max_seq_length - 2} word tokens"
    else:
        geometry = _image_geometry(model_args)
        if geometry is None:
            return
        image_size, patch_size = geometry
        features = ranked_features(
            robustness.methods, image_size=image_size, patch_size=patch_size, map_pooling=robustness.map_pooling
        )
        why = (
            f"a {image_size}x{image_size} image has {image_size**2} pixels and {(image_size // patch_size) ** 2} "
            f"patches of {patch_size}x{patch_size}; attention maps rank patches"
        )
    check_k_count(robustness.k, features, flag="--robustness_k", why=why)


def prepare_data(model_args: ModelArguments, data_args: DataArguments, processor: Any, *, seed: int) -> PreparedData:
    """The prepared splits of the run's modality (images: the checkpoint's processor transforms them into its
    ``num_channels``, a from-scratch model uses the built-in transform; text: tokenised with ``processor``)."""
    if isinstance(model_args, VisionModelArguments):
        checkpoint = None if model_args.model_name_or_path is None else _checkpoint_config(model_args)
        return prepare_image_data(
            data_args,
            image_size=model_args.image_size,
            image_processor=processor,
            transform_with_processor=model_args.model_name_or_path is not None,
            seed=seed,
            num_channels=getattr(checkpoint, "num_channels", 3),
        )
    return prepare_text_data(data_args, tokenizer=processor, seed=seed)


def training_callbacks(
    args: RobAttrTrainingArguments, robustness: RobustnessConfig | None = None
) -> list[TrainerCallback]:
    """The callbacks ``args`` asks for: matched-fit stopping (two-sided with ``--target_loss_band``), divergence
    stopping, periodic diagnostics."""
    callbacks: list[TrainerCallback] = []
    if args.target_train_loss is not None and args.target_loss_band is not None:
        callbacks.append(
            MatchedFitCallback(
                args.target_train_loss,
                band=args.target_loss_band,
                num_examples=args.target_loss_examples,
                check_every_examples=args.target_check_every_examples,
                batch_size=args.target_loss_batch_size,
                min_examples=args.target_min_examples,
                snapshot_every_examples=args.target_snapshot_every_examples,
            )
        )
    elif args.target_train_loss is not None:
        callbacks.append(
            TargetLossCallback(
                args.target_train_loss,
                num_examples=args.target_loss_examples,
                check_every_examples=args.target_check_every_examples,
                batch_size=args.target_loss_batch_size,
            )
        )
    if args.divergence_loss is not None:
        callbacks.append(DivergenceCallback(args.divergence_loss))
    if args.diagnostics_steps:
        callbacks.append(DiagnosticsCallback(robustness))
    return callbacks


def _registered(trainer: RobAttrTrainer, cls: type) -> Any:
    return next((callback for callback in trainer.callback_handler.callbacks if isinstance(callback, cls)), None)


def run_pipeline(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: RobAttrTrainingArguments,
    robustness: RobustnessConfig | None = None,
    *,
    callbacks: Sequence[TrainerCallback] = (),
    save_model: bool = True,
    data: PreparedData | None = None,
) -> RunResult:
    """Train and measure one run.

    Steps: check the arguments and the output folder; seed; load the data and build the model (a checkpoint or a
    tiny one from scratch); train with :class:`~hf_robattr.training.RobAttrTrainer` (plus ``callbacks``); save the
    model and its pre-processor (before anything that could fail); evaluate on the test split; score attribution
    robustness on the first ``training_args.robustness_num_examples`` test examples under ``robustness`` (default:
    :class:`~hf_robattr.RobustnessConfig`'s defaults); compute the diagnostics with ``--diagnostics_at_end``;
    write ``results.json`` atomically. A finished run's ``results.json`` in ``output_dir`` is set aside only once
    training has begun, and removed once the new one is written (:mod:`~hf_robattr.training.output_folder`). A ``--push_to_hub`` is taken over from the ``Trainer``
    (:func:`take_over_hub_push`) and recorded; :func:`~hf_robattr.hub.publish_run_result` publishes the finished
    folder.

    Args:
        model_args: :class:`VisionModelArguments` (ViT, images) or :class:`TextModelArguments` (BERT, text).
        data_args: the matching :class:`ImageDataArguments` or :class:`TextDataArguments`.
        training_args: the :class:`RobAttrTrainingArguments`.
        robustness: the scoring settings.
        callbacks: extra ``TrainerCallback`` objects, added after the ones the arguments ask for.
        save_model: ``False`` writes no final weights and no ``results.json``: the model is only returned. The
            Trainer's own ``checkpoint-N`` folders still follow ``--save_strategy`` (``"no"`` writes nothing).
        data: prepared data to use instead of loading ``data_args`` (e.g. cached across runs).

    Returns:
        A :class:`RunResult`. Under a distributed launch every process returns the same record: the robustness
        examples are sharded across processes (each scores every ``world_size``-th one) and gathered; only the main
        process writes files.
    """
    config = robustness if robustness is not None else RobustnessConfig()
    check_run_arguments(model_args, data_args, training_args, config)
    push_to = take_over_hub_push(training_args)  # the Trainer never pushes: the finished folder is published
    set_seed(training_args.seed)
    split_seed = training_args.seed if data_args.split_seed is None else data_args.split_seed
    if data is None:
        data = prepare_data(model_args, data_args, load_processor(model_args), seed=split_seed)
    model = build_classifier(model_args, label_names=data.label_names, processor=data.processor)
    config = config.resolved(model_modality(model))  # the default radius made explicit: results.json states it

    trainer = RobAttrTrainer(
        model=model,
        args=training_args,
        train_dataset=data.train,
        eval_dataset=data.validation,
        data_collator=data.collator,
        processing_class=data.processor,
        compute_metrics=compute_accuracy,
        callbacks=[
            *training_callbacks(training_args, config),
            *callbacks,
            *([SetAsidePreviousResults()] if save_model else []),
        ],
    )
    train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.log_metrics("train", train_result.metrics)
    if save_model:
        trainer.save_model()  # before any evaluation that can fail: the trained model is never lost

    test_metrics = trainer.evaluate(data.test, metric_key_prefix="test")
    trainer.log_metrics("test", test_metrics)
    model = trainer.accelerator.unwrap_model(trainer.model)
    divergence = _registered(trainer, DivergenceCallback)
    diverged = divergence is not None and divergence.diverged
    if diverged:  # a blown-up model has nothing to explain: the record says so instead of a crash in scoring
        logger.warning(
            "Training diverged at step %s (--divergence_loss %s): attribution robustness and diagnostics are not "
            "computed; results.json records the divergence.",
            divergence.diverged_at_step,
            divergence.limit,
        )
    # Every process scores (under a distributed launch each takes a shard of the examples and all get the result).
    scores = score_test_robustness(
        model,
        data,
        config,
        num_examples=0 if diverged else training_args.robustness_num_examples,
        device=training_args.device,
        progress=trainer.is_world_process_zero() and not training_args.disable_tqdm,
    )
    logger.info("Attribution robustness on the test split: %s", scores)
    diagnostics = None
    if training_args.diagnostics_at_end and not diverged:
        batch = diagnostics_batch(
            data.train, data.collator, training_args.diagnostics_batch_size, training_args.device
        )
        diagnostics = diagnose(model, batch, training_args, config)

    record = build_run_record(
        model=model,
        args=training_args,
        state=trainer.state,
        model_name_or_path=model_args.model_name_or_path,
        dataset={
            "name": data.dataset_name,
            "config": data.dataset_config_name,
            "split_seed": split_seed,
            "dataset_num_examples": data_args.dataset_num_examples,
            "eval_split": "test",
            "num_eval_samples": len(data.test),
        },
        test_metrics=test_metrics,
        robustness=scores,
        robustness_config=config.to_dict(),
        stop=_registered(trainer, TargetLossCallback),
        divergence=divergence,
        train_runtime=train_result.metrics.get("train_runtime"),
        diagnostics=diagnostics,
        push_to=push_to,
    )
    path = None
    if save_model and trainer.is_world_process_zero():
        path = record.write(training_args.output_dir)
        discard_previous_results(training_args.output_dir)
        logger.info("Wrote %s", path)
        if not training_args.keep_checkpoints:
            remove_checkpoints(training_args.output_dir)
    trainer.accelerator.wait_for_everyone()
    model.eval()
    return RunResult(record=record, model=model, data=data, trainer=trainer, results_path=path)


def finish_run(trainer: RobAttrTrainer) -> None:
    """End a recipe run: wait for every process, free leftover autograd graphs, then close the trackers and the
    process group.

    Under a multi-process CPU launch, a rank that exits with the gloo process group still open (or with attribution
    graphs still to be collected) can abort at interpreter shutdown ("terminate called without an active
    exception"), failing the launch after all outputs were written.
    """
    trainer.accelerator.wait_for_everyone()
    gc.collect()
    trainer.accelerator.end_training()
