"""What a local folder needs to hold a model, checked with the standard library alone: commands check a folder
argument with it before they import torch, so a wrong folder fails in a moment, with the same words the loader uses.

A leaf module (no hf_robattr import), shared by ``hub`` (a run folder before a push), ``demo`` (a model to show) and
the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


__all__ = ["WEIGHT_PATTERNS", "folder_problem", "local_source_problem", "missing_model_files"]

WEIGHT_PATTERNS = ("*.safetensors", "*.bin")


def missing_model_files(folder: Path, required: Sequence[str]) -> list[str]:
    """What ``folder`` lacks to hold a model: the ``required`` files, and weights (:data:`WEIGHT_PATTERNS`)."""
    missing = [name for name in required if not (folder / name).is_file()]
    if not any(any(folder.glob(pattern)) for pattern in WEIGHT_PATTERNS):
        missing.append("model weights (*.safetensors)")
    return missing


def folder_problem(folder: Path, source: str | Path) -> str | None:
    """Why ``folder`` (given as ``source``, the ``MODEL`` argument) holds no model a ``from_pretrained`` can load, or
    ``None``."""
    missing = missing_model_files(folder, ("config.json",))
    if not missing:
        return None
    return (
        f"MODEL={str(source)!r} holds no model: missing {' and '.join(missing)}. Pass the output_dir of a "
        "`recipes/train_*.py` run or a folder written by `save_pretrained`."
    )


def local_source_problem(source: str | Path) -> str | None:
    """Why the existing path ``source`` cannot be a model (a file, or a folder without one), or ``None``: also for a
    path that does not exist, which may be a Hub id (the loader decides)."""
    path = Path(source).expanduser()
    if not path.exists():
        return None
    if not path.is_dir():
        return f"MODEL={str(source)!r} is a file; expected a run folder or a Hub model id."
    return folder_problem(path, source)
