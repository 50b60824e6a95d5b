"""Argument dataclasses for the recipes: training (a ``TrainingArguments`` subclass), model and data."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from hf_robattr.models import ATTENTION_TYPES, FEATURE_MAPS

from .regularizers import REGULARIZERS, get_regularizer_class


__all__ = [
    "KERNEL_FEATURE_MAPS",
    "OPTIMIZERS",
    "DataArguments",
    "ImageDataArguments",
    "ModelArguments",
    "RobAttrTrainingArguments",
    "TextDataArguments",
    "TextModelArguments",
    "VisionModelArguments",
]

# optimizer regime -> (TrainingArguments.optim, optim_args template)
DEFAULT_LEARNING_RATES = {"sgd": 0.3, "momentum_sgd": 0.03, "adamw": 1e-3}
OPTIMIZERS: dict[str, tuple[str, str]] = {
    "sgd": ("sgd", "momentum=0"),
    "momentum_sgd": ("sgd", "momentum={momentum}"),
    "adamw": ("adamw_torch", ""),
}
KERNEL_FEATURE_MAPS = tuple(FEATURE_MAPS)
DIAGNOSTICS = ("sharpness", "input_curvature", "attribution_robustness", "attention_entropy")


def _choice(value: str, choices, argument: str) -> None:
    if value not in choices:
        raise ValueError(f"Unknown {argument} {value!r}; expected one of {sorted(choices)}.")


@dataclass
class RobAttrTrainingArguments(TrainingArguments):
    """``TrainingArguments`` plus the optimizer regime, explicit regularizers, diagnostics and robustness evaluation.

    ``--optimizer`` sets ``optim``/``optim_args``: ``sgd`` (momentum 0, the implicit-regularization regime whose
    strength is set by learning rate / batch size), ``momentum_sgd`` (``--momentum``) or ``adamw``. Defaults differ
    from ``TrainingArguments`` where the regime or the tiny default models need it: a learning rate chosen by the
    optimizer (sgd 0.3, momentum_sgd 0.03, adamw 1e-3), constant schedule, batch size 32, 8 epochs,
    ``remove_unused_columns=False`` (datasets use on-the-fly transforms), logging every 10 steps.
    """

    learning_rate: float | None = field(
        default=None,
        metadata={"help": "Initial learning rate; default by --optimizer: sgd 0.3, momentum_sgd 0.03, adamw 1e-3."},
    )
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Batch size per device for training."})
    num_train_epochs: float = field(default=8.0, metadata={"help": "Total number of training epochs."})
    lr_scheduler_type: str = field(
        default="constant",
        metadata={"help": "Learning-rate schedule; constant keeps the implicit regularizer's strength fixed."},
    )
    logging_steps: float = field(default=10, metadata={"help": "Log every N update steps."})
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Keep raw columns: the datasets use on-the-fly transforms."}
    )

    optimizer: str = field(
        default="sgd",
        metadata={"help": f"Optimizer regime, one of {list(OPTIMIZERS)}. sgd = momentum 0 (implicit regime)."},
    )
    momentum: float = field(default=0.9, metadata={"help": "Momentum for --optimizer momentum_sgd."})
    regularizer: str = field(default="none", metadata={"help": f"Explicit regularizer, one of {list(REGULARIZERS)}."})
    regularizer_weight: float = field(
        default=0.01, metadata={"help": "Weight lambda of the regularizer (for sam: the radius rho)."}
    )
    ig_steps: int = field(
        default=10, metadata={"help": "ig_norm: number m of integrated-gradient steps inside the loss."}
    )
    ig_chunk_size: int = field(
        default=10,
        metadata={
            "help": "ig_norm: IG steps per chunk. Memory holds one chunk's graph; with several chunks the exact "
            "gradient adds a first-order pass over the other chunks' points (larger chunks: faster, more memory)."
        },
    )
    ig_epsilon: float = field(
        default=0.1, metadata={"help": "ig_norm: L-inf radius of the random IG baseline around x."}
    )
    curvature_step: float = field(
        default=0.1, metadata={"help": "curvature: finite-difference step h in input space."}
    )
    target_train_loss: float | None = field(
        default=None, metadata={"help": "Stop once the logged training loss (data loss) is <= this value."}
    )

    diagnostics_steps: int = field(
        default=0, metadata={"help": "Log curvature/robustness diagnostics every N steps on a fixed batch (0: off)."}
    )
    diagnostics: list[str] = field(
        default_factory=lambda: list(DIAGNOSTICS),
        metadata={"help": f"Which diagnostics to log, from {list(DIAGNOSTICS)}."},
    )
    diagnostics_batch_size: int = field(
        default=16, metadata={"help": "Size of the fixed training batch the diagnostics use."}
    )
    diagnostics_num_probes: int = field(
        default=2, metadata={"help": "Hutchinson probes (>= 2) for the Hessian-trace and input-curvature estimates."}
    )
    diagnostics_num_iterations: int = field(
        default=5, metadata={"help": "Power iterations for the top Hessian eigenvalue."}
    )

    robustness_methods: list[str] = field(
        default_factory=lambda: ["saliency"], metadata={"help": "Attribution methods scored for robustness."}
    )
    robustness_attack: str = field(
        default="topk", metadata={"help": "Attack on the attribution map (see hf_robattr.robustness)."}
    )
    robustness_epsilon: float = field(
        default=0.1, metadata={"help": "Attack radius in input units (normalised pixels / embeddings)."}
    )
    robustness_norm: str = field(default="linf", metadata={"help": "Attack norm: linf or l2."})
    robustness_num_steps: int = field(default=5, metadata={"help": "Attack (PGD) steps."})
    robustness_k: float = field(
        default=0.1, metadata={"help": "k of the top-k attack and intersection: a count, or a fraction in (0, 1)."}
    )
    robustness_num_examples: int = field(
        default=64, metadata={"help": "Test examples scored for attribution robustness (0: skip the scoring)."}
    )
    robustness_num_samples: int = field(
        default=4, metadata={"help": "Random draws per example for the sensitivity measures."}
    )
    robustness_batch_size: int = field(
        default=16, metadata={"help": "Examples per forward pass of the robustness evaluation."}
    )

    def __post_init__(self) -> None:
        _choice(self.optimizer, OPTIMIZERS, "--optimizer")
        get_regularizer_class(self.regularizer)
        for name in self.diagnostics:
            _choice(name, DIAGNOSTICS, "--diagnostics entry")
        for name, value, minimum in (
            ("--regularizer_weight", self.regularizer_weight, 0),
            ("--ig_steps", self.ig_steps, 1),
            ("--ig_chunk_size", self.ig_chunk_size, 1),
            ("--diagnostics_steps", self.diagnostics_steps, 0),
            ("--diagnostics_batch_size", self.diagnostics_batch_size, 1),
            ("--diagnostics_num_probes", self.diagnostics_num_probes, 2),
            ("--diagnostics_num_iterations", self.diagnostics_num_iterations, 1),
            ("--robustness_num_examples", self.robustness_num_examples, 0),
            ("--robustness_num_samples", self.robustness_num_samples, 1),
        ):
            if value < minimum:
                raise ValueError(f"{name} must be >= {minimum}, got {value}.")
        if self.target_train_loss is not None and self.target_train_loss <= 0:
            raise ValueError(f"--target_train_loss must be > 0, got {self.target_train_loss}.")
        if self.learning_rate is None:
            self.learning_rate = DEFAULT_LEARNING_RATES[self.optimizer]
        optim, optim_args = OPTIMIZERS[self.optimizer]
        self.optim = optim
        self.optim_args = optim_args.format(momentum=self.momentum) or None
        super().__post_init__()


@dataclass
class ModelArguments:
    """Which model to train: a tiny one from scratch, or a checkpoint, with the attention chosen by name."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Checkpoint (Hub id or path); none: a tiny model from scratch."}
    )
    attention_type: str = field(
        default="softmax",
        metadata={"help": f"Attention: one of {list(ATTENTION_TYPES)} (swapped in on a checkpoint)."},
    )
    kernel_feature_map: str = field(
        default="elu", metadata={"help": f"Feature map of kernel attention, one of {list(KERNEL_FEATURE_MAPS)}."}
    )
    hidden_size: int = field(default=64, metadata={"help": "From scratch: hidden size."})
    num_hidden_layers: int = field(default=2, metadata={"help": "From scratch: number of layers."})
    num_attention_heads: int = field(default=4, metadata={"help": "From scratch: attention heads."})
    intermediate_size: int = field(default=128, metadata={"help": "From scratch: MLP size."})
    initializer_range: float = field(
        default=0.02, metadata={"help": "From scratch: std of the initial weights (larger suits plain SGD)."}
    )
    attn_implementation: str | None = field(
        default=None,
        metadata={"help": "Softmax attention backend (default: the model's own; regularizers run SDPA as MATH)."},
    )
    cache_dir: str | None = field(default=None, metadata={"help": "Where to cache downloaded checkpoints."})
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow checkpoints with their own modeling code."}
    )

    def __post_init__(self) -> None:
        _choice(self.attention_type, ATTENTION_TYPES, "--attention_type")
        _choice(self.kernel_feature_map, KERNEL_FEATURE_MAPS, "--kernel_feature_map")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"--hidden_size ({self.hidden_size}) must be divisible by --num_attention_heads ({self.num_attention_heads})."
            )


@dataclass
class VisionModelArguments(ModelArguments):
    """ViT model arguments: image and patch size of the from-scratch model."""

    image_size: int = field(
        default=32, metadata={"help": "From scratch: input resolution (images are resized to it)."}
    )
    patch_size: int = field(default=4, metadata={"help": "From scratch: patch size (32/4 -> 64 patches)."})


@dataclass
class TextModelArguments(ModelArguments):
    """BERT model arguments."""

    max_position_embeddings: int = field(default=64, metadata={"help": "From scratch: maximum sequence length."})


@dataclass
class DataArguments:
    """Which data to train and evaluate on. ``dataset_name`` is an embedded set or a Hub/local dataset."""

    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "Embedded set (digits, synthetic_images, synthetic_sentiment) or Hub id, e.g. uoft-cs/cifar10."
        },
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "Dataset configuration (Hub)."})
    label_column: str | None = field(
        default=None, metadata={"help": "Column with class labels (default: label or labels)."}
    )
    train_split_name: str = field(default="train", metadata={"help": "Split to train on."})
    validation_split_name: str | None = field(
        default="validation", metadata={"help": "Validation split (carved from train if absent)."}
    )
    test_split_name: str | None = field(
        default="test", metadata={"help": "Split for the final evaluation (carved from train if absent)."}
    )
    validation_fraction: float = field(
        default=0.1, metadata={"help": "Fraction of train carved out for each missing split."}
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Truncate the training set (debugging, quick runs)."}
    )
    max_eval_samples: int | None = field(default=None, metadata={"help": "Truncate the validation and test sets."})

    def __post_init__(self) -> None:
        if not 0 < self.validation_fraction < 0.5:
            raise ValueError(f"--validation_fraction must be in (0, 0.5), got {self.validation_fraction}.")


@dataclass
class ImageDataArguments(DataArguments):
    """Image data: which column holds the images."""

    dataset_name: str | None = field(
        default="synthetic_images",
        metadata={"help": "Embedded set (synthetic_images, digits) or Hub id, e.g. uoft-cs/cifar10."},
    )
    image_column: str | None = field(
        default=None, metadata={"help": "Column with images (default: image, img or pixel_values)."}
    )


@dataclass
class TextDataArguments(DataArguments):
    """Text data: which column holds the text and how long sequences may be."""

    dataset_name: str | None = field(
        default="synthetic_sentiment",
        metadata={"help": "Embedded set (synthetic_sentiment) or Hub id, e.g. stanfordnlp/sst2."},
    )
    text_column: str | None = field(
        default=None, metadata={"help": "Column with text (default: sentence, text, ...)."}
    )
    max_seq_length: int = field(default=64, metadata={"help": "Truncate tokenised inputs to this length."})
