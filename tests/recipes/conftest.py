"""Fixtures of the recipe tests: the recipe modules, loaded once from ``recipes/``."""

import pytest
from recipe_helpers import load_recipe


@pytest.fixture(scope="session")
def recipes():
    return {name: load_recipe(name) for name in ("train_vit", "train_bert")}
