"""Split what a user passes as ``inputs`` into model-ready batches."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch


# Columns of a dataset row that are model inputs; everything else (text, labels, ids) is ignored.
INPUT_COLUMNS = ("pixel_values", "input_ids", "attention_mask", "token_type_ids", "position_ids", "inputs_embeds")


def _length(batch: torch.Tensor | Mapping[str, Any]) -> int:
    if isinstance(batch, torch.Tensor):
        return batch.shape[0]
    for value in batch.values():
        return len(value)
    raise ValueError("`inputs` is an empty mapping; expected `pixel_values` or `input_ids`.")


def _slice(batch: torch.Tensor | Mapping[str, Any], start: int, stop: int) -> torch.Tensor | dict[str, Any]:
    if isinstance(batch, torch.Tensor):
        return batch[start:stop]
    return {key: value[start:stop] for key, value in batch.items()}


def _column(values: Any) -> torch.Tensor:
    if isinstance(values, torch.Tensor):
        return values
    if isinstance(values, list | tuple) and values and isinstance(values[0], torch.Tensor | list):
        rows = [torch.as_tensor(row) for row in values]
        if len({row.shape for row in rows}) > 1:
            # Unpadded token columns: right-pad with 0 (the attention mask is padded with 0 too).
            return torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=0)
        return torch.stack(rows)
    return torch.as_tensor(values)


def _as_tensors(batch: Mapping[str, Any]) -> dict[str, Any]:
    tensors = {key: _column(value) for key, value in batch.items() if key in INPUT_COLUMNS}
    ids = batch.get("input_ids")
    if "attention_mask" not in tensors and isinstance(ids, list | tuple) and len({len(row) for row in ids}) > 1:
        mask = [torch.ones(len(row), dtype=torch.long) for row in ids]
        tensors["attention_mask"] = torch.nn.utils.rnn.pad_sequence(mask, batch_first=True, padding_value=0)
    return tensors


def count_batches(inputs: Any, batch_size: int) -> int | None:
    """Number of batches :func:`iter_batches` will yield, when known without consuming ``inputs``."""
    if isinstance(inputs, torch.Tensor | Mapping) or hasattr(inputs, "column_names"):
        return -(-_dataset_or_batch_length(inputs) // batch_size)
    return None


def _dataset_or_batch_length(inputs: Any) -> int:
    return len(inputs) if hasattr(inputs, "column_names") else _length(inputs)


def iter_batches(inputs: Any, batch_size: int) -> Iterator[torch.Tensor | dict[str, Any]]:
    """Yield batches of at most ``batch_size`` examples.

    ``inputs`` is a pixel tensor, a tokenized mapping (``input_ids``, ``attention_mask``, ...), a
    ``datasets.Dataset`` with model-input columns, or an iterable of tensors / mappings (each re-split to
    ``batch_size``). Unpadded token columns are right-padded with 0 per batch, and an attention mask is made for them
    if there is none.
    """
    if isinstance(inputs, torch.Tensor | Mapping):
        batches: Iterable[Any] = [inputs]
    elif hasattr(inputs, "column_names"):
        columns = [name for name in inputs.column_names if name in INPUT_COLUMNS]
        if not columns:
            raise ValueError(f"`inputs` dataset has no model-input column; expected some of {list(INPUT_COLUMNS)}.")
        dataset = inputs.select_columns(columns).with_format("torch")
        batches = (dataset[start : start + batch_size] for start in range(0, len(dataset), batch_size))
    elif isinstance(inputs, Iterable):
        batches = inputs
    else:
        raise TypeError(
            f"`inputs` must be a tensor, a mapping, a datasets.Dataset or an iterable of batches; got {type(inputs).__name__}."
        )
    for batch in batches:
        if isinstance(batch, Mapping):
            batch = _as_tensors(batch)
        elif not isinstance(batch, torch.Tensor):
            raise TypeError(f"each batch of `inputs` must be a tensor or a mapping; got {type(batch).__name__}.")
        size = _length(batch)
        for start in range(0, size, batch_size):
            yield _slice(batch, start, start + batch_size)


def move(batch: torch.Tensor | Mapping[str, Any], device: torch.device) -> torch.Tensor | dict[str, Any]:
    """``batch`` on ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    return {key: value.to(device) if isinstance(value, torch.Tensor) else value for key, value in batch.items()}
