"""The suite's process-state guard (``tests/conftest.py``): what a session or module fixture changes in the process
(a recipe run in-process calls ``setup_logging``, a study worker calls ``set_verbosity_error``, a library calls
``dictConfig``) must not reach the tests that follow it on the same xdist worker."""

import logging

import pytest
import torch
from transformers.utils import logging as hf_logging

from hf_robattr.models import modeling_robattr_common


MODEL_LOGGER = modeling_robattr_common.logger


@pytest.fixture(scope="module")
def fixture_that_changes_the_process():
    """A planted module fixture doing, at set-up, what an in-process recipe or study run does."""
    logging.getLogger("hf_robattr").setLevel(logging.ERROR)
    hf_logging.set_verbosity_error()
    MODEL_LOGGER.disabled = True
    logging.getLogger("planted.new.logger").propagate = False
    torch.set_num_threads(torch.get_num_threads() + 1)  # a change whatever the worker's share of the cores
    yield


def test_a_module_fixture_does_not_silence_the_tests_that_use_it(
    fixture_that_changes_the_process, _process_baseline, caplog
):
    _, loggers = _process_baseline
    with caplog.at_level(logging.WARNING):
        MODEL_LOGGER.warning("planted warning")
    assert "planted warning" in caplog.text
    assert not MODEL_LOGGER.disabled
    package = logging.getLogger("hf_robattr")
    assert package.level == loggers.get(package, (logging.NOTSET,))[0]  # a logger made since the baseline: NOTSET
    assert logging.getLogger("planted.new.logger").propagate


def test_a_module_fixture_does_not_change_the_thread_count(fixture_that_changes_the_process, _process_baseline):
    threads, _ = _process_baseline
    assert torch.get_num_threads() == threads
