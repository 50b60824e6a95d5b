"""Transforms that turn raw dataset columns into model inputs, for ``Dataset.with_transform`` / ``Dataset.map``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image as PILImage
from transformers import DataCollatorWithPadding


__all__ = [
    "ANNOTATION_KEYS",
    "MASK_COLUMN",
    "RATIONALE_COLUMN",
    "DataCollatorWithAnnotations",
    "ImageClassificationTransform",
    "TextClassificationTransform",
    "model_inputs",
]

# Columns the transforms add for attribution studies (ground truth, never model inputs): image masks, text rationales.
ANNOTATION_KEYS = ("masks", "rationale_mask")
# The dataset columns they come from (as in the embedded ``synthetic_images`` / ``synthetic_sentiment`` sets).
MASK_COLUMN = "mask"
RATIONALE_COLUMN = "rationale"


def model_inputs(batch: dict[str, Any], *, labels: bool = False) -> dict[str, torch.Tensor]:
    """The tensors of a collated batch that a model takes: the annotation columns (:data:`ANNOTATION_KEYS`) and
    non-tensor entries dropped, and ``labels`` too unless ``labels=True``."""
    dropped = set(ANNOTATION_KEYS) if labels else {*ANNOTATION_KEYS, "labels"}
    return {key: value for key, value in batch.items() if torch.is_tensor(value) and key not in dropped}


def _to_pil(image: Any) -> PILImage.Image:
    if isinstance(image, PILImage.Image):
        return image
    return PILImage.fromarray(np.asarray(image))


class ImageClassificationTransform:
    """Batch transform: images -> normalised ``pixel_values`` ``[C, H, W]``, labels -> ``labels``.

    Use with ``dataset.with_transform(transform)``. With an ``image_processor`` (from a checkpoint) it does the
    resizing and normalisation; otherwise images are converted to ``num_channels`` channels, resized to
    ``image_size`` (bilinear) and normalised with ``mean``/``std`` (per channel, on ``[0, 1]`` values).

    With ``mask_column`` set, the ground-truth masks are resized the same way (nearest) and returned under
    ``masks`` as ``[H, W]`` float tensors in ``[0, 1]`` (for attribution localisation, not for training).
    """

    def __init__(
        self,
        *,
        image_column: str = "image",
        label_column: str = "label",
        image_size: int = 32,
        num_channels: int = 3,
        mean: Sequence[float] = (0.5, 0.5, 0.5),
        std: Sequence[float] = (0.5, 0.5, 0.5),
        image_processor: Any = None,
        mask_column: str | None = None,
    ) -> None:
        if num_channels not in (1, 3):
            raise ValueError(f"num_channels must be 1 or 3, got {num_channels}.")
        self.image_column = image_column
        self.label_column = label_column
        self.image_size = image_size
        self.num_channels = num_channels
        self.mean = torch.tensor(mean[:num_channels], dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std[:num_channels], dtype=torch.float32).view(-1, 1, 1)
        self.image_processor = image_processor
        self.mask_column = mask_column

    def _pixels(self, image: Any) -> torch.Tensor:
        image = _to_pil(image).convert("RGB" if self.num_channels == 3 else "L")
        image = image.resize((self.image_size, self.image_size), PILImage.BILINEAR)
        array = np.asarray(image, dtype=np.float32) / 255.0
        tensor = torch.from_numpy(array).view(self.image_size, self.image_size, self.num_channels).permute(2, 0, 1)
        return (tensor - self.mean) / self.std

    def _mask(self, mask: Any) -> torch.Tensor:
        mask = _to_pil(mask).convert("L").resize((self.image_size, self.image_size), PILImage.NEAREST)
        return torch.from_numpy(np.asarray(mask, dtype=np.float32) / 255.0)

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, Any]:
        images = batch[self.image_column]
        if self.image_processor is not None:
            rgb = [_to_pil(image).convert("RGB") for image in images]
            pixel_values = list(self.image_processor(rgb, return_tensors="pt")["pixel_values"])
        else:
            pixel_values = [self._pixels(image) for image in images]
        out: dict[str, Any] = {"pixel_values": pixel_values, "labels": list(batch[self.label_column])}
        if self.mask_column is not None:
            out["masks"] = [self._mask(mask) for mask in batch[self.mask_column]]
        return out


class TextClassificationTransform:
    """Batch function for ``dataset.map(..., batched=True)``: tokenise ``text_column``, copy labels to ``labels``.

    Padding is left to ``DataCollatorWithPadding``. With ``rationale_column`` set (word indices, as in the
    embedded ``synthetic_sentiment`` set, words split on spaces), a token-level 0/1 ``rationale_mask`` is
    added, aligned with ``input_ids`` through the fast tokenizer's ``word_ids``.
    """

    def __init__(
        self,
        tokenizer: Any,
        *,
        text_column: str = "sentence",
        label_column: str = "label",
        max_seq_length: int = 64,
        rationale_column: str | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.text_column = text_column
        self.label_column = label_column
        self.max_seq_length = max_seq_length
        self.rationale_column = rationale_column

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, Any]:
        texts = batch[self.text_column]
        if self.rationale_column is None:
            encoded = self.tokenizer(texts, truncation=True, max_length=self.max_seq_length)
        else:
            words = [text.split(" ") for text in texts]
            encoded = self.tokenizer(words, is_split_into_words=True, truncation=True, max_length=self.max_seq_length)
            masks = []
            for row, rationale in enumerate(batch[self.rationale_column]):
                keep = set(rationale)
                masks.append([int(w is not None and w in keep) for w in encoded.word_ids(row)])
            encoded["rationale_mask"] = masks
        encoded["labels"] = list(batch[self.label_column])
        return dict(encoded)


@dataclass
class DataCollatorWithAnnotations(DataCollatorWithPadding):
    """``DataCollatorWithPadding`` that also pads the token-level annotations (``rationale_mask``) with 0, on the
    tokenizer's padding side, to the padded length of ``input_ids``. Batches without annotations are collated
    exactly as ``DataCollatorWithPadding`` does."""

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        keys = [key for key in ANNOTATION_KEYS if features and key in features[0]]
        annotations = {key: [feature[key] for feature in features] for key in keys}
        batch = super().__call__([{k: v for k, v in feature.items() if k not in keys} for feature in features])
        length = batch["input_ids"].shape[1]
        for key, rows in annotations.items():
            padded = torch.zeros(len(rows), length, dtype=torch.long)
            for i, row in enumerate(rows):
                values = torch.as_tensor(row, dtype=torch.long)[:length]
                if self.tokenizer.padding_side == "left":
                    padded[i, length - len(values) :] = values
                else:
                    padded[i, : len(values)] = values
            batch[key] = padded
        return batch
