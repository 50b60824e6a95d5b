"""Helpers to run the recipes in-process (``main(argv)``) and as a 2-process ``accelerate launch``."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from safetensors.torch import load_file
from script_modules import load_script


ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"

# A few steps of the tiny defaults, a tiny robustness evaluation.
QUICK = [
    "--max_steps", "4",
    "--logging_steps", "2",
    "--per_device_train_batch_size", "8",
    "--max_eval_samples", "16",
    "--robustness_num_examples", "4",
    "--robustness_num_steps", "1",
    "--robustness_num_samples", "1",
    "--disable_tqdm", "true",
    "--save_strategy", "no",
    "--report_to", "none",
    "--use_cpu",
]  # fmt: skip


def load_recipe(name: str):
    return load_script(RECIPES / f"{name}.py", f"recipe_{name}")


def free_port() -> int:
    """A TCP port that is free now (so parallel test workers do not collide on a fixed one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_two_processes(recipe: str, argv: list[str], timeout: int = 900) -> subprocess.CompletedProcess:
    """``accelerate launch`` the recipe on 2 CPU processes (gloo DDP), as documented in the README."""
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()),
        str(RECIPES / f"{recipe}.py"), *argv,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def read_results(output_dir) -> dict:
    return json.loads((Path(output_dir) / "results.json").read_text())


def read_weights(output_dir) -> dict:
    return load_file(str(Path(output_dir) / "model.safetensors"))
