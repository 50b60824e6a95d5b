"""Transforms that turn raw dataset columns into model inputs, for ``Dataset.with_transform`` / ``Dataset.map``."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from datasets import Dataset, Image
from PIL import Image as PILImage
from transformers import DataCollatorWithPadding

from .tensor_cache import IMAGE_TENSOR_CACHE, encoded_digest


__all__ = [
    "ANNOTATION_KEYS",
    "MASK_COLUMN",
    "RATIONALE_COLUMN",
    "DataCollatorWithAnnotations",
    "ImageClassificationTransform",
    "TextClassificationTransform",
    "model_inputs",
    "processed_pixels",
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


def _to_pil(image: Any, decoder: Image | None = None) -> PILImage.Image:
    """A PIL image from a PIL image, an array, a path, or an encoded image (``{"bytes", "path"}``, decoded by
    ``decoder``, the column's ``datasets.Image`` feature, exactly as ``datasets`` decodes it)."""
    image = _as_encoded(image)
    if isinstance(image, PILImage.Image):
        return image
    if isinstance(image, dict):
        return (decoder or Image()).decode_example(image)
    return PILImage.fromarray(np.asarray(image))


def _as_encoded(image: Any) -> Any:
    """A path becomes an encoded image (``{"bytes": None, "path": ...}``), so it is decoded, and cached, as one."""
    return {"bytes": None, "path": os.fspath(image)} if isinstance(image, (str, os.PathLike)) else image


def _processor_fingerprint(processor: Any) -> str | None:
    """The class and every setting of an image processor (``None`` where it cannot say them: then no caching)."""
    to_json = getattr(processor, "to_json_string", None)
    if to_json is None:
        return None
    try:
        return f"{type(processor).__module__}.{type(processor).__qualname__}\n{to_json()}"
    except (TypeError, ValueError):
        return None


def processed_pixels(processor: Any, images: Sequence[PILImage.Image], num_channels: int = 3) -> torch.Tensor:
    """``processor``'s pixel values ``[N, C, H, W]`` (float32) for ``images``, with ``C = num_channels``.

    Images go in as RGB, or as grayscale for a 1-channel model whose processor normalises one channel; a 1-channel
    model with a 3-channel processor gets the mean of the 3 normalised channels (a grayscale checkpoint saved with an
    RGB processor still reads its images).
    """
    mean = getattr(processor, "image_mean", None)
    gray = num_channels == 1 and mean is not None and np.size(mean) == 1
    pixels = processor(images=[image.convert("L" if gray else "RGB") for image in images], return_tensors="pt")
    pixels = pixels["pixel_values"]
    if isinstance(pixels, (list, tuple)):
        pixels = torch.stack([torch.as_tensor(p) for p in pixels])
    pixels = torch.as_tensor(pixels, dtype=torch.float32)
    if num_channels == 1 and pixels.ndim == 4 and pixels.shape[1] == 3:
        pixels = pixels.mean(dim=1, keepdim=True)
    return pixels


class ImageClassificationTransform:
    """Batch transform: images -> normalised ``pixel_values`` ``[C, H, W]``, labels -> ``labels``.

    Use with ``transform.attach(dataset)`` (or ``dataset.with_transform(transform)``). With an ``image_processor``
    (from a checkpoint) it does the resizing and normalisation (:func:`processed_pixels`, in ``num_channels``
    channels); otherwise images are converted to ``num_channels`` channels, resized to ``image_size`` (bilinear)
    and normalised with ``mean``/``std`` (per channel, on ``[0, 1]`` values). Images may be PIL images, arrays,
    file paths or encoded images (``{"bytes", "path"}``, as ``datasets.Image(decode=False)`` gives them).

    With ``mask_column`` set, the ground-truth masks are resized the same way (nearest) and returned under
    ``masks`` as ``[H, W]`` float tensors in ``[0, 1]`` (for attribution localisation, not for training).

    With ``cache`` (the default), the tensors made from encoded images and paths are memoised in the process-wide
    :data:`~hf_robattr.data.IMAGE_TENSOR_CACHE` (an LRU capped at 256 MiB by default), keyed by a digest of the
    encoded bytes and the transform's settings (the processor's class and settings included): a repeated image,
    on the next epoch or in the next run, is not decoded or transformed again, and gives the same values bit for
    bit. Decoded inputs (PIL images, arrays) are transformed every time. Returned tensors never share storage with
    the cache. :meth:`attach` leaves the dataset's image columns encoded, so that training benefits.
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
        cache: bool = True,
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
        self.cache = cache

    def attach(self, dataset: Dataset) -> Dataset:
        """``dataset.with_transform(self)``, with the image (and mask) columns cast to ``Image(decode=False)``:
        ``datasets`` then hands over the encoded bytes, and an image already in the cache is not decoded again.
        Cache misses are decoded by the column's own ``Image`` feature, exactly as ``datasets`` would have."""
        decoders: dict[str, Image] = {}
        for column in (self.image_column, self.mask_column):
            feature = dataset.features.get(column) if column is not None else None
            if isinstance(feature, Image) and feature.decode:
                decoders[column] = feature
                dataset = dataset.cast_column(column, dataclasses.replace(feature, decode=False))
        return dataset.with_transform(_AttachedImageTransform(self, decoders))

    def _pixels(self, image: Any) -> torch.Tensor:
        image = _to_pil(image).convert("RGB" if self.num_channels == 3 else "L")
        image = image.resize((self.image_size, self.image_size), PILImage.BILINEAR)
        array = np.asarray(image, dtype=np.float32) / 255.0
        tensor = torch.from_numpy(array).view(self.image_size, self.image_size, self.num_channels).permute(2, 0, 1)
        return (tensor - self.mean) / self.std

    def _mask(self, mask: Any) -> torch.Tensor:
        mask = _to_pil(mask).convert("L").resize((self.image_size, self.image_size), PILImage.NEAREST)
        return torch.from_numpy(np.asarray(mask, dtype=np.float32) / 255.0)

    def _pixels_batch(self, images: list[PILImage.Image]) -> list[torch.Tensor]:
        return [self._pixels(image) for image in images]

    def _masks_batch(self, masks: list[PILImage.Image]) -> list[torch.Tensor]:
        return [self._mask(mask) for mask in masks]

    def _processed(self, images: list[PILImage.Image]) -> list[torch.Tensor]:
        return list(processed_pixels(self.image_processor, images, self.num_channels))

    def _memoised(
        self,
        values: list[Any],
        decoder: Image | None,
        settings: Hashable | None,
        compute: Callable[[list[PILImage.Image]], list[torch.Tensor]],
    ) -> list[torch.Tensor]:
        """``compute`` over the decoded ``values``, except those whose tensor is cached under ``settings``."""
        values = [_as_encoded(value) for value in values]
        keys: list[Hashable | None] = [None] * len(values)
        out: list[torch.Tensor | None] = [None] * len(values)
        if self.cache and settings is not None:
            mode = None if decoder is None else decoder.mode
            for i, value in enumerate(values):
                digest = encoded_digest(value)
                if digest is not None:
                    keys[i] = (settings, mode, digest)
                    out[i] = IMAGE_TENSOR_CACHE.get(keys[i])
        missing = [i for i, tensor in enumerate(out) if tensor is None]
        if missing:
            for i, tensor in zip(missing, compute([_to_pil(values[i], decoder) for i in missing]), strict=True):
                out[i] = tensor
                if keys[i] is not None:
                    IMAGE_TENSOR_CACHE.put(keys[i], tensor)
        return out  # type: ignore[return-value]

    def _transform(self, batch: dict[str, list[Any]], decoders: dict[str, Image]) -> dict[str, Any]:
        if self.image_processor is not None:
            fingerprint = _processor_fingerprint(self.image_processor)
            settings = None if fingerprint is None else ("processor", fingerprint, self.num_channels)
            compute = self._processed
        else:
            settings = (
                "pixels",
                self.image_size,
                self.num_channels,
                *self.mean.flatten().tolist(),
                *self.std.flatten().tolist(),
            )
            compute = self._pixels_batch
        pixel_values = self._memoised(batch[self.image_column], decoders.get(self.image_column), settings, compute)
        out: dict[str, Any] = {"pixel_values": pixel_values, "labels": list(batch[self.label_column])}
        if self.mask_column is not None:
            decoder = decoders.get(self.mask_column)
            out["masks"] = self._memoised(
                batch[self.mask_column], decoder, ("mask", self.image_size), self._masks_batch
            )
        return out

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, Any]:
        return self._transform(batch, {})


class _AttachedImageTransform:
    """What :meth:`ImageClassificationTransform.attach` gives ``with_transform``: the transform, with the ``Image``
    features that decode the columns it left encoded."""

    def __init__(self, transform: ImageClassificationTransform, decoders: dict[str, Image]) -> None:
        self.transform = transform
        self.decoders = decoders

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, Any]:
        return self.transform._transform(batch, self.decoders)


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
