"""The command-line options every timing benchmark here shares: which clock, how many torch threads, which device.

Imported by the scripts in this folder (``python benchmarks/<script>.py`` puts the folder on ``sys.path``)::

    parser = argparse.ArgumentParser()
    add_timing_options(parser)
    args = parser.parse_args()
    clock, device = apply_timing_options(parser, args)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch


__all__ = ["CLOCKS", "add_timing_options", "apply_timing_options"]

CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}


def add_timing_options(parser: argparse.ArgumentParser, *, device: bool = True) -> None:
    """Add ``--threads``, ``--clock`` and (with ``device``) ``--device`` to ``parser``."""
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall time, or this process's CPU time (with --threads 1: robust to other load on a shared CPU)",
    )
    if device:
        parser.add_argument("--device", default="cpu", help="cpu or cuda (cuda:N); on cuda the clock is wall time")


def apply_timing_options(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> tuple[Callable[[], float], torch.device]:
    """Check the options (``parser.error`` on a bad one), set torch's thread count; return the clock and device."""
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    name = getattr(args, "device", "cpu")
    if name.split(":")[0] not in ("cpu", "cuda"):
        parser.error(f"--device must be cpu or cuda (cuda:N), got {name!r}")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {name}: torch sees no CUDA device on this machine")
    if device.type == "cuda" and args.clock != "wall":
        parser.error("--clock cpu measures this process's CPU time, not GPU work: use --clock wall with --device cuda")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    return CLOCKS[args.clock], device
