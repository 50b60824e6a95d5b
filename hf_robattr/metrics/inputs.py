"""Turn a ``datasets.Dataset`` plus an image processor or tokenizer into the batch the scoring core expects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch


IMAGE_COLUMNS = ("image", "img", "pixel_values")
TEXT_COLUMNS = ("text", "sentence", "content")


def _pick_column(dataset: Any, column: str | None, candidates: Sequence[str], argument: str) -> str:
    names = list(dataset.column_names)
    if column is not None:
        if column not in names:
            raise ValueError(f"`{argument}`={column!r} is not a column of the dataset; its columns are {names}.")
        return column
    for candidate in candidates:
        if candidate in names:
            return candidate
    raise ValueError(
        f"Could not find the input column among the dataset's columns {names} (looked for {list(candidates)}); "
        f"pass `{argument}`."
    )


def dataset_to_inputs(
    dataset: Any,
    *,
    image_processor: Any = None,
    tokenizer: Any = None,
    image_column: str | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    max_length: int | None = None,
) -> tuple[torch.Tensor | Mapping[str, torch.Tensor], torch.Tensor | None]:
    """Encode a ``datasets.Dataset`` with an image processor or a tokenizer.

    Args:
        dataset: the examples.
        image_processor: a ``transformers`` image processor; encodes ``image_column`` into ``pixel_values``.
        tokenizer: a ``transformers`` tokenizer; encodes ``text_column`` (padded, truncated to ``max_length``).
        image_column: the image column; default: the first of ``image``, ``img``, ``pixel_values``.
        text_column: the text column; default: the first of ``text``, ``sentence``, ``content``.
        label_column: when given, its values become the attribution targets.
        max_length: truncation length for the tokenizer.

    Returns:
        ``(inputs, targets)``: a ``pixel_values`` tensor or a tokenized batch (dict of tensors), and the targets
        (``None`` without ``label_column``, so the core attributes the model's predictions).
    """
    if image_processor is not None and tokenizer is not None:
        raise ValueError("Pass either `image_processor` or `tokenizer` with a dataset, not both.")
    if image_processor is None and tokenizer is None:
        raise ValueError("A `datasets.Dataset` needs an `image_processor` (images) or a `tokenizer` (text).")
    if len(dataset) == 0:
        raise ValueError("`inputs` is an empty dataset.")

    inputs: torch.Tensor | Mapping[str, torch.Tensor]
    if image_processor is not None:
        column = _pick_column(dataset, image_column, IMAGE_COLUMNS, "image_column")
        inputs = image_processor(images=list(dataset[column]), return_tensors="pt")["pixel_values"]
    else:
        column = _pick_column(dataset, text_column, TEXT_COLUMNS, "text_column")
        encoded = tokenizer(
            list(dataset[column]), padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
        inputs = dict(encoded)

    targets = None
    if label_column is not None:
        if label_column not in dataset.column_names:
            raise ValueError(
                f"`label_column`={label_column!r} is not a column of the dataset; its columns are "
                f"{list(dataset.column_names)}."
            )
        targets = torch.as_tensor(dataset[label_column], dtype=torch.long)
    return inputs, targets
