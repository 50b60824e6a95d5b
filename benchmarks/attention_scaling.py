"""Softmax (SDPA) versus kernel attention on the CPU: forward+backward time and peak memory against sequence length.

Usage::

    python benchmarks/attention_scaling.py                      # N = 256 ... 16384, B=1, H=4, D=32, elu+1
    python benchmarks/attention_scaling.py --lengths 256 1024 --model-tokens 0   # quick run, no whole-model row

It prints a markdown table of times, their ratio and peak memory per sequence length, the log-log slopes of time
against N (1 = linear, 2 = quadratic), the whole-model ratio for a 1-layer ViT whose image gives ~16384 tokens, and
whether the issue's targets hold. Peak memory is the growth of the process's resident set during one forward+backward
(``VmHWM`` after a reset via ``/proc/self/clear_refs``, Linux only); the script re-executes itself with
``MALLOC_MMAP_THRESHOLD_`` set so that freed tensors go back to the OS and do not hide later peaks. The CPU is shared:
note the machine load next to the numbers.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


DEFAULT_LENGTHS = [256, 512, 1024, 2048, 4096, 8192, 16384]
_MMAP_ENV = "MALLOC_MMAP_THRESHOLD_"


@dataclass
class Measurement:
    """Fastest forward+backward seconds over the repeats, and peak extra resident memory (MiB) of one run."""

    seconds: float
    peak_mib: float
    repeats: int


def _rss_mib(field: str) -> float:
    with open("/proc/self/status") as status:
        return int(re.search(rf"{field}:\s+(\d+)", status.read()).group(1)) / 1024


def _reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def measure(
    step: Callable[[], None], min_seconds: float = 1.0, min_repeats: int = 3, max_repeats: int = 20
) -> Measurement:
    """Warm up once, then time runs (the first also measures peak memory) until both minimums are met.

    The minimum over repeats is reported: on a shared CPU, other processes only ever add time.
    """
    step()
    before = _rss_mib("VmRSS")
    _reset_peak_rss()
    start = time.perf_counter()
    step()
    times = [time.perf_counter() - start]
    peak = max(_rss_mib("VmHWM") - before, 0.0)
    while (sum(times) < min_seconds or len(times) < min_repeats) and len(times) < max_repeats:
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return Measurement(min(times), peak, len(times))


class _KernelModule(nn.Module):
    """What ``kernel_attention_forward`` reads from an HF attention module."""

    def __init__(self, feature_map: nn.Module, eps: float = 1e-6):
        super().__init__()
        self.feature_map = feature_map
        self.kernel_eps = eps


def attention_op_step(kind: str, length: int, heads: int, head_dim: int, feature_map: str) -> Callable[[], None]:
    """A closure running one forward+backward of the attention op alone (B=1)."""
    from hf_robattr.models import build_feature_map, kernel_attention_forward

    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, heads, length, head_dim, generator=generator).requires_grad_() for _ in range(3))
    probe = torch.randn(1, length, heads, head_dim, generator=generator)
    module = _KernelModule(build_feature_map(feature_map, num_heads=heads, head_dim=head_dim)).eval()

    def step() -> None:
        if kind == "sdpa":
            out = nn.functional.scaled_dot_product_attention(q, k, v).transpose(1, 2)
        else:
            out, _ = kernel_attention_forward(module, q, k, v, None)
        out.backward(probe)
        q.grad = k.grad = v.grad = None

    return step


def vit_step(attention_type: str, tokens: int, heads: int, head_dim: int, feature_map: str) -> Callable[[], None]:
    """A closure running one training forward+backward of a 1-layer RobAttr ViT whose image gives ~``tokens`` tokens."""
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
    model = RobAttrViTForImageClassification(config).train()
    pixels = torch.randn(1, 3, side, side)
    labels = torch.tensor([3])

    def step() -> None:
        model(pixels, labels=labels).loss.backward()
        model.zero_grad(set_to_none=True)

    return step


def loglog_slope(lengths: list[int], seconds: list[float]) -> float:
    """Least-squares slope of log(time) against log(N)."""
    xs, ys = [math.log(n) for n in lengths], [math.log(s) for s in seconds]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sum((x - mean_x) ** 2 for x in xs)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the markdown report."""
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
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    rows = []
    for length in args.lengths:
        sdpa = measure(
            attention_op_step("sdpa", length, args.heads, args.head_dim, args.feature_map), args.min_seconds
        )
        kernel = measure(
            attention_op_step("kernel", length, args.heads, args.head_dim, args.feature_map), args.min_seconds
        )
        rows.append((length, sdpa, kernel))
        print(f"measured N={length}", file=sys.stderr, flush=True)

    print(
        f"Forward+backward on the CPU ({torch.get_num_threads()} threads, torch {torch.__version__}), "
        f"B=1, H={args.heads}, D={args.head_dim}, kernel feature map {args.feature_map!r}; "
        f"load average {os.getloadavg()[0]:.2f}.\n"
    )
    print("| N | SDPA (ms) | kernel (ms) | SDPA / kernel | kernel µs/token | SDPA peak (MiB) | kernel peak (MiB) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for length, sdpa, kernel in rows:
        print(
            f"| {length} | {sdpa.seconds * 1e3:.1f} | {kernel.seconds * 1e3:.1f} | {sdpa.seconds / kernel.seconds:.1f}x "
            f"| {kernel.seconds * 1e6 / length:.2f} | {sdpa.peak_mib:.1f} | {kernel.peak_mib:.1f} |"
        )
    print("\nTimes: fastest of >= 3 runs after a warm-up. Peak: resident-memory growth during one forward+backward.")

    large = [(n, s, k) for n, s, k in rows if n >= 1024] or rows
    if len(large) >= 2:
        lengths = [n for n, _, _ in large]
        kernel_slope = loglog_slope(lengths, [k.seconds for _, _, k in large])
        sdpa_slope = loglog_slope(lengths, [s.seconds for _, s, _ in large])
        print(f"\nlog-log slope of time vs N (N >= {lengths[0]}): kernel {kernel_slope:.2f}, SDPA {sdpa_slope:.2f}")
        print(f"- target kernel time linear in N (slope <= 1.2): {'PASS' if kernel_slope <= 1.2 else 'FAIL'}")
    last_n, last_sdpa, last_kernel = rows[-1]
    ratio = last_sdpa.seconds / last_kernel.seconds
    print(f"- target SDPA / kernel >= 50x at N={last_n}: {ratio:.1f}x {'PASS' if ratio >= 50 else 'FAIL'}")

    if args.model_tokens > 0:
        softmax = measure(vit_step("softmax", args.model_tokens, args.heads, args.head_dim, args.feature_map), 0.0, 2)
        kernel = measure(vit_step("kernel", args.model_tokens, args.heads, args.head_dim, args.feature_map), 0.0, 2)
        print(
            f"\n1-layer ViT (hidden {args.heads * args.head_dim}, {args.model_tokens} tokens), training "
            f"forward+backward: softmax (SDPA) {softmax.seconds * 1e3:.0f} ms / {softmax.peak_mib:.0f} MiB, "
            f"kernel {kernel.seconds * 1e3:.0f} ms / {kernel.peak_mib:.0f} MiB; "
            f"whole-model ratio {softmax.seconds / kernel.seconds:.1f}x"
        )
    return 0


if __name__ == "__main__":
    if _MMAP_ENV not in os.environ and sys.platform.startswith("linux"):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, _MMAP_ENV: "65536"})
    sys.exit(main())
