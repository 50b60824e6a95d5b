"""Run the pending runs of a study, in parallel worker processes (spawn), with a progress bar and the ETA.

Each finished run is saved to the :class:`~hf_robattr.study.store.RunStore` as soon as it arrives, by the main
process, so an interrupted study continues where it stopped. Workers split the CPU cores between them.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from tqdm.auto import tqdm

from .grid import RunSpec
from .runner import run_one, spec_record
from .store import RunStore


__all__ = ["pending_runs", "run_study"]

RunFunction = Callable[[RunSpec, "str | None"], dict[str, Any]]


def _init_worker(threads: int) -> None:
    """Worker start-up: a fixed share of the cores, quiet libraries."""
    import datasets
    import torch
    import transformers

    torch.set_num_threads(threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    datasets.disable_progress_bars()
    transformers.utils.logging.set_verbosity_error()


def _error_record(spec: RunSpec, error: BaseException) -> dict[str, Any]:
    return {**spec_record(spec), "status": "error", "error": f"{type(error).__name__}: {error}"}


def pending_runs(specs: list[RunSpec], store: RunStore) -> list[RunSpec]:
    """The runs of ``specs`` without a finished record in ``store``."""
    return [spec for spec in specs if not store.is_finished(spec.key)]


def _postfix(counts: dict[str, int]) -> str:
    return " ".join(f"{name}={count}" for name, count in sorted(counts.items()) if count)


def run_study(
    specs: list[RunSpec],
    store: RunStore,
    *,
    num_workers: int = 1,
    dataset_name: str | None = None,
    run_function: RunFunction = run_one,
    progress: bool = True,
    threads_per_worker: int | None = None,
) -> dict[str, int]:
    """Run every spec without a finished record and store each record as it arrives.

    ``num_workers <= 1`` runs in this process; otherwise a ``ProcessPoolExecutor`` with the ``spawn`` start method
    and ``num_workers`` processes, each using ``threads_per_worker`` torch threads (default
    ``cpu_count // num_workers``). The progress bar counts
    all runs of the study (finished earlier ones included) and its ETA is over the runs left. ``run_function``
    must be a picklable top-level function ``(spec, dataset_name) -> record``. Returns the count of new records
    by status.
    """
    if num_workers < 0:
        raise ValueError(f"--num_workers must be >= 0, got {num_workers}.")
    todo = pending_runs(specs, store)
    counts: dict[str, int] = {}
    bar = tqdm(total=len(specs), initial=len(specs) - len(todo), desc="study runs", unit="run", disable=not progress)
    threads = threads_per_worker or max(1, (os.cpu_count() or 1) // max(num_workers, 1))

    def finish(record: dict[str, Any]) -> None:
        store.save(record)
        counts[record["status"]] = counts.get(record["status"], 0) + 1
        bar.set_postfix_str(_postfix(counts), refresh=False)
        bar.update(1)

    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        stack.callback(bar.close)
        if num_workers <= 1:
            import torch  # already imported by the run functions; here to restore its thread count

            previous = torch.get_num_threads()
            stack.callback(torch.set_num_threads, previous)
            _init_worker(threads)
            for spec in todo:
                try:
                    record = run_function(spec, dataset_name)
                except Exception as error:  # same contract as a crashed worker
                    record = _error_record(spec, error)
                finish(record)
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(
                max_workers=num_workers, mp_context=context, initializer=_init_worker, initargs=(threads,)
            ) as pool:
                running: dict[Future, RunSpec] = {}
                queue = list(todo)
                # Keep each worker busy with one run at a time, so an interrupt loses little work.
                while queue or running:
                    while queue and len(running) < num_workers:
                        spec = queue.pop(0)
                        running[pool.submit(run_function, spec, dataset_name)] = spec
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        spec = running.pop(future)
                        try:
                            record = future.result()
                        except Exception as error:  # a crashed worker: record it, keep going
                            record = _error_record(spec, error)
                        finish(record)
    counts["elapsed_seconds"] = int(time.perf_counter() - start)
    return counts
