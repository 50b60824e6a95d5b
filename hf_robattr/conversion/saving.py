"""Write a conversion as a complete Hub folder: the kernel model with its code, ``results.json`` and the card."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from .card import build_conversion_card
from .student import model_family, model_task


__all__ = ["RESULTS_FILE", "save_conversion", "write_json_atomic"]

RESULTS_FILE = "results.json"


def _json_safe(value: Any) -> Any:
    """NaN/inf become ``null`` (``results.json`` must be valid JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_json_atomic(path: str | Path, record: dict[str, Any]) -> Path:
    """Write ``record`` as JSON to a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(_json_safe(record), stream, indent=2, allow_nan=False, default=str)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def save_conversion(
    result: Any,
    output_dir: str | Path,
    *,
    processor: Any = None,
    repo_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> Path:
    """Save ``result`` (a :class:`~hf_robattr.conversion.ConversionResult`) to ``output_dir``.

    Writes the kernel model (safetensors, ``config.json`` with ``auto_map`` and the modeling code, so that it loads
    with ``trust_remote_code=True`` where hf_robattr is not installed), the tokenizer or image ``processor`` when
    given, ``results.json`` and a ``README.md`` model card. ``data`` adds to ``results.json``'s ``data`` section
    (e.g. the data set's name). Returns the folder.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    result.model.save_pretrained(output_dir)
    if processor is not None:
        processor.save_pretrained(output_dir)
    results = result.to_results()
    results["data"] = {**results["data"], **(data or {})}
    write_json_atomic(output_dir / RESULTS_FILE, results)
    card = build_conversion_card(
        results,
        family=model_family(result.model),
        task=model_task(result.model),
        repo_id=repo_id,
        model_name=repo_id.split("/")[-1] if repo_id else output_dir.resolve().name,
        folder=str(output_dir),
    )
    card.save(output_dir / "README.md")
    return output_dir
