"""The study at each scale: its arms (protocol + grid) and the pre-registered analysis settings.

- ``ci``: a smoke test of every code path (tiny models, a few examples); its numbers mean nothing. Its ``vit`` arm
  runs v2's paths (AdamW warm start, one-sided matched fit, AdamW and explicit baselines with their weight sweep),
  ``digits`` v3's two-sided matched fit from scratch, ``minilm`` a fixed budget on the pretrained checkpoint
  truncated to its first 2 encoder layers (``ArmProtocol.pretrained_layers``).
- ``cpu``: study v3 (:mod:`~hf_robattr.study.scale_cpu`), about 13 CPU hours: a one-layer ViT on
  ``marked_objects`` trained by plain SGD from scratch over a 3 x 3 grid of lr x B, at matched fit (main arm) and at
  a fixed budget, and MiniLM fine-tuned to a matched fit after at least one epoch; ``cpu_v2``: study v2
  (superseded).
- ``gpu``: CIFAR-10 with a pretrained ViT and SST-2 with a pretrained BERT, from the Hub.
"""

from __future__ import annotations

from dataclasses import replace

from .grid import ArmGrid
from .protocol import ArmProtocol, WarmStart
from .scale_cpu import CPU, CPU_V2, DIGITS_ARM, MINILM_ARM, TEXT_ATTACK
from .settings import ANALYSIS_FIELDS, StudySettings


__all__ = ["SCALES", "StudySettings", "get_settings"]


_CI_VISION = {
    "image_size": 32,
    "patch_size": 8,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "target_loss": 0.6,
    "fit_examples": 64,
    "fit_every_examples": 64,
    "max_epochs": 2.0,
    "eval_pool": 8,
    "attack_steps": 2,
    "ig_steps": 2,
    "ig_examples": 2,
    "sensitivity_samples": 2,
    "robustness_batch_size": 8,
    "hessian_examples": 16,
    "hessian_probes": 2,
    "hessian_max_probes": 4,
    "power_iterations": 2,
    "ig_norm_steps": 2,
    "saturation_budgets": ((1, 1), (3, 2)),
    "saturation_examples": 4,
    "warm_start": WarmStart(
        learning_rate=3e-3, batch_size=16, target_loss=0.9, check_every_examples=64, max_epochs=2.0
    ),
}

_CI = StudySettings(
    scale="ci",
    analysis="v3",
    arms=(
        (
            ArmProtocol(arm="vit", model="vit", dataset="synthetic_images", dataset_size=600, **_CI_VISION),
            ArmGrid(
                learning_rates=(0.1, 0.3),
                batch_sizes=(16,),
                seeds=2,
                adamw=(3e-3, 16),
                baselines=(("input_grad_norm", (0.01, 0.1)),),
                baseline_cell=(0.1, 16),
                baseline_seeds=1,
                curvature_seeds=1,
                saturation_seeds=1,
            ),
        ),
        (
            ArmProtocol(
                **DIGITS_ARM,
                **{
                    **_CI_VISION,
                    "image_size": 16,
                    "patch_size": 4,
                    "hidden_size": 16,
                    "num_hidden_layers": 1,
                    "initializer_range": 0.1,
                    "warm_start": None,  # v3's rule: from scratch, two-sided matched fit with rollback
                    "fit_rule": "band",
                    "target_loss": 1.8,
                    "fit_tolerance": 0.1,
                    "snapshot_every_examples": 1,
                },
            ),
            ArmGrid(learning_rates=(0.1, 0.3), batch_sizes=(16,), seeds=1, curvature_seeds=1),
        ),
        (
            ArmProtocol(
                **MINILM_ARM,
                pretrained_layers=2,  # MiniLM's first 2 of 6 layers: every code path, a third of the cost
                dataset_size=200,
                max_seq_length=16,
                fit_rule="budget",  # a fixed budget keeps ci fast (the cpu scale fits MiniLM to a band after an epoch)
                budget_examples=96,
                fit_examples=32,
                eval_pool=3,
                attack_steps=2,
                ig_steps=2,
                ig_examples=2,
                sensitivity_samples=2,
                robustness_batch_size=8,
                hessian_examples=8,
                hessian_probes=2,
                hessian_max_probes=2,
                power_iterations=2,
                conversion=(
                    ("feature_map", "hedgehog"),
                    ("seed", 0),
                    ("transfer_steps", 2),
                    ("recovery_steps", 1),
                    ("batch_size", 4),
                    ("num_texts", 16),
                    ("num_eval_texts", 4),
                    ("prose_sources", ("pydoc_topics",)),  # read at once; all sources: a minute's harvest per machine
                ),
            ),
            ArmGrid(
                learning_rates=(0.01, 0.05),
                batch_sizes=(16,),
                attention_types=("softmax", "kernel"),
                seeds=1,
                curvature_seeds=1,
            ),
        ),
    ),
)

_GPU_VISION = {
    "eval_pool": 1000,
    "attack_steps": 20,
    "attack_restarts": 3,
    "ig_steps": 32,
    "ig_examples": 250,
    "robustness_batch_size": 100,
    "hessian_examples": 1024,
    "hessian_probes": 50,
    "hessian_max_probes": 500,
    "power_iterations": 30,
    "fit_examples": 2048,
    "fit_every_examples": 4096,
    "max_epochs": 20.0,
    "target_loss": 0.05,
}

_GPU = StudySettings(
    scale="gpu",
    analysis="v3",
    arms=(
        (
            ArmProtocol(
                arm="vit",
                model="vit",
                dataset="uoft-cs/cifar10",
                pretrained="google/vit-base-patch16-224-in21k",
                image_size=224,
                patch_size=16,
                epsilons=(2 / 255 / 0.5, 4 / 255 / 0.5, 8 / 255 / 0.5),
                main_epsilon=4 / 255 / 0.5,
                **_GPU_VISION,
            ),
            ArmGrid(
                learning_rates=(0.01, 0.02, 0.04),
                batch_sizes=(16, 64, 256),
                seeds=5,
                adamw=(5e-5, 64),
                baselines=(
                    ("input_grad_norm", (0.01, 0.1, 1.0)),
                    ("ig_norm", (0.01, 0.1, 1.0)),
                    ("sam", (0.01, 0.05, 0.2)),
                ),
                baseline_cell=(0.02, 64),
                curvature_seeds=2,
            ),
        ),
        (
            ArmProtocol(
                arm="text",
                model="bert",
                dataset="stanfordnlp/sst2",
                pretrained="google-bert/bert-base-uncased",
                max_seq_length=64,
                **TEXT_ATTACK,
                **{**_GPU_VISION, "target_loss": 0.1},
            ),
            ArmGrid(
                learning_rates=(0.005, 0.01, 0.02),
                batch_sizes=(16, 64, 256),
                seeds=5,
                adamw=(3e-5, 32),
                curvature_seeds=2,
            ),
        ),
    ),
)

SCALES: dict[str, StudySettings] = {"ci": _CI, "cpu": CPU, "cpu_v2": CPU_V2, "gpu": _GPU}


def get_settings(scale: str, **overrides: object) -> StudySettings:
    """The :class:`StudySettings` of ``scale`` (one of :data:`SCALES`), with analysis fields replaced by
    ``overrides``."""
    if scale not in SCALES:
        raise ValueError(f"Unknown --scale {scale!r}; expected one of {list(SCALES)}.")
    settings = SCALES[scale]
    unknown = sorted(set(overrides) - set(ANALYSIS_FIELDS))
    if unknown:
        raise ValueError(f"Unknown study setting(s) {unknown}; only the analysis settings can be overridden.")
    return replace(settings, **overrides)
