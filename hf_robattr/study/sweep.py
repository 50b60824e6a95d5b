"""The explicit baselines' weight sweep: which regularizer weight the baselines' main runs use.

Rule (fixed before any run): for each arm, attention type and regularizer, among the sweep runs (one per weight, at
the grid's ``sweep_seed``, scored on validation examples) whose training reached the matched fit (status ``ok``),
the weight with the highest gradient-method robustness (the headline measure under the top-k attack at the main
radius, averaged over the gradient methods, each over the run's correctly classified validation examples). Ties
go to the smaller weight; when no sweep run reached the fit, the smallest weight is used and the report says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .measure import value_key
from .record_reader import StudyRecord
from .scales import StudySettings


__all__ = ["SweepChoice", "choose_weights", "sweep_score"]


@dataclass(frozen=True)
class SweepChoice:
    """The sweep of one regularizer: its weights, each run's status and validation score, and the chosen weight
    (``None`` while a sweep run is missing)."""

    arm: str
    attention_type: str
    regularizer: str
    weights: tuple[float, ...]
    statuses: tuple[str, ...]
    scores: tuple[float, ...]
    chosen: float | None
    fallback: bool


def sweep_score(record: StudyRecord | Mapping[str, Any], settings: StudySettings) -> float:
    """A sweep run's validation score (see the module docstring); NaN without values."""
    run = record if isinstance(record, StudyRecord) else StudyRecord.from_json(record)
    protocol = settings.protocol(run.arm)
    correct = run.pool.mask
    means = []
    for method in protocol.gradient_methods:
        key = value_key("topk", protocol.main_epsilon, method, settings.headline_measure)
        values = np.asarray(run.robustness.get(key, []), dtype=float)
        values = values[correct[: len(values)]] if values.size else values
        finite = values[np.isfinite(values)]
        if finite.size:
            means.append(float(finite.mean()))
    return float(np.mean(means)) if means else math.nan


def choose_weights(records: list[Mapping[str, Any]], settings: StudySettings) -> list[SweepChoice]:
    """One :class:`SweepChoice` per arm, attention type and regularizer of the grids' baselines, from the stored
    sweep ``records`` (``role == "sweep"``)."""
    sweeps = [StudyRecord.from_json(r) for r in records if r.get("role") == "sweep"]
    choices = []
    for protocol, grid in settings.arms:
        for attention in grid.attention_types:
            for name, weights in grid.baselines:
                found = {
                    r.cell.regularizer_weight: r
                    for r in sweeps
                    if r.arm == protocol.arm and r.cell.attention_type == attention and r.cell.regularizer == name
                }
                statuses = tuple(found[w].status if w in found else "pending" for w in weights)
                scores = tuple(sweep_score(found[w], settings) if w in found else math.nan for w in weights)
                chosen, fallback = None, False
                if all(w in found and found[w].status != "error" for w in weights):
                    fitted = [(s, -i) for i, (s, st) in enumerate(zip(scores, statuses)) if st == "ok" and s == s]
                    if fitted:
                        chosen = weights[-max(fitted)[1]]
                    else:
                        chosen, fallback = min(weights), True
                choices.append(
                    SweepChoice(protocol.arm, attention, name, tuple(weights), statuses, scores, chosen, fallback)
                )
    return choices
