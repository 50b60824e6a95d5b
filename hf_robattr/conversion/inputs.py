"""Turn what a user passes as conversion data (texts, tensors, datasets) into per-example model inputs, and pad them
back into batches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import Dataset as TorchDataset
from torch.utils.data import Sampler


__all__ = [
    "MODEL_INPUT_KEYS",
    "ExampleDataset",
    "LengthGroupedSampler",
    "PaddingCollator",
    "max_text_length",
    "to_examples",
]

MODEL_INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids", "pixel_values", "labels")
_SEQUENCE_KEYS = ("input_ids", "attention_mask", "token_type_ids")


def _as_tensor(value: Any, key: str, argument: str) -> torch.Tensor:
    try:
        return value if torch.is_tensor(value) else torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(f"{argument}: {key!r} must be a tensor or an array, got {type(value).__name__}.") from error


def _clean(example: Mapping[str, Any], argument: str) -> dict[str, torch.Tensor]:
    example = dict(example)
    if "label" in example and "labels" not in example:
        example["labels"] = example.pop("label")
    return {key: _as_tensor(example[key], key, argument) for key in MODEL_INPUT_KEYS if key in example}


def _strip_padding(example: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Cut a right-padded text example to its last real token (padding is re-added per batch)."""
    mask, ids = example.get("attention_mask"), example.get("input_ids")
    if mask is None or mask.dim() != 1 or not bool(mask.any()):
        return example
    if ids is not None and ids.shape != mask.shape:  # left whole for the checks to refuse, never cut by a bad mask
        return example
    length = int(torch.nonzero(mask).max()) + 1
    return {
        key: value[:length] if key in _SEQUENCE_KEYS or (key == "labels" and value.dim() == 1) else value
        for key, value in example.items()
    }


def _split_batch(batch: Mapping[str, Any], argument: str) -> list[dict[str, torch.Tensor]]:
    tensors = _clean(batch, argument)
    if not tensors:
        raise ValueError(f"{argument} has none of the model input keys {list(MODEL_INPUT_KEYS)}; got {list(batch)}.")
    sizes = {key: value.shape[0] if value.dim() else None for key, value in tensors.items()}
    if len(set(sizes.values())) != 1 or None in sizes.values():
        raise ValueError(f"{argument}: every tensor must share the batch dimension, got sizes {sizes}.")
    size = next(iter(sizes.values()))
    return [{key: value[i] for key, value in tensors.items()} for i in range(size)]


def max_text_length(model_config: Any, requested: int) -> int:
    """``requested`` capped at the model's ``max_position_embeddings`` (texts are truncated to it)."""
    return min(requested, getattr(model_config, "max_position_embeddings", None) or requested)


def _tokenize(texts: Sequence[str], tokenizer: Any, max_length: int) -> list[dict[str, torch.Tensor]]:
    if tokenizer is None:
        raise ValueError("inputs are texts, so convert_to_kernel needs tokenizer= (the model's tokenizer).")
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)
    keys = [key for key in _SEQUENCE_KEYS if key in encoded]
    return [{key: torch.tensor(encoded[key][i]) for key in keys} for i in range(len(texts))]


def to_examples(
    inputs: Any,
    *,
    family: str,
    tokenizer: Any = None,
    max_length: int = 64,
    text_column: str = "text",
    argument: str = "inputs",
) -> list[dict[str, torch.Tensor]]:
    """Per-example input dicts (``input_ids``/``attention_mask``/``token_type_ids`` or ``pixel_values``, and
    ``labels`` when present) from any of:

    * a list of strings (with ``tokenizer``), or a ``datasets.Dataset`` with a ``text_column`` and no ``input_ids``;
    * a mapping of batched tensors (a tokenizer's ``BatchEncoding``, ``{"pixel_values": x}``);
    * one tensor: ``pixel_values`` for ViT, ``input_ids`` for BERT;
    * a sequence or dataset of example mappings (``datasets.Dataset``, a torch ``Dataset``, a list of dicts).

    Raises ``ValueError`` for empty or malformed inputs and ``TypeError`` for unsupported types, naming ``argument``.
    """
    if inputs is None:
        raise ValueError(f"{argument} is None: pass the conversion data (texts, tensors or a dataset).")
    if isinstance(inputs, str):
        raise TypeError(f"{argument} is a single string; pass a list of texts.")
    columns = getattr(inputs, "column_names", None)
    if isinstance(columns, dict):
        raise TypeError(
            f"{argument} is a DatasetDict with splits {list(columns)}; pass one split, e.g. inputs['train']."
        )
    if torch.is_tensor(inputs):
        key = "pixel_values" if family == "vit" else "input_ids"
        examples = _split_batch({key: inputs}, argument)
    elif isinstance(inputs, Mapping):
        examples = _split_batch(inputs, argument)
    elif columns is not None and "input_ids" not in columns and "pixel_values" not in columns:
        if text_column not in columns:
            raise ValueError(
                f"{argument} has no model inputs (input_ids / pixel_values) and no text column {text_column!r}; "
                f"its columns are {columns}."
            )
        examples = _tokenize(inputs[text_column], tokenizer, max_length)
    elif isinstance(inputs, (Sequence, TorchDataset)) or columns is not None:
        if len(inputs) and isinstance(inputs[0], str):
            examples = _tokenize(inputs, tokenizer, max_length)
        else:
            examples = []
            for i in range(len(inputs)):
                item = inputs[i]
                if not isinstance(item, Mapping):
                    raise TypeError(f"{argument}[{i}] must be a mapping of model inputs, got {type(item).__name__}.")
                examples.append(_clean(item, argument))
    else:
        raise TypeError(
            f"{argument} must be texts, a tensor, a mapping of tensors or a dataset of examples, got {type(inputs).__name__}."
        )
    if not examples:
        raise ValueError(f"{argument} is empty: the conversion needs at least one example.")
    return [_strip_padding(example) for example in _checked(examples, family, argument)]


def _checked(examples: list[dict[str, torch.Tensor]], family: str, argument: str) -> list[dict[str, torch.Tensor]]:
    required = "pixel_values" if family == "vit" else "input_ids"
    for i, example in enumerate(examples):
        if required not in example:
            raise ValueError(
                f"{argument}[{i}] has no {required!r} (a {family.upper()} model needs it); got {list(example)}."
            )
        if example[required].numel() == 0:
            raise ValueError(f"{argument}[{i}] has an empty {required!r}.")
        pixels = example.get("pixel_values")
        if pixels is not None and (not pixels.is_floating_point() or not bool(torch.isfinite(pixels).all())):
            raise ValueError(f"{argument}[{i}]: pixel_values must be finite floats, got dtype {pixels.dtype}.")
    return examples


class ExampleDataset(TorchDataset):
    """A list of example dicts as a map-style dataset; each item also carries its ``example_index``."""

    def __init__(self, examples: list[dict[str, torch.Tensor]]):
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {**self.examples[index], "example_index": torch.tensor(index)}

    def lengths(self) -> list[int]:
        """Tokens per example (1 for images)."""
        return [len(e["input_ids"]) if "input_ids" in e else 1 for e in self.examples]


class LengthGroupedSampler(Sampler[int]):
    """A seeded random order in which every global batch holds texts of similar lengths (less padding: the N x N
    attention weights of stage 1 grow with the longest text of a batch).

    Each epoch: shuffle, drop ``len % global_batch_size`` examples, sort groups of ``group_batches`` global batches
    by length, cut them into global batches and shuffle those. The global batches do not depend on how many
    processes share them (each takes consecutive per-process slices), so 1 and N processes train alike.
    """

    def __init__(self, lengths: list[int], global_batch_size: int, *, seed: int = 0, group_batches: int = 16):
        self.lengths = lengths
        self.global_batch_size = global_batch_size
        self.seed = seed
        self.group_batches = group_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw the order of ``epoch`` (the ``Trainer`` calls this at every epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths) - len(self.lengths) % self.global_batch_size

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.lengths), generator=generator).tolist()[: len(self)]
        group, batches = self.global_batch_size * self.group_batches, []
        for start in range(0, len(order), group):
            ranked = sorted(order[start : start + group], key=lambda i: self.lengths[i])
            batches += [ranked[i : i + self.global_batch_size] for i in range(0, len(ranked), self.global_batch_size)]
        shuffled = torch.randperm(len(batches), generator=generator).tolist()
        return iter([index for b in shuffled for index in batches[b]])


class PaddingCollator:
    """Stack examples into a batch, right-padding text inputs to the longest example of the batch.

    ``input_ids`` are padded with ``pad_token_id``, ``attention_mask`` / ``token_type_ids`` with 0 and per-token
    ``labels`` with -100. Text examples without an ``attention_mask`` get one of ones.
    """

    def __init__(self, pad_token_id: int = 0):
        self.pad_token_id = pad_token_id

    def __call__(self, features: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        if "input_ids" in features[0] and "attention_mask" not in features[0]:
            features = [{**f, "attention_mask": torch.ones_like(f["input_ids"])} for f in features]
        batch = {}
        for key in features[0]:
            values = [f[key] for f in features]
            if key in _SEQUENCE_KEYS or (key == "labels" and values[0].dim() == 1 and "input_ids" in features[0]):
                pad = {"input_ids": self.pad_token_id, "labels": -100}.get(key, 0)
                batch[key] = torch.nn.utils.rnn.pad_sequence(values, batch_first=True, padding_value=pad)
            else:
                batch[key] = torch.stack(values)
        return batch
