"""Helpers of the study tests: a fast fake run function with known trends, and the recipe loader."""

import importlib.util
import math
import zlib
from pathlib import Path

import numpy as np

from hf_robattr.study.grid import RunSpec
from hf_robattr.study.runner import spec_record


ROOT = Path(__file__).resolve().parents[2]


def load_reproduce_recipe():
    """Import ``recipes/reproduce_paper.py`` as a module."""
    spec = importlib.util.spec_from_file_location("reproduce_paper", ROOT / "recipes" / "reproduce_paper.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_run(spec: RunSpec, dataset_name=None) -> dict:
    """A record shaped like ``run_one``'s, computed in microseconds, with planted effects:

    gradient robustness rises with lr/batch everywhere; attention robustness is flat (noise only) under softmax and
    rises under kernel; the Hessian trace falls as robustness rises; ``ig_norm`` costs 10x per step; the cell
    ``sgd lr=0.3 B=64`` of the softmax ViT never fits in seed 1, and AdamW on the kernel ViT diverges in seed 0.
    """
    record = spec_record(spec)
    cell = spec.cell
    rng = np.random.default_rng(zlib.crc32(spec.key.encode()))
    strength = math.log10(cell.strength)
    gradient = 0.5 + 0.1 * strength + rng.normal(0, 0.01)
    attention = 0.5 + (0.1 * strength if cell.attention_type == "kernel" else 0.0) + rng.normal(0, 0.05)
    status = "ok"
    if cell.attention_type == "softmax" and cell.batch_size == 64 and spec.seed == 1 and spec.budget == "matched":
        status = "not_fit"
    if cell.attention_type == "kernel" and cell.optimizer == "adamw" and spec.seed == 0 and spec.budget == "matched":
        record.update(status="diverged", training={"global_step": 3, "train_seconds": 0.1, "seconds_per_step": 0.03})
        record["total_seconds"] = 0.1
        return record
    step = 0.01 * (10 if cell.regularizer == "ig_norm" else 1)
    robustness = {}
    for method in spec.settings.gradient_methods:
        robustness[f"{method}/topk_intersection"] = gradient
        robustness[f"{method}/kendall_tau"] = gradient
        robustness[f"{method}/max_sensitivity"] = 1 - gradient
        robustness[f"{method}/prediction_change_rate"] = 0.0
    for method in spec.settings.attention_methods:
        robustness[f"{method}/topk_intersection"] = attention
        robustness[f"{method}/kendall_tau"] = attention
        robustness[f"{method}/max_sensitivity"] = 1 - attention
        robustness[f"{method}/prediction_change_rate"] = 0.0
    record.update(
        status=status,
        training={"global_step": 100, "epochs": 1.0, "train_seconds": 100 * step, "seconds_per_step": step,
                  "final_train_loss": 0.1, "target_reached": status == "ok"},
        accuracy=0.9,
        num_eval_examples=300,
        robustness=robustness,
        diagnostics={
            "hessian_trace": {"value": 100 * (1 - gradient), "stderr": 1.0, "num_probes": 50},
            "hessian_top_eigenvalue": {"value": 10 * (1 - gradient), "stderr": 0.1, "num_probes": 20},
            "input_curvature": {"value": 1 - gradient, "stderr": 0.01, "num_probes": 20},
            "attention_entropy": {"value": 3.0, "per_layer": [3.0]},
        },
        total_seconds=1.0,
    )  # fmt: skip
    return record


def failing_run(spec: RunSpec, dataset_name=None) -> dict:
    """A run function that raises (the executor must record the error and go on)."""
    raise RuntimeError(f"boom {spec.key}")
