"""Run the pending runs of a study on local worker processes or on Ray, storing each record as it arrives.

Both executors hand each run to ``run_function(spec, checkpoint)`` in a worker with a fixed number of torch threads
and save every finished record to the :class:`~hf_robattr.study.store.RunStore` from the driver, as soon as it
arrives, so an interrupted study continues where it stopped, and a study can move between executors without
recomputing a finished run.

- ``local``: ``num_workers`` worker processes (``num_workers <= 1``: this process), each replaced after
  :data:`RUNS_PER_PROCESS` runs so that memory cannot pile up over a long study. Where there are GPUs, each worker
  slot is pinned to one (``CUDA_VISIBLE_DEVICES``, round robin). Workers are forked from a ``forkserver`` that
  imported torch, transformers, datasets and the run function's module once (spawned, each new worker spent ~8
  CPU-seconds importing them); a worker gets the study process's environment as it is when the worker starts, as
  a spawned one would. Elsewhere than on Linux (macOS, whose system libraries are not safe to fork, and Windows)
  workers are spawned.
- ``ray``: each run is a Ray task asking for ``threads`` CPUs and, where the cluster has GPUs, one GPU. Without
  ``ray_address`` a local Ray is started (and stopped afterwards); a Ray already initialised is used as it is.
  Needs the ``ray`` extra (``pip install -e '.[ray]'`` in a clone); a multi-node cluster needs the study's output
  directory on a shared file system (the warm-start checkpoints are read from it).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import io
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from tqdm.auto import tqdm

from ..extras import install_hint
from .grid import RunSpec
from .run import run_one, spec_record
from .store import RunStore


__all__ = ["EXECUTORS", "RunFunction", "gpu_count", "run_jobs"]

EXECUTORS = ("local", "ray")
RUNS_PER_PROCESS = 4
RunFunction = Callable[[RunSpec, "str | None"], dict[str, Any]]


def gpu_count() -> int:
    """The number of CUDA devices this process sees (0 without torch or CUDA)."""
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _quiet(threads: int) -> None:
    """A worker's start-up: its share of the cores, quiet libraries."""
    import datasets
    import torch
    import transformers

    torch.set_num_threads(threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    datasets.disable_progress_bars()
    transformers.utils.logging.set_verbosity_error()


def _worker_context(module: str) -> multiprocessing.context.BaseContext:
    """On Linux, ``forkserver`` with torch, transformers, datasets and ``module`` imported in the server; elsewhere
    ``spawn``. The server imports them once and never runs torch code (no thread pool, no CUDA), so its forks start
    clean."""
    if not sys.platform.startswith("linux"):
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", "transformers", "datasets", module])  # no effect once it runs
    return context


def _init_local_worker(threads: int, gpu: int | None, module: str, environment: dict[str, str]) -> None:
    # A forked worker inherits the environment of the server, which started with the first pool of this process.
    os.environ.clear()
    os.environ.update(environment)
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    _quiet(threads)
    # Every Trainer.train() starts with a full garbage collection (accelerate's free_memory), which walks all the
    # objects of torch, transformers and datasets: ~0.3 s a time, 15% of a ci run. They live as long as the worker,
    # so the run function's module (and what it imports) is loaded now and frozen out of the collections.
    importlib.import_module(module)
    gc.freeze()


def _error_record(spec: RunSpec, error: BaseException) -> dict[str, Any]:
    return {**spec_record(spec), "status": "error", "error": f"{type(error).__name__}: {error}"}


def _call(run_function: RunFunction, spec: RunSpec, checkpoint: str | None) -> dict[str, Any]:
    """Run one spec with the pipeline's console output (Trainer metric prints) kept off the study's screen."""
    with contextlib.redirect_stdout(io.StringIO()):
        return run_function(spec, checkpoint)


def _ray_task(run_function: RunFunction, spec: RunSpec, checkpoint: str | None, threads: int) -> dict[str, Any]:
    _quiet(threads)
    try:
        return _call(run_function, spec, checkpoint)
    except Exception as error:  # same contract as a crashed local worker
        return _error_record(spec, error)


def _local(
    jobs: list[tuple[RunSpec, str | None]], run_function: RunFunction, num_workers: int, threads: int
) -> Iterator[tuple[RunSpec, dict[str, Any]]]:
    if num_workers <= 1:
        import torch

        previous = torch.get_num_threads()
        try:
            _quiet(threads)
            for spec, checkpoint in jobs:
                try:
                    yield spec, _call(run_function, spec, checkpoint)
                except Exception as error:
                    yield spec, _error_record(spec, error)
        finally:
            torch.set_num_threads(previous)
        return
    context = _worker_context(run_function.__module__)
    devices = gpu_count()
    with contextlib.ExitStack() as stack:
        # One single-process pool per worker slot: each slot keeps its GPU, and its process is replaced every
        # RUNS_PER_PROCESS runs (a long study's workers would otherwise grow in memory run after run).
        slots = [
            stack.enter_context(
                ProcessPoolExecutor(
                    1,
                    mp_context=context,
                    initializer=_init_local_worker,
                    initargs=(threads, slot % devices if devices else None, run_function.__module__, dict(os.environ)),
                    max_tasks_per_child=RUNS_PER_PROCESS,
                )
            )
            for slot in range(num_workers)
        ]
        running: dict[Future, tuple[RunSpec, int]] = {}
        idle = list(range(num_workers))
        queue = list(jobs)
        # Keep each worker busy with one run at a time, so an interrupt loses little work.
        while queue or running:
            while queue and idle:
                spec, checkpoint = queue.pop(0)
                slot = idle.pop(0)
                running[slots[slot].submit(_call, run_function, spec, checkpoint)] = (spec, slot)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                spec, slot = running.pop(future)
                idle.append(slot)
                try:
                    yield spec, future.result()
                except Exception as error:  # a crashed worker: record it, keep going
                    yield spec, _error_record(spec, error)


def _ray(
    jobs: list[tuple[RunSpec, str | None]], run_function: RunFunction, threads: int, address: str | None
) -> Iterator[tuple[RunSpec, dict[str, Any]]]:
    try:
        import ray
    except ImportError as error:
        raise ImportError(f"--executor ray needs Ray: {install_hint('ray')}.") from error
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, ignore_reinit_error=True, logging_level="error")
    try:
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        task = ray.remote(num_cpus=threads, num_gpus=gpus, max_retries=0)(_ray_task)
        pending = {task.remote(run_function, spec, checkpoint, threads): spec for spec, checkpoint in jobs}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            spec = pending.pop(done[0])
            try:
                yield spec, ray.get(done[0])
            except Exception as error:  # the task's process died (out of memory, node lost)
                yield spec, _error_record(spec, error)
    finally:
        if started:
            ray.shutdown()


def run_jobs(
    jobs: list[tuple[RunSpec, str | None]],
    store: RunStore,
    *,
    executor: str = "local",
    num_workers: int = 1,
    threads_per_worker: int | None = None,
    ray_address: str | None = None,
    run_function: RunFunction = run_one,
    progress: bool = True,
    total: int | None = None,
) -> dict[str, int]:
    """Run ``jobs`` (``(spec, checkpoint)`` pairs) and store each record as it arrives.

    ``num_workers`` local processes (``executor="local"``) or as many concurrent Ray tasks as the cluster fits
    (``"ray"``), each with ``threads_per_worker`` torch threads (default: ``cpu_count // num_workers``, at least
    1). ``run_function`` must be a picklable top-level function ``(spec, checkpoint) -> record``. The progress bar
    counts ``total`` runs (default: the jobs). Returns the count of new records by status and
    ``elapsed_seconds``.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"--executor must be one of {list(EXECUTORS)}, got {executor!r}.")
    if num_workers < 0:
        raise ValueError(f"--num_workers must be >= 0, got {num_workers}.")
    threads = threads_per_worker or max(1, (os.cpu_count() or 1) // max(num_workers, 1))
    total = len(jobs) if total is None else total
    counts: dict[str, int] = {}
    start = time.perf_counter()
    bar = tqdm(total=total, initial=total - len(jobs), desc="study runs", unit="run", disable=not progress)
    stream = (
        _ray(jobs, run_function, threads, ray_address)
        if executor == "ray"
        else _local(jobs, run_function, num_workers, threads)
    )
    with contextlib.closing(bar):
        for _spec, record in stream:
            store.save(record)
            counts[record["status"]] = counts.get(record["status"], 0) + 1
            bar.set_postfix_str(" ".join(f"{k}={v}" for k, v in sorted(counts.items())), refresh=False)
            bar.update(1)
    counts["elapsed_seconds"] = int(time.perf_counter() - start)
    return counts
