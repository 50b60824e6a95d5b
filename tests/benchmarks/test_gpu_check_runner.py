"""How gpu_check runs and judges its checks, on planted commands and planted outputs (no torch work): a hang is
killed with its children, a spent budget starts nothing more, a failed check makes the exit status 1, and each judge
passes or fails on the numbers the issue sets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[2]
sys.path.append(str(REPO / "benchmarks" / "gpu"))

import gpu_judges as judges  # noqa: E402
import run_checks  # noqa: E402
from gpu_checks import Check  # noqa: E402
from gpu_proc import Run  # noqa: E402
from gpu_tables import find_table, parse_tables  # noqa: E402
from launch_probe import PREFIX  # noqa: E402


def planted_run(tmp_path: Path, name: str, output: str, returncode: int = 0) -> Run:
    log = tmp_path / f"{name}.log"
    log.write_text(output)
    return Run(["planted"], log, returncode=returncode)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_hang_is_killed_with_its_children_budget_and_exit_status(tmp_path, monkeypatch):
    pid_file = tmp_path / "grandchild.pid"

    def fails(setup):
        check = Check("fails", "a command that fails", limit_s=30.0, exclusive=True)
        check.runs = [Run(["bash", "-c", "echo ValueError: planted failure; exit 3"], setup.work / "fails.log")]
        check.judge = lambda runs: judges.require_success(*runs) or judges.Outcome("ok", "", True)
        return check

    def hang(setup):
        check = Check("hang", "a command that never ends", limit_s=3.0, exclusive=True)
        check.runs = [Run(["bash", "-c", f"sleep 120 & echo $! > {pid_file}; wait"], setup.work / "hang.log")]
        check.judge = lambda runs: judges.Outcome("should not be judged", "", True)
        return check

    def late(setup):
        check = Check("late", "a check past the budget", limit_s=30.0)
        check.runs = [Run(["bash", "-c", "true"], setup.work / "late.log")]
        check.judge = lambda runs: judges.Outcome("ran", "", True)
        return check

    monkeypatch.setattr(run_checks, "BUILDERS", {"fails": fails, "hang": hang, "late": late})
    monkeypatch.setattr(run_checks, "MIN_START_S", 1.5)  # the hang leaves < 1.5 s of the 4 s budget
    table = tmp_path / "table.md"
    argv = ["--mode", "smoke", "--budget-s", "4", "--workdir", str(tmp_path / "work"), "--table", str(table)]
    status = run_checks.main(argv)

    assert status == 1
    rows = {row["check"]: row for row in find_table(parse_tables(table.read_text()), "check", "pass/fail")}
    assert rows["a command that fails"]["result"] == "exit 3: ValueError: planted failure"
    assert rows["a command that never ends"]["result"].startswith("timed out after 3 s (killed)")
    assert not _alive(int(pid_file.read_text()))  # the whole process group went, not only the shell
    assert rows["a check past the budget"]["result"] == "not run: the whole run's time budget was spent"
    assert [row["pass/fail"] for row in rows.values()] == ["FAIL"] * 3


def test_all_passing_checks_exit_zero(tmp_path, monkeypatch):
    def ok(setup):
        check = Check("ok", "fine", limit_s=30.0)
        check.runs = [Run([sys.executable, "-c", "print(42)"], setup.work / "ok.log")]
        check.judge = lambda runs: judges.Outcome("printed", runs[0].text().split()[-1], True)
        return check

    monkeypatch.setattr(run_checks, "BUILDERS", {"ok": ok})
    table, logs = tmp_path / "t.md", tmp_path / "logs.txt"
    argv = ["--mode", "smoke", "--workdir", str(tmp_path / "w"), "--table", str(table), "--logs-out", str(logs)]
    assert run_checks.main(argv) == 0
    assert "| fine | printed | 42 | PASS |" in table.read_text()
    assert "===== ok: exit 0" in logs.read_text()


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--only", "nope"], ["'nope'", "cuda_tests"]),
        (["--jobs", "0"], ["--jobs", "0"]),
        (["--budget-s", "-1"], ["--budget-s", "-1"]),
    ],
)
def test_bad_arguments_are_named(argv, words, capsys):
    with pytest.raises(SystemExit) as error:
        run_checks.parse_args(argv)
    assert error.value.code == 2
    err = capsys.readouterr().err
    assert all(word in err for word in words)


THROUGHPUT = """\
| Quantus metric (200 samples, batch 16) | Quantus s | core s | speed-up | max abs diff | max rel diff |
|---|---|---|---|---|---|
| MaxSensitivity | {q} | 1.00 | {s1}x | 3.0e-08 | {rel} |
| LocalLipschitzEstimate | 20.0 | 1.00 | 20.00x | 9.3e-10 | 1.3e-07 |
| RelativeInputStability | 30.0 | 1.00 | 30.00x | 4.0e-13 | 1.8e-07 |
| all three (core shares the uniform passes of MaxSensitivity and RIS) | 60.0 | 2.00 | 30.00x | | |

| captum metric (10 samples, batch 16) | captum s | core s | speed-up | max abs diff | max rel diff |
|---|---|---|---|---|---|
| sensitivity_max | 0.057 | 0.056 | 1.02x | 0.0e+00 | 0.0e+00 |
"""


def test_scoring_needs_10x_quantus_on_the_gpu_at_equal_values(tmp_path):
    fast = planted_run(tmp_path, "fast", THROUGHPUT.format(q="12.0", s1="12.00", rel="1.2e-07"))
    assert judges.scoring(fast, gpu=True).passed
    slow = planted_run(tmp_path, "slow", THROUGHPUT.format(q="2.0", s1="2.00", rel="1.2e-07"))
    with pytest.raises(judges.CheckFailed, match=r"missed \(slowest 2.00x\)"):
        judges.scoring(slow, gpu=True)
    assert judges.scoring(slow, gpu=False).passed  # speed is not judged in the CPU smoke mode
    unequal = THROUGHPUT.format(q="12.0", s1="12.00", rel="5.0e-01").replace("3.0e-08", "2.0e-01")
    with pytest.raises(judges.CheckFailed, match=r"values differ.*MaxSensitivity"):
        judges.scoring(planted_run(tmp_path, "unequal", unequal), gpu=False)
    with pytest.raises(judges.CheckFailed, match="exit 1: RuntimeError: CUDA out of memory"):
        judges.scoring(planted_run(tmp_path, "crash", "RuntimeError: CUDA out of memory\n", 1), gpu=True)


ATTENTION = """\
| N | SDPA (ms) | kernel (ms) | SDPA / kernel | kernel µs/token | SDPA peak (MiB) | kernel peak (MiB) |
|---:|---:|---:|---:|---:|---:|---:|
| 1024 | 0.5 | 0.2 | 2.5x | 0.2 | 10.0 | 12.0 |
| 65536 | 900.0 | 9.0 | 100.0x | 0.14 | 600.0 | 700.0 |

log-log slope of time vs N (N >= 1024): kernel {slope}, SDPA 1.95
"""


def test_attention_needs_every_length_and_linear_kernel_time_on_the_gpu(tmp_path):
    linear = planted_run(tmp_path, "linear", ATTENTION.format(slope="1.05"))
    outcome = judges.attention(linear, [1024, 65536], gpu=True)
    assert outcome.passed and "N=65536" in outcome.numbers and "100.0x" in outcome.numbers
    steep = planted_run(tmp_path, "steep", ATTENTION.format(slope="1.60"))
    with pytest.raises(judges.CheckFailed, match="not linear"):
        judges.attention(steep, [1024, 65536], gpu=True)
    assert judges.attention(steep, [1024, 65536], gpu=False).passed
    with pytest.raises(judges.CheckFailed, match=r"no row for N = \[32768\]"):
        judges.attention(linear, [1024, 32768, 65536], gpu=True)


def _recipe_output(tmp_path: Path, name: str, losses: list[float], state: dict) -> tuple[Run, Path]:
    folder = tmp_path / name
    folder.mkdir()
    history = [{"loss": loss, "step": 10 * (i + 1)} for i, loss in enumerate(losses)]
    results = {
        "eval": {"accuracy": 0.95, "loss": 0.2},
        "robustness": {"saliency/topk_intersection": 0.5},
        "training": {"global_step": 10 * len(losses), "train_runtime_s": 1.0},
        "log_history": history,
    }
    (folder / "results.json").write_text(json.dumps(results))
    (folder / "model.safetensors").write_bytes(b"")
    base = {"distributed_type": "NO", "backend": None, "num_processes": 1, "device": "cuda:0"}
    return planted_run(tmp_path, name, "training...\n" + PREFIX + json.dumps({**base, **state}) + "\n"), folder


def test_bf16_curves_must_be_finite_and_close(tmp_path):
    fp32, fp32_dir = _recipe_output(tmp_path, "fp32", [2.0, 1.0, 0.5], {"mixed_precision": "no"})
    close, close_dir = _recipe_output(tmp_path, "close", [2.02, 0.99, 0.52], {"mixed_precision": "bf16"})
    assert judges.bf16(fp32, close, fp32_dir, close_dir).passed
    far, far_dir = _recipe_output(tmp_path, "far", [2.5, 1.5, 0.9], {"mixed_precision": "bf16"})
    with pytest.raises(judges.CheckFailed, match="from fp32"):
        judges.bf16(fp32, far, fp32_dir, far_dir)
    nan, nan_dir = _recipe_output(tmp_path, "nan", [2.0, float("nan"), 0.5], {"mixed_precision": "bf16"})
    with pytest.raises(judges.CheckFailed, match="non-finite loss at steps \\[20\\]"):
        judges.bf16(fp32, nan, fp32_dir, nan_dir)
    plain, plain_dir = _recipe_output(tmp_path, "plain", [2.0, 1.0, 0.5], {"mixed_precision": "no"})
    with pytest.raises(judges.CheckFailed, match="not bf16"):
        judges.bf16(fp32, plain, fp32_dir, plain_dir)


def test_a_distributed_config_must_run_as_itself_on_the_gpu(tmp_path):
    run, folder = _recipe_output(tmp_path, "ddp", [1.0, 0.5], {"distributed_type": "MULTI_GPU", "backend": "nccl"})
    assert judges.recipe(run, folder, gpu=True, expect_type="MULTI_GPU").passed
    with pytest.raises(judges.CheckFailed, match="ran as MULTI_GPU, expected FSDP"):
        judges.recipe(run, folder, gpu=True, expect_type="FSDP")
    on_cpu, cpu_folder = _recipe_output(tmp_path, "cpu", [1.0], {"device": "cpu"})
    with pytest.raises(judges.CheckFailed, match="ran on cpu, not on the GPU"):
        judges.recipe(on_cpu, cpu_folder, gpu=True, expect_type="NO")
    with pytest.raises(judges.CheckFailed, match="no checkpoint"):
        judges.recipe(run, folder, gpu=False, expect_type=None, checkpoints=True)


def test_cuda_tests_are_selected_by_the_plugin_and_may_skip_only_without_a_gpu(tmp_path):
    (tmp_path / "test_planted.py").write_text(
        "import pytest\n"
        "def test_on_cuda(): pass\n"
        "@pytest.mark.skipif(True, reason='needs a CUDA device')\n"
        "def test_needs_device(): pass\n"
        "def test_plain(): pass\n"
    )
    junit = tmp_path / "junit.xml"
    env = {**os.environ, "PYTHONPATH": str(REPO / "benchmarks" / "gpu")}
    argv = [sys.executable, "-m", "pytest", "-p", "cuda_tests_plugin", "-p", "no:cacheprovider", "-q"]
    argv += [f"--junitxml={junit}", "test_planted.py"]
    result = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    run = planted_run(tmp_path, "pytest", result.stdout, result.returncode)
    outcome = judges.cuda_tests(run, junit, 1, gpu=False)
    assert outcome.passed
    assert outcome.numbers == "2 CUDA tests in 1 file: 1 passed, 1 skipped, 0 failed"  # test_plain deselected
    with pytest.raises(judges.CheckFailed, match="skipped although a GPU is present: test_needs_device"):
        judges.cuda_tests(run, junit, 1, gpu=True)


def test_dry_run_shows_the_gpu_commands(tmp_path, capsys):
    assert run_checks.main(["--mode", "gpu", "--dry-run", "--workdir", str(tmp_path / "w")]) == 0
    out = capsys.readouterr().out
    commands: dict[str, str] = {}
    name = ""
    for line in out.splitlines():
        if line.startswith(" "):
            commands[name] += line + "\n"
        else:
            name = line.split(" ", 1)[0]
            commands[name] = ""
    assert list(commands) == list(run_checks.BUILDERS)
    assert "--num_processes 1" in commands["ddp"] and "recipes/accelerate_ddp.yaml" in commands["ddp"]
    assert "--num_processes 1" in commands["fsdp"] and "recipes/accelerate_fsdp.yaml" in commands["fsdp"]
    assert commands["bf16"].count("--attention_type kernel") == 2 and commands["bf16"].count("--bf16") == 1
    assert "--scale ci" in commands["study"] and "--max_runs" not in commands["study"]
    assert "--device cuda" in commands["scoring"] and "--device cuda" in commands["attention"]
    assert not (tmp_path / "w").exists()  # nothing ran


def test_a_failing_cuda_test_is_named_with_its_error(tmp_path):
    (tmp_path / "test_failing.py").write_text("def test_cuda_sums():\n    assert 1 + 1 == 3\n")
    junit = tmp_path / "junit.xml"
    env = {**os.environ, "PYTHONPATH": str(REPO / "benchmarks" / "gpu")}
    argv = [sys.executable, "-m", "pytest", "-p", "cuda_tests_plugin", "-p", "no:cacheprovider", "-q"]
    result = subprocess.run(
        [*argv, f"--junitxml={junit}", "test_failing.py"], cwd=tmp_path, env=env, capture_output=True, timeout=120
    )
    run = planted_run(tmp_path, "pytest", result.stdout.decode(), result.returncode)
    with pytest.raises(judges.CheckFailed, match=r"failed: test_cuda_sums \(assert \(1 \+ 1\) == 3\)") as failure:
        judges.cuda_tests(run, junit, 1, gpu=False)
    assert failure.value.numbers == "1 CUDA test in 1 file: 0 passed, 0 skipped, 1 failed"


def test_the_study_must_store_runs_without_errors_and_a_report(tmp_path):
    runs = tmp_path / "study" / "runs"
    runs.mkdir(parents=True)
    (runs / "a.json").write_text(json.dumps({"status": "done"}))
    run = planted_run(tmp_path, "study", "done\n")
    with pytest.raises(judges.CheckFailed, match=r"no report\.md"):
        judges.study(run, tmp_path / "study")
    (tmp_path / "study" / "report.md").write_text("# report")
    assert judges.study(run, tmp_path / "study").numbers == "1 run stored, 0 with an error"
    (runs / "b.json").write_text(json.dumps({"status": "error", "error": "CUDA error: planted"}))
    with pytest.raises(judges.CheckFailed, match="a run failed: CUDA error: planted"):
        judges.study(run, tmp_path / "study")
