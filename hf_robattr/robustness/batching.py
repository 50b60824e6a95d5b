"""Split what a user passes as ``inputs`` into model-ready batches."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch


# Columns of a dataset row that are model inputs; everything else (text, labels, ids) is ignored.
# ``special_tokens_mask`` is read to leave special tokens out of the scores, never passed to the model.
INPUT_COLUMNS = (
    "pixel_values",
    "input_ids",
    "attention_mask",
    "token_type_ids",
    "position_ids",
    "inputs_embeds",
    "special_tokens_mask",
)


def _length(batch: torch.Tensor | Mapping[str, Any]) -> int:
    if isinstance(batch, torch.Tensor):
        return batch.shape[0]
    for value in batch.values():
        return len(value)
    raise ValueError("`inputs` is an empty mapping; expected `pixel_values`, `input_ids` or `inputs_embeds`.")


def _select(batch: torch.Tensor | Mapping[str, Any], rows: torch.Tensor) -> torch.Tensor | dict[str, Any]:
    if isinstance(batch, torch.Tensor):
        return batch[rows]
    return {key: value[rows] for key, value in batch.items()}


def slice_batch(batch: torch.Tensor | Mapping[str, Any], start: int, stop: int) -> torch.Tensor | dict[str, Any]:
    """Rows ``start:stop`` of a pixel tensor or of every column of a tokenized mapping."""
    if isinstance(batch, torch.Tensor):
        return batch[start:stop]
    return {key: value[start:stop] for key, value in batch.items()}


def stack_rows(rows: Sequence[torch.Tensor]) -> torch.Tensor:
    """Rows stacked into one tensor; token rows of different lengths right-padded with 0 (the attention mask is
    padded with 0 too, so the padding is masked out wherever a mask is built or given)."""
    if len({row.shape for row in rows}) > 1:
        return torch.nn.utils.rnn.pad_sequence(list(rows), batch_first=True, padding_value=0)
    return torch.stack(list(rows))


def _column(values: Any) -> torch.Tensor:
    if isinstance(values, torch.Tensor):
        return values
    if isinstance(values, list | tuple) and values and isinstance(values[0], torch.Tensor | list):
        return stack_rows([torch.as_tensor(row) for row in values])
    return torch.as_tensor(values)


def _as_tensors(batch: Mapping[str, Any]) -> dict[str, Any]:
    tensors = {key: _column(value) for key, value in batch.items() if key in INPUT_COLUMNS}
    if not tensors:
        raise ValueError(
            f"`inputs` has no model-input key; expected `pixel_values`, `input_ids` or `inputs_embeds` (and "
            f"optionally {list(INPUT_COLUMNS[2:4])}), got keys {sorted(map(str, batch))}."
        )
    ids = batch.get("input_ids")
    if "attention_mask" not in tensors and isinstance(ids, list | tuple) and len({len(row) for row in ids}) > 1:
        mask = [torch.ones(len(row), dtype=torch.long) for row in ids]
        tensors["attention_mask"] = torch.nn.utils.rnn.pad_sequence(mask, batch_first=True, padding_value=0)
    return tensors


def count_batches(inputs: Any, batch_size: int, *, rank: int = 0, world_size: int = 1) -> int | None:
    """Number of batches :func:`iter_batches` will yield on ``rank``, when known without consuming ``inputs``."""
    total = num_examples(inputs)
    if total is None:
        return None
    return -(-len(range(rank, total, world_size)) // batch_size)


def num_examples(inputs: Any) -> int | None:
    """The number of examples in a tensor, mapping or dataset (``None`` for an iterable of batches or a streaming
    ``datasets.IterableDataset``)."""
    if _is_streaming_dataset(inputs):
        return None
    if hasattr(inputs, "column_names"):
        return len(inputs)
    if isinstance(inputs, torch.Tensor | Mapping):
        return _length(_as_tensors(inputs) if isinstance(inputs, Mapping) else inputs)
    return None


def iter_batches(
    inputs: Any, batch_size: int, *, rank: int = 0, world_size: int = 1
) -> Iterator[tuple[torch.Tensor | dict[str, Any], torch.Tensor]]:
    """Yield ``(batch, example_ids)``: batches of at most ``batch_size`` examples and the examples' indices in
    ``inputs``.

    ``inputs`` is a pixel tensor, a tokenized mapping (``input_ids``, ``attention_mask``, ...), a
    ``datasets.Dataset`` (or a streaming ``datasets.IterableDataset``) with model-input columns, or an iterable of
    tensors / mappings (each re-split to ``batch_size``). Unpadded token columns are right-padded with 0 per batch, and an attention mask is made for them
    if there is none. With ``world_size > 1`` only this ``rank``'s shard is yielded: the examples whose index is
    ``rank`` modulo ``world_size`` (an iterable is read whole on every rank and filtered).
    """
    if isinstance(inputs, torch.Tensor | Mapping):
        batches: Iterable[Any] = [inputs]
    elif _is_streaming_dataset(inputs):
        batches = inputs.iter(batch_size)  # dicts of columns; non-input columns are dropped below
    elif hasattr(inputs, "column_names"):
        columns = [name for name in inputs.column_names if name in INPUT_COLUMNS]
        if not columns:
            raise ValueError(
                f"`inputs` dataset has no model-input column; expected some of {list(INPUT_COLUMNS)}, got "
                f"{list(inputs.column_names)}."
            )
        dataset = inputs.select_columns(columns)
        if world_size > 1:
            dataset = dataset.select(range(rank, len(dataset), world_size))
        dataset = dataset.with_format("torch")
        for start in range(0, len(dataset), batch_size):
            batch = _as_tensors(dataset[start : start + batch_size])
            ids = torch.arange(start, min(start + batch_size, len(dataset))) * world_size + rank
            yield batch, ids
        return
    elif isinstance(inputs, Iterable) and not isinstance(inputs, str | bytes):
        batches = inputs
    else:
        raise TypeError(
            "`inputs` must be a tensor, a mapping, a datasets.Dataset or an iterable of batches; got "
            f"{type(inputs).__name__}."
        )
    seen = 0
    for batch in batches:
        if isinstance(batch, Mapping):
            batch = _as_tensors(batch)
        elif not isinstance(batch, torch.Tensor):
            raise TypeError(f"each batch of `inputs` must be a tensor or a mapping; got {type(batch).__name__}.")
        size = _length(batch)
        ids = torch.arange(seen, seen + size)
        seen += size
        mine = (ids % world_size == rank).nonzero().squeeze(1)
        if world_size > 1:
            batch, ids = _select(batch, mine), ids[mine]
        for start in range(0, len(ids), batch_size):
            yield slice_batch(batch, start, start + batch_size), ids[start : start + batch_size]


def _is_streaming_dataset(inputs: Any) -> bool:
    """A ``datasets.IterableDataset``: columns, but no length (it is read batch by batch)."""
    return hasattr(inputs, "column_names") and hasattr(inputs, "iter") and not hasattr(inputs, "__len__")


def move(batch: torch.Tensor | Mapping[str, Any], device: torch.device) -> torch.Tensor | dict[str, Any]:
    """``batch`` on ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    return {key: value.to(device) if isinstance(value, torch.Tensor) else value for key, value in batch.items()}
