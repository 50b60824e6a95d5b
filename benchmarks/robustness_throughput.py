"""Throughput and agreement of the scoring core against Quantus and captum (issue 3, section 6).

Same model, inputs and noise for everyone. The core (``hf_robattr.robustness.sensitivity_family``) is timed against:

- Quantus ``MaxSensitivity``, ``LocalLipschitzEstimate`` and ``RelativeInputStability`` at their default sample
  counts (200; ``--samples`` changes it) with ``quantus.explain`` over captum ``Saliency`` (summed over channels, as
  the core's maps are).
  Quantus draws noise inside; here it replays the draws the core gets, so values can be compared one to one.
  ``LocalLipschitzEstimate`` runs with ``normalise=False`` (its default normalises maps; the definition in the
  literature, and the core's, does not).
- captum ``sensitivity_max`` (10 samples, L-inf radius 0.02, its defaults), with the same replayed noise.
- The floor: the same forward+backward passes (input gradients of the target logit) run as one bare loop.

It also times one top-k PGD step of the attribution attack (the difference between 11 and 1 steps, over 10)
against a plain forward+backward pass: input gradients on the default SDPA kernel, the same on the MATH kernel the
attack must use for its double backward, and a training step with parameter gradients.
Timings are the fastest of ``--repeats`` interleaved runs (the CPU may be shared). Prints markdown tables.

``--sharding`` instead times sharded scoring (issue 15): ``evaluate_attribution_robustness`` on ``--shard-examples``
(64) ViT examples in 1 process and in 2 gloo processes (CPU, 1 thread each), fastest of ``--repeats`` calls after a
warm-up, and checks that both give the same per-example values (target: >= 1.6x).

    python benchmarks/robustness_throughput.py [--batch 16] [--image-size 32] [--repeats 3] [--device cuda]
    python benchmarks/robustness_throughput.py --batch 2 --samples 10 --repeats 1   # the plumbing only (smoke)
    python benchmarks/robustness_throughput.py --sharding [--shard-examples 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import nn


warnings.filterwarnings("ignore")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import quantus  # noqa: E402
from captum.attr import Saliency as CaptumSaliency  # noqa: E402
from captum.metrics import sensitivity_max  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from timing_options import CLOCKS, add_timing_options, apply_timing_options  # noqa: E402
from transformers import ViTConfig, ViTForImageClassification  # noqa: E402

from hf_robattr.attribution import Saliency, prepare_inputs  # noqa: E402
from hf_robattr.attribution.inputs import forward_logits, frozen_eval, twice_differentiable_attention  # noqa: E402
from hf_robattr.robustness import (  # noqa: E402
    AttackProblem,
    RobustnessConfig,
    evaluate_attribution_robustness,
    get_attack,
    sensitivity_family,
)


QUANTUS_SAMPLES = 200  # Quantus' default nr_samples for all three metrics (--samples changes it)
CAPTUM_SAMPLES, CAPTUM_RADIUS = 10, 0.02  # captum sensitivity_max defaults


class LogitsOnly(nn.Module):
    """The HF model as Quantus and captum need it: pixels in, a logits tensor out."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values).logits


DEVICE = torch.device("cpu")
VIT = dict(patch_size=4, num_channels=3, hidden_size=64, num_hidden_layers=4, num_attention_heads=4)
VIT.update(intermediate_size=128, num_labels=10)


def build(batch: int, image_size: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    config = ViTConfig(image_size=image_size, **VIT)
    model = LogitsOnly(ViTForImageClassification(config)).eval().to(DEVICE)
    digits = torch.tensor(load_digits().images[:batch], dtype=torch.float32)[:, None] / 16.0
    x = torch.nn.functional.interpolate(digits, size=image_size, mode="bilinear").repeat(1, 3, 1, 1).contiguous()
    x = x.to(DEVICE)
    with torch.no_grad():
        targets = model(x).argmax(1)
    return model, x, targets


CLOCK = CLOCKS["wall"]


def synchronize() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def fastest(runs: dict[str, Callable[[], object]], repeats: int) -> tuple[dict[str, float], dict[str, object]]:
    """Fastest of ``repeats`` interleaved runs of each contender, and each one's last result."""
    best = dict.fromkeys(runs, math.inf)
    results: dict[str, object] = {}
    for _ in range(repeats):
        for name, run in runs.items():
            synchronize()
            start = CLOCK()
            results[name] = run()
            synchronize()
            best[name] = min(best[name], CLOCK() - start)
    return best, results


def replay(noise: torch.Tensor) -> Callable[..., np.ndarray]:
    """A Quantus perturb_func that adds the s-th of our draws on its s-th call (per metric call)."""
    state = {"step": 0}

    def perturb(arr: np.ndarray, indices: np.ndarray, **kwargs: object) -> np.ndarray:
        step = state["step"] % noise.shape[1]
        state["step"] += 1
        return arr + noise[:, step].reshape(arr.shape[0], -1).cpu().numpy()

    return perturb


def agreement(ours: torch.Tensor, theirs: np.ndarray) -> tuple[float, float]:
    theirs_t = torch.as_tensor(np.asarray(theirs.cpu() if torch.is_tensor(theirs) else theirs, dtype=np.float64))
    ours = ours.double().cpu()
    both = ~(torch.isnan(ours) | torch.isnan(theirs_t))
    diff = (ours[both] - theirs_t[both]).abs()
    return diff.max().item(), (diff / theirs_t[both].abs().clamp_min(1e-12)).max().item()


def quantus_table(
    model: nn.Module, x: torch.Tensor, targets: torch.Tensor, repeats: int, chunk: int, samples: int
) -> list[str]:
    generator = torch.Generator().manual_seed(0)
    uniform = ((torch.rand((x.shape[0], samples, *x.shape[1:]), generator=generator) * 2 - 1) * 0.2).to(DEVICE)
    gaussian = (torch.randn((x.shape[0], samples, *x.shape[1:]), generator=generator) * 0.1).to(DEVICE)
    explain = {"method": "Saliency", "reduce_axes": (1,)}
    x_np, y_np = x.cpu().numpy(), targets.cpu().numpy()

    def run_quantus(metric_cls: type, noise: torch.Tensor, **kwargs: object) -> Callable[[], object]:
        def run() -> object:
            metric = metric_cls(nr_samples=samples, perturb_func=replay(noise), disable_warnings=True, **kwargs)
            data = dict(x_batch=x_np, y_batch=y_np, explain_func=quantus.explain, explain_func_kwargs=explain)
            return metric(model=model, device=str(DEVICE), batch_size=x.shape[0], **data)

        return run

    def run_core(noise: torch.Tensor, measures: tuple[str, ...], keep_label: bool) -> Callable[[], object]:
        return lambda: sensitivity_family(
            model, x, targets=targets, perturbations=noise, measures=measures, keep_label=keep_label, batch_size=chunk
        )

    lipschitz = ("LocalLipschitzEstimate", "local_lipschitz", quantus.LocalLipschitzEstimate)
    rows = [
        ("MaxSensitivity", "max_sensitivity", quantus.MaxSensitivity, uniform, {}, False),
        (*lipschitz, gaussian, {"normalise": False}, False),
        ("RelativeInputStability", "relative_input_stability", quantus.RelativeInputStability, uniform, {}, True),
    ]
    runs: dict[str, Callable[[], object]] = {}
    for label, measure, metric_cls, noise, kwargs, keep in rows:
        runs[f"quantus/{label}"] = run_quantus(metric_cls, noise, **kwargs)
        runs[f"core/{label}"] = run_core(noise, (measure,), keep)
    # The core's way: one set of perturbed passes serves max sensitivity and RIS together.
    runs["core/family"] = lambda: (
        run_core(uniform, ("max_sensitivity", "relative_input_stability"), True)(),
        run_core(gaussian, ("local_lipschitz",), False)(),
    )
    times, results = fastest(runs, repeats)
    table = [
        f"| Quantus metric ({samples} samples, batch {x.shape[0]}) | Quantus s | core s | speed-up | max abs diff | max rel diff |",
        "|---|---|---|---|---|---|",
    ]
    for label, measure, *_ in rows:
        abs_diff, rel_diff = agreement(results[f"core/{label}"][measure], results[f"quantus/{label}"])
        quantus_s, core_s = times[f"quantus/{label}"], times[f"core/{label}"]
        table.append(
            f"| {label} | {quantus_s:.2f} | {core_s:.2f} | {quantus_s / core_s:.2f}x | {abs_diff:.1e} | {rel_diff:.1e} |"
        )
    total = sum(times[f"quantus/{label}"] for label, *_ in rows)
    table.append(
        f"| all three (core shares the uniform passes of MaxSensitivity and RIS) | {total:.2f} | "
        f"{times['core/family']:.2f} | {total / times['core/family']:.2f}x | | |"
    )
    if DEVICE.type == "cuda":
        speedup = total / times["core/family"]
        verdict = "PASS" if speedup >= 10 else "FAIL"
        table.append(
            f"\n- target (issue 15): core >= 10x Quantus at equal values on the GPU: {verdict} ({speedup:.1f}x)"
        )
    return table


def captum_table(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, repeats: int, chunk: int) -> list[str]:
    generator = torch.Generator().manual_seed(1)
    noise = ((torch.rand((x.shape[0], CAPTUM_SAMPLES, *x.shape[1:]), generator=generator) * 2 - 1) * CAPTUM_RADIUS).to(
        DEVICE
    )
    flat = noise.reshape(-1, *x.shape[1:])
    saliency = CaptumSaliency(model)

    def explain(inputs: torch.Tensor | tuple[torch.Tensor, ...], target: torch.Tensor) -> tuple[torch.Tensor, ...]:
        inputs = inputs[0] if isinstance(inputs, tuple) else inputs
        return (saliency.attribute(inputs, target=target).sum(1),)

    runs = {
        "captum": lambda: sensitivity_max(
            explain, x, perturb_func=lambda inputs, perturb_radius=0.0: inputs + flat, target=targets
        ),
        "core": lambda: sensitivity_family(
            model,
            x,
            targets=targets,
            perturbations=noise,
            measures=("max_sensitivity",),
            keep_label=False,
            batch_size=chunk,
        ),
    }
    times, results = fastest(runs, repeats)
    abs_diff, rel_diff = agreement(results["core"]["max_sensitivity"], results["captum"])
    return [
        f"| captum metric ({CAPTUM_SAMPLES} samples, batch {x.shape[0]}) | captum s | core s | speed-up | max abs diff | max rel diff |",
        "|---|---|---|---|---|---|",
        f"| sensitivity_max | {times['captum']:.3f} | {times['core']:.3f} | {times['captum'] / times['core']:.2f}x "
        f"| {abs_diff:.1e} | {rel_diff:.1e} |",
    ]


def floor_table(
    model: nn.Module, x: torch.Tensor, targets: torch.Tensor, repeats: int, chunk: int, samples: int
) -> list[str]:
    generator = torch.Generator().manual_seed(2)
    noise = ((torch.rand((x.shape[0], samples, *x.shape[1:]), generator=generator) * 2 - 1) * 0.2).to(DEVICE)
    expanded = (x.unsqueeze(1) + noise).reshape(-1, *x.shape[1:])
    expanded_targets = targets.repeat_interleave(samples)

    def bare() -> None:
        # The same passes as the core: the clean batch, then B * S perturbed copies in chunks.
        with frozen_eval(model):
            for inputs, labels in [(x, targets)] + [
                (expanded[i : i + chunk], expanded_targets[i : i + chunk]) for i in range(0, len(expanded), chunk)
            ]:
                inputs = inputs.clone().requires_grad_(True)
                logits = model(inputs)
                torch.autograd.grad(logits.gather(1, labels[:, None]).sum(), inputs)

    runs = {
        "bare": bare,
        "core": lambda: sensitivity_family(
            model, x, targets=targets, perturbations=noise, keep_label=True, batch_size=chunk
        ),
    }
    times, _ = fastest(runs, repeats)
    passes = x.shape[0] * (samples + 1)
    return [
        f"| whole family, {passes} forward+backward examples in chunks of {chunk} | bare loop s | core s | efficiency (bare / core) |",
        "|---|---|---|---|",
        f"| max/avg sensitivity, local Lipschitz, RIS + label check | {times['bare']:.2f} | {times['core']:.2f} | "
        f"{times['bare'] / times['core']:.2f} |",
    ]


def attack_table(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, repeats: int) -> list[str]:
    prepared = prepare_inputs(model, x)
    method = Saliency()

    def attack(steps: int) -> Callable[[], object]:
        def run() -> object:
            with frozen_eval(model), twice_differentiable_attention():
                clean = method.explain(model, prepared, targets).maps
                config = RobustnessConfig(num_steps=steps, k=0.1)
                generator = torch.Generator().manual_seed(0)
                problem = AttackProblem(model, method, prepared, targets, targets, clean, config, generator=generator)
                return get_attack("topk")()(problem)

        return run

    def input_gradient() -> None:
        with frozen_eval(model):
            inputs = x.clone().requires_grad_(True)
            torch.autograd.grad(forward_logits(model, prepared, inputs).gather(1, targets[:, None]).sum(), inputs)

    def input_gradient_math() -> None:
        with twice_differentiable_attention():
            input_gradient()

    def training_step() -> None:
        model.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), targets).backward()
        model.zero_grad(set_to_none=True)

    runs = {
        "steps1": attack(1),
        "steps11": attack(11),
        "input_grad": input_gradient,
        "input_grad_math": input_gradient_math,
        "train": training_step,
    }
    times, _ = fastest(runs, repeats)
    step = (times["steps11"] - times["steps1"]) / 10
    return [
        f"| top-k PGD step (batch {x.shape[0]}) | s per step | plain forward+backward s | ratio |",
        "|---|---|---|---|",
        f"| vs input-gradient forward+backward | {step:.4f} | {times['input_grad']:.4f} | {step / times['input_grad']:.2f}x |",
        f"| vs input-gradient forward+backward, MATH attention like the attack | {step:.4f} | "
        f"{times['input_grad_math']:.4f} | {step / times['input_grad_math']:.2f}x |",
        f"| vs training forward+backward (parameter grads) | {step:.4f} | {times['train']:.4f} | {step / times['train']:.2f}x |",
    ]


def _sharded_worker(rank: int, world_size: int, rendezvous: str, examples: int, repeats: int, out: dict) -> None:
    """One process of the sharding benchmark: 1 thread, the same model and data everywhere, timed calls."""
    torch.set_num_threads(1)
    if world_size > 1:
        torch.distributed.init_process_group(
            "gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world_size
        )
    model, x, _ = build(examples, 32)
    config = RobustnessConfig(num_steps=10, num_samples=10, batch_size=16)
    times, cpu_times = [], []
    for _ in range(repeats + 1):  # the first call warms up
        if world_size > 1:
            torch.distributed.barrier()
        start, cpu_start = time.perf_counter(), time.process_time()
        result = evaluate_attribution_robustness(model, x, config, return_per_sample=True, progress=False)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    out[rank] = (min(times[1:]), min(cpu_times[1:]), result["per_sample"])
    if world_size > 1:
        torch.distributed.destroy_process_group()


def sharding_table(examples: int, repeats: int) -> list[str]:
    manager = torch.multiprocessing.Manager()
    timings, cpu, values = {}, {}, {}
    for world_size in (1, 2):
        out = manager.dict()
        with tempfile.TemporaryDirectory() as folder:
            torch.multiprocessing.spawn(
                _sharded_worker,
                args=(world_size, os.path.join(folder, "rendezvous"), examples, repeats, out),
                nprocs=world_size,
            )
        timings[world_size] = max(out[rank][0] for rank in range(world_size))
        cpu[world_size] = max(out[rank][1] for rank in range(world_size))
        values[world_size] = [out[rank][2] for rank in range(world_size)]
    single = values[1][0]
    diffs = [
        max(
            abs(a - b)
            for key in single
            for a, b in zip(single[key], got[key])
            if not (math.isnan(a) and math.isnan(b))
        )
        for got in values[2]
    ]
    speedup = timings[1] / timings[2]
    # CPU seconds of the busiest process: what the wall time would be if each process had a core to itself.
    return [
        f"| sharded scoring, {examples} ViT examples (topk attack, 10 steps, 10 samples) | wall s | speed-up | "
        "CPU s (busiest process) | speed-up by CPU s | max abs diff vs 1 process |",
        "|---|---|---|---|---|---|",
        f"| 1 process, 1 thread | {timings[1]:.2f} | 1.00x | {cpu[1]:.2f} | 1.00x | |",
        f"| 2 processes (gloo), 1 thread each | {timings[2]:.2f} | {speedup:.2f}x | {cpu[2]:.2f} | "
        f"{cpu[1] / cpu[2]:.2f}x | {max(diffs):.1e} |",
        "",
        f"- target (issue 15): >= 1.6x wall with equal results: {'PASS' if speedup >= 1.6 and max(diffs) < 1e-4 else 'FAIL'}"
        " (wall time needs 2 idle cores: compare the CPU-time column on a shared machine)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16, help="examples scored")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--chunk", type=int, default=400, help="perturbed examples per forward pass in the core")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--samples",
        type=int,
        default=QUANTUS_SAMPLES,
        help=f"perturbed samples per example of the Quantus comparison and the floor (default {QUANTUS_SAMPLES}, "
        "Quantus' own default; fewer only to check the plumbing)",
    )
    parser.add_argument("--sharding", action="store_true", help="time 1 vs 2 gloo processes instead (CPU)")
    parser.add_argument("--shard-examples", type=int, default=64, help="examples scored by --sharding")
    add_timing_options(parser)
    args = parser.parse_args()
    if args.samples < 1:
        parser.error(f"--samples must be at least 1, got {args.samples}")
    global CLOCK, DEVICE
    CLOCK, DEVICE = apply_timing_options(parser, args)
    if args.sharding:
        print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}\n")
        print("\n".join(sharding_table(args.shard_examples, args.repeats)))
        print(f"\nload average after: {os.getloadavg()[0]:.2f}")
        return
    model, x, targets = build(args.batch, args.image_size)
    params = sum(p.numel() for p in model.parameters())
    where = torch.cuda.get_device_name() if DEVICE.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(
        f"ViT {args.image_size}x{args.image_size}x3, patch 4, 4 layers, hidden 64 ({params / 1e6:.2f}M parameters); "
        f"torch {torch.__version__}, {where}, {args.clock} clock, "
        f"load average {os.getloadavg()[0]:.2f}\n"
    )
    for table in (
        quantus_table(model, x, targets, args.repeats, args.chunk, args.samples),
        captum_table(model, x, targets, args.repeats, args.chunk),
        floor_table(model, x, targets, args.repeats, args.chunk, args.samples),
        attack_table(model, x, targets, args.repeats),
    ):
        print("\n".join(table) + "\n")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
