"""Softmax (SDPA) versus kernel attention: forward+backward time and peak memory against sequence length.

Usage::

    python benchmarks/attention_scaling.py                      # N = 256 ... 16384, B=1, H=4, D=32, elu+1
    python benchmarks/attention_scaling.py --lengths 256 1024 --model-tokens 0   # quick run, no whole-model row
    python benchmarks/attention_scaling.py --device cuda --lengths 1024 4096 16384 65536 --min-seconds 0.2

It prints a markdown table of times, their ratio and peak memory per sequence length, the log-log slopes of time
against N (1 = linear, 2 = quadratic), the whole-model ratio for a 1-layer ViT whose image gives 16385 tokens, and
whether the issue's targets hold.

Times are measured in this process (fastest of several runs: on a shared CPU other processes only ever add time).
Peak memory is measured in a child process started with ``MALLOC_MMAP_THRESHOLD_`` set, so that freed tensors go
back to the OS and cannot hide a later peak; it is the growth of the resident set during one forward+backward
(``VmHWM`` after a reset through ``/proc/self/clear_refs``, Linux only). That allocator setting slows large
allocations down, which is why timing does not run under it. The CPU may be shared: note the load next to numbers.

On ``--device cuda`` every tensor and module lives on the GPU, the clock is read after ``torch.cuda.synchronize()``,
and peak memory is the growth of ``torch.cuda.max_memory_allocated()`` during one forward+backward, in this process.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch
from timing_options import add_timing_options, apply_timing_options
from torch import nn


DEFAULT_LENGTHS = [256, 512, 1024, 2048, 4096, 8192, 16384]


def _rss_mib(field: str) -> float:
    with open("/proc/self/status") as status:
        return int(re.search(rf"{field}:\s+(\d+)", status.read()).group(1)) / 1024


def peak_memory_mib(step: Callable[[], None]) -> float:
    """Resident-memory growth (MiB) during one call of ``step``, after one warm-up call."""
    step()
    before = _rss_mib("VmRSS")
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # resets VmHWM to the current resident set
    step()
    return max(_rss_mib("VmHWM") - before, 0.0)


def cuda_peak_memory_mib(step: Callable[[], None]) -> float:
    """GPU memory growth (MiB) during one call of ``step``, after one warm-up call."""
    step()
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    return max(torch.cuda.max_memory_allocated() - before, 0) / 2**20


def synchronized(step: Callable[[], None], device: torch.device) -> Callable[[], None]:
    """``step`` followed by a CUDA synchronisation on a GPU, so a clock read after it sees the finished work."""
    if device.type != "cuda":
        return step

    def run() -> None:
        step()
        torch.cuda.synchronize(device)

    return run


def fastest_seconds(
    step: Callable[[], None],
    min_seconds: float,
    min_repeats: int = 3,
    max_repeats: int = 20,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Fastest of the timed calls of ``step`` after one warm-up; calls go on until both minimums are met."""
    step()
    times: list[float] = []
    while (sum(times) < min_seconds or len(times) < min_repeats) and len(times) < max_repeats:
        start = clock()
        step()
        times.append(clock() - start)
    return min(times)


class _KernelModule(nn.Module):
    """What ``kernel_attention_forward`` reads from an HF attention module."""

    def __init__(self, feature_map: nn.Module, eps: float = 1e-6):
        super().__init__()
        self.feature_map = feature_map
        self.kernel_eps = eps


def attention_op_step(
    kind: str, length: int, heads: int, head_dim: int, feature_map: str, device: torch.device
) -> Callable[[], None]:
    """A closure running one forward+backward of the attention op alone (B=1): ``kind`` is "sdpa" or "kernel"."""
    from hf_robattr.models import build_feature_map, kernel_attention_forward

    generator = torch.Generator().manual_seed(0)
    q, k, v = (
        torch.randn(1, heads, length, head_dim, generator=generator).to(device).requires_grad_() for _ in range(3)
    )
    probe = torch.randn(1, length, heads, head_dim, generator=generator).to(device)
    module = _KernelModule(build_feature_map(feature_map, num_heads=heads, head_dim=head_dim)).to(device).eval()

    def step() -> None:
        if kind == "sdpa":
            out = nn.functional.scaled_dot_product_attention(q, k, v).transpose(1, 2)
        else:
            out, _ = kernel_attention_forward(module, q, k, v, None)
        out.backward(probe)
        q.grad = k.grad = v.grad = None

    return step


def vit_step(
    attention_type: str, tokens: int, heads: int, head_dim: int, feature_map: str, device: torch.device
) -> Callable[[], None]:
    """A closure running one training forward+backward of a 1-layer RobAttr ViT whose image gives ``tokens`` tokens."""
    from hf_robattr.models import RobAttrViTConfig, RobAttrViTForImageClassification

    patch = 16
    side = round(math.sqrt(tokens - 1)) * patch
    config = RobAttrViTConfig(
        attention_type=attention_type,
        kernel_feature_map=feature_map,
        hidden_size=heads * head_dim,
        num_attention_heads=heads,
        num_hidden_layers=1,
        intermediate_size=4 * heads * head_dim,
        image_size=side,
        patch_size=patch,
        num_labels=10,
    )
    torch.manual_seed(0)
    model = RobAttrViTForImageClassification(config).to(device).train()
    pixels = torch.randn(1, 3, side, side).to(device)
    labels = torch.tensor([3], device=device)

    def step() -> None:
        model(pixels, labels=labels).loss.backward()
        model.zero_grad(set_to_none=True)

    return step


def benchmark_steps(args: argparse.Namespace) -> dict[str, Callable[[], Callable[[], None]]]:
    """Name -> factory of the step to measure, in measuring order."""
    steps: dict[str, Callable[[], Callable[[], None]]] = {}
    device = torch.device(args.device)
    for length in args.lengths:
        for kind in ("sdpa", "kernel"):
            steps[f"{kind}-{length}"] = lambda kind=kind, length=length: synchronized(
                attention_op_step(kind, length, args.heads, args.head_dim, args.feature_map, device), device
            )
    if args.model_tokens > 0:
        for attention_type in ("softmax", "kernel"):
            steps[f"vit-{attention_type}"] = lambda attention_type=attention_type: synchronized(
                vit_step(attention_type, args.model_tokens, args.heads, args.head_dim, args.feature_map, device),
                device,
            )
    return steps


def loglog_slope(lengths: list[int], seconds: list[float]) -> float:
    """Least-squares slope of log(time) against log(N)."""
    xs, ys = [math.log(n) for n in lengths], [math.log(s) for s in seconds]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sum((x - mean_x) ** 2 for x in xs)


def _memory_in_child(argv: list[str]) -> dict[str, float]:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    result = subprocess.run(
        [sys.executable, __file__, *argv, "--memory-only"], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def report(args: argparse.Namespace, seconds: dict[str, float], peaks: dict[str, float]) -> None:
    """Print the markdown table, the slopes, the whole-model ratio and the targets."""
    where = (
        f"the GPU ({torch.cuda.get_device_name(torch.device(args.device))}"
        if args.device.startswith("cuda")
        else f"the CPU ({torch.get_num_threads()} threads"
    )
    print(
        f"Forward+backward on {where}, {args.clock} clock, torch {torch.__version__}), "
        f"B=1, H={args.heads}, D={args.head_dim}, kernel feature map {args.feature_map!r}; "
        f"load average {os.getloadavg()[0]:.2f}.\n"
    )
    print("| N | SDPA (ms) | kernel (ms) | SDPA / kernel | kernel µs/token | SDPA peak (MiB) | kernel peak (MiB) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.lengths:
        sdpa, kernel = seconds[f"sdpa-{n}"], seconds[f"kernel-{n}"]
        print(
            f"| {n} | {sdpa * 1e3:.1f} | {kernel * 1e3:.1f} | {sdpa / kernel:.1f}x | {kernel * 1e6 / n:.2f} "
            f"| {peaks[f'sdpa-{n}']:.1f} | {peaks[f'kernel-{n}']:.1f} |"
        )
    measured = "GPU memory growth" if args.device.startswith("cuda") else "resident-memory growth"
    print(f"\nTimes: fastest of >= 3 runs after a warm-up. Peak: {measured} during one forward+backward.")

    large = [n for n in args.lengths if n >= 1024] or args.lengths
    if len(large) >= 2:
        kernel_slope = loglog_slope(large, [seconds[f"kernel-{n}"] for n in large])
        sdpa_slope = loglog_slope(large, [seconds[f"sdpa-{n}"] for n in large])
        print(f"\nlog-log slope of time vs N (N >= {large[0]}): kernel {kernel_slope:.2f}, SDPA {sdpa_slope:.2f}")
        print(f"- target kernel time linear in N (slope <= 1.2): {'PASS' if kernel_slope <= 1.2 else 'FAIL'}")
    last = args.lengths[-1]
    ratio = seconds[f"sdpa-{last}"] / seconds[f"kernel-{last}"]
    print(f"- target SDPA / kernel >= 50x at N={last}: {ratio:.1f}x {'PASS' if ratio >= 50 else 'FAIL'}")

    if args.model_tokens > 0:
        softmax, kernel = seconds["vit-softmax"], seconds["vit-kernel"]
        print(
            f"\n1-layer ViT (hidden {args.heads * args.head_dim}, {args.model_tokens} tokens), training "
            f"forward+backward: softmax (SDPA) {softmax * 1e3:.0f} ms / {peaks['vit-softmax']:.0f} MiB, "
            f"kernel {kernel * 1e3:.0f} ms / {peaks['vit-kernel']:.0f} MiB; whole-model ratio {softmax / kernel:.1f}x"
        )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the markdown report."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=DEFAULT_LENGTHS)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--head-dim", type=int, default=32)
    parser.add_argument("--feature-map", default="elu")
    parser.add_argument(
        "--model-tokens", type=int, default=16385, help="ViT tokens incl. [CLS]; 0 skips the model row"
    )
    parser.add_argument(
        "--min-seconds", type=float, default=1.0, help="keep timing a configuration at least this long"
    )
    add_timing_options(parser)
    parser.add_argument("--memory-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    clock, device = apply_timing_options(parser, args)

    steps = benchmark_steps(args)
    if args.memory_only:
        print(json.dumps({name: peak_memory_mib(make()) for name, make in steps.items()}))
        return 0
    seconds = {}
    for name, make in steps.items():
        # The whole model is slow at 16k tokens; two runs are enough there.
        repeats = 2 if name.startswith("vit") else 3
        seconds[name] = fastest_seconds(make(), args.min_seconds, min_repeats=repeats, clock=clock)
        print(f"timed {name}", file=sys.stderr, flush=True)
    if device.type == "cuda":
        peaks = {name: cuda_peak_memory_mib(make()) for name, make in steps.items()}
    elif sys.platform.startswith("linux"):
        peaks = _memory_in_child(argv)
    else:
        peaks = dict.fromkeys(steps, float("nan"))
    report(args, seconds, peaks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
