"""Stored run records -> per-run and per-cell summaries on one common evaluation set per arm.

The **common evaluation set** of an arm: the pool examples (the first ``eval_pool`` test examples, the same for
every model) that every usable model of the arm classifies correctly (every main run with status ``ok``, both
attention types, every regime). Each run's robustness values are means over that set (examples an attack left out
stay out); its label-flip rate (``prediction_change_rate``) is reported beside them. Sweep runs are scored on their
own correctly classified validation examples.

A run's attention is **degenerate** when it fails the analysis' attention rule. v3 (``StudySettings.analysis``) judges
a model trained from an untrained start (no ``pretrained`` checkpoint, no warm start) by the paired rule
(:func:`~hf_robattr.study.measure.attention_preconditions_met`: the trained model against the same-seed untrained
model it started from), which an untrained model fails. Otherwise (v2; an arm fine-tuned from a pretrained or
warm-started checkpoint, whose attention was already trained when the run began; a record stored without its
starting model's checks) the absolute rule applies: degenerate when the [CLS]-row coefficient of variation is below
``min_cls_cv`` or, where evidence exists, raw attention's evidence recall is less than ``min_recall_gain`` above
chance. A cell is degenerate when most of its usable runs are.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from .measure import attention_change, attention_preconditions_met, value_key
from .record_reader import PreconditionSection, StudyRecord, number
from .scales import StudySettings
from .stats import NAN, MeanCI, mean_ci


__all__ = [
    "CellSummary",
    "EvalSet",
    "Preconditions",
    "RunSummary",
    "cell_summaries",
    "models_present",
    "run_summaries",
    "sgd_runs",
]

STATUSES = ("ok", "not_fit", "diverged", "error")


@dataclass(frozen=True)
class Preconditions:
    """A run's attention checks (see :func:`hf_robattr.study.measure.preconditions`) and its verdict."""

    cls_entropy_ratio: float
    cls_cv: float
    evidence_recall: float
    evidence_chance: float
    degenerate: bool
    # vs the same-seed untrained model, where the paired rule judged the run; else None, and then not written
    entropy_drop: float | None = dataclasses.field(default=None, metadata={"omit_none": True})
    recall_gain: float | None = dataclasses.field(default=None, metadata={"omit_none": True})


@dataclass(frozen=True)
class EvalSet:
    """The common evaluation set of one arm: its split, the pool size, the set's size and how many models it was
    intersected over."""

    arm: str
    split: str
    pool_size: int
    size: int
    models: int


@dataclass(frozen=True)
class RunSummary:
    """One stored run: its cell, seed and status, its costs and fit, its preconditions and curvature, and its
    robustness ``values`` (``value_key`` -> mean over the arm's common set)."""

    key: str
    arm: str
    attention_type: str
    regime: str
    optimizer: str
    learning_rate: float
    batch_size: int
    regularizer: str
    regularizer_weight: float
    seed: int
    role: str
    status: str
    log2_strength: float
    accuracy: float
    fit_loss: float
    global_step: int
    train_seconds: float
    total_seconds: float
    cpu_seconds: float
    preconditions: Preconditions | None
    hessian_trace: float
    hessian_trace_stderr: float
    hessian_top_eigenvalue: float
    hessian_probes: int
    values: dict[str, float]
    error: str
    fit_outcome: str = ""  # v3's matched fit: in_band, above_band, below_band ("" for v2 and fixed budgets)
    saturated: tuple[str, ...] = ()  # the value keys the scoring flagged as saturated (read as untested)

    @property
    def usable(self) -> bool:
        """A main run that counts for the claims (matched fit, measured)."""
        return self.role == "main" and self.status == "ok"

    @property
    def seconds_per_step(self) -> float:
        """Training wall time per optimizer step."""
        return self.train_seconds / self.global_step if self.global_step else NAN


@dataclass(frozen=True)
class CellSummary:
    """One cell of an arm (main runs): status counts, degenerate runs, and means with 95% CIs over its usable runs."""

    arm: str
    attention_type: str
    regime: str
    learning_rate: float
    batch_size: int
    regularizer_weight: float
    log2_strength: float
    runs: int
    ok: int
    not_fit: int
    diverged: int
    error: int
    degenerate_runs: int
    degenerate: bool
    accuracy: MeanCI
    fit_loss: MeanCI
    cls_entropy_ratio: MeanCI
    cls_cv: MeanCI
    evidence_recall: MeanCI
    evidence_chance: float
    train_seconds: MeanCI
    seconds_per_step: MeanCI
    values: dict[str, MeanCI]
    errors: tuple[str, ...]

    @property
    def label(self) -> str:
        """``sgd lr=0.1 B=8`` (with ``w=`` for a baseline)."""
        text = f"{self.regime} lr={self.learning_rate:g} B={self.batch_size}"
        return text + (f" w={self.regularizer_weight:g}" if self.regime not in ("sgd", "adamw") else "")


def _paired_rule(record: StudyRecord, settings: StudySettings) -> bool:
    """Whether the run is judged against its starting model: v3, an untrained start, and that start's checks."""
    protocol = settings.protocol(record.arm)
    untrained_start = protocol.pretrained is None and protocol.warm_start is None
    return settings.analysis == "v3" and untrained_start and record.preconditions_untrained is not None


def _degenerate(pre: PreconditionSection, start: PreconditionSection | None, settings: StudySettings) -> bool:
    if start is not None:
        return not attention_preconditions_met(
            dataclasses.asdict(pre),
            dataclasses.asdict(start),
            min_entropy_drop=settings.min_entropy_drop,
            min_recall_gain=settings.min_recall_gain,
        )
    if pre.cls_cv < settings.min_cls_cv:
        return True
    recall, chance = pre.evidence_recall, pre.evidence_chance
    return math.isfinite(recall) and recall < chance + settings.min_recall_gain


def _mask(record: StudyRecord, common: np.ndarray | None) -> np.ndarray:
    if record.role == "sweep" or common is None:
        return record.pool.mask
    return common


def _values(record: StudyRecord, mask: np.ndarray, settings: StudySettings) -> dict[str, float]:
    protocol = settings.protocol(record.arm)
    robustness = record.robustness
    values = {}
    for key, per_example in robustness.items():
        array = np.asarray([NAN if v is None else v for v in per_example], dtype=float)
        chosen = array[mask[: array.size]] if mask.size else array[:0]
        finite = chosen[np.isfinite(chosen)]
        values[key] = float(finite.mean()) if finite.size else NAN
    if record.saturation:  # the main budget on the saturation subset, for a like-for-like comparison
        budget = f"@{protocol.attack_steps}x{protocol.attack_restarts}"
        limit = min(protocol.saturation_examples, mask.size)
        for method in protocol.saturation_methods:
            key = value_key("topk", protocol.main_epsilon, method, "topk_intersection")
            array = np.asarray([NAN if v is None else v for v in robustness.get(key, [])], dtype=float)[:limit]
            chosen = array[mask[: array.size]]
            finite = chosen[np.isfinite(chosen)]
            values[key + budget] = float(finite.mean()) if finite.size else NAN
    return values


def _preconditions(record: StudyRecord, settings: StudySettings) -> Preconditions | None:
    pre = record.preconditions
    if pre is None:
        return None
    start = record.preconditions_untrained if _paired_rule(record, settings) else None
    paired = {}
    if start is not None:  # NaN where a check is missing (recall without evidence masks); None: not judged paired
        drop, gain = attention_change(dataclasses.asdict(pre), dataclasses.asdict(start))
        paired = {"entropy_drop": drop, "recall_gain": gain}
    degenerate = _degenerate(pre, start, settings)
    return Preconditions(
        pre.cls_entropy_ratio, pre.cls_cv, pre.evidence_recall, pre.evidence_chance, degenerate, **paired
    )


def _summary(r: StudyRecord, common: np.ndarray | None, settings: StudySettings) -> RunSummary:
    trace, cell = r.diagnostics.hessian_trace, r.cell
    return RunSummary(
        key=r.key,
        arm=r.arm,
        attention_type=cell.attention_type,
        regime=r.regime,
        optimizer=cell.optimizer,
        learning_rate=cell.learning_rate,
        batch_size=cell.batch_size,
        regularizer=cell.regularizer,
        regularizer_weight=cell.regularizer_weight,
        seed=r.seed,
        role=r.role,
        status=r.status,
        log2_strength=r.log2_strength,
        accuracy=r.accuracy,
        fit_loss=r.fit_loss,
        global_step=int(r.training.global_step or 0),
        train_seconds=number(r.training.train_runtime_s),
        total_seconds=r.total_seconds,
        cpu_seconds=r.total_cpu_seconds,
        preconditions=_preconditions(r, settings),
        hessian_trace=trace.value,
        hessian_trace_stderr=trace.stderr,
        hessian_top_eigenvalue=r.diagnostics.hessian_top_eigenvalue.value,
        hessian_probes=trace.num_probes,
        values=_values(r, _mask(r, common), settings) if r.robustness else {},
        error=r.error,
        fit_outcome=r.fit.outcome,
        saturated=r.saturated,
    )


def run_summaries(records: list[dict], settings: StudySettings) -> tuple[list[RunSummary], list[EvalSet]]:
    """Every record (read by :class:`~.record_reader.StudyRecord`) summarised on its arm's common set, and the
    common sets."""
    typed = [StudyRecord.from_json(r) for r in records]
    eval_sets, commons = [], {}
    for arm in settings.arm_names:
        usable = [r for r in typed if r.arm == arm and r.usable]
        masks = [r.pool.mask for r in usable]
        sizes = {m.size for m in masks}
        if not masks or len(sizes) != 1:
            continue
        common = np.logical_and.reduce(masks)
        commons[arm] = common
        eval_sets.append(EvalSet(arm, usable[0].pool.split, int(common.size), int(common.sum()), len(usable)))
    return [_summary(r, commons.get(r.arm), settings) for r in typed], eval_sets


def cell_summaries(runs: list[RunSummary]) -> list[CellSummary]:
    """One row per main cell, in a stable order (arm, attention, SGD first, lr, B)."""
    groups: dict[tuple, list[RunSummary]] = defaultdict(list)
    for run in runs:
        if run.role == "main":
            key = (run.arm, run.attention_type, run.regime, run.learning_rate, run.batch_size, run.regularizer_weight)
            groups[key].append(run)
    rows = []
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2] != "sgd", k[2], k[3], k[4], k[5])):
        group = groups[key]
        usable = [r for r in group if r.usable]
        degenerate = sum(bool(r.preconditions and r.preconditions.degenerate) for r in usable)
        pre = [r.preconditions for r in usable if r.preconditions is not None]
        names = sorted({name for r in usable for name in r.values})
        rows.append(
            CellSummary(
                *key[:6],
                log2_strength=group[0].log2_strength,
                runs=len(group),
                **{status: sum(r.status == status for r in group) for status in STATUSES},
                degenerate_runs=degenerate,
                degenerate=bool(usable) and degenerate * 2 > len(usable),
                accuracy=mean_ci([r.accuracy for r in usable]),
                fit_loss=mean_ci([r.fit_loss for r in usable]),
                cls_entropy_ratio=mean_ci([p.cls_entropy_ratio for p in pre]),
                cls_cv=mean_ci([p.cls_cv for p in pre]),
                evidence_recall=mean_ci([p.evidence_recall for p in pre]),
                evidence_chance=float(np.nanmean([p.evidence_chance for p in pre]))
                if pre and any(math.isfinite(p.evidence_chance) for p in pre)
                else NAN,
                train_seconds=mean_ci([r.train_seconds for r in usable]),
                seconds_per_step=mean_ci([r.seconds_per_step for r in usable]),
                values={name: mean_ci([r.values.get(name, NAN) for r in usable]) for name in names},
                errors=tuple(sorted({r.error for r in group if r.error})),
            )
        )
    return rows


def sgd_runs(runs: list[RunSummary], arm: str, attention: str, exclude: set[tuple] | None = None) -> list[RunSummary]:
    """The usable plain-SGD runs of one model, without the cells ``(arm, attention, lr, B)`` in ``exclude``."""
    chosen = [r for r in runs if r.usable and r.arm == arm and r.attention_type == attention and r.regime == "sgd"]
    if exclude:
        chosen = [r for r in chosen if (r.arm, r.attention_type, r.learning_rate, r.batch_size) not in exclude]
    return chosen


def models_present(settings: StudySettings, runs: list[RunSummary]) -> list[tuple[str, str]]:
    """The (arm, attention type) pairs with usable runs, in the settings' order."""
    present = {(r.arm, r.attention_type) for r in runs if r.usable}
    return [(p.arm, a) for p, g in settings.arms for a in g.attention_types if (p.arm, a) in present]
