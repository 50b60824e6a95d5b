"""Write a conversion as a complete Hub folder: the kernel model with its code, ``results.json`` and the card."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .card import build_conversion_card
from .record import ConversionDataRecord
from .student import model_family, model_task


__all__ = ["save_conversion"]


def save_conversion(
    result: Any,
    output_dir: str | Path,
    *,
    processor: Any = None,
    repo_id: str | None = None,
    data: ConversionDataRecord | Mapping[str, Any] | None = None,
) -> Path:
    """Save ``result`` (a :class:`~hf_robattr.conversion.ConversionResult`) to ``output_dir``.

    Writes the kernel model (safetensors, ``config.json`` with ``auto_map`` and the modeling code, so that it loads
    with ``trust_remote_code=True`` where hf_robattr is not installed), the tokenizer or image ``processor`` when
    given, ``results.json`` (its :class:`~hf_robattr.conversion.record.ConversionRecord`) and a ``README.md`` model
    card. ``data`` adds to ``results.json``'s ``data`` section (e.g. the data set's name): a
    :class:`~hf_robattr.conversion.record.ConversionDataRecord` (the recipe's description of its data) or JSON
    keys, which replace the conversion's own; keys it does not know are kept, and of the split keys
    (:class:`~hf_robattr.conversion.record.DataSplitsRecord`) only those given are written. Returns the folder.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    result.model.save_pretrained(output_dir)
    if processor is not None:
        processor.save_pretrained(output_dir)
    record = result.record()
    record.data = record.data.merged(data or {})
    record.write(output_dir)
    card = build_conversion_card(
        record,
        family=model_family(result.model),
        task=model_task(result.model),
        repo_id=repo_id,
        model_name=repo_id.split("/")[-1] if repo_id else output_dir.resolve().name,
        folder=str(output_dir),
    )
    card.save(output_dir / "README.md")
    return output_dir
