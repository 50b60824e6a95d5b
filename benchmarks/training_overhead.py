#!/usr/bin/env python
"""Time per training step of plain SGD versus each explicit regularizer, on the same tiny ViT and batch.

    python benchmarks/training_overhead.py [--batch_size 64] [--repeats 3] [--steps 3]

The model is the recipes' from-scratch default (ViT, 32x32 RGB, patch 4 -> 64 patches, hidden 64, 2 layers,
4 heads), the batch is ``batch_size`` random images, the device is the CPU. One step is
``trainer.training_step`` + ``optimizer.step`` + ``zero_grad``. Each configuration is timed ``repeats`` times
round-robin (so background load hits all of them alike) and its fastest mean over ``steps`` steps is kept.
Ratios are against a plain ``transformers.Trainer`` step with the same SGD optimizer. The table is printed as
markdown, with the issue's targets (a straightforward implementation measured on a tiny ViT, batch 64, CPU).

``ig_norm`` with m=50 runs in chunks of 10 IG steps (one graph over all 50 would need about 25 GB at the issue's
scale); with m=10 one chunk holds all steps. The Hutchinson row times the scoring core's ``hessian_trace``
(parameter-space Hessian, Rademacher probes; the core needs >= 2 probes, so 2 are timed and the row reports the
cost per probe as well).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import Trainer
from transformers.utils import logging as hf_logging

from hf_robattr.robustness import hessian_trace
from hf_robattr.training import (
    RobAttrTrainer,
    RobAttrTrainingArguments,
    VisionModelArguments,
    build_vit_classifier,
    second_derivative_context,
)


@dataclass
class Case:
    """One row of the table: a name, the trainer options, and the issue's target ratio (None: no target)."""

    name: str
    options: dict
    target: float | None
    trainer_cls: type = RobAttrTrainer


CASES = [
    Case("plain `Trainer` (baseline)", {}, 1.0, Trainer),
    Case("implicit regime (`--regularizer none`)", {}, 1.0),
    Case("`input_grad_norm`", {"regularizer": "input_grad_norm"}, 2.4),
    Case("`sam`", {"regularizer": "sam"}, 1.8),
    Case("`ig_norm` m=10 (one chunk)", {"regularizer": "ig_norm", "ig_steps": 10, "ig_chunk_size": 10}, 49.0),
    Case("`ig_norm` m=50 (chunks of 10)", {"regularizer": "ig_norm", "ig_steps": 50, "ig_chunk_size": 10}, 212.0),
    Case("`curvature` (finite difference)", {"regularizer": "curvature"}, None),
    Case("`igr` (gradient-norm penalty)", {"regularizer": "igr"}, None),
]
HUTCHINSON_TARGET = 3.1


def make_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_vit_classifier(VisionModelArguments(), label_names=[str(i) for i in range(4)]).train()


def make_step(case: Case, batch: dict, output_dir: str) -> Callable[[], None]:
    """A function that runs one full optimizer step of ``case`` on ``batch``."""
    args = RobAttrTrainingArguments(
        output_dir=output_dir,
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        regularizer_weight=0.01,
        **case.options,
    )
    model = make_model()
    trainer = case.trainer_cls(model=model, args=args)
    trainer.create_optimizer()
    trainer.current_gradient_accumulation_steps = 1
    optimizer = trainer.optimizer

    def step() -> None:
        trainer.training_step(model, dict(batch))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def make_hutchinson(batch: dict) -> Callable[[], None]:
    model = make_model()

    def step() -> None:
        with second_derivative_context():
            hessian_trace(model, batch, num_probes=2, seed=0)

    return step


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def time_per_step(step: Callable[[], None], steps: int, clock: Callable[[], float]) -> float:
    start = clock()
    for _ in range(steps):
        step()
    return (clock() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="Round-robin repeats; the fastest is kept.")
    parser.add_argument("--steps", type=int, default=3, help="Timed steps per repeat (after one warm-up step).")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall: elapsed time; cpu: this process's CPU time (with --threads 1, robust to a shared CPU).",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice).")
    cli = parser.parse_args()
    hf_logging.set_verbosity_error()
    if cli.threads is not None:
        torch.set_num_threads(cli.threads)

    generator = torch.Generator().manual_seed(0)
    batch = {
        "pixel_values": torch.randn(cli.batch_size, 3, 32, 32, generator=generator),
        "labels": torch.randint(0, 4, (cli.batch_size,), generator=generator),
    }
    with tempfile.TemporaryDirectory() as output_dir:
        steps = {case.name: make_step(case, batch, output_dir) for case in CASES}
        steps["hutchinson"] = make_hutchinson(batch)
        for step in steps.values():
            step()  # warm-up
        best = dict.fromkeys(steps, float("inf"))
        for _ in range(cli.repeats):
            for name, step in steps.items():
                best[name] = min(best[name], time_per_step(step, cli.steps, CLOCKS[cli.clock]))

    base = best[CASES[0].name]
    print(f"Tiny ViT (32x32, patch 4, hidden 64, 2 layers), batch {cli.batch_size}, CPU, "
          f"torch threads {torch.get_num_threads()}, {cli.clock} clock, load average {os.getloadavg()[0]:.2f}; fastest of "
          f"{cli.repeats} x {cli.steps} steps.\n")  # fmt: skip
    print("| step | ms / step | ratio to plain step | target | within target |")
    print("|---|---:|---:|---:|:---:|")
    for case in CASES:
        ratio = best[case.name] / base
        target = "-" if case.target is None else f"{case.target:.2f}x"
        within = "-" if case.target is None else ("yes" if ratio <= case.target * 1.05 else "no")
        print(f"| {case.name} | {best[case.name] * 1e3:.1f} | {ratio:.2f}x | {target} | {within} |")
    ratio = best["hutchinson"] / base
    print(
        f"| Hutchinson trace, core `hessian_trace`, 2 probes ({ratio / 2:.2f}x per probe) | "
        f"{best['hutchinson'] * 1e3:.1f} | {ratio:.2f}x | {HUTCHINSON_TARGET:.2f}x (1 probe) | "
        f"{'yes' if ratio / 2 <= HUTCHINSON_TARGET * 1.05 else 'no'} |"
    )
    print("\n`within target` allows 5% timing noise; the implicit regime's target is 1.00x (nothing added).")


if __name__ == "__main__":
    main()
