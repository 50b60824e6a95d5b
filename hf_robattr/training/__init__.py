"""hf_robattr.training: training arguments, explicit regularizers, the ``RobAttrTrainer``, callbacks and the
recipe steps (model building, data preparation, final evaluation, results)."""

from .arguments import (
    OPTIMIZERS,
    DataArguments,
    ImageDataArguments,
    ModelArguments,
    RobAttrTrainingArguments,
    TextDataArguments,
    TextModelArguments,
    VisionModelArguments,
)
from .callbacks import DiagnosticsCallback, TargetLossCallback, robustness_options
from .modeling import build_bert_classifier, build_vit_classifier, load_image_processor, load_tokenizer
from .pipeline import (
    PreparedData,
    build_results,
    compute_accuracy,
    evaluate_test_robustness,
    parse_arguments,
    prepare_image_data,
    prepare_text_data,
    save_outputs,
    setup_logging,
    training_callbacks,
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
    get_regularizer_class,
    input_space,
    second_derivative_context,
)
from .trainer import RobAttrTrainer, build_regularizer


__all__ = [
    "OPTIMIZERS",
    "REGULARIZERS",
    "CurvatureRegularizer",
    "DataArguments",
    "DiagnosticsCallback",
    "GradientNormRegularizer",
    "IGNormRegularizer",
    "ImageDataArguments",
    "InputGradNormRegularizer",
    "ModelArguments",
    "NoRegularizer",
    "PreparedData",
    "Regularizer",
    "RobAttrTrainer",
    "RobAttrTrainingArguments",
    "SAMRegularizer",
    "TargetLossCallback",
    "TextDataArguments",
    "TextModelArguments",
    "VisionModelArguments",
    "build_bert_classifier",
    "build_regularizer",
    "build_results",
    "build_vit_classifier",
    "compute_accuracy",
    "evaluate_test_robustness",
    "get_regularizer_class",
    "input_space",
    "load_image_processor",
    "load_tokenizer",
    "parse_arguments",
    "prepare_image_data",
    "prepare_text_data",
    "robustness_options",
    "save_outputs",
    "second_derivative_context",
    "setup_logging",
    "training_callbacks",
]
