"""Estimate the wall time of a study from the measured times of the runs already stored."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from .grid import RunSpec


__all__ = ["describe_duration", "describe_estimate", "estimate_seconds", "format_duration"]

_LEVELS: tuple[Callable[[dict[str, Any]], tuple], ...] = (
    lambda r: (r["cell"]["arm"], r["cell"]["attention_type"], r["regime"], r["cell"]["batch_size"], r["extra"]),
    lambda r: (r["cell"]["arm"], r["cell"]["attention_type"], r["regime"], r["cell"]["batch_size"]),
    lambda r: (r["cell"]["arm"], r["regime"], r["cell"]["batch_size"]),
    lambda r: (r["cell"]["arm"], r["regime"]),
    lambda r: (r["cell"]["arm"],),
    lambda r: (),
)


def _extra(record: dict[str, Any]) -> tuple[bool, bool]:
    return bool(record.get("curvature")), bool(record.get("saturation"))


def _spec_fields(spec: RunSpec) -> dict[str, Any]:
    return {
        "cell": {"arm": spec.cell.arm, "attention_type": spec.cell.attention_type, "batch_size": spec.cell.batch_size},
        "regime": spec.cell.regime,
        "extra": (spec.curvature, spec.saturation),
    }


def estimate_seconds(
    pending: list[RunSpec], records: list[dict[str, Any]], num_workers: int, field: str = "total_seconds"
) -> dict[str, Any]:
    """Predict the wall time of ``pending`` on ``num_workers`` workers from ``records``' measured ``field``:
    ``total_seconds`` (wall clock, includes the machine's load when measured) or ``total_cpu_seconds`` (CPU time
    of the run's process: the wall time of a worker that has its cores to itself).

    Each pending run takes the mean time of the stored runs most like it (same arm, attention, regime, batch and
    extra measurements; else progressively coarser groups). Returns ``{"seconds", "runs", "measured_runs", "unmatched"}``;
    ``seconds`` is NaN when nothing has been measured. Workers are assumed to share the work evenly.
    """
    timed = [
        {**r, "extra": _extra(r)}
        for r in records
        if isinstance(r.get(field), int | float) and r.get("status") != "error"
    ]
    tables = []
    for level in _LEVELS:
        table: dict[tuple, list[float]] = defaultdict(list)
        for record in timed:
            table[level(record)].append(float(record[field]))
        tables.append(table)
    total, unmatched = 0.0, 0
    for spec in pending:
        fields = _spec_fields(spec)
        for depth, (level, table) in enumerate(zip(_LEVELS, tables)):
            times = table.get(level(fields))
            if times:
                total += sum(times) / len(times)
                unmatched += depth >= 3
                break
        else:
            return {"seconds": math.nan, "runs": len(pending), "measured_runs": len(timed), "unmatched": len(pending)}
    seconds = total / max(num_workers, 1)
    return {"seconds": seconds, "runs": len(pending), "measured_runs": len(timed), "unmatched": unmatched}


def format_duration(seconds: float) -> str:
    """``1 h 05 min`` / ``12 min`` / ``n/a``."""
    if not math.isfinite(seconds):
        return "n/a"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def describe_estimate(estimate: dict[str, Any], num_workers: int) -> str:
    """``estimated 1 h 05 min on 2 worker(s)``, saying how many runs were timed from runs of another kind (another
    attention type, regime or batch size: a rough guess) when there are any."""
    return f"estimated {format_duration(estimate['seconds'])} on {num_workers} worker(s){_guess_note(estimate)}"


def describe_duration(estimate: dict[str, Any]) -> str:
    """``1 h 05 min``, with ``(3 of them timed from runs of another kind: a rough guess)`` when there are such
    runs."""
    return format_duration(estimate["seconds"]) + _guess_note(estimate)


def _guess_note(estimate: dict[str, Any]) -> str:
    guessed = estimate["unmatched"] if math.isfinite(estimate["seconds"]) else 0
    return f" ({guessed} of them timed from runs of another kind: a rough guess)" if guessed else ""
