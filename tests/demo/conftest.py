"""Tiny trained run folders (the ViT and BERT recipes, a few steps), a free port, and a folder for test artifacts.

Gradio never reaches the network here: analytics are off (``build_app`` also passes ``analytics_enabled=False``)
and no test opens a share link.
"""

import os
from pathlib import Path

import pytest
from script_modules import load_script


os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

RECIPE_HELPERS = Path(__file__).resolve().parents[1] / "recipes" / "recipe_helpers.py"


def _recipe_helpers():
    return load_script(RECIPE_HELPERS, "demo_recipe_helpers")


def _run(tmp_path_factory, recipe: str) -> Path:
    helpers = _recipe_helpers()
    folder = tmp_path_factory.mktemp(f"{recipe}_run")
    argv = ["--output_dir", str(folder), *helpers.QUICK, "--robustness_num_examples", "2"]
    helpers.load_recipe(recipe).main(argv)
    return folder


@pytest.fixture(scope="session")
def vit_run(tmp_path_factory) -> Path:
    """A finished ViT recipe run (4 steps on the embedded synthetic images): model, processor, results.json."""
    return _run(tmp_path_factory, "train_vit")


@pytest.fixture(scope="session")
def bert_run(tmp_path_factory) -> Path:
    """A finished BERT recipe run (4 steps on the embedded sentiment set): model, tokenizer, results.json."""
    return _run(tmp_path_factory, "train_bert")


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> Path:
    """Where tests leave artifacts (screenshots): $HF_ROBATTR_TEST_ARTIFACTS when set, else a pytest temp folder."""
    chosen = os.environ.get("HF_ROBATTR_TEST_ARTIFACTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
