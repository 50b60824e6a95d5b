"""``benchmarks/gpu_check.sh`` end to end: the one line without a GPU, bad usage, and the CPU smoke run of its checks
(their table rows, files and exit status)."""

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


# The smoke run's checks here: the four whose CPU run no other test covers. Left to other tests:
# - ``cuda_tests`` runs the suite's CUDA tests, which run in the suite itself; the plugin that selects them and the
#   judge of their junit file are tested in test_gpu_check_runner.py on planted tests.
# - ``ddp`` launches the same recipe as ``fsdp`` with another config; on a CPU both run as MULTI_CPU (gloo), the same
#   path. accelerate's reading of every config is tested in tests/recipes/test_accelerate_configs.py.
# - ``train_vit`` (the recipe in one process) and ``study`` (the ci study, ``--max_runs 1``) run in tests/recipes and
#   tests/study; their judges are tested in test_gpu_check_runner.py.
# Every recipe command of both modes parses with the recipe's own parser (test_gpu_check_commands.py). Left out, the
# four save ~45 of the smoke run's ~110 CPU-s. All eight: `bash benchmarks/gpu_check.sh --smoke`, before a GPU session.
SMOKE_CHECKS = ["scoring", "attention", "bf16", "fsdp"]


def test_the_smoke_run_leaves_out_only_checks_covered_elsewhere():
    assert set(gpu_checks.BUILDERS) - set(SMOKE_CHECKS) == {"cuda_tests", "ddp", "train_vit", "study"}
    assert [name for name in gpu_checks.BUILDERS if name in SMOKE_CHECKS] == SMOKE_CHECKS  # the script's order


@pytest.mark.slow
def test_smoke_mode_runs_the_checks_and_writes_one_table(tmp_path):
    """The CPU smoke run: one row per check, every row PASS, exit 0; the table on stdout and in $OUT, the log tails
    beside it."""
    out = tmp_path / "out"
    result = subprocess.run(
        ["bash", str(SCRIPT), "--smoke", "--workdir", str(tmp_path / "work"), "--only", *SMOKE_CHECKS],
        env=script_env(OUT=str(out)),
        capture_output=True,
        text=True,
        timeout=1500,
    )
    table_file = out / "gpu_check.md"
    assert table_file.exists(), result.stdout + result.stderr
    rows = find_table(parse_tables(table_file.read_text()), "check", "result", "numbers", "pass/fail")
    setup = gpu_checks.Setup("smoke", sys.executable, REPO, tmp_path / "titles")
    titles = [gpu_checks.BUILDERS[name](setup).title for name in SMOKE_CHECKS]
    assert [row["check"] for row in rows] == titles
    failed = [row for row in rows if row["pass/fail"] != "PASS"]
    assert not failed, f"{failed}\n{result.stderr[-3000:]}"
    assert all(row["result"] and row["numbers"] for row in rows)
    assert result.returncode == 0
    assert table_file.read_text().strip() in result.stdout
    logs = (out / "gpu_check_logs.txt").read_text()
    assert all(f"===== {name}:" in logs for name in SMOKE_CHECKS)
