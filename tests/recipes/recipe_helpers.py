"""Helpers to run the recipes in-process (``main(argv)``) and as a 2-process ``accelerate launch``."""

import json
from pathlib import Path

from forked_launch import Launched, accelerate_launch
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


def launch_two_processes(recipe: str, argv: list[str], timeout: int = 900) -> Launched:
    """``accelerate launch`` the recipe on 2 CPU processes (gloo DDP), as documented in the README (the ranks forked
    from a preloaded forkserver: ``tests/forked_launch.py``)."""
    env = {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = accelerate_launch(RECIPES / f"{recipe}.py", argv, env=env, cwd=ROOT, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def read_results(output_dir) -> dict:
    return json.loads((Path(output_dir) / "results.json").read_text())


def read_weights(output_dir) -> dict:
    return load_file(str(Path(output_dir) / "model.safetensors"))
