"""``ConversionConfig``: every setting of an attention transfer, validated once where it is built."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from hf_robattr.attribution.argument_checks import help_field
from hf_robattr.models import FEATURE_MAPS


__all__ = ["PARAMETER_FREE_FEATURE_MAPS", "RECOVERY_MODES", "ConversionConfig"]

RECOVERY_MODES = ("lora", "full", "none")
# Maps without weights of their own: stage 1 can only train low-rank adapters on the query/key projections.
PARAMETER_FREE_FEATURE_MAPS = ("elu", "relu", "favor")
SCHEDULES = ("constant", "linear", "cosine")
DEFAULT_QK_LORA_RANK = 8


@dataclass
class ConversionConfig:
    """Settings of :func:`~hf_robattr.conversion.convert_to_kernel` (also the recipe's flags).

    Stage 1 (attention transfer) trains the feature maps, and optionally low-rank adapters on the query/key
    projections, so that every layer's kernel attention weights match the softmax teacher's on the teacher's own
    inputs (KL divergence over attention rows, layer-local). Stage 2 (recovery) trains LoRA adapters (``peft``) or
    the whole student to match the teacher's outputs end to end, then merges the adapters.

    ``batch_size`` is the global batch: under ``accelerate launch`` each of ``n`` processes takes ``batch_size / n``
    examples per step, so any process count converts to the same weights.
    """

    feature_map: str = help_field(f"Kernel feature map, one of {sorted(FEATURE_MAPS)}.", "hedgehog")
    num_features: int | None = help_field(
        "Feature-map size (hedgehog projection / FAVOR+ features); None: the default."
    )
    seed: int = help_field("Seed of the conversion (adapter init, data order).", 0)
    batch_size: int = help_field("Global batch size (split evenly across processes).", 32)
    max_length: int = help_field("Longest text, in tokens, when texts are tokenized for the conversion.", 64)

    transfer_steps: int = help_field("Stage 1 (attention transfer) optimizer steps; 0 skips the stage.", 1000)
    transfer_learning_rate: float = help_field("Stage 1 learning rate (AdamW).", 1e-2)
    transfer_qk_lora_rank: int | None = help_field(
        "Rank of the query/key LoRA adapters trained in stage 1; 0 = none; None = none for hedgehog, "
        f"{DEFAULT_QK_LORA_RANK} for the parameter-free maps (elu, relu, favor)."
    )
    transfer_output_weight: float = help_field(
        "Weight of the attention-output loss (relative squared error of each layer's attention output) beside "
        "the attention-weight KL in stage 1.",
        0.0,
    )
    transfer_check_steps: int = help_field(
        "Stop rule of stage 1: check the fidelity on held-out data every this many steps and stop once the task's "
        "targets are met (classifiers and masked LM: top-1 agreement >= 0.98; base models have none); 0: run every "
        "step.",
        100,
    )
    cache_teacher_inputs: bool | None = help_field(
        "Keep the teacher's per-layer attention inputs in memory after the first epoch of stage 1 (about 3x faster "
        "on CPU); None: only when they fit in 2 GB.",
    )

    recovery: str = help_field(f"Stage 2 (recovery): one of {list(RECOVERY_MODES)}.", "lora")
    recovery_steps: int = help_field(
        "Stage 2 optimizer steps at most; 0 skips the stage (the stop rule may end it earlier).", 800
    )
    recovery_check_steps: int = help_field(
        "Stop rule of stage 2: check the fidelity on held-out data every this many steps; recovery is skipped when "
        "attention transfer already meets the task's targets and stops once it no longer improves (0: no rule, run "
        "every step).",
        100,
    )
    recovery_min_gain: float = help_field(
        "Stop rule: a check improves when it raises the mean of the rule's fidelity measures by more than this.", 1e-4
    )
    recovery_patience: int = help_field("Stop rule: stop after this many checks in a row without improvement.", 2)
    recovery_learning_rate: float | None = help_field("Stage 2 learning rate; None: 1e-3 for lora, 2e-5 for full.")
    recovery_batch_size: int | None = help_field("Stage 2 global batch size; None: batch_size / 2.")
    lora_rank: int = help_field("Rank of the stage 2 LoRA adapters.", 16)
    lora_alpha: float | None = help_field("LoRA alpha of stage 2 (scale alpha / rank); None: equal to the rank.")
    lora_target_modules: list[str] | None = field(
        default=None,
        metadata={
            "help": "Module names that get stage 2 adapters; None: every linear layer of the encoder (attention, MLP)."
        },
    )
    output_weight: float = help_field(
        "Stage 2 weight of the output-matching loss (logit KL for classifiers and masked LM; for base models the "
        "last hidden state's relative squared error plus 1 - cosine of the pooled embedding).",
        1.0,
    )
    hidden_state_weight: float = help_field(
        "Stage 2 weight of the every-layer hidden-state loss (relative squared error, averaged over layers).", 0.0
    )
    task_loss_weight: float = help_field(
        "Stage 2 weight of the model's own task loss when the inputs have labels.", 0.0
    )
    distillation_temperature: float = help_field("Temperature of the stage 2 logit KL.", 1.0)

    lr_scheduler_type: str = help_field(f"Learning-rate schedule of both stages, one of {list(SCHEDULES)}.", "cosine")
    warmup_ratio: float = help_field("Fraction of each stage's steps spent warming the learning rate up.", 0.05)
    eval_batch_size: int = help_field("Batch size of the fidelity measurements.", 64)
    logging_steps: int = help_field("Log the losses every this many steps.", 50)
    use_cpu: bool = help_field("Run on CPU even where a GPU exists.", False)
    progress: bool = help_field("Show progress bars.", True)

    def __post_init__(self) -> None:
        if self.feature_map not in FEATURE_MAPS:
            raise ValueError(f"feature_map must be one of {sorted(FEATURE_MAPS)}, got {self.feature_map!r}.")
        if self.recovery not in RECOVERY_MODES:
            raise ValueError(f"recovery must be one of {list(RECOVERY_MODES)}, got {self.recovery!r}.")
        if self.lr_scheduler_type not in SCHEDULES:
            raise ValueError(f"lr_scheduler_type must be one of {list(SCHEDULES)}, got {self.lr_scheduler_type!r}.")
        positive = ["batch_size", "max_length", "lora_rank", "eval_batch_size", "logging_steps"]
        positive += [name for name in ("num_features", "recovery_batch_size") if getattr(self, name) is not None]
        for name in positive:
            _check_int(self, name, minimum=1)
        _check_int(self, "recovery_patience", minimum=1)
        for name in ("seed", "transfer_steps", "recovery_steps", "transfer_check_steps", "recovery_check_steps"):
            _check_int(self, name, minimum=0)
        if self.transfer_qk_lora_rank is not None:
            _check_int(self, "transfer_qk_lora_rank", minimum=0)
        for name in ("transfer_learning_rate", "distillation_temperature"):
            _check_float(self, name, positive=True)
        for name in ("recovery_learning_rate", "lora_alpha"):
            if getattr(self, name) is not None:
                _check_float(self, name, positive=True)
        for name in (
            "transfer_output_weight",
            "output_weight",
            "hidden_state_weight",
            "task_loss_weight",
            "recovery_min_gain",
        ):
            _check_float(self, name, positive=False)
        _check_float(self, "warmup_ratio", positive=False)
        if self.warmup_ratio >= 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}.")
        if self.lora_target_modules is not None:
            targets = self.lora_target_modules
            if isinstance(targets, str) or not targets or not all(isinstance(t, str) and t for t in targets):
                raise ValueError(
                    f"lora_target_modules must be a non-empty list of module names or None, got {targets!r}."
                )
            self.lora_target_modules = list(targets)
        if (
            self.transfer_steps > 0
            and self.effective_qk_lora_rank == 0
            and self.feature_map in PARAMETER_FREE_FEATURE_MAPS
        ):
            raise ValueError(
                f"feature_map={self.feature_map!r} has no weights, so stage 1 needs query/key adapters: "
                f"transfer_qk_lora_rank must be > 0 (or None), got 0. Set transfer_steps=0 to skip stage 1."
            )
        if self.runs_recovery and self.output_weight == self.hidden_state_weight == self.task_loss_weight == 0:
            raise ValueError(
                "Stage 2 needs a loss: output_weight, hidden_state_weight and task_loss_weight are all 0. "
                "Set one > 0, or recovery='none'."
            )

    @property
    def effective_qk_lora_rank(self) -> int:
        """The stage 1 query/key adapter rank after resolving ``None``."""
        if self.transfer_qk_lora_rank is not None:
            return self.transfer_qk_lora_rank
        return DEFAULT_QK_LORA_RANK if self.feature_map in PARAMETER_FREE_FEATURE_MAPS else 0

    @property
    def effective_recovery_learning_rate(self) -> float:
        """The stage 2 learning rate after resolving ``None``."""
        if self.recovery_learning_rate is not None:
            return self.recovery_learning_rate
        return 1e-3 if self.recovery == "lora" else 2e-5

    @property
    def effective_recovery_batch_size(self) -> int:
        """The stage 2 global batch size after resolving ``None``."""
        return self.recovery_batch_size or max(1, self.batch_size // 2)

    @property
    def runs_transfer(self) -> bool:
        """Whether stage 1 trains anything."""
        return self.transfer_steps > 0

    @property
    def runs_recovery(self) -> bool:
        """Whether stage 2 trains anything."""
        return self.recovery != "none" and self.recovery_steps > 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of every field."""
        return asdict(self)

    def non_default(self) -> dict[str, Any]:
        """The fields that differ from their defaults (what a model card reports)."""
        defaults = {f.name: f.default for f in fields(self)}
        return {k: v for k, v in self.to_dict().items() if v != defaults[k]}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ConversionConfig:
        """Build from a dict; unknown keys are an error that lists the valid ones."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise TypeError(f"Unknown conversion setting(s) {unknown}; valid settings: {sorted(names)}.")
        return cls(**values)

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), indent=2)


def _check_int(config: ConversionConfig, name: str, *, minimum: int) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}.")


def _check_float(config: ConversionConfig, name: str, *, positive: bool) -> None:
    value = getattr(config, name)
    bad = isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
    if bad or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}.")
