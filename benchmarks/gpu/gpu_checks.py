"""The checks of ``benchmarks/gpu_check.sh``: what each one runs, at which sizes, within which time, judged how.

Two modes: ``gpu`` (the real sizes, on CUDA) and ``smoke`` (every check at tiny sizes on the CPU, to prove the
plumbing where no GPU is available). Every check only runs the project's public entry points (``pytest``, the
benchmark scripts, the recipes under ``accelerate launch``) and reads what they print and write.
"""

from __future__ import annotations

import functools
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gpu_judges as judges
from gpu_proc import Run


MODES = ("gpu", "smoke")
HERE = Path(__file__).resolve().parent
PROBE = str(HERE / "launch_probe.py")
ATTENTION_LENGTHS = {"gpu": [1024, 2048, 4096, 8192, 16384, 32768, 65536], "smoke": [64, 128]}


@dataclass
class Check:
    """One row of the table: its commands (started together), their time limit, and the judge of their output."""

    name: str
    title: str
    limit_s: float
    runs: list[Run] = field(default_factory=list)
    judge: Callable[[list[Run]], judges.Outcome] | None = None
    exclusive: bool = False  # a timing benchmark: runs alone, nothing else on the machine
    not_run: str | None = None  # why it cannot run here: a FAIL without running
    outputs: list[Path] = field(default_factory=list)  # folders its commands write, emptied before they run


@dataclass
class Setup:
    """Where and how the checks run."""

    mode: str
    python: str
    repo: Path
    work: Path

    @property
    def gpu(self) -> bool:
        return self.mode == "gpu"

    def limit(self, gpu_s: float, smoke_s: float) -> float:
        return gpu_s if self.gpu else smoke_s

    def run(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Run:
        return Run([self.python, *argv], self.work / "logs" / f"{name}.log", dict(env or {}))

    @property
    def threads(self) -> dict[str, str]:
        """Threads per process for the checks that run side by side (the GPU does their work)."""
        count = max(1, (os.cpu_count() or 2) // 8) if self.gpu else 1
        return {"OMP_NUM_THREADS": str(count), "MKL_NUM_THREADS": str(count)}


def free_port() -> str:
    """A free TCP port for one ``accelerate launch`` rendezvous (each concurrent launch gets its own)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def cuda_tests(setup: Setup) -> Check:
    check = Check("cuda_tests", "CUDA tests of the suite (`pytest`, tests that need CUDA)", setup.limit(120, 300))
    files = sorted(
        str(path.relative_to(setup.repo))
        for path in (setup.repo / "tests").rglob("test_*.py")
        if "benchmarks" not in path.parts and re.search("cuda", path.read_text(), re.IGNORECASE)
    )
    if not files:
        check.not_run = "no test file mentions CUDA"
        return check
    junit = setup.work / "cuda_tests" / "junit.xml"
    check.outputs = [junit.parent]
    pythonpath = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    # One process (-n 0 overrides the suite's -n auto): a few CUDA tests do not pay for starting xdist workers.
    argv = ["-m", "pytest", "-p", "cuda_tests_plugin", "-p", "no:cacheprovider", "-n", "0", "-q", "-rs"]
    argv.append(f"--junitxml={junit}")
    check.runs = [setup.run(check.name, argv + files, {**setup.threads, "PYTHONPATH": pythonpath})]
    check.judge = lambda runs: judges.cuda_tests(runs[0], junit, len(files), setup.gpu)
    return check


def scoring(setup: Setup) -> Check:
    script = setup.repo / "benchmarks" / "robustness_throughput.py"
    check = Check(
        "scoring",
        "Scoring core vs Quantus and captum (`robustness_throughput.py`)",
        setup.limit(150, 300),
        exclusive=True,
    )
    sizes = (
        ["--device", "cuda", "--batch", "16", "--repeats", "3"]
        if setup.gpu
        else ["--batch", "2", "--samples", "10", "--repeats", "1"]
    )
    threads = [] if setup.gpu else ["--threads", "1"]
    check.runs = [setup.run(check.name, [str(script), *sizes, *threads])]
    check.judge = lambda runs: judges.scoring(runs[0], setup.gpu)
    return check


def attention(setup: Setup) -> Check:
    script = setup.repo / "benchmarks" / "attention_scaling.py"
    lengths = ATTENTION_LENGTHS[setup.mode]
    check = Check(
        "attention",
        "Attention scaling, SDPA vs kernel, forward+backward (`attention_scaling.py`)",
        setup.limit(120, 300),
        exclusive=True,
    )
    sizes = ["--lengths", *map(str, lengths)]
    extra = (
        ["--device", "cuda", "--min-seconds", "0.2"] if setup.gpu else ["--model-tokens", "0", "--min-seconds", "0.01"]
    )
    threads = [] if setup.gpu else ["--threads", "1"]
    check.runs = [setup.run(check.name, [str(script), *sizes, *extra, *threads])]
    check.judge = lambda runs: judges.attention(runs[0], lengths, setup.gpu)
    return check


def _train_args(
    setup: Setup, output_dir: Path, shared: list[str], gpu_sizes: list[str], checkpoints: bool = False
) -> list[str]:
    """Arguments of ``recipes/train_vit.py``: ``shared`` in both modes, then ``gpu_sizes`` on the GPU, or a few
    steps on tiny data on the CPU; ``checkpoints`` also saves Trainer checkpoints on the way."""
    common = ["--output_dir", str(output_dir), "--report_to", "none", *shared]
    if setup.gpu:
        saves = ["--save_strategy", "steps", "--save_steps", "50"] if checkpoints else ["--save_strategy", "no"]
        return common + gpu_sizes + saves + (["--keep_checkpoints"] if checkpoints else [])
    tiny = ["--max_steps", "4", "--logging_steps", "1", "--max_train_samples", "64", "--max_eval_samples", "16"]
    scoring = ["--robustness_num_examples", "2", "--robustness_num_samples", "2", "--robustness_num_steps", "1"]
    saves = ["--save_strategy", "steps", "--save_steps", "2"] if checkpoints else ["--save_strategy", "no"]
    saves += ["--keep_checkpoints"] if checkpoints else []  # a finished run removes them otherwise
    return common + tiny + scoring + saves + ["--use_cpu", "--dataloader_num_workers", "0"]


def _launch(setup: Setup, config: str | None, port: str) -> list[str]:
    """``accelerate launch`` with one process (``config`` None: a plain single-device launch)."""
    argv = ["-m", "accelerate.commands.launch", "--num_processes", "1", "--main_process_port", port]
    if config:
        argv += ["--config_file", str(setup.repo / "recipes" / config)]
    else:
        argv += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
        argv += [] if setup.gpu else ["--cpu"]
    return [*argv, PROBE]


def bf16(setup: Setup) -> Check:
    check = Check("bf16", "bf16 vs fp32 training, kernel attention (`train_vit.py --bf16`)", setup.limit(180, 400))
    recipe = str(setup.repo / "recipes" / "train_vit.py")
    sizes = ["--logging_steps", "20", "--robustness_num_examples", "32"]  # the default 8 epochs (480 steps)
    dirs = check.outputs = [setup.work / "bf16-fp32", setup.work / "bf16-bf16"]
    check.runs = [
        setup.run(
            f"bf16-{precision}",
            [PROBE, recipe, *_train_args(setup, output_dir, ["--attention_type", "kernel", *extra], sizes)],
            setup.threads,
        )
        for precision, output_dir, extra in (("fp32", dirs[0], []), ("bf16", dirs[1], ["--bf16"]))
    ]
    check.judge = lambda runs: judges.bf16(runs[0], runs[1], *dirs)
    return check


def distributed(setup: Setup, kind: str) -> Check:
    config, expect = {"ddp": ("accelerate_ddp.yaml", "MULTI_GPU"), "fsdp": ("accelerate_fsdp.yaml", "FSDP")}[kind]
    check = Check(
        kind,
        f"{kind.upper()} config, one process (`accelerate launch --config_file recipes/{config}`)",
        setup.limit(150, 400),
    )
    output_dir = setup.work / kind
    check.outputs = [output_dir]
    sizes = ["--max_steps", "100", "--logging_steps", "10", "--robustness_num_examples", "16"]
    recipe = str(setup.repo / "recipes" / "train_vit.py")
    argv = [*_launch(setup, config, free_port()), recipe, *_train_args(setup, output_dir, [], sizes, checkpoints=True)]
    check.runs = [setup.run(kind, argv, setup.threads)]
    check.judge = lambda runs: judges.recipe(runs[0], output_dir, setup.gpu, expect, checkpoints=True)
    return check


def train_vit(setup: Setup) -> Check:
    check = Check("train_vit", "`recipes/train_vit.py`, the README's default run", setup.limit(180, 400))
    output_dir = setup.work / "train_vit"
    check.outputs = [output_dir]
    recipe = str(setup.repo / "recipes" / "train_vit.py")
    argv = [*_launch(setup, None, free_port()), recipe, *_train_args(setup, output_dir, [], [])]
    check.runs = [setup.run(check.name, argv, setup.threads)]
    check.judge = lambda runs: judges.recipe(runs[0], output_dir, setup.gpu, "NO", judges.VIT_MIN_ACCURACY)
    return check


def study(setup: Setup) -> Check:
    check = Check("study", "`recipes/reproduce_paper.py --scale ci`", setup.limit(240, 400))
    output_dir = setup.work / "study-ci"
    check.outputs = [output_dir]
    argv = [str(setup.repo / "recipes" / "reproduce_paper.py"), "--scale", "ci", "--output_dir", str(output_dir)]
    argv += ["--progress", "false", "--threads_per_worker", setup.threads["OMP_NUM_THREADS"]]
    argv += [] if setup.gpu else ["--max_runs", "1"]
    check.runs = [setup.run(check.name, argv, setup.threads)]
    check.judge = lambda runs: judges.study(runs[0], output_dir)
    return check


BUILDERS: dict[str, Callable[[Setup], Check]] = {
    "cuda_tests": cuda_tests,
    "scoring": scoring,
    "attention": attention,
    "bf16": bf16,
    "ddp": functools.partial(distributed, kind="ddp"),
    "fsdp": functools.partial(distributed, kind="fsdp"),
    "train_vit": train_vit,
    "study": study,
}
