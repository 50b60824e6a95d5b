"""The whole study in one call: start points, the grid's runs (sweep first, then the rest), the report.

Order of work, arm by arm (the attention types that need a conversion of a pretrained checkpoint last): (1) the
start points (warm-up checkpoints, pretrained or converted models); (2) the explicit baselines' weight-sweep runs
and the grid's SGD and AdamW runs, seed-major (a partial arm covers every cell before repeating any); (3) the
baselines' main runs at the chosen weights. Then (4) the analysis, ``report.md``, ``results.json.gz`` and the
figures. Every finished run is stored as it arrives (resumable). The process's exit
status is non-zero when any run of the grid is stored as an error (the report is written first).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hf_robattr.data import IMAGE_COLUMN_CANDIDATES, TEXT_COLUMN_CANDIDATES, load_classification_dataset

from .archive import RunArchive
from .arguments import StudyArguments
from .estimate import describe_duration, describe_estimate, estimate_seconds
from .executors import RunFunction, run_jobs
from .grid import RunSpec, arm_specs, baseline_specs, sweep_specs
from .prepare import StartPoint, prepare_start_points, start_key
from .report_files import RESULTS_NAME, render_from_results, write_report
from .results import load_results
from .rules_v3 import VERDICTS_V3
from .run import run_one
from .scales import StudySettings, get_settings
from .store import RunStore, check_manifest
from .sweep import choose_weights


__all__ = ["StudyOutcome", "reproduce", "study_settings", "study_specs", "study_summary"]

logger = logging.getLogger(__name__)


@dataclass
class StudyOutcome:
    """What :func:`reproduce` did: new records by status, the stored records of the grid, the time estimates,
    the report's path, and the exit status (1 when any run of the grid is stored as an error)."""

    counts: dict[str, int]
    records: list[dict[str, Any]]
    expected_runs: int
    estimate: dict[str, Any]
    report: str | None
    exit_code: int


def study_settings(args: StudyArguments) -> StudySettings:
    """The scale's settings with the dataset overrides applied (each checked by loading it: an unknown dataset
    fails here, before any run)."""
    settings = get_settings(args.scale)
    arms = list(settings.arms)
    for flag, value, model, candidates, purpose in (
        ("--dataset_name", args.dataset_name, "vit", IMAGE_COLUMN_CANDIDATES, "images"),
        ("--text_dataset_name", args.text_dataset_name, "bert", TEXT_COLUMN_CANDIDATES, "text"),
    ):
        if value is None:
            continue
        index = next((i for i, (p, _) in enumerate(arms) if p.model == model), None)
        if index is None:
            raise ValueError(f"{flag}: scale {args.scale!r} has no {purpose} arm.")
        try:
            load_classification_dataset(value, input_candidates=candidates, input_purpose=purpose)
        except Exception as error:
            raise ValueError(f"{flag} {value!r} cannot be loaded as an {purpose} dataset: {error}") from error
        protocol, grid = arms[index]
        arms[index] = (replace(protocol, dataset=value, dataset_size=None), grid)
    return replace(settings, arms=tuple(arms))


def _arms(args: StudyArguments, settings: StudySettings) -> tuple[str, ...]:
    return tuple(args.arms) if args.arms else settings.arm_names


def study_specs(
    args: StudyArguments, settings: StudySettings, points: dict[str, StartPoint], records: list[dict[str, Any]]
) -> tuple[list[RunSpec], int]:
    """The runs ``args`` asks for, given the start points and the stored records (which fix the baselines'
    weights): sweep runs first, then the rest seed-major; and the number of runs of the full grid."""
    specs: list[RunSpec] = []
    expected = 0
    chosen = {
        (c.arm, c.attention_type, c.regularizer): c.chosen
        for c in choose_weights(records, settings)
        if c.chosen is not None
    }
    for name in _arms(args, settings):
        protocol, grid = settings.arm(name)
        available = tuple(a for a in grid.attention_types if points[start_key(name, a)].available)
        sweeps = sweep_specs(protocol, grid, available)
        main = arm_specs(protocol, grid, available)
        weights = {(a, r): w for (arm, a, r), w in chosen.items() if arm == name}
        baselines = baseline_specs(protocol, replace(grid, attention_types=available), weights)
        if args.seeds is not None:
            main = [s for s in main if s.seed < args.seeds]
            baselines = [s for s in baselines if s.seed < args.seeds]
        specs += sweeps + main + baselines
        seeds = grid.baseline_seeds if args.seeds is None else min(args.seeds, grid.baseline_seeds)
        expected += len(sweeps) + len(main) + len(available) * len(grid.baselines) * seeds
    order = {name: i for i, name in enumerate(settings.arm_names)}
    specs.sort(key=lambda s: (s.role != "sweep", s.seed, order[s.cell.arm]))
    return specs, expected


def _groups(args: StudyArguments, settings: StudySettings) -> list[tuple[str, tuple[str, ...]]]:
    """(arm, attention types) in the order they run: per arm, the converted kernel cells of a pretrained arm last
    (their conversion is the longest preparation)."""
    groups = []
    for name in _arms(args, settings):
        protocol, grid = settings.arm(name)
        late = tuple(a for a in grid.attention_types if protocol.pretrained and a == "kernel")
        early = tuple(a for a in grid.attention_types if a not in late)
        groups += [(name, group) for group in (early, late) if group]
    return groups


def _prepare(args: StudyArguments, settings: StudySettings, directory: Path, arm: str, attentions: tuple[str, ...]):
    """Train the start points of one group in this process, with the workers' thread count."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(args.threads_per_worker or max(1, (os.cpu_count() or 1) // max(args.num_workers, 1)))
    try:
        return prepare_start_points(settings, (arm,), directory, attention_types=attentions)
    finally:
        torch.set_num_threads(previous)


def _pending(specs: list[RunSpec], store: RunStore) -> list[RunSpec]:
    return [spec for spec in specs if not store.is_finished(spec.key, spec.fingerprint)]


def reproduce(args: StudyArguments, *, run_function: RunFunction = run_one) -> StudyOutcome:
    """Run the study ``args`` describes (resuming from ``args.output_dir``) and write its report.

    ``run_function`` trains and measures one run (default :func:`~hf_robattr.study.run.run_one`; tests pass fakes).
    """
    settings = study_settings(args)
    directory = Path(args.output_dir)
    archive = RunArchive(args.runs_archive, settings.scale) if args.runs_archive else None
    no_runs = not any((directory / "runs").glob("*.json")) and not (archive and archive.stored_keys())
    check_manifest(directory, settings.scale)  # before anything is read or written there
    if args.estimate_only and no_runs and render_from_results(directory):
        print(f"Report: {directory / 'report.md'}, re-rendered from {directory / RESULTS_NAME} (no runs to continue).")
        return StudyOutcome({}, [], 0, {}, str(directory / "report.md"), 0)
    store = RunStore(directory, settings.scale, archive, export=not args.estimate_only)
    if archive is not None:
        copied, archived = store.synced
        print(
            f"Runs archive {archive.directory}: {copied} run(s) copied into {directory / 'runs'}, "
            f"{archived} run(s) archived."
        )
    workers = max(args.num_workers, 1)
    points = prepare_start_points(settings, _arms(args, settings), directory, train=False)
    counts: dict[str, int] = {}
    budget = args.max_runs
    for arm, attentions in _groups(args, settings):
        if args.estimate_only or budget == 0:
            break
        points.update(_prepare(args, settings, directory, arm, attentions))
        for phase in ("sweep and grid", "baselines"):
            specs, expected = study_specs(args, settings, points, store.records())
            group = [s for s in specs if s.cell.arm == arm and s.cell.attention_type in attentions]
            pending = _pending(group, store)
            estimate = estimate_seconds(pending, store.current_records(specs), workers)
            print(
                f"Study {args.scale}, {arm} {'/'.join(attentions)} ({phase}): {len(pending)} runs to run now of "
                f"{expected} in the grid; {describe_estimate(estimate, workers)}."
            )
            if not pending or budget == 0:
                continue
            todo = pending if budget is None else pending[:budget]
            budget = None if budget is None else budget - len(todo)
            jobs = [(spec, points[start_key(spec.cell.arm, spec.cell.attention_type)].checkpoint) for spec in todo]
            new = run_jobs(jobs, store, run_function=run_function, **args.executor_options())
            counts = {k: counts.get(k, 0) + new.get(k, 0) for k in {*counts, *new}}
    specs, expected = study_specs(args, settings, points, store.records())
    records = store.current_records(specs)
    estimate = {
        "left": estimate_seconds(_pending(specs, store), records, workers),
        "total": estimate_seconds(specs, records, workers),
        "total_cpu": estimate_seconds(specs, records, workers, field="total_cpu_seconds"),
    }
    report = write_report(
        records,
        settings,
        directory,
        expected_runs=expected,
        start_points=points,
        title_note=args.report_note,
        estimate=estimate,
        workers=workers,
    )
    errors = [r["key"] for r in records if r.get("status") == "error"]
    if errors:
        logger.error("%d run(s) of the grid ended in an error (listed in the report): %s", len(errors), errors[:5])
    print(study_summary(directory, report, len(records), expected, estimate, errors, estimate_only=args.estimate_only))
    return StudyOutcome(counts, records, expected, estimate, str(report), 1 if errors else 0)


def study_summary(
    directory: Path,
    report: Path,
    stored: int,
    expected: int,
    estimate: dict,
    errors: list[str],
    *,
    estimate_only: bool = False,
) -> str:
    """The lines the study ends with: where the report and results are, the verdicts, and what to run next.

    ``estimate_only``: the command ran nothing (``--estimate_only``), so rerunning it would not continue the study.
    """
    claims = load_results(directory / RESULTS_NAME).claims
    verdicts = []
    for claim in sorted({c.claim for c in claims}):
        tally = Counter(c.verdict for c in claims if c.claim == claim)
        verdicts.append(f"claim {claim}: " + ", ".join(f"{tally[v]} {v}" for v in VERDICTS_V3 if tally[v]))
    left = stored < expected
    lines = [
        f"Report: {report} (figures beside it; every number in {directory / RESULTS_NAME}).",
        f"Runs stored: {stored} of {expected}; left: {describe_duration(estimate['left'])}; errors: {len(errors)}.",
        (
            "Verdicts so far (PARTIAL: not a result until every run is stored): "
            if left
            else "Verdicts (model x method pairs): "
        )
        + ("; ".join(verdicts) if verdicts else "none yet")
        + ".",
        "Next: " + _next_step(report, stored, left or bool(errors), estimate_only),
    ]
    return "\n".join(lines)


def _next_step(report: Path, stored: int, runs_left: bool, estimate_only: bool) -> str:
    if not runs_left:
        return f"read {report}; docs/study.md explains how."
    if estimate_only:
        action = "continue" if stored else "start"
        return (
            f"run the same command without --estimate_only (keep the other flags) to {action} the runs "
            "(finished runs are kept)."
        )
    return "rerun the same command to continue (finished runs are kept)."
