"""Every command gpu_check builds is one its programs accept: the recipe commands of both modes parse with the
recipe's own parser (the GPU commands too, which only a GPU session runs), and every file a command names exists.
A typo in ``benchmarks/gpu/gpu_checks.py`` fails here instead of in a lent GPU's minutes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from script_modules import load_script


REPO = Path(__file__).resolve().parents[2]
sys.path.append(str(REPO / "benchmarks" / "gpu"))

import gpu_checks  # noqa: E402


RECIPES = {"train_vit.py": "train_vit", "reproduce_paper.py": "reproduce_paper"}


def _commands(mode: str, tmp_path: Path) -> list[tuple[str, list[str]]]:
    setup = gpu_checks.Setup(mode, sys.executable, REPO, tmp_path / "work")
    return [(name, run.argv) for name, build in gpu_checks.BUILDERS.items() for run in build(setup).runs]


@pytest.mark.parametrize("mode", gpu_checks.MODES)
def test_every_recipe_command_parses_with_the_recipes_own_parser(mode, tmp_path):
    parsed = []
    for name, argv in _commands(mode, tmp_path):
        index = next((i for i, arg in enumerate(argv) if Path(arg).name in RECIPES), None)
        if index is None:
            continue
        recipe = load_script(f"recipes/{Path(argv[index]).name}", RECIPES[Path(argv[index]).name])
        args = argv[index + 1 :]
        if mode == "gpu" and not torch.cuda.is_available() and "--bf16" in args:
            args = [*args, "--use_cpu"]  # TrainingArguments refuses bf16 where no GPU is; every other flag is checked
        recipe.parse(args)
        parsed.append(name)
    assert sorted(set(parsed)) == ["bf16", "ddp", "fsdp", "study", "train_vit"]


@pytest.mark.parametrize("mode", gpu_checks.MODES)
def test_every_file_a_command_names_exists(mode, tmp_path):
    for name, argv in _commands(mode, tmp_path):
        named = [arg for arg in argv[1:] if arg.endswith((".py", ".yaml"))]
        assert named, name
        for arg in named:
            assert (REPO / arg).is_file() or Path(arg).is_file(), f"{name}: {arg}"


def test_a_bad_flag_in_a_command_is_caught(tmp_path):
    """The control: a command with a misspelt flag does not parse."""
    recipe = load_script("recipes/train_vit.py", "train_vit")
    with pytest.raises(SystemExit):
        recipe.parse(["--output_dir", str(tmp_path), "--robustness_num_exampels", "2"])
