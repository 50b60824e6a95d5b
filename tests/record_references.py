"""Re-record the pinned numbers: ``python tests/record_references.py [scores] [recipes]`` (both by default).

Writes ``tests/robustness/reference_scores.json`` (the scoring core on fixed float64 cases) and
``tests/recipes/reference_results.json`` (two recipe runs), each with a ``recorded_with`` block naming the commit,
the machine and the versions. Run it only when a change is meant to move the numbers, and say why in the commit that
updates them (``git log -- tests/robustness/reference_scores.json``). The tests that read them hold on any CPU
(their module docstrings derive the tolerances), so the machine you record on does not matter.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path


TESTS = Path(__file__).resolve().parent
sys.path[:0] = [str(TESTS), str(TESTS / "robustness"), str(TESTS / "recipes")]


def machine_and_versions() -> dict[str, object]:
    """Where and with what the numbers were recorded."""
    import torch
    import transformers

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, check=False)
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        cpu = names[0] if names else cpu
    return {
        "commit": commit.stdout.strip() + (" plus uncommitted changes" if dirty.stdout.strip() else ""),
        "cpu": cpu,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "platform": platform.platform(),
        "env": {
            name: os.environ[name]
            for name in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "OMP_NUM_THREADS")
            if name in os.environ
        },
    }


def _write(path: Path, payload: dict) -> None:
    path.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    print(f"wrote {path}")


def record_scores() -> None:
    """The scoring core's per-example values on every case of ``test_reference_scores``."""
    import test_reference_scores

    _write(
        test_reference_scores.REFERENCE,
        {"recorded_with": machine_and_versions(), "cases": test_reference_scores.record()},
    )


def record_recipes() -> None:
    """The two recipe runs of ``test_numbers_unchanged``."""
    import test_numbers_unchanged

    _write(
        test_numbers_unchanged.REFERENCE, {"recorded_with": machine_and_versions(), **test_numbers_unchanged.record()}
    )


RECORDERS = {"scores": record_scores, "recipes": record_recipes}


def main(argv: list[str]) -> None:
    names = argv or list(RECORDERS)
    unknown = sorted(set(names) - set(RECORDERS))
    if unknown:
        raise SystemExit(f"unknown reference(s) {unknown}; choose from {sorted(RECORDERS)}.")
    for name in names:
        RECORDERS[name]()


if __name__ == "__main__":
    main(sys.argv[1:])
