"""A fake finished run folder, shared by the tests of the card, the push and the ``hf-robattr`` command: a tiny
kernel-attention ViT saved with its code, and a recipe-shaped results.json (``tests/conftest.py`` builds it once per
session and hands out fresh copies as the ``run_dir`` fixture)."""

import json
from pathlib import Path

from tiny_models import tiny_robattr_vit


UNREACHABLE = "http://127.0.0.1:9"  # a Hub endpoint for failed pushes: loopback, closed port, refused at once

ROBUSTNESS = {
    "saliency/topk_intersection": 0.62,
    "saliency/kendall_tau": 0.41,
    "saliency/spearman": 0.55,
    "saliency/max_sensitivity": 0.33,
    "saliency/prediction_change_rate": 0.0,
    "rollout/topk_intersection": 0.48,
    "rollout/kendall_tau": 0.2,
    "rollout/spearman": 0.27,
    "rollout/max_sensitivity": 0.71,
    "rollout/prediction_change_rate": 0.0,
}
SPREADS = {"saliency/topk_intersection_std": 0.05, "rollout/topk_intersection_std": 0.07}


def results_json() -> dict:
    """A results.json with the schema the recipes write."""
    log_history = []
    for step in (5, 10, 15):
        log_history.append({"loss": 2.0 / step, "learning_rate": 0.1, "epoch": step / 15, "step": step})
        log_history.append(
            {
                "diagnostics/robustness/saliency/topk_intersection": 0.4 + step / 100,
                "diagnostics/robustness/saliency/max_sensitivity": 0.4 - step / 100,
                "diagnostics/hessian_trace": 50.0 / step,
                "diagnostics/hessian_trace_stderr": 1.0,
                "diagnostics/hessian_top_eigenvalue": 10.0 / step,
                "diagnostics/attention_entropy": 1.5,
                "step": step,
            }
        )
    log_history.append({"train_runtime": 12.5, "train_loss": 0.3, "epoch": 1.0, "step": 15})
    return {
        "model": {
            "architecture": "RobAttrViTForImageClassification",
            "attention_type": "kernel",
            "kernel_feature_map": "elu",
            "model_name_or_path": None,
        },
        "training": {
            "optimizer": "sgd",
            "momentum": 0.0,
            "learning_rate": 0.1,
            "per_device_train_batch_size": 8,
            "total_train_batch_size": 16,
            "regularizer": "input_grad_norm",
            "regularizer_weight": 0.01,
            "num_train_epochs": 1.0,
            "max_steps": 15,
            "seed": 0,
            "target_train_loss": None,
            "target_reached": None,
            "train_runtime_s": 12.5,
            "global_step": 15,
        },
        "dataset": {"name": "digits", "config": None, "eval_split": "test", "num_eval_samples": 16},
        "eval": {"accuracy": 0.875, "loss": 0.41},
        "robustness": {**ROBUSTNESS, **SPREADS},
        "robustness_config": {
            "methods": ["saliency", "rollout"],
            "attack": "topk",
            "epsilon": 0.05,
            "norm": "linf",
            "num_steps": 3,
            "k": 8,
            "num_samples": 4,
            "num_examples": 16,
        },
        "log_history": log_history,
    }


def tiny_run_vit(**overrides):
    """The tiny kernel-attention ViT of the fake run folder (the card tests save and load it)."""
    settings = dict(patch_size=4, num_channels=1, num_hidden_layers=1, attention_type="kernel")
    return tiny_robattr_vit(**{**settings, **overrides})


def save_run_folder(folder: Path) -> Path:
    """Write the fake run folder into ``folder``: the model files and ``results.json``, no card yet."""
    tiny_run_vit().save_pretrained(folder)
    (folder / "results.json").write_text(json.dumps(results_json(), indent=2))
    return folder
