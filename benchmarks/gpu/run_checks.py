#!/usr/bin/env python
"""Run gpu_check's checks and print one markdown table (check, result, numbers, pass/fail). Started by
``benchmarks/gpu_check.sh``, which picks the Python and sets the environment; see ``docs/gpu_check.md``.

    python benchmarks/gpu/run_checks.py --mode gpu   [--only scoring attention] [--budget-s 420]
    python benchmarks/gpu/run_checks.py --mode smoke  # every check at tiny sizes on the CPU

Timing benchmarks run alone, one after the other; the other checks then run side by side (``--jobs`` at a time).
Each check has its own time limit, and no check starts past the whole run's budget (``--budget-s``), so one hang
cannot eat the machine's time. Exit status: 0 when every check passed, 1 when any failed.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import platform
import shutil
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gpu_checks import BUILDERS, MODES, Check, Setup
from gpu_judges import CheckFailed, Outcome
from gpu_proc import run_all
from gpu_tables import render_table


MIN_START_S = 5.0  # a check is not started with less time than this left in the budget
LOG_TAIL_LINES = 120


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=MODES, default="gpu", help="gpu: real sizes on CUDA; smoke: tiny, CPU")
    parser.add_argument("--only", nargs="+", default=None, metavar="CHECK", help=f"run only these of {list(BUILDERS)}")
    parser.add_argument("--budget-s", type=float, default=None, help="whole-run budget (default: gpu 420, smoke 1200)")
    parser.add_argument("--jobs", type=int, default=None, help="checks side by side (default: gpu 8, smoke 3)")
    parser.add_argument("--workdir", type=Path, default=Path("outputs/gpu_check"), help="run folders and logs")
    parser.add_argument(
        "--table", type=Path, default=None, help="also write the table here (default: WORKDIR/../gpu_check.md)"
    )
    parser.add_argument("--logs-out", type=Path, default=None, help="also write the tail of every log into this file")
    parser.add_argument(
        "--dry-run", action="store_true", help="print each check's commands and time limit; run nothing"
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.only or ()) - set(BUILDERS))
    if unknown:
        parser.error(f"--only got unknown check names {unknown}; expected names from {list(BUILDERS)}")
    if args.jobs is not None and args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    if args.budget_s is not None and args.budget_s <= 0:
        parser.error(f"--budget-s must be > 0, got {args.budget_s}")
    args.budget_s = args.budget_s or (420.0 if args.mode == "gpu" else 1200.0)
    args.jobs = args.jobs or (8 if args.mode == "gpu" else 3)
    args.table = args.table or args.workdir.parent / "gpu_check.md"
    return args


def judge(check: Check) -> Outcome:
    """The check's verdict: a command that ran out of time fails; otherwise its judge reads the output."""
    if check.not_run:
        return Outcome(check.not_run, "", False)
    late = [run for run in check.runs if run.timed_out]
    if late:
        return Outcome(f"timed out after {check.limit_s:.0f} s (killed): {late[0].last_error()}", "", False)
    try:
        return check.judge(check.runs)
    except CheckFailed as failure:
        return Outcome(failure.result, failure.numbers, False)
    except Exception as error:  # a judge that cannot read the output is a failed check, not a crash of the script
        traceback.print_exc()
        return Outcome(f"could not read the output: {type(error).__name__}: {error}", "", False)


def execute(check: Check, repo: Path, deadline: float) -> None:
    """Run one check's commands within its own limit and what is left of the budget."""
    left = deadline - time.monotonic()
    if check.not_run:
        return
    if left < MIN_START_S:
        check.not_run = "not run: the whole run's time budget was spent"
        return
    for folder in check.outputs:
        shutil.rmtree(folder, ignore_errors=True)
    check.limit_s = min(check.limit_s, left)
    print(f"[gpu_check] {check.name}: started (limit {check.limit_s:.0f} s)", file=sys.stderr, flush=True)
    run_all(check.runs, check.limit_s, repo)
    seconds = max((run.seconds for run in check.runs), default=0.0)
    print(f"[gpu_check] {check.name}: done in {seconds:.0f} s", file=sys.stderr, flush=True)


def environment(mode: str) -> str:
    """One line naming the device and the versions the checks ran with."""
    import torch

    if torch.cuda.is_available():
        device = f"{torch.cuda.get_device_name()} (CUDA {torch.version.cuda}, {torch.cuda.device_count()} visible)"
    else:
        device = f"CPU ({platform.processor() or platform.machine()}), no CUDA"
    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}" for name in ("torch", "transformers", "accelerate")
    )
    return f"mode {mode}; {device}; Python {platform.python_version()}, {versions}"


def write_logs(checks: list[Check], path: Path) -> None:
    """The last lines of every command's log, in one file (what comes back from a lent machine)."""
    parts = []
    for check in checks:
        for run in check.runs:
            tail = run.text().splitlines()[-LOG_TAIL_LINES:]
            header = f"===== {check.name}: exit {run.returncode}, {run.seconds:.0f} s, timed out {run.timed_out}"
            parts.append("\n".join([header, *tail]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(parts) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    repo = Path(__file__).resolve().parents[2]
    setup = Setup(args.mode, sys.executable, repo, args.workdir.resolve())
    names = args.only or list(BUILDERS)
    checks = [BUILDERS[name](setup) for name in names]
    deadline = started + args.budget_s
    if args.dry_run:
        for check in checks:
            print(f"{check.name} (limit {check.limit_s:.0f} s{', alone' if check.exclusive else ''}): {check.title}")
            for run in check.runs:
                print("    " + " ".join(run.argv))
            if check.not_run:
                print(f"    {check.not_run}")
        return 0

    for check in [c for c in checks if c.exclusive]:
        execute(check, repo, deadline)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(lambda check: execute(check, repo, deadline), [c for c in checks if not c.exclusive]))

    outcomes = [judge(check) for check in checks]
    rows = [(c.title, o.result, o.numbers, "PASS" if o.passed else "FAIL") for c, o in zip(checks, outcomes)]
    passed = sum(o.passed for o in outcomes)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = "\n".join(
        [
            f"## gpu_check: {stamp}",
            "",
            environment(args.mode) + ".",
            "",
            render_table(rows),
            "",
            f"{passed} of {len(checks)} checks passed in {time.monotonic() - started:.0f} s; "
            f"logs in {args.workdir}/logs.",
        ]
    )
    print(text, flush=True)
    args.table.parent.mkdir(parents=True, exist_ok=True)
    args.table.write_text(text + "\n")
    if args.logs_out:
        write_logs(checks, args.logs_out)
    return 0 if passed == len(checks) else 1


if __name__ == "__main__":
    sys.exit(main())
