"""hf_robattr.training: the run pipeline shared by the recipes and the study, its argument dataclasses, the
``RobAttrTrainer`` with explicit regularizers, stopping and diagnostics callbacks, and the run record."""

from .command_line import parse_arguments, setup_logging
from .data_arguments import DataArguments, ImageDataArguments, TextDataArguments
from .data_preparation import PreparedData, prepare_image_data, prepare_text_data
from .diagnostics import DiagnosticsCallback, compute_diagnostics, diagnose, diagnostics_batch, flatten_diagnostics
from .evaluation import compute_accuracy, score_test_robustness
from .matched_fit import FIT_OUTCOMES, MatchedFitCallback
from .model_arguments import KERNEL_FEATURE_MAPS, ModelArguments, TextModelArguments, VisionModelArguments
from .modeling import (
    build_bert_classifier,
    build_classifier,
    build_vit_classifier,
    load_image_processor,
    load_processor,
    load_tokenizer,
)
from .output_folder import PREVIOUS_RESULTS_FILE, check_resume_checkpoint, remove_checkpoints
from .record import (
    DatasetRecord,
    EvalRecord,
    HubRecord,
    ModelRecord,
    RunRecord,
    ScoringRecord,
    TrainingRecord,
)
from .regularizers import (
    REGULARIZERS,
    CurvatureRegularizer,
    GradientNormRegularizer,
    IGNormRegularizer,
    InputGradNormRegularizer,
    NoRegularizer,
    Regularizer,
    SAMRegularizer,
    differentiable_inputs,
    get_regularizer,
)
from .run import (
    RunResult,
    check_run_arguments,
    finish_run,
    prepare_data,
    refuse_finished_run,
    run_pipeline,
    take_over_hub_push,
    training_callbacks,
)
from .run_record import build_run_record, model_record, non_default_arguments, training_record
from .stopping import DivergenceCallback, TargetLossCallback, true_training_loss
from .trainer import TRAINING_ARGS_JSON, RobAttrTrainer, build_regularizer, training_loss
from .training_arguments import DIAGNOSTICS, OPTIMIZERS, RobAttrTrainingArguments, check_hub_model_id


__all__ = [
    "DIAGNOSTICS",
    "FIT_OUTCOMES",
    "KERNEL_FEATURE_MAPS",
    "OPTIMIZERS",
    "PREVIOUS_RESULTS_FILE",
    "REGULARIZERS",
    "TRAINING_ARGS_JSON",
    "CurvatureRegularizer",
    "DataArguments",
    "DatasetRecord",
    "DiagnosticsCallback",
    "DivergenceCallback",
    "EvalRecord",
    "GradientNormRegularizer",
    "HubRecord",
    "IGNormRegularizer",
    "ImageDataArguments",
    "InputGradNormRegularizer",
    "MatchedFitCallback",
    "ModelArguments",
    "ModelRecord",
    "NoRegularizer",
    "PreparedData",
    "Regularizer",
    "RobAttrTrainer",
    "RobAttrTrainingArguments",
    "RunRecord",
    "RunResult",
    "SAMRegularizer",
    "ScoringRecord",
    "TargetLossCallback",
    "TextDataArguments",
    "TextModelArguments",
    "TrainingRecord",
    "VisionModelArguments",
    "build_bert_classifier",
    "build_classifier",
    "build_regularizer",
    "build_run_record",
    "build_vit_classifier",
    "check_hub_model_id",
    "check_resume_checkpoint",
    "check_run_arguments",
    "compute_accuracy",
    "compute_diagnostics",
    "diagnose",
    "diagnostics_batch",
    "differentiable_inputs",
    "finish_run",
    "flatten_diagnostics",
    "get_regularizer",
    "load_image_processor",
    "load_processor",
    "load_tokenizer",
    "model_record",
    "non_default_arguments",
    "parse_arguments",
    "prepare_data",
    "prepare_image_data",
    "prepare_text_data",
    "refuse_finished_run",
    "remove_checkpoints",
    "run_pipeline",
    "score_test_robustness",
    "setup_logging",
    "take_over_hub_push",
    "training_callbacks",
    "training_loss",
    "training_record",
    "true_training_loss",
]
