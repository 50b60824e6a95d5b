#!/usr/bin/env python
"""Time per training step of plain SGD versus each explicit regularizer, on the same tiny ViT and batch.

    python benchmarks/training_overhead.py [--batch_size 64] [--repeats 3] [--steps 3]

The model is the recipes' from-scratch default (ViT, 32x32 RGB, patch 4 -> 64 patches, hidden 64, 2 layers,
4 heads), the batch is ``batch_size`` random images, the device is the CPU. One step is
``trainer.training_step`` + ``optimizer.step`` + ``zero_grad``. Each configuration is timed ``repeats`` times
round-robin (so background load hits all of them alike) and its fastest mean over ``steps`` steps is kept.
Ratios are against a plain ``transformers.Trainer`` step with the same SGD optimizer. The table is printed as
markdown, with the issue's targets (a straightforward implementation measured on a tiny ViT, batch 64, CPU).

``ig_norm`` with m=50 runs in chunks of 10 or 25 IG steps, so memory stays at one chunk's graph (about 110 MB per
step here: 1.1 GB or 2.8 GB; one graph over all 50 steps takes about 5.5 GB here, and the issue puts it at 25 GB at
its scale); with m=10 one chunk holds all steps. The exact chunked gradient costs an extra first-order pass over the
points of all chunks but one (see ``IGNormRegularizer``); its straightforward reference is the same two-pass scheme
written the obvious way, and the one-graph loop (no extra pass, five times the memory) is timed beside it.

The Hutchinson row times the scoring core's ``hessian_trace`` (parameter-space Hessian, Rademacher probes,
``rel_stderr=None`` so exactly 2 are drawn: the core needs >= 2 for a standard error; the row also reports the cost
per probe).

The matched-fit row times one check of ``--target_train_loss`` (``TargetLossCallback.measure``: the eval-mode loss on
the first 1024 training examples, 256 per forward) and its share of the training time at the defaults (one check
every 1024 training examples, i.e. every ``1024 / batch_size`` plain steps).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from datasets import Dataset
from timing_options import add_timing_options, apply_timing_options
from transformers import Trainer, default_data_collator
from transformers.utils import logging as hf_logging

from hf_robattr.attribution.inputs import twice_differentiable_attention
from hf_robattr.robustness import hessian_trace
from hf_robattr.training import (
    RobAttrTrainer,
    RobAttrTrainingArguments,
    VisionModelArguments,
    build_vit_classifier,
    training_callbacks,
)


@dataclass
class Case:
    """One row: a name, the trainer options, the issue's target ratio (None: no target) and the name of a
    straightforward reference implementation timed beside it (None: none)."""

    name: str
    options: dict
    target: float | None
    trainer_cls: type = RobAttrTrainer
    reference: str | None = None


CASES = [
    Case("plain `Trainer` (baseline)", {}, 1.0, Trainer),
    Case("implicit regime (`--regularizer none`)", {}, 1.0),
    Case("`input_grad_norm`", {"regularizer": "input_grad_norm"}, 2.4, reference="input_grad_norm"),
    Case("`sam`", {"regularizer": "sam"}, 1.8, reference="sam"),
    Case(
        "`ig_norm` m=10 (one chunk)",
        {"regularizer": "ig_norm", "ig_steps": 10, "ig_chunk_size": 10},
        49.0,
        reference="ig_norm_10",
    ),
    Case(
        "`ig_norm` m=50 (chunks of 10)",
        {"regularizer": "ig_norm", "ig_steps": 50, "ig_chunk_size": 10},
        212.0,
        reference="ig_norm_50_chunks_10",
    ),
    Case(
        "`ig_norm` m=50 (chunks of 25)",
        {"regularizer": "ig_norm", "ig_steps": 50, "ig_chunk_size": 25},
        212.0,
        reference="ig_norm_50_chunks_25",
    ),
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


def make_matched_fit_check(output_dir: str, num_examples: int = 1024) -> Callable[[], None]:
    """One matched-fit check (the callback the recipes build from ``--target_train_loss``) on a random training set."""
    generator = torch.Generator().manual_seed(1)
    pixels = torch.randn(num_examples, 3, 32, 32, generator=generator)
    labels = torch.randint(0, 4, (num_examples,), generator=generator)
    dataset = Dataset.from_dict({"pixel_values": pixels.numpy(), "labels": labels.numpy()}).with_format("torch")
    args = RobAttrTrainingArguments(
        output_dir=output_dir,
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        target_train_loss=1e-9,
        target_loss_examples=num_examples,
    )
    callbacks = training_callbacks(args)
    RobAttrTrainer(
        model=make_model(), args=args, train_dataset=dataset, data_collator=default_data_collator, callbacks=callbacks
    )  # binds the callback to its trainer
    (check,) = callbacks

    def step() -> None:
        check.measure(args)

    return step


def make_hutchinson(batch: dict) -> Callable[[], None]:
    model = make_model()

    def step() -> None:
        with twice_differentiable_attention():
            hessian_trace(model, batch, num_probes=2, seed=0, rel_stderr=None)

    return step


# Straightforward references: plain PyTorch, one optimizer step each, written the obvious way (no Trainer).
WEIGHT, RHO, IG_EPSILON = 0.01, 0.01, 0.1


def _reference_input_grad_norm(model, optimizer, x, y):
    x = x.clone().requires_grad_(True)
    losses = F.cross_entropy(model(pixel_values=x).logits, y, reduction="none")
    (grad,) = torch.autograd.grad(losses.sum(), x, create_graph=True)
    (losses.mean() + WEIGHT * grad.pow(2).sum((1, 2, 3)).mean()).backward()


def _reference_sam(model, optimizer, x, y):
    F.cross_entropy(model(pixel_values=x).logits, y).backward()
    params = [p for p in model.parameters() if p.grad is not None]
    norm = torch.sqrt(sum(p.grad.pow(2).sum() for p in params))
    shifts = [RHO * p.grad / norm for p in params]
    with torch.no_grad():
        for p, e in zip(params, shifts):
            p.add_(e)
    optimizer.zero_grad(set_to_none=True)
    F.cross_entropy(model(pixel_values=x).logits, y).backward()
    with torch.no_grad():
        for p, e in zip(params, shifts):
            p.sub_(e)


def _reference_ig_norm_10(model, optimizer, x, y, steps=10):
    loss = F.cross_entropy(model(pixel_values=x).logits, y)
    baseline = x + (torch.rand_like(x) * 2 - 1) * IG_EPSILON
    total = 0
    for k in range(1, steps + 1):
        point = (baseline + k / steps * (x - baseline)).requires_grad_(True)
        (grad,) = torch.autograd.grad(
            F.cross_entropy(model(pixel_values=point).logits, y, reduction="sum"), point, create_graph=True
        )
        total = total + grad
    ig = (x - baseline) * total / steps
    (loss + WEIGHT * ig.abs().sum((1, 2, 3)).mean()).backward()


def _reference_hutchinson_1(model, optimizer, x, y):
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(F.cross_entropy(model(pixel_values=x).logits, y), params, create_graph=True)
    probes = [torch.randint_like(p, 2) * 2 - 1 for p in params]
    hvps = torch.autograd.grad(sum((g * v).sum() for g, v in zip(grads, probes)), params)
    sum((h * v).sum() for h, v in zip(hvps, probes)).item()


def _reference_ig_norm_50(model, optimizer, x, y):
    _reference_ig_norm_10(model, optimizer, x, y, steps=50)


def _reference_ig_norm_chunked(model, optimizer, x, y, steps=50, chunk_size=10):
    """Exact chunked gradient, the obvious way: every point once without a graph (for sign(IG)), then chunk by chunk
    with a graph, back-propagating sign(IG) * (x - b) / m through the path gradients."""
    loss = F.cross_entropy(model(pixel_values=x).logits, y)
    baseline = x + (torch.rand_like(x) * 2 - 1) * IG_EPSILON
    alphas = [k / steps for k in range(1, steps + 1)]

    def path_gradient(alpha, create_graph):
        point = (baseline + alpha * (x - baseline)).requires_grad_(True)
        loss = F.cross_entropy(model(pixel_values=point).logits, y, reduction="sum")
        return torch.autograd.grad(loss, point, create_graph=create_graph)[0]

    total = sum(path_gradient(alpha, False) for alpha in alphas)
    weights = ((x - baseline) * total).sign() * (x - baseline) / (steps * x.shape[0])
    for start in range(0, steps, chunk_size):
        chunk = sum(path_gradient(alpha, True) for alpha in alphas[start : start + chunk_size])
        (WEIGHT * (chunk * weights).sum()).backward()
    loss.backward()


REFERENCES = {
    "input_grad_norm": _reference_input_grad_norm,
    "sam": _reference_sam,
    "ig_norm_10": _reference_ig_norm_10,
    "ig_norm_50": _reference_ig_norm_50,
    "ig_norm_50_chunks_10": _reference_ig_norm_chunked,
    "ig_norm_50_chunks_25": lambda *args: _reference_ig_norm_chunked(*args, chunk_size=25),
    "hutchinson_1": _reference_hutchinson_1,
}


def make_reference(name: str, batch: dict) -> Callable[[], None]:
    """One step of the straightforward implementation ``name`` (SGD, MATH attention)."""
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.0)
    function = REFERENCES[name]

    def step() -> None:
        with twice_differentiable_attention():
            function(model, optimizer, batch["pixel_values"], batch["labels"])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


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
    add_timing_options(parser, device=False)
    cli = parser.parse_args()
    clock, _ = apply_timing_options(parser, cli)
    hf_logging.set_verbosity_error()

    generator = torch.Generator().manual_seed(0)
    batch = {
        "pixel_values": torch.randn(cli.batch_size, 3, 32, 32, generator=generator),
        "labels": torch.randint(0, 4, (cli.batch_size,), generator=generator),
    }
    with tempfile.TemporaryDirectory() as output_dir:
        steps = {case.name: make_step(case, batch, output_dir) for case in CASES}
        steps["hutchinson"] = make_hutchinson(batch)
        steps["matched_fit_check"] = make_matched_fit_check(output_dir)
        steps.update({f"reference/{name}": make_reference(name, batch) for name in REFERENCES})
        for step in steps.values():
            step()  # warm-up
        best = dict.fromkeys(steps, float("inf"))
        for _ in range(cli.repeats):
            for name, step in steps.items():
                best[name] = min(best[name], time_per_step(step, cli.steps, clock))

    base = best[CASES[0].name]
    print(f"Tiny ViT (32x32, patch 4, hidden 64, 2 layers), batch {cli.batch_size}, CPU, "
          f"torch threads {torch.get_num_threads()}, {cli.clock} clock, load average {os.getloadavg()[0]:.2f}; fastest of "
          f"{cli.repeats} x {cli.steps} steps.\n")  # fmt: skip
    print(
        "| step | ms / step | ratio to plain step | straightforward impl. here | issue's target | <= target | <= straightforward |"
    )
    print("|---|---:|---:|---:|---:|:---:|:---:|")
    for case in CASES:
        ratio = best[case.name] / base
        reference = best.get(f"reference/{case.reference}") if case.reference else None
        print(
            f"| {case.name} | {best[case.name] * 1e3:.1f} | {ratio:.2f}x | {_ratio(reference, base)} | "
            f"{_ratio(case.target, 1.0)} | {_check(ratio, case.target)} | {_check(best[case.name], reference)} |"
        )
    one_graph = best["reference/ig_norm_50"]
    print(
        f"| `ig_norm` m=50, straightforward in one graph (~5.5 GB; no chunks) | {one_graph * 1e3:.1f} | "
        f"{one_graph / base:.2f}x | - | {_ratio(212.0, 1.0)} | {_check(one_graph / base, 212.0)} | - |"
    )
    ratio, reference = best["hutchinson"] / base, best["reference/hutchinson_1"]
    print(
        f"| Hutchinson trace: core `hessian_trace`, 2 probes | {best['hutchinson'] * 1e3:.1f} | {ratio:.2f}x | "
        f"{_ratio(reference, base)} (1 probe) | {HUTCHINSON_TARGET:.2f}x (1 probe) | {_check(ratio / 2, HUTCHINSON_TARGET)} "
        f"(per probe) | {_check(best['hutchinson'] / 2, reference)} (per probe) |"
    )
    check = best["matched_fit_check"]
    share = check / (1024 / cli.batch_size * base)
    print(
        f"| matched-fit check: eval-mode loss on 1024 training examples | {check * 1e3:.1f} | {check / base:.2f}x | "
        f"- | - | - | - |\n\nA matched-fit check every 1024 training examples (the default) adds {share:.0%} to the "
        f"plain training time at batch {cli.batch_size}."
    )
    print(
        "\n`<=` allows 5% timing noise. The implicit regime's target is 1.00x (nothing added). Straightforward "
        "implementations: plain PyTorch steps written the obvious way (double backprop; SAM's two passes; "
        "IG with a Python loop over its steps in one graph, and for m=50 in chunks: every point once without a graph, "
        "then chunk by chunk with one; one Hutchinson HVP)."
    )


def _ratio(value: float | None, base: float) -> str:
    return "-" if value is None else f"{value / base:.2f}x"


def _check(value: float, bound: float | None) -> str:
    return "-" if bound is None else ("yes" if value <= bound * 1.05 else "no")


if __name__ == "__main__":
    main()
