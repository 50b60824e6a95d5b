"""Write the study's files: ``results.json.gz`` (the analysis), then ``report.md`` and the figures rendered from
the stored analysis, so that re-rendering from ``results.json.gz`` alone gives the same report byte for byte."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .analysis import Analysis, analyse, reanalyse
from .estimate import format_duration
from .plots import write_plots
from .prepare import CheckpointStartRecord, StartPoint, WarmStartRecord
from .report import render_report, truncation
from .results import load_results, save_results
from .scales import StudySettings


__all__ = ["RESULTS_NAME", "render_from_results", "write_report"]

RESULTS_NAME = "results.json.gz"


def _describe(point: StartPoint) -> str:
    if point.kind == "warm_start":
        warm = WarmStartRecord.from_json(point.record)
        loss = warm.train_loss_at_stop
        return (
            f"warm start, {warm.global_step} AdamW steps ({warm.num_train_examples_seen} examples), training loss "
            f"{loss:.3f}"
            if isinstance(loss, float)
            else "warm start"
        )
    if point.kind == "converted":
        converted = CheckpointStartRecord.from_json(point.record)
        cosine = converted.embedding_cosine
        source = f"`{converted.checkpoint}`{truncation(converted.pretrained_layers)}"
        text = f"{source} converted to kernel attention ({converted.options})"
        return text + (f", held-out embedding cosine to the softmax model {cosine:.3f}" if cosine is not None else "")
    if point.kind == "pretrained":
        record = CheckpointStartRecord.from_json(point.record)
        return f"pretrained `{record.checkpoint}`{truncation(record.pretrained_layers)}"
    if point.kind == "unavailable":
        return f"**not run**: {point.reason}"
    return point.kind


def _mean(records: list[dict[str, Any]], field: str) -> float:
    times = [r[field] for r in records if isinstance(r.get(field), int | float)]
    return sum(times) / len(times) if times else math.nan


def render(analysis: Analysis, directory: str | Path) -> Path:
    """Write the figures and ``report.md`` of ``analysis`` into ``directory``; return the report's path."""
    directory = Path(directory)
    figures = write_plots(analysis, directory)
    path = directory / "report.md"
    path.write_text(render_report(analysis, figures), encoding="utf-8")
    return path


def write_report(
    records: list[dict[str, Any]],
    settings: StudySettings,
    directory: str | Path,
    *,
    expected_runs: int,
    start_points: dict[str, StartPoint],
    title_note: str | None = None,
    estimate: dict[str, Any] | None = None,
    workers: int = 1,
) -> Path:
    """Analyse ``records``, store the analysis in ``results.json.gz`` and render the report from the stored copy."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    analysis = analyse(records, settings, expected_runs=expected_runs)
    analysis.title_note = title_note or ""
    analysis.start_points = [
        {"arm": p.arm, "attention_type": p.attention_type, "description": _describe(p)} for p in start_points.values()
    ]
    estimate = estimate or {}
    analysis.timing = {
        "runs measured": str(sum(isinstance(r.get("total_seconds"), int | float) for r in records)),
        "mean wall seconds per run (shared machine)": f"{_mean(records, 'total_seconds'):.1f}",
        "mean CPU seconds per run": f"{_mean(records, 'total_cpu_seconds'):.1f}",
        f"whole grid on {workers} worker(s), from CPU times": format_duration(
            estimate.get("total_cpu", {}).get("seconds", math.nan)
        ),
        "runs left (estimate)": format_duration(estimate.get("left", {}).get("seconds", math.nan)),
    }
    path = save_results(analysis, directory / RESULTS_NAME)
    return render(load_results(path), directory)


def render_from_results(directory: str | Path) -> bool:
    """Re-render ``report.md`` and the figures from ``directory``'s ``results.json.gz``, its claims re-decided from its
    run summaries by the current rules (:func:`~.analysis.reanalyse`; for a file written by the current code, the
    same report byte for byte); ``False`` without it."""
    path = Path(directory) / RESULTS_NAME
    if not path.is_file():
        return False
    # re-decided by the current rules: a file written by older code may hold verdicts they no longer give
    render(reanalyse(load_results(path)), directory)
    return True
