"""A stored study run (``runs/<key>.json``, written by :mod:`~hf_robattr.study.run`) read into typed sections.

:meth:`StudyRecord.from_json` is the one place the analysis spells a record's keys (docs/study.md, "The run
record"): each section is a frozen dataclass with its own ``from_json``, a missing section or field takes its
default, and numbers that are not numbers (``None``, a bool) read as NaN. Records on disk are not changed. The
``training`` section is the pipeline's (:class:`~hf_robattr.training.record.TrainingRecord`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hf_robattr.training.record import TrainingRecord

from .stats import NAN


__all__ = [
    "CellSection",
    "DiagnosticsSection",
    "Estimate",
    "FitSection",
    "PoolSection",
    "PreconditionSection",
    "StudyRecord",
    "number",
]


def number(value: object) -> float:
    """``value`` as a float; NaN for anything that is not an int or a float (``None``, a bool, a string)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else NAN


def _section(data: object) -> Mapping[str, Any]:
    return data if isinstance(data, Mapping) else {}


@dataclass(frozen=True)
class CellSection:
    """Which cell of the grid the run belongs to."""

    attention_type: str
    optimizer: str
    learning_rate: float
    batch_size: int
    regularizer: str
    regularizer_weight: float

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CellSection:
        """The section from the record's ``cell`` (every key required: a run without its cell is no run)."""
        return cls(
            data["attention_type"],
            data["optimizer"],
            data["learning_rate"],
            data["batch_size"],
            data["regularizer"],
            data["regularizer_weight"],
        )


@dataclass(frozen=True)
class FitSection:
    """How the run's training ended: ``rule`` (``target``, ``band``, ``budget``), ``outcome`` (``in_band``,
    ``above_band``, ``below_band``; ``""`` for a budget or a v2 record) and the true training loss at the stop."""

    rule: str = ""
    outcome: str = ""
    loss_at_stop: float = NAN

    @classmethod
    def from_json(cls, data: object) -> FitSection:
        """The section from the record's ``fit`` (absent in v2 records)."""
        section = _section(data)
        return cls(
            str(section.get("rule") or ""), str(section.get("outcome") or ""), number(section.get("loss_at_stop"))
        )


@dataclass(frozen=True)
class Estimate:
    """A stochastic estimate (Hessian trace, top eigenvalue): its value, standard error and probes."""

    value: float = NAN
    stderr: float = NAN
    num_probes: int = 0

    @classmethod
    def from_json(cls, data: object) -> Estimate:
        """The estimate from its JSON object (NaN fields when absent)."""
        section = _section(data)
        return cls(number(section.get("value")), number(section.get("stderr")), int(section.get("num_probes") or 0))


@dataclass(frozen=True)
class DiagnosticsSection:
    """The curvature of a curvature run (NaN estimates otherwise)."""

    hessian_trace: Estimate = field(default_factory=Estimate)
    hessian_top_eigenvalue: Estimate = field(default_factory=Estimate)

    @classmethod
    def from_json(cls, data: object) -> DiagnosticsSection:
        """The section from the record's ``diagnostics``."""
        section = _section(data)
        return cls(
            Estimate.from_json(section.get("hessian_trace")), Estimate.from_json(section.get("hessian_top_eigenvalue"))
        )


@dataclass(frozen=True)
class PoolSection:
    """The evaluation pool: its split, size and which examples the model classified correctly."""

    split: str = ""
    size: int = 0
    correct: tuple[int, ...] = ()

    @property
    def mask(self) -> np.ndarray:
        """``correct`` as a boolean array."""
        return np.asarray(self.correct, dtype=bool)

    @classmethod
    def from_json(cls, data: object) -> PoolSection:
        """The section from the record's ``pool``."""
        section = _section(data)
        return cls(str(section.get("split") or ""), int(section.get("size") or 0), tuple(section.get("correct") or ()))


@dataclass(frozen=True)
class PreconditionSection:
    """The attention checks of a model (:func:`~hf_robattr.study.measure.preconditions`)."""

    cls_entropy_ratio: float
    cls_cv: float
    evidence_recall: float
    evidence_chance: float

    @classmethod
    def from_json(cls, data: object) -> PreconditionSection | None:
        """The section, or ``None`` for a record without one (or an empty one)."""
        if not data or not isinstance(data, Mapping):
            return None
        fields = ("cls_entropy_ratio", "cls_cv", "evidence_recall", "evidence_chance")
        return cls(*(number(data.get(name)) for name in fields))


@dataclass(frozen=True)
class StudyRecord:
    """One stored run: which run it is, how it trained and ended, and what it measured. ``robustness``: value key
    -> per-example values (``None`` where an example could not be scored); ``saturated``: the value keys the
    scoring flagged; ``saturation``: whether the run scored the attack's saturation budgets."""

    key: str
    arm: str
    regime: str
    seed: int
    status: str
    log2_strength: float
    cell: CellSection
    role: str = "main"
    accuracy: float = NAN
    training: TrainingRecord = field(default_factory=lambda: TrainingRecord.from_json({}))
    fit: FitSection = field(default_factory=FitSection)
    diagnostics: DiagnosticsSection = field(default_factory=DiagnosticsSection)
    pool: PoolSection = field(default_factory=PoolSection)
    preconditions: PreconditionSection | None = None
    preconditions_untrained: PreconditionSection | None = None
    robustness: Mapping[str, list] = field(default_factory=dict)
    saturated: tuple[str, ...] = ()
    saturation: bool = False
    error: str = ""
    total_seconds: float = NAN
    total_cpu_seconds: float = NAN

    @property
    def usable(self) -> bool:
        """A main run that counts for the claims."""
        return self.role == "main" and self.status == "ok"

    @property
    def fit_loss(self) -> float:
        """The true training loss at the stop (the training record's, as every fit rule writes it)."""
        return number(self.training.train_loss_at_stop)

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> StudyRecord:
        """The typed record (``key``, ``arm``, ``regime``, ``seed``, ``status``, ``log2_strength`` and ``cell`` are
        required)."""
        return cls(
            key=record["key"],
            arm=record["arm"],
            regime=record["regime"],
            seed=record["seed"],
            status=record["status"],
            log2_strength=record["log2_strength"],
            cell=CellSection.from_json(record["cell"]),
            role=record.get("role", "main"),
            accuracy=number(record.get("accuracy")),
            training=TrainingRecord.from_json(dict(_section(record.get("training")))),
            fit=FitSection.from_json(record.get("fit")),
            diagnostics=DiagnosticsSection.from_json(record.get("diagnostics")),
            pool=PoolSection.from_json(record.get("pool")),
            preconditions=PreconditionSection.from_json(record.get("preconditions")),
            preconditions_untrained=PreconditionSection.from_json(record.get("preconditions_untrained")),
            robustness=dict(_section(record.get("robustness"))),
            saturated=tuple(sorted(_section(record.get("saturated")))),
            saturation=bool(record.get("saturation")),
            error=str(record.get("error", "")),
            total_seconds=number(record.get("total_seconds")),
            total_cpu_seconds=number(record.get("total_cpu_seconds")),
        )
