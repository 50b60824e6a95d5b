"""``RobAttrTrainingArguments``: ``TrainingArguments`` plus the optimizer regime, explicit regularizers, the
matched-fit stop rule, diagnostics and the recipe's robustness scoring size."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from transformers import TrainingArguments

from hf_robattr.attribution.argument_checks import check_choice, check_range, check_types
from hf_robattr.results_io import check_hub_model_id

from .regularizers import REGULARIZERS, get_regularizer


__all__ = ["DIAGNOSTICS", "OPTIMIZERS", "RobAttrTrainingArguments", "check_hub_model_id", "has_accelerator"]

# optimizer regime -> (TrainingArguments.optim, optim_args template)
DEFAULT_LEARNING_RATES = {"sgd": 0.3, "momentum_sgd": 0.03, "adamw": 1e-3}
OPTIMIZERS: dict[str, tuple[str, str]] = {
    "sgd": ("sgd", "momentum=0"),
    "momentum_sgd": ("sgd", "momentum={momentum}"),
    "adamw": ("adamw_torch", ""),
}
# TrainingArguments' own default ``optim``: any other value was asked for, and --optimizer decides it here.
_TRAINER_OPTIM = next(f.default for f in dataclasses.fields(TrainingArguments) if f.name == "optim")
DIAGNOSTICS = ("sharpness", "input_curvature", "attribution_robustness", "attention_entropy")


def has_accelerator() -> bool:
    """Whether torch sees an accelerator (CUDA, MPS, XPU, ...): pinned host memory only helps copies to one."""
    accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6
    if accelerator is not None:
        return bool(accelerator.is_available())
    return torch.cuda.is_available() or bool(
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    )


@dataclass
class RobAttrTrainingArguments(TrainingArguments):
    """``TrainingArguments`` plus the optimizer regime, explicit regularizers, matched fit and diagnostics.

    ``--optimizer`` sets ``optim``/``optim_args``: ``sgd`` (momentum 0, the implicit-regularization regime whose
    strength is set by learning rate / batch size), ``momentum_sgd`` (``--momentum``) or ``adamw``. Defaults differ
    from ``TrainingArguments`` where the regime or the tiny default models need it: a learning rate chosen by the
    optimizer (sgd 0.3, momentum_sgd 0.03, adamw 1e-3), constant schedule, batch size 32, 8 epochs,
    ``remove_unused_columns=False`` (datasets use on-the-fly transforms), logging every 10 steps, and callback
    states restored on resume (so a resumed run remembers its matched-fit checks).

    Every value is checked when the arguments are built (from flags, a JSON file or Python), so a bad one fails
    before any data is loaded, with the flag named. ``--output_dir`` is required.
    """

    output_dir: str | None = field(
        default=None, metadata={"help": "Where the model, results.json, the card and checkpoints go (required)."}
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Train into an --output_dir that holds a finished run (its results.json is moved to "
            "results.json.previous once training begins, and removed once the new one is written)."
        },
    )
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
    dataloader_pin_memory: bool | None = field(
        default=None,
        metadata={
            "help": "Pin the data loaders' memory (faster copies to an accelerator); default: only when an "
            "accelerator is used (on a CPU it does nothing but warn)."
        },
    )
    keep_checkpoints: bool = field(
        default=False,
        metadata={
            "help": "Keep the Trainer's checkpoint-* folders (optimizer and RNG states, for --resume_from_checkpoint) "
            "after the run has finished; by default they are removed once the model and results.json are saved. "
            "An interrupted run keeps them."
        },
    )
    restore_callback_states_from_checkpoint: bool = field(
        default=True,
        metadata={"help": "On resume, restore the matched-fit and divergence state saved in the checkpoint."},
    )

    optimizer: str = field(
        default="sgd",
        metadata={"help": f"Optimizer regime, one of {list(OPTIMIZERS)}. sgd = momentum 0 (implicit regime)."},
    )
    momentum: float = field(default=0.9, metadata={"help": "Momentum in [0, 1) for --optimizer momentum_sgd."})
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
        default=None,
        metadata={
            "help": "Matched fit: stop once the true training loss (eval mode, on --target_loss_examples fixed "
            "training examples, checked every --target_check_every_examples examples) is <= this value."
        },
    )
    target_loss_examples: int = field(
        default=1024, metadata={"help": "Matched fit: size of the fixed training subset the loss is measured on."}
    )
    target_check_every_examples: int = field(
        default=1024,
        metadata={"help": "Matched fit: check after every N training examples (not steps: batch sizes compare)."},
    )
    target_loss_batch_size: int = field(
        default=256, metadata={"help": "Matched fit: examples per forward pass of the check (per process)."}
    )
    target_loss_band: float | None = field(
        default=None,
        metadata={
            "help": "Two-sided matched fit: end on the checkpoint whose true training loss is closest to "
            "--target_train_loss (rolling back past an overshoot, by bisection over the copies since the last check, "
            "which assumes the loss falls between checks), and record whether it lies within +- this relative band "
            "(e.g. 0.1); see MatchedFitCallback. Default: the one-sided rule (stop at the first check <= the target)."
        },
    )
    target_min_examples: int = field(
        default=0,
        metadata={"help": "Two-sided matched fit: no check, stop or rollback before this many training examples."},
    )
    target_snapshot_every_examples: int = field(
        default=0,
        metadata={
            "help": "Two-sided matched fit: keep an in-memory copy of the weights every N training examples between "
            "checks, for the rollback (0: only at the checks)."
        },
    )
    divergence_loss: float | None = field(
        default=None,
        metadata={"help": "Stop (recorded as diverged) once the logged training loss is non-finite or above this."},
    )

    diagnostics_steps: int = field(
        default=0, metadata={"help": "Log curvature/robustness diagnostics every N steps on a fixed batch (0: off)."}
    )
    diagnostics_at_end: bool = field(
        default=False, metadata={"help": "Compute the diagnostics once on the trained model (results.json)."}
    )
    diagnostics: list[str] = field(
        default_factory=lambda: list(DIAGNOSTICS),
        metadata={"help": f"Which diagnostics to compute, from {list(DIAGNOSTICS)}."},
    )
    diagnostics_batch_size: int = field(
        default=16, metadata={"help": "Size of the fixed training batch the diagnostics use."}
    )
    diagnostics_num_probes: int = field(
        default=2, metadata={"help": "Hutchinson probes (>= 2) for the Hessian-trace and input-curvature estimates."}
    )
    diagnostics_max_probes: int | None = field(
        default=None,
        metadata={
            "help": "Draw more probes, up to this many, while the relative standard error is above 10%% (default: 10 "
            "x --diagnostics_num_probes)."
        },
    )
    diagnostics_num_iterations: int = field(
        default=5, metadata={"help": "Power iterations (>= 2) for the top Hessian eigenvalue."}
    )

    robustness_num_examples: int = field(
        default=64, metadata={"help": "Test examples scored for attribution robustness (0: skip the scoring)."}
    )

    def __post_init__(self) -> None:
        check_types(self)
        if not self.output_dir:
            raise ValueError("--output_dir is required: the folder the model, results.json and checkpoints go to.")
        check_choice("--optimizer", self.optimizer, OPTIMIZERS)
        get_regularizer(self.regularizer)
        for name in self.diagnostics:
            check_choice("--diagnostics entry", name, DIAGNOSTICS)
        check_range("--learning_rate", self.learning_rate, above=0)
        check_range("--momentum", self.momentum, minimum=0, below=1)
        check_range("--num_train_epochs", self.num_train_epochs, above=0)
        check_range("--logging_steps", self.logging_steps, above=0)
        if self.max_steps != -1 and self.max_steps < 1:
            raise ValueError(f"--max_steps must be >= 1 (or -1: train --num_train_epochs), got {self.max_steps}.")
        for flag, value, minimum in (
            ("--per_device_train_batch_size", self.per_device_train_batch_size, 1),
            ("--per_device_eval_batch_size", self.per_device_eval_batch_size, 1),
            ("--gradient_accumulation_steps", self.gradient_accumulation_steps, 1),
            ("--regularizer_weight", self.regularizer_weight, 0),
            ("--ig_steps", self.ig_steps, 1),
            ("--ig_chunk_size", self.ig_chunk_size, 1),
            ("--ig_epsilon", self.ig_epsilon, 0),
            ("--target_loss_examples", self.target_loss_examples, 1),
            ("--target_check_every_examples", self.target_check_every_examples, 1),
            ("--target_loss_batch_size", self.target_loss_batch_size, 1),
            ("--target_min_examples", self.target_min_examples, 0),
            ("--target_snapshot_every_examples", self.target_snapshot_every_examples, 0),
            ("--diagnostics_steps", self.diagnostics_steps, 0),
            ("--diagnostics_batch_size", self.diagnostics_batch_size, 1),
            ("--diagnostics_num_probes", self.diagnostics_num_probes, 2),
            ("--diagnostics_max_probes", self.diagnostics_max_probes, self.diagnostics_num_probes),
            ("--diagnostics_num_iterations", self.diagnostics_num_iterations, 2),
            ("--robustness_num_examples", self.robustness_num_examples, 0),
        ):
            check_range(flag, value, minimum=minimum)
        check_range("--curvature_step", self.curvature_step, above=0)
        check_range("--target_train_loss", self.target_train_loss, above=0)
        check_range("--target_loss_band", self.target_loss_band, above=0, below=1)
        if self.target_loss_band is not None and self.target_train_loss is None:
            raise ValueError("--target_loss_band needs --target_train_loss (the centre of the band).")
        if self.target_train_loss is not None and self.load_best_model_at_end:
            # The Trainer would load its best checkpoint after the matched fit stopped (or rolled back), and the
            # saved model would not be the one whose fit results.json records.
            raise ValueError(
                "--load_best_model_at_end cannot be combined with --target_train_loss: the model must end on the "
                "matched-fit weights, not on the best evaluation checkpoint. Drop one of the two."
            )
        check_range("--divergence_loss", self.divergence_loss, above=0)
        if self.hub_model_id is not None:
            check_hub_model_id(self.hub_model_id, "--hub_model_id")
        if self.learning_rate is None:
            self.learning_rate = DEFAULT_LEARNING_RATES[self.optimizer]
        if self.dataloader_pin_memory is None:
            self.dataloader_pin_memory = not self.use_cpu and has_accelerator()
        optim, optim_args = OPTIMIZERS[self.optimizer]
        optim_args = optim_args.format(momentum=self.momentum) or None
        if (self.optim, self.optim_args) not in ((_TRAINER_OPTIM, None), (optim, optim_args)):
            raise ValueError(
                f"--optim {self.optim} / --optim_args {self.optim_args} are set by --optimizer here (--optimizer "
                f"{self.optimizer} trains with optim {optim!r}, optim_args {optim_args!r}); choose the regime with "
                f"--optimizer {{{', '.join(OPTIMIZERS)}}} and --momentum, not --optim."
            )
        self.optim, self.optim_args = optim, optim_args
        super().__post_init__()

    @property
    def total_train_batch_size(self) -> int:
        """Examples per optimizer step over all processes: per-device batch x accumulation x processes."""
        return self.per_device_train_batch_size * self.gradient_accumulation_steps * max(self.world_size, 1)
