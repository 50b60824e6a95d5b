"""pytest plugin (``-p cuda_tests_plugin``) that keeps only the tests that need CUDA.

A test needs CUDA when its name says so (``cuda`` / ``gpu``), when it carries a ``cuda`` or ``gpu`` marker, or when
one of its ``skipif`` marks gives a reason that names CUDA or a GPU (``@pytest.mark.skipif(not
torch.cuda.is_available(), reason="needs a CUDA device")``). Every other collected test is deselected.
"""

from __future__ import annotations

import re

import pytest


_NEEDS_CUDA = re.compile(r"cuda|gpu", re.IGNORECASE)


def needs_cuda(item: pytest.Item) -> bool:
    """Whether ``item`` is one of the suite's CUDA tests."""
    if _NEEDS_CUDA.search(item.name):
        return True
    for mark in item.iter_markers():
        if mark.name in ("cuda", "gpu"):
            return True
        if mark.name == "skipif" and _NEEDS_CUDA.search(str(mark.kwargs.get("reason", ""))):
            return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect every test that does not need CUDA."""
    keep = [item for item in items if needs_cuda(item)]
    dropped = [item for item in items if not needs_cuda(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep
