"""The study grid: which models are trained in which regimes, with which seeds and budgets, at each scale.

A :class:`Cell` is one training configuration (model, attention type, optimizer regime, learning rate, batch size,
explicit regularizer). A :class:`RunSpec` is one cell trained with one seed under one budget: ``matched`` (train
until a target training loss, with an epoch cap) or ``fixed`` (a fixed number of epochs). :class:`StudySettings`
holds everything else a run needs (data and model sizes, measurement protocol), one instance per scale in
:data:`SCALES`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace


__all__ = [
    "BUDGETS",
    "MODELS",
    "SCALES",
    "Cell",
    "RunSpec",
    "StudySettings",
    "build_grid",
    "get_settings",
]

MODELS = ("vit", "bert")
BUDGETS = ("matched", "fixed")
GRADIENT_METHODS = ("saliency", "input_x_gradient", "integrated_gradients")
ATTENTION_METHODS = ("raw_attention", "rollout", "grad_attention")


@dataclass(frozen=True)
class Cell:
    """One training configuration of the grid.

    ``optimizer`` is a ``RobAttrTrainingArguments.optimizer`` regime (``sgd`` = momentum 0, the implicit regime;
    ``adamw`` the reference). ``regularizer`` names an explicit baseline (``none`` for the implicit regime).
    """

    model: str
    attention_type: str
    optimizer: str
    learning_rate: float
    batch_size: int
    regularizer: str = "none"
    regularizer_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"Cell.model must be one of {list(MODELS)}, got {self.model!r}.")
        if self.learning_rate <= 0 or self.batch_size < 1:
            raise ValueError(
                f"Cell needs learning_rate > 0 and batch_size >= 1, got {self.learning_rate}, {self.batch_size}."
            )

    @property
    def regime(self) -> str:
        """``sgd`` (implicit regime), ``adamw``, or the explicit regularizer's name."""
        return self.regularizer if self.regularizer != "none" else self.optimizer

    @property
    def strength(self) -> float:
        """Implicit-regularization strength ``lr / batch`` (Smith et al. 2021)."""
        return self.learning_rate / self.batch_size

    @property
    def label(self) -> str:
        """A short human-readable name, e.g. ``sgd lr=0.1 B=8``."""
        text = f"{self.regime} lr={self.learning_rate:g} B={self.batch_size}"
        if self.regularizer != "none":
            text += f" w={self.regularizer_weight:g}"
        return text

    @property
    def slug(self) -> str:
        """A file-name-safe identifier of the cell."""
        parts = [self.model, self.attention_type, self.optimizer, f"lr{self.learning_rate:g}", f"b{self.batch_size}"]
        if self.regularizer != "none":
            parts += [self.regularizer, f"w{self.regularizer_weight:g}"]
        return "-".join(parts)


@dataclass(frozen=True)
class StudySettings:
    """Everything a run needs besides its cell, seed and budget: data, model size, and the measurement protocol.

    ``target_train_loss`` (images; ``text_target_train_loss`` for text) + ``max_epochs`` define the matched-fit
    budget; ``fixed_epochs`` the fixed budget.
    ``eval_examples`` correctly classified test examples are scored for robustness (integrated gradients, by
    far the costliest method under attack, on the first ``ig_eval_examples`` of them); the diagnostics use the first
    ``diagnostics_batch_size`` training examples.
    """

    scale: str
    image_dataset: str = "synthetic_images"
    text_dataset: str = "synthetic_sentiment"
    num_images: int = 4000
    num_sentences: int = 4000
    max_train_samples: int | None = None
    image_size: int = 32
    patch_size: int = 4
    hidden_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    intermediate_size: int = 128
    initializer_range: float = 0.02
    text_initializer_range: float = 0.2
    kernel_feature_map: str = "elu"
    max_seq_length: int = 32
    text_tokenizer: str | None = None
    target_train_loss: float = 0.15
    text_target_train_loss: float = 0.1
    max_epochs: float = 30.0
    fixed_epochs: float = 5.0
    logging_steps: int = 10
    divergence_loss: float = 20.0
    eval_examples: int = 300
    ig_eval_examples: int = 100
    gradient_methods: tuple[str, ...] = GRADIENT_METHODS
    attention_methods: tuple[str, ...] = ATTENTION_METHODS
    attack_epsilon: float = 0.05
    text_epsilon: float = 0.1
    attack_steps: int = 5
    attack_restarts: int = 2
    topk: float = 0.1
    sensitivity_samples: int = 5
    ig_steps: int = 8
    robustness_batch_size: int = 50
    diagnostics_batch_size: int = 64
    trace_probes: int = 30
    trace_max_probes: int = 100
    power_iterations: int = 10
    input_probes: int = 10
    input_max_probes: int = 50
    ig_norm_steps: int = 8

    @property
    def methods(self) -> tuple[str, ...]:
        """All attribution methods scored, gradient methods first."""
        return (*self.gradient_methods, *self.attention_methods)

    def fingerprint(self) -> str:
        """A short hash of the settings: runs stored under other settings are not reused."""
        payload = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class RunSpec:
    """One run: a cell, a seed and a budget (``matched`` or ``fixed``) under the study's settings."""

    cell: Cell
    seed: int
    budget: str
    settings: StudySettings = field(repr=False)

    def __post_init__(self) -> None:
        if self.budget not in BUDGETS:
            raise ValueError(f"RunSpec.budget must be one of {list(BUDGETS)}, got {self.budget!r}.")

    @property
    def key(self) -> str:
        """The run's identifier in the store (file-name safe, unique within a study)."""
        return f"{self.cell.slug}-{self.budget}-s{self.seed}"


@dataclass(frozen=True)
class GridPlan:
    """The regimes of one scale, per model: SGD (lr, batch) pairs, AdamW, and explicit baselines."""

    sgd: tuple[tuple[float, int], ...]
    adamw_lr: float
    adamw_batch: int
    baselines: tuple[tuple[str, float], ...]
    baseline_lr: float
    baseline_batch: int
    attention_types: tuple[str, ...]
    seeds: int
    fixed_seeds: int
    fixed_attention_types: tuple[str, ...]


def _cells(model: str, plan: GridPlan, attention_types: tuple[str, ...], with_baselines: bool) -> list[Cell]:
    cells = []
    for attention in attention_types:
        cells += [Cell(model, attention, "sgd", lr, batch) for lr, batch in plan.sgd]
        cells.append(Cell(model, attention, "adamw", plan.adamw_lr, plan.adamw_batch))
        if with_baselines:
            cells += [
                Cell(model, attention, "sgd", plan.baseline_lr, plan.baseline_batch, name, weight)
                for name, weight in plan.baselines
            ]
    return cells


_CI_SETTINGS = StudySettings(
    scale="ci",
    num_images=600,
    num_sentences=600,
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=64,
    target_train_loss=1.36,
    text_target_train_loss=0.68,
    max_epochs=4.0,
    fixed_epochs=1.0,
    logging_steps=4,
    eval_examples=8,
    ig_eval_examples=4,
    gradient_methods=("saliency",),
    attention_methods=("raw_attention",),
    attack_steps=2,
    attack_restarts=1,
    sensitivity_samples=2,
    ig_steps=4,
    robustness_batch_size=8,
    diagnostics_batch_size=8,
    trace_probes=2,
    trace_max_probes=4,
    power_iterations=3,
    input_probes=2,
    input_max_probes=4,
    ig_norm_steps=2,
)

_CPU_SETTINGS = StudySettings(scale="cpu")

_GPU_SETTINGS = StudySettings(
    scale="gpu",
    image_dataset="uoft-cs/cifar10",
    text_dataset="stanfordnlp/sst2",
    text_tokenizer="google-bert/bert-base-uncased",
    text_initializer_range=0.02,
    hidden_size=192,
    num_hidden_layers=6,
    num_attention_heads=3,
    intermediate_size=768,
    max_seq_length=64,
    target_train_loss=0.3,
    text_target_train_loss=0.3,
    max_epochs=100.0,
    fixed_epochs=30.0,
    logging_steps=50,
    eval_examples=1000,
    ig_eval_examples=1000,
    attack_epsilon=2 / 255 / 0.25,
    attack_steps=20,
    attack_restarts=3,
    sensitivity_samples=10,
    ig_steps=32,
    robustness_batch_size=100,
    diagnostics_batch_size=256,
    trace_probes=100,
    trace_max_probes=1000,
    power_iterations=30,
    input_probes=30,
    input_max_probes=300,
    ig_norm_steps=10,
)

SCALES: dict[str, tuple[StudySettings, dict[str, GridPlan]]] = {
    "ci": (
        _CI_SETTINGS,
        {
            "vit": GridPlan(
                sgd=((0.3, 16), (0.3, 64)),
                adamw_lr=3e-3,
                adamw_batch=32,
                baselines=(("input_grad_norm", 0.01),),
                baseline_lr=0.3,
                baseline_batch=32,
                attention_types=("softmax", "kernel"),
                seeds=2,
                fixed_seeds=1,
                fixed_attention_types=("softmax",),
            ),
            "bert": GridPlan(
                sgd=((0.3, 32),),
                adamw_lr=3e-3,
                adamw_batch=32,
                baselines=(),
                baseline_lr=0.3,
                baseline_batch=32,
                attention_types=("kernel",),
                seeds=1,
                fixed_seeds=0,
                fixed_attention_types=(),
            ),
        },
    ),
    "cpu": (
        _CPU_SETTINGS,
        {
            "vit": GridPlan(
                sgd=((0.1, 8), (0.1, 16), (0.1, 32), (0.1, 64), (0.1, 128)),
                adamw_lr=1e-3,
                adamw_batch=32,
                baselines=(("input_grad_norm", 0.01), ("ig_norm", 0.01), ("sam", 0.05)),
                baseline_lr=0.1,
                baseline_batch=32,
                attention_types=("softmax", "kernel"),
                seeds=5,
                fixed_seeds=2,
                fixed_attention_types=("softmax", "kernel"),
            ),
            "bert": GridPlan(
                sgd=((0.1, 16), (0.1, 32), (0.1, 128)),
                adamw_lr=1e-3,
                adamw_batch=32,
                baselines=(),
                baseline_lr=0.3,
                baseline_batch=32,
                attention_types=("softmax", "kernel"),
                seeds=5,
                fixed_seeds=0,
                fixed_attention_types=(),
            ),
        },
    ),
    "gpu": (
        _GPU_SETTINGS,
        {
            "vit": GridPlan(
                sgd=((0.05, 16), (0.05, 32), (0.05, 64), (0.05, 128), (0.05, 256)),
                adamw_lr=5e-4,
                adamw_batch=128,
                baselines=(("input_grad_norm", 0.01), ("ig_norm", 0.01), ("sam", 0.05)),
                baseline_lr=0.1,
                baseline_batch=64,
                attention_types=("softmax", "kernel"),
                seeds=5,
                fixed_seeds=3,
                fixed_attention_types=("softmax", "kernel"),
            ),
            "bert": GridPlan(
                sgd=((0.02, 16), (0.02, 64), (0.02, 128)),
                adamw_lr=5e-5,
                adamw_batch=32,
                baselines=(),
                baseline_lr=0.05,
                baseline_batch=32,
                attention_types=("softmax", "kernel"),
                seeds=5,
                fixed_seeds=0,
                fixed_attention_types=(),
            ),
        },
    ),
}


def get_settings(scale: str, **overrides: object) -> StudySettings:
    """The :class:`StudySettings` of ``scale`` (one of :data:`SCALES`), with fields replaced by ``overrides``."""
    if scale not in SCALES:
        raise ValueError(f"Unknown --scale {scale!r}; expected one of {list(SCALES)}.")
    settings = SCALES[scale][0]
    unknown = sorted(set(overrides) - set(asdict(settings)))
    if unknown:
        raise ValueError(f"Unknown study setting(s) {unknown}.")
    return replace(settings, **{k: v for k, v in overrides.items() if v is not None})


def build_grid(
    scale: str, settings: StudySettings | None = None, *, models: tuple[str, ...] = MODELS
) -> list[RunSpec]:
    """All runs of ``scale``: every cell x seed under the matched budget, plus the fixed-budget subset (SGD and
    AdamW cells of ``fixed_attention_types``, ``fixed_seeds`` seeds), in seed-major order."""
    if scale not in SCALES:
        raise ValueError(f"Unknown --scale {scale!r}; expected one of {list(SCALES)}.")
    settings = settings or SCALES[scale][0]
    plans = SCALES[scale][1]
    unknown = [model for model in models if model not in plans]
    if unknown:
        raise ValueError(f"Unknown models {unknown}; expected names from {list(plans)}.")
    specs: list[RunSpec] = []
    for model in models:
        plan = plans[model]
        for cell in _cells(model, plan, plan.attention_types, with_baselines=True):
            specs += [RunSpec(cell, seed, "matched", settings) for seed in range(plan.seeds)]
        for cell in _cells(model, plan, plan.fixed_attention_types, with_baselines=False):
            specs += [RunSpec(cell, seed, "fixed", settings) for seed in range(plan.fixed_seeds)]
    # Seed-major order: a partial study (or --max_runs) covers every cell before repeating any.
    specs.sort(key=lambda spec: spec.seed)
    return specs
