"""Shared pytest configuration (offline, parallel workers, no silently skipped module) and the tiny seeded models,
built once per session and deep-copied per test; a package's conftest overrides ``_vit_session`` /
``_bert_session`` to pick other sizes.

The suite runs on ``pytest-xdist`` workers (``-n auto --dist loadgroup`` in pyproject.toml): each test module is one
group, so its module fixtures are built once, and the packages listed in :data:`ONE_WORKER_PACKAGES` (whose session
fixtures are costly) stay on one worker. Each worker gets an equal share of the cores for torch's intra-op threads.
"""

import copy
import gc
import logging
import os
import shutil
from pathlib import Path

import pytest
from collection_guard import pytest_collectreport, pytest_runtest_logreport, pytest_sessionfinish  # noqa: F401 (hooks)
from scheduling import HEAVY_FIRST, ONE_WORKER_PACKAGES


os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


# torch and transformers are imported where a test needs them, not here: the xdist controller, which runs no test,
# loads this file before it starts the workers, and importing them cost it ~6 s of wall time at every run's start.


def pytest_configure(config):
    """A worker's equal share of the cores for torch's intra-op threads (before any test module is imported)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which turns the marker into the scheduling group
def pytest_collection_modifyitems(config, items):
    """Every test joins an xdist group: its module, or its package for :data:`ONE_WORKER_PACKAGES`; the groups of
    :data:`HEAVY_FIRST` move to the front, in that order (the others keep theirs)."""
    groups = {}
    for item in items:
        marker = item.get_closest_marker("xdist_group")
        if marker is None:
            parts = item.nodeid.split("::", 1)[0].split("/")
            package = parts[1] if len(parts) > 2 and parts[0] == "tests" else None
            group = package if package in ONE_WORKER_PACKAGES else "/".join(parts)
            item.add_marker(pytest.mark.xdist_group(name=group))
        else:
            group = marker.kwargs.get("name", marker.args[0] if marker.args else "")
        groups[item] = group
    rank = {group: i for i, group in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(groups[item], len(rank)))  # stable: the rest keep their order


def pytest_collection_finish(session):
    """Freeze the objects that exist once the tests are collected (modules, test functions: alive all session).

    ``Trainer.train`` starts with a full garbage collection (accelerate's ``free_memory``), and so do other calls
    under test; in a worker holding torch, transformers and the suite's modules each one walked ~10^6 objects for
    ~0.3 s. Frozen objects are left out of every later collection.
    """
    gc.freeze()


def _logger_states() -> dict[logging.Logger, tuple[int, bool, bool]]:
    manager = logging.Logger.manager
    loggers = [logging.getLogger()] + [v for v in manager.loggerDict.values() if isinstance(v, logging.Logger)]
    return {logger: (logger.level, logger.propagate, logger.disabled) for logger in loggers}


def _restore_logging(baseline: dict[logging.Logger, tuple[int, bool, bool]]) -> None:
    fresh = (logging.NOTSET, True, False)  # a logger made since the baseline goes back to a new logger's state
    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        if not isinstance(logger, logging.Logger):
            continue
        level, propagate, disabled = baseline.get(logger, fresh)
        if logger.level != level:  # setLevel clears every logger's cache: ~500 loggers, twice per test
            logger.setLevel(level)
        logger.propagate, logger.disabled = propagate, disabled


@pytest.fixture(scope="session", autouse=True)
def _process_baseline():
    """Torch's thread count and every logger's state as the session starts, before any fixture ran code under test."""
    import torch

    return torch.get_num_threads(), _logger_states()


@pytest.fixture(autouse=True)
def _process_state_restored(_process_baseline):
    """Recipes, study workers and Ray run in-process in some tests and fixtures, and change process-wide state:
    torch's intra-op thread count, logger levels (``set_verbosity_error``, ``setup_logging``), propagation, and
    ``dictConfig``'s ``disable_existing_loggers``, which silences every logger made so far. A test's float reductions
    and the warnings it reads must not depend on which tests ran before it on its worker, so the session's baseline is
    restored before each test (a session or module fixture set up for it may have just run a recipe) and after it."""
    import torch

    threads, loggers = _process_baseline
    torch.set_num_threads(threads)
    _restore_logging(loggers)
    yield
    torch.set_num_threads(threads)
    _restore_logging(loggers)


@pytest.fixture(scope="session")
def _vit_session():
    from tiny_models import tiny_vit

    return tiny_vit()


@pytest.fixture(scope="session")
def _bert_session():
    from tiny_models import tiny_bert

    return tiny_bert()


@pytest.fixture
def vit(_vit_session):
    return copy.deepcopy(_vit_session)


@pytest.fixture
def bert(_bert_session):
    return copy.deepcopy(_bert_session)


@pytest.fixture
def online(monkeypatch):
    """Pretend HF_HUB_OFFLINE is unset (the suite sets it), so that a push reaches its network error path."""
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


@pytest.fixture(scope="session")
def _session_run_dir(tmp_path_factory) -> Path:
    from run_folders import save_run_folder

    return save_run_folder(tmp_path_factory.mktemp("run"))


@pytest.fixture
def run_dir(_session_run_dir, tmp_path) -> Path:
    """A fresh copy of the fake run folder of ``tests/run_folders.py`` (model files + results.json, no card yet)."""
    folder = tmp_path / "run"
    shutil.copytree(_session_run_dir, folder)
    return folder
