"""Shared pytest configuration (offline) and the tiny seeded models, built once per session and deep-copied per
test; a package's conftest overrides ``_vit_session`` / ``_bert_session`` to pick other sizes."""

import copy
import os

import pytest
import torch
from tiny_models import tiny_bert, tiny_vit


os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(autouse=True)
def _torch_threads_restored():
    """Code under test may set torch's intra-op thread count (study workers run in-process in some tests); a later
    test's float reductions must not depend on which tests ran before it."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def _vit_session():
    return tiny_vit()


@pytest.fixture(scope="session")
def _bert_session():
    return tiny_bert()


@pytest.fixture
def vit(_vit_session):
    return copy.deepcopy(_vit_session)


@pytest.fixture
def bert(_bert_session):
    return copy.deepcopy(_bert_session)
