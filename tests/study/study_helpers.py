"""Helpers of the study tests: fast fake run functions with planted effects."""

import math
import zlib

import numpy as np

from hf_robattr.study.grid import RunSpec
from hf_robattr.study.measure import value_key
from hf_robattr.study.run import spec_record


POOL = 40
DEGENERATE_CELL = ("softmax", 0.05, 128)  # planted: near-uniform attention in this softmax cell of the vit arm


def planted(spec: RunSpec, method: str) -> float:
    """The planted mean top-k intersection of ``method`` in ``spec``: gradient methods rise by 0.03 per doubling of
    lr/B everywhere; attention methods are flat under softmax and rise by 0.04 per doubling under kernel; seeds
    shift everything together (a block effect)."""
    cell, protocol = spec.cell, spec.protocol
    x = cell.log2_strength + 9  # centred on the cpu grid
    seed_shift = 0.03 * math.sin(spec.seed + 1)
    if method in protocol.gradient_methods:
        return 0.5 + 0.03 * x + seed_shift
    return 0.45 + (0.04 * x if cell.attention_type == "kernel" else 0.0) + seed_shift


def fake_run(spec: RunSpec, checkpoint=None) -> dict:
    """A record shaped like ``run_one``'s, in microseconds, with the planted effects of :func:`planted` (per-example
    noise 0.05), example 3 misclassified by every kernel model and example 5 by seed 1's models, near-uniform
    attention in :data:`DEGENERATE_CELL`, and seed 4 of ``lr=0.2 B=8`` missing the fit (kernel)."""
    record = spec_record(spec)
    cell, protocol = spec.cell, spec.protocol
    rng = np.random.default_rng(zlib.crc32(spec.key.encode()))
    correct = np.ones(POOL, dtype=int)
    if cell.attention_type == "kernel":
        correct[3] = 0
    if spec.seed == 1:
        correct[5] = 0
    robustness = {}
    for eps in protocol.epsilons:
        main = eps == protocol.main_epsilon
        for method in protocol.methods if main else protocol.sweep_methods:
            size = min(protocol.ig_examples, POOL) if method == "integrated_gradients" else POOL
            level = planted(spec, method) - 2 * (eps - protocol.main_epsilon)
            for attack, shift in (("topk", 0.0), ("noise", 0.3)):
                values = np.clip(level + shift + rng.normal(0, 0.05, size), 0, 1)
                values[0] = np.nan  # an example the attack could not perturb keeping the label
                robustness[value_key(attack, eps, method, "topk_intersection")] = values.tolist()
                robustness[value_key(attack, eps, method, "kendall_tau")] = (values * 0.9).tolist()
                robustness[value_key(attack, eps, method, "prediction_change_rate")] = (
                    (rng.random(size) < 0.1).astype(float).tolist()
                )
            if main:
                robustness[value_key("topk", eps, method, "max_sensitivity")] = rng.random(size).tolist()
    degenerate = cell.arm == "vit" and (cell.attention_type, cell.learning_rate, cell.batch_size) == DEGENERATE_CELL
    status = "ok"
    if cell.attention_type == "kernel" and (cell.learning_rate, cell.batch_size, spec.seed) == (0.2, 8, 4):
        status = "not_fit"
    step = 0.01 * (10 if cell.regularizer != "none" else 1)
    record.update(
        status=status,
        training={
            "global_step": 100,
            "epochs": 1.0,
            "train_runtime_s": 100 * step,
            "train_loss_at_stop": 0.02 if status == "ok" else 0.05,
            "target_reached": status == "ok",
            "diverged": False,
        },
        accuracy=0.95,
        pool={"split": "test" if spec.role == "main" else "validation", "size": POOL, "correct": correct.tolist()},
        preconditions={
            "cls_entropy_ratio": 0.999 if degenerate else 0.9,
            "cls_cv": 0.005 if degenerate else 0.3,
            "evidence_recall": 0.07 if degenerate else 0.5,
            "evidence_chance": 0.06,
        },
        robustness=robustness,
        total_seconds=1.0,
        total_cpu_seconds=1.0,
    )
    if spec.curvature:
        trace = 100.0 * (1 - 0.05 * (cell.log2_strength + 9)) + rng.normal(0, 2)
        record["diagnostics"] = {
            "hessian_trace": {"value": trace, "stderr": 0.05 * trace, "num_probes": 20},
            "hessian_top_eigenvalue": {"value": trace / 5, "stderr": 0.1, "num_probes": 20},
        }
    return record


def failing_run(spec: RunSpec, checkpoint=None) -> dict:
    """A run function that raises (the executor must record the error and go on)."""
    raise RuntimeError(f"boom {spec.key}")


def sometimes_failing_run(spec: RunSpec, checkpoint=None) -> dict:
    """Fails for seed 1, fakes the others."""
    if spec.seed == 1:
        raise RuntimeError(f"boom {spec.key}")
    return fake_run(spec, checkpoint)


def pid_run(spec: RunSpec, checkpoint=None) -> dict:
    """:func:`fake_run` plus the id of the process that ran it, how many objects it had frozen, and the value of the
    environment variable ``HF_ROBATTR_PROBE``."""
    import gc
    import os

    probe = os.environ.get("HF_ROBATTR_PROBE")
    return {**fake_run(spec, checkpoint), "pid": os.getpid(), "frozen": gc.get_freeze_count(), "probe": probe}
