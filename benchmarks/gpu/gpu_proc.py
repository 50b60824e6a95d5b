"""Run commands with a time limit each, alone or side by side, their output going to log files."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Run:
    """One command of a check: what ran, where its output went, and how it ended."""

    argv: list[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    returncode: int | None = None
    timed_out: bool = False
    seconds: float = 0.0

    def text(self) -> str:
        """Everything the command printed (stdout and stderr together)."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def last_error(self) -> str:
        """The line that best says why the command failed: the last exception line of the failing code itself (not
        of a launcher reporting that its child failed), else the last line."""
        lines = [line.strip() for line in self.text().splitlines() if line.strip()]
        errors = [line for line in lines if _EXCEPTION.match(line) or line.startswith(("FAILED ", "ERROR "))]
        own = [
            line for line in errors if not _EXCEPTION.match(line) or _EXCEPTION.match(line).group(1) not in _WRAPPERS
        ]
        chosen = (own or errors or lines or ["(no output)"])[-1]
        return chosen[:300]


_EXCEPTION = re.compile(r"^(?:\[[^\]]*\]:?\s*)?(?:[\w]+\.)*(\w+(?:Error|Exception|Interrupt))(?::|$)")
# Launchers that only report a failed child: their line says less than the child's own traceback.
_WRAPPERS = {"ChildFailedError", "CalledProcessError"}


def _kill_group(process: subprocess.Popen) -> None:
    """End the command and everything it started (it leads its own process group)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


def run_all(runs: list[Run], limit_s: float, cwd: Path) -> None:
    """Start every run at once and wait for all; a run still going after ``limit_s`` seconds is killed, together
    with its children, and marked ``timed_out``."""
    started = time.monotonic()
    processes = []
    for run in runs:
        run.log.parent.mkdir(parents=True, exist_ok=True)
        with open(run.log, "w") as log:
            log.write("$ " + " ".join(run.argv) + "\n")
            log.flush()
            processes.append(
                subprocess.Popen(
                    run.argv,
                    cwd=cwd,
                    env={**os.environ, **run.env},
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    pending = dict(zip(range(len(runs)), processes))
    while pending:
        elapsed = time.monotonic() - started
        for index, process in list(pending.items()):
            if process.poll() is not None:
                runs[index].returncode, runs[index].seconds = process.returncode, elapsed
                del pending[index]
            elif elapsed > limit_s:
                _kill_group(process)
                runs[index].timed_out, runs[index].returncode, runs[index].seconds = True, process.returncode, elapsed
                del pending[index]
        if pending:
            time.sleep(0.2)
