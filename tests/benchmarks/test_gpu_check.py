"""``benchmarks/gpu_check.sh`` end to end: the one line without a GPU, bad usage, and the CPU smoke run of every check
(its table rows, its files and its exit status)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch


REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"
sys.path.append(str(REPO / "benchmarks" / "gpu"))

import gpu_checks  # noqa: E402
from gpu_tables import find_table, parse_tables  # noqa: E402


def script_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell, with this interpreter as the script's Python."""
    env = {k: v for k, v in os.environ.items() if k not in ("OUT", "GPU_CHECK_DEVICE", "PYTEST_CURRENT_TEST")}
    return {**env, "GPU_CHECK_PYTHON": sys.executable, **extra}


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the script would run the checks")
def test_without_a_gpu_it_says_so_in_one_line_and_runs_nothing(tmp_path):
    result = subprocess.run(
        ["bash", str(SCRIPT), "--workdir", str(tmp_path / "work")],
        env=script_env(OUT=str(tmp_path / "out")),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    assert lines[0].startswith("gpu_check: no GPU present")
    assert "--smoke" in lines[0]
    assert not (tmp_path / "work").exists() and not (tmp_path / "out").exists()


def test_a_bad_device_variable_is_refused_by_name():
    result = subprocess.run(
        ["bash", str(SCRIPT)], env=script_env(GPU_CHECK_DEVICE="tpu"), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "GPU_CHECK_DEVICE" in result.stderr and "'tpu'" in result.stderr and "'cpu' or 'cuda'" in result.stderr


def test_an_unknown_check_name_is_refused_with_the_valid_ones():
    result = subprocess.run(
        ["bash", str(SCRIPT), "--smoke", "--only", "nope"],
        env=script_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "'nope'" in result.stderr and "cuda_tests" in result.stderr and "study" in result.stderr


@pytest.mark.slow
def test_smoke_mode_runs_every_check_and_writes_one_table(tmp_path):
    """The CPU smoke run: one row per check, every row PASS, exit 0; the table on stdout and in $OUT, the log tails
    beside it."""
    out = tmp_path / "out"
    result = subprocess.run(
        ["bash", str(SCRIPT), "--smoke", "--workdir", str(tmp_path / "work")],
        env=script_env(OUT=str(out)),
        capture_output=True,
        text=True,
        timeout=1500,
    )
    table_file = out / "gpu_check.md"
    assert table_file.exists(), result.stdout + result.stderr
    rows = find_table(parse_tables(table_file.read_text()), "check", "result", "numbers", "pass/fail")
    setup = gpu_checks.Setup("smoke", sys.executable, REPO, tmp_path / "titles")
    titles = [builder(setup).title for builder in gpu_checks.BUILDERS.values()]
    assert [row["check"] for row in rows] == titles
    failed = [row for row in rows if row["pass/fail"] != "PASS"]
    assert not failed, f"{failed}\n{result.stderr[-3000:]}"
    assert all(row["result"] and row["numbers"] for row in rows)
    assert result.returncode == 0
    assert table_file.read_text().strip() in result.stdout
    logs = (out / "gpu_check_logs.txt").read_text()
    assert all(f"===== {name}:" in logs for name in ("cuda_tests", "scoring", "attention", "ddp", "fsdp", "study"))
