"""``benchmarks/gpu_check.sh`` end to end: the one line without a GPU, bad usage, and the CPU smoke run of its checks
(their table rows, files and exit status)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers  # noqa: F401 (imported at collection: its log handler then binds to no test's captured stream)
from accelerate.state import AcceleratorState


REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"
sys.path.append(str(REPO / "benchmarks" / "gpu"))

import gpu_checks  # noqa: E402
import gpu_judges  # noqa: E402
import gpu_proc  # noqa: E402
import launch_probe  # noqa: E402
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


# The smoke run's checks here: the three whose CPU run no other test covers. Left to other tests:
# - ``cuda_tests`` runs the suite's CUDA tests, which run in the suite itself; the plugin that selects them and the
#   judge of their junit file are tested in test_gpu_check_runner.py on planted tests.
# - ``ddp`` launches the same recipe as ``fsdp`` with another config; on a CPU both run as MULTI_CPU (gloo), the same
#   path. accelerate's reading of every config is tested in tests/recipes/test_accelerate_configs.py.
# - ``train_vit`` (the recipe in one process) and ``study`` (the ci study, ``--max_runs 1``) run in tests/recipes and
#   tests/study; their judges are tested in test_gpu_check_runner.py.
# - ``bf16`` runs its two commands through the launch probe in this process (below): the same probe, recipe and judge,
#   without two interpreters' imports (~45 of the smoke run's CPU-s); the runner that starts a command is the one the
#   checks here use.
# Every recipe command of both modes parses with the recipe's own parser (test_gpu_check_commands.py). All eight:
# `bash benchmarks/gpu_check.sh --smoke`, before a GPU session.
SMOKE_CHECKS = ["scoring", "attention", "fsdp"]


def test_the_smoke_run_leaves_out_only_checks_covered_elsewhere():
    assert set(gpu_checks.BUILDERS) - set(SMOKE_CHECKS) == {"cuda_tests", "ddp", "train_vit", "study", "bf16"}
    assert [name for name in gpu_checks.BUILDERS if name in SMOKE_CHECKS] == SMOKE_CHECKS  # the script's order


def _run_in_process(run: gpu_proc.Run, capsys) -> None:
    """``run``'s command (``python launch_probe.py RECIPE ARGS...``) in this process; its output goes to its log."""
    assert Path(run.argv[1]) == Path(launch_probe.__file__)
    argv, path = sys.argv, list(sys.path)
    sys.argv = run.argv[1:]
    try:
        launch_probe.main()
        run.returncode = 0
    finally:
        sys.argv, sys.path[:] = argv, path
        AcceleratorState._reset_state(reset_partial_state=True)  # the next Accelerator in this worker starts afresh
        captured = capsys.readouterr()
        run.log.parent.mkdir(parents=True, exist_ok=True)
        run.log.write_text(captured.out + captured.err)


def test_the_bf16_check_passes_on_its_recipe_runs_and_fails_on_a_run_without_bf16(tmp_path, capsys):
    """The bf16 check's two commands at smoke sizes, through the launch probe: the judge passes them and refuses the
    pair when the run it reads as bf16 trained in fp32 (its probe line says so)."""
    check = gpu_checks.bf16(gpu_checks.Setup("smoke", sys.executable, REPO, tmp_path))
    fp32, bf16 = check.runs
    assert "--bf16" in bf16.argv and "--bf16" not in fp32.argv
    for run in check.runs:
        _run_in_process(run, capsys)
    outcome = check.judge(check.runs)
    assert outcome.passed, outcome
    assert "logged steps" in outcome.numbers and "mean gap" in outcome.numbers
    with pytest.raises(gpu_judges.CheckFailed, match="trained with mixed precision 'no', not bf16"):
        check.judge([fp32, fp32])


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
