"""The study grid: which cells are trained with which seeds, per arm.

A :class:`Cell` is one training configuration (arm, attention type, optimizer, learning rate, batch size, explicit
regularizer); a :class:`RunSpec` is one cell trained with one seed under its arm's
:class:`~hf_robattr.study.protocol.ArmProtocol`. :class:`ArmGrid` says which cells an arm has:

- plain SGD (momentum 0) over every learning rate x batch size (a factorial, so lr and B are not confounded),
  each attention type, ``seeds`` seeds;
- AdamW at the batch size of the SGD cell it is compared with (``adamw``: its own learning rate, as Adam's step
  size is not on SGD's scale);
- explicit baselines at exactly the learning rate and batch size of one SGD cell (``baseline_cell``), with the
  regularizer weight chosen on a small sweep (``baseline_weights``, one run per weight at ``sweep_seed``, scored on
  validation examples): the weight with the highest gradient-method robustness among the sweep runs that reached
  the matched fit (ties and no fitted run: the smallest weight).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .protocol import ArmProtocol


__all__ = ["OPTIMIZERS", "ROLES", "ArmGrid", "Cell", "RunSpec", "arm_specs", "baseline_specs", "sweep_specs"]

OPTIMIZERS = ("sgd", "adamw")
ROLES = ("main", "sweep")
ATTENTION_TYPES = ("softmax", "kernel")


@dataclass(frozen=True)
class Cell:
    """One training configuration of the grid. ``optimizer`` is ``sgd`` (momentum 0: the implicit regime) or
    ``adamw``; ``regularizer`` names an explicit baseline added to SGD (``none`` for the implicit regime)."""

    arm: str
    attention_type: str
    optimizer: str
    learning_rate: float
    batch_size: int
    regularizer: str = "none"
    regularizer_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.attention_type not in ATTENTION_TYPES:
            raise ValueError(
                f"Cell.attention_type must be one of {list(ATTENTION_TYPES)}, got {self.attention_type!r}."
            )
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"Cell.optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}.")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)) or self.batch_size < 1:
            raise ValueError(
                f"Cell needs learning_rate > 0 and batch_size >= 1, got {self.learning_rate}, {self.batch_size}."
            )

    @property
    def regime(self) -> str:
        """``sgd`` (implicit regime), ``adamw``, or the explicit regularizer's name."""
        return self.regularizer if self.regularizer != "none" else self.optimizer

    @property
    def log2_strength(self) -> float:
        """``log2(lr / B)``: the implicit-regularization strength (Smith et al. 2021) on a log scale."""
        return math.log2(self.learning_rate / self.batch_size)

    @property
    def label(self) -> str:
        """A short human-readable name, e.g. ``sgd lr=0.1 B=8``."""
        text = f"{self.regime} lr={self.learning_rate:g} B={self.batch_size}"
        return text + (f" w={self.regularizer_weight:g}" if self.regularizer != "none" else "")

    @property
    def slug(self) -> str:
        """A file-name-safe identifier of the cell."""
        parts = [self.arm, self.attention_type, self.optimizer, f"lr{self.learning_rate:g}", f"b{self.batch_size}"]
        if self.regularizer != "none":
            parts += [self.regularizer, f"w{self.regularizer_weight:g}"]
        return "-".join(parts)


@dataclass(frozen=True)
class RunSpec:
    """One run: a cell and a seed under its arm's protocol. ``role`` is ``main`` (scored on the test pool) or
    ``sweep`` (a regularizer-weight sweep run, scored on validation examples); ``curvature`` asks for the Hessian
    diagnostics, ``saturation`` for the attack-budget check."""

    cell: Cell
    seed: int
    protocol: ArmProtocol = field(repr=False)
    role: str = "main"
    curvature: bool = False
    saturation: bool = False

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"RunSpec.role must be one of {list(ROLES)}, got {self.role!r}.")
        if self.protocol.arm != self.cell.arm:
            raise ValueError(f"RunSpec: cell of arm {self.cell.arm!r} under the protocol of {self.protocol.arm!r}.")

    @property
    def key(self) -> str:
        """The run's identifier in the store (file-name safe, unique within a study)."""
        return f"{self.cell.slug}-{self.role}-s{self.seed}"

    @property
    def fingerprint(self) -> str:
        """The fingerprint of what this run computes (its arm's protocol, per attention type)."""
        return self.protocol.fingerprint(self.cell.attention_type)


@dataclass(frozen=True)
class ArmGrid:
    """The cells of one arm (see the module docstring). ``curvature_seeds``: the first N seeds of every SGD cell
    also get the Hessian diagnostics; ``saturation_seeds``: the first N seeds of the two corner SGD cells (weakest
    and strongest lr/B) also check the attack's saturation."""

    learning_rates: tuple[float, ...]
    batch_sizes: tuple[int, ...]
    attention_types: tuple[str, ...] = ATTENTION_TYPES
    seeds: int = 5
    adamw: tuple[float, int] | None = None
    baselines: tuple[tuple[str, tuple[float, ...]], ...] = ()
    baseline_cell: tuple[float, int] | None = None
    baseline_seeds: int = 5
    sweep_seed: int = 100
    curvature_seeds: int = 0
    saturation_seeds: int = 0

    def __post_init__(self) -> None:
        if self.baselines and self.baseline_cell not in {
            (lr, b) for lr in self.learning_rates for b in self.batch_sizes
        }:
            raise ValueError(f"ArmGrid.baseline_cell {self.baseline_cell} must be one of the SGD cells (lr, B).")
        if self.sweep_seed < self.seeds:
            raise ValueError(f"ArmGrid.sweep_seed ({self.sweep_seed}) must not be one of the main seeds.")


def arm_specs(protocol: ArmProtocol, grid: ArmGrid, attention_types: tuple[str, ...] | None = None) -> list[RunSpec]:
    """The SGD and AdamW runs of one arm (baselines come from :func:`sweep_specs` / :func:`baseline_specs`)."""
    specs = []
    strengths = [
        Cell(protocol.arm, "softmax", "sgd", lr, b).log2_strength
        for lr in grid.learning_rates
        for b in grid.batch_sizes
    ]
    corners = {min(strengths), max(strengths)}
    for attention in attention_types or grid.attention_types:
        for lr in grid.learning_rates:
            for batch in grid.batch_sizes:
                cell = Cell(protocol.arm, attention, "sgd", lr, batch)
                corner = cell.log2_strength in corners
                specs += [
                    RunSpec(
                        cell,
                        seed,
                        protocol,
                        curvature=seed < grid.curvature_seeds,
                        saturation=corner and seed < grid.saturation_seeds,
                    )
                    for seed in range(grid.seeds)
                ]
        if grid.adamw is not None:
            cell = Cell(protocol.arm, attention, "adamw", *grid.adamw)
            specs += [RunSpec(cell, seed, protocol) for seed in range(grid.seeds)]
    return specs


def sweep_specs(protocol: ArmProtocol, grid: ArmGrid, attention_types: tuple[str, ...] | None = None) -> list[RunSpec]:
    """One run per explicit baseline, weight and attention type at ``grid.sweep_seed`` (the weight sweep)."""
    if not grid.baselines:
        return []
    lr, batch = grid.baseline_cell
    return [
        RunSpec(Cell(protocol.arm, attention, "sgd", lr, batch, name, weight), grid.sweep_seed, protocol, "sweep")
        for attention in attention_types or grid.attention_types
        for name, weights in grid.baselines
        for weight in weights
    ]


def baseline_specs(protocol: ArmProtocol, grid: ArmGrid, chosen: dict[tuple[str, str], float]) -> list[RunSpec]:
    """The baselines' main runs at the weights ``chosen[(attention_type, regularizer)]`` (pairs not yet chosen
    are left out)."""
    if not grid.baselines:
        return []
    lr, batch = grid.baseline_cell
    specs = []
    for attention in grid.attention_types:
        for name, _ in grid.baselines:
            if (attention, name) in chosen:
                cell = Cell(protocol.arm, attention, "sgd", lr, batch, name, chosen[(attention, name)])
                specs += [RunSpec(cell, seed, protocol) for seed in range(grid.baseline_seeds)]
    return specs
