"""Shared pytest configuration (offline) and the tiny seeded models, built once per session and deep-copied per
test; a package's conftest overrides ``_vit_session`` / ``_bert_session`` to pick other sizes."""

import copy
import os

import pytest
from tiny_models import tiny_bert, tiny_vit


os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


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
