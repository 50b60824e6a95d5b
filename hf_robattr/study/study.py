"""The whole study in one call: build the grid, run what is missing, estimate the time, write the report."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

from .arguments import StudyArguments
from .estimate import estimate_seconds, format_duration
from .execute import pending_runs, run_study
from .grid import RunSpec, build_grid, get_settings
from .report import write_report
from .store import RunStore


__all__ = ["reproduce", "study_specs"]

logger = logging.getLogger(__name__)


def study_specs(args: StudyArguments) -> list[RunSpec]:
    """The runs ``args`` asks for: the scale's grid for ``args.models``, cut to ``args.seeds`` seeds per cell."""
    settings = get_settings(args.scale)
    if args.text_dataset_name is not None:
        settings = replace(settings, text_dataset=args.text_dataset_name)
    if args.dataset_name is not None:
        settings = replace(settings, image_dataset=args.dataset_name)
    specs = build_grid(args.scale, settings, models=tuple(args.models))
    if args.seeds is not None:
        specs = [spec for spec in specs if spec.seed < args.seeds]
    return specs


def reproduce(args: StudyArguments) -> dict[str, Any]:
    """Run the study ``args`` describes (resuming from ``args.output_dir``) and write its report.

    Prints the wall-time estimate of the runs still pending (from the stored runs' measured times) before and
    after running. Returns ``{"analysis", "estimate", "counts", "report"}``.
    """
    specs = study_specs(args)
    settings = specs[0].settings if specs else get_settings(args.scale)
    store = RunStore(args.output_dir, settings)
    keys = [spec.key for spec in specs]
    pending = pending_runs(specs, store)
    before = estimate_seconds(pending, store.records(keys), max(args.num_workers, 1))
    print(
        f"Study {args.scale}: {len(specs)} runs, {len(specs) - len(pending)} stored, {len(pending)} to run; "
        f"estimated {format_duration(before['seconds'])} on {max(args.num_workers, 1)} worker(s) "
        f"(from {before['measured_runs']} measured runs)."
    )
    counts: dict[str, int] = {}
    if not args.estimate_only:
        todo = pending if args.max_runs is None else pending[: args.max_runs]
        start = time.perf_counter()
        counts = run_study(
            todo,
            store,
            num_workers=args.num_workers,
            progress=args.progress,
            threads_per_worker=args.threads_per_worker,
        )
        logger.info("Ran %d runs in %.0f s", len(todo), time.perf_counter() - start)
    records = store.records(keys)
    still = pending_runs(specs, store)
    after = estimate_seconds(still, records, max(args.num_workers, 1))
    workers = max(args.num_workers, 1)
    total = estimate_seconds(specs, records, workers)
    total_cpu = estimate_seconds(specs, records, workers, field="total_cpu_seconds")
    timing = {
        "measured runs": total["measured_runs"],
        "mean wall seconds per measured run": _mean(records, "total_seconds"),
        "mean CPU seconds per measured run": _mean(records, "total_cpu_seconds"),
        "estimated wall time of the whole grid (measured wall times, machine load included)": (
            f"{format_duration(total['seconds'])} on {workers} worker(s)"
        ),
        "estimated wall time of the whole grid (CPU times: an unloaded machine, 1 core per worker)": (
            f"{format_duration(total_cpu['seconds'])} on {workers} worker(s)"
        ),
        "estimated wall time of the runs left": format_duration(after["seconds"]),
    }
    analysis = write_report(
        records, settings, args.output_dir, expected_runs=len(specs), title_note=args.report_note, timing=timing
    )
    print(
        f"Report: {args.output_dir}/report.md. Runs left: {len(still)} "
        f"(estimated {format_duration(after['seconds'])}); whole grid: {format_duration(total['seconds'])} "
        f"(measured wall times), {format_duration(total_cpu['seconds'])} (CPU times, unloaded machine)."
    )
    estimates = {"before": before, "after": after, "total": total, "total_cpu": total_cpu}
    return {"analysis": analysis, "estimate": estimates, "counts": counts,
            "report": f"{args.output_dir}/report.md"}  # fmt: skip


def _mean(records: list[dict[str, Any]], field: str) -> str:
    times = [r[field] for r in records if isinstance(r.get(field), int | float)]
    return f"{sum(times) / len(times):.1f}" if times else "n/a"
