"""The card tests' fixtures over the fake run folder of ``tests/run_folders.py`` (``run_dir`` itself is in
``tests/conftest.py``: the ``hf-robattr`` command's tests use it too)."""

import pytest
from run_folders import ROBUSTNESS, results_json, tiny_run_vit


@pytest.fixture
def tiny_kernel_vit():
    """The factory :func:`~run_folders.tiny_run_vit`, for tests that need their own variant."""
    return tiny_run_vit


@pytest.fixture
def results() -> dict:
    """A fresh results.json dict (the one in ``run_dir``)."""
    return results_json()


@pytest.fixture
def expected_robustness() -> dict:
    """The robustness numbers in ``run_dir``'s results.json."""
    return dict(ROBUSTNESS)
