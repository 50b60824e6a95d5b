"""Turn a ``datasets.Dataset`` plus an image processor or tokenizer into the batch the scoring core expects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image as PILImage
from torch import nn

from ..attribution.argument_checks import check_int, is_integer, is_real
from ..attribution.input_checks import max_token_positions
from ..data import IMAGE_COLUMN_CANDIDATES, TEXT_COLUMN_CANDIDATES, processed_pixels, resolve_column


def _column(dataset: Any, column: str | None, candidates: Sequence[str], argument: str, purpose: str) -> str:
    return resolve_column(dataset, column, argument=argument, candidates=candidates, purpose=purpose)


def _text_max_length(model: nn.Module | None, tokenizer: Any, max_length: int | None = None) -> int | None:
    """The length texts are truncated to: ``max_length`` (an integer >= 1), by default the tokenizer's
    ``model_max_length``, capped at the tokens ``model`` can embed (:func:`max_token_positions`: its
    ``config.max_position_embeddings``, less RoBERTa's ``padding_idx + 1`` offset); ``None`` when nothing bounds it.

    Raises:
        TypeError: ``max_length`` is not an integer.
        ValueError: ``max_length`` is below 1, or leaves no room for a word beside the tokenizer's special tokens.
    """
    if max_length is not None:
        max_length = check_int("max_length", max_length, minimum=1)
        specials = getattr(tokenizer, "num_special_tokens_to_add", None)
        count = specials(pair=False) if callable(specials) else 0
        if max_length <= count:
            raise ValueError(
                f"`max_length` must be larger than the tokenizer's {count} special tokens per text, so that a text "
                f"keeps a word; got {max_length}."
            )
    requested = max_length if max_length is not None else getattr(tokenizer, "model_max_length", None)
    embeddable = max_token_positions(model) if model is not None else None
    limits = [int(value) for value in (requested, embeddable) if is_integer(value) and value > 0]
    return min(limits) if limits else None


def dataset_to_inputs(
    dataset: Any,
    *,
    image_processor: Any = None,
    tokenizer: Any = None,
    image_column: str | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    max_length: int | None = None,
    model: nn.Module | None = None,
) -> tuple[torch.Tensor | Mapping[str, torch.Tensor], torch.Tensor | None]:
    """Encode a ``datasets.Dataset`` with an image processor or a tokenizer.

    Args:
        dataset: the examples.
        image_processor: a ``transformers`` image processor; encodes ``image_column`` into ``pixel_values`` (for a
            grayscale ``model``, ``config.num_channels == 1``, in one channel: see
            :func:`~hf_robattr.data.processed_pixels`).
        tokenizer: a ``transformers`` tokenizer; encodes ``text_column`` (padded, truncated: see ``max_length`` and
            ``model``), with its ``special_tokens_mask`` so that the scores leave special tokens out
            (``special_tokens="exclude"``).
        image_column: the image column; default: the first of ``hf_robattr.data.IMAGE_COLUMN_CANDIDATES``.
        text_column: the text column; default: the first of ``hf_robattr.data.TEXT_COLUMN_CANDIDATES``.
        label_column: when given, its values become the attribution targets.
        max_length: truncation length for the tokenizer (an integer >= 1; default: the tokenizer's
            ``model_max_length``); never more than ``model`` can embed.
        model: the model the texts are for; texts are truncated to the tokens its position table holds
            (``config.max_position_embeddings``, less RoBERTa's ``padding_idx + 1`` offset), so a long text cannot
            overflow it.

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
        column = _column(dataset, image_column, IMAGE_COLUMN_CANDIDATES, "image_column", "image")
        # An ``Image`` column gives PIL images; a plain array column gives nested lists.
        images = [np.asarray(image) if isinstance(image, list) else image for image in dataset[column]]
        channels = getattr(getattr(model, "config", None), "num_channels", None)
        if channels == 1 and all(isinstance(image, PILImage.Image) for image in images):
            inputs = processed_pixels(image_processor, images, num_channels=1)  # a grayscale model
        else:
            inputs = image_processor(images=images, return_tensors="pt")["pixel_values"]
    else:
        column = _column(dataset, text_column, TEXT_COLUMN_CANDIDATES, "text_column", "text")
        encoded = tokenizer(
            list(dataset[column]),
            padding=True,
            truncation=True,
            max_length=_text_max_length(model, tokenizer, max_length),
            return_tensors="pt",
            return_special_tokens_mask=True,
        )
        inputs = dict(encoded)

    targets = None
    if label_column is not None:
        _column(dataset, label_column, (), "label_column", "label")
        targets = _class_indices(list(dataset[label_column]), label_column)
    return inputs, targets


def _class_indices(values: list[Any], column: str) -> torch.Tensor:
    """The label column as class indices; names or fractional values are refused (they are not classes)."""
    for value in values:
        if not (is_integer(value) or (is_real(value) and float(value).is_integer())):
            raise ValueError(
                f"`label_column` {column!r} must hold class indices (integers); got {value!r}. Encode names as "
                "classes first (`dataset.class_encode_column(...)`, or map them with `model.config.label2id`)."
            )
    return torch.as_tensor([int(value) for value in values], dtype=torch.long)
