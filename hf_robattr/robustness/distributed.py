"""Sharded scoring under ``torch.distributed``: who scores which examples, and getting every rank's values (or its
error) to every rank.

Scale-out uses the process group that ``accelerate launch`` or ``torchrun`` set up; nothing here starts processes.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any, TypeVar

import torch


T = TypeVar("T")


def process_group() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialised default process group, or ``(0, 1)`` without one."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def run_on_every_rank(work: Callable[[], T], world_size: int) -> list[T]:
    """Run ``work`` on this rank and return every rank's result, in rank order, on every rank.

    If ``work`` raises on any rank, every rank raises: the failing rank its own error, the others a
    ``RuntimeError`` naming the failing rank and its error. No rank is left waiting in a collective.
    """
    if world_size == 1:
        return [work()]
    error: Exception | None = None
    result: Any = None
    try:
        result = work()
    except Exception as caught:  # reported to every rank below, then re-raised here
        error = caught
    outcomes: list[Any] = [None] * world_size
    message = None if error is None else f"{type(error).__name__}: {error}"
    torch.distributed.all_gather_object(outcomes, (message, None if error is not None else result))
    # Free the attribution graphs' reference cycles now: collected only at interpreter exit, after the process group
    # is gone, they made about half of 2-process CPU (gloo) launches hang on exit.
    gc.collect()
    if error is not None:
        raise error
    failed = [(rank, text) for rank, (text, _) in enumerate(outcomes) if text is not None]
    if failed:
        rank, text = failed[0]
        raise RuntimeError(f"attribution robustness scoring failed on rank {rank}: {text}")
    return [value for _, value in outcomes]
