"""Turn what a user gives the page (an image file, a sentence) into model inputs, or into a clear message."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..data import ImageClassificationTransform, processed_pixels
from .loading import IMAGE, DemoInputError, DemoModel


def image_path(value: Any) -> str:
    """The file path of an image input: a path, or a Gradio file payload (``{"path": ...}``)."""
    if value is None or value == "":
        raise DemoInputError("No image: upload an image or pick one of the examples.")
    if isinstance(value, Mapping):
        value = value.get("path") or value.get("name")
    elif hasattr(value, "path"):
        value = value.path
    if not isinstance(value, (str, Path)) or not str(value):
        raise DemoInputError("No image: upload an image or pick one of the examples.")
    return str(value)


def open_image(value: Any) -> Any:
    """The image at ``value`` as a ``PIL.Image`` (loaded), or :class:`DemoInputError` naming the file."""
    from PIL import Image, UnidentifiedImageError

    path = image_path(value)
    name = Path(path).name
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except FileNotFoundError as error:
        raise DemoInputError(f"The image file {name!r} is gone; upload it again.") from error
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise DemoInputError(
            f"Could not read {name!r} as an image (it is corrupt or not an image file); upload a PNG or JPEG."
        ) from error


def image_inputs(demo_model: DemoModel, value: Any) -> tuple[torch.Tensor, list[str]]:
    """Pixel values ``[1, C, H, W]`` for ``demo_model`` from an image file, and notes for the page (resizing)."""
    image = open_image(value)
    config = demo_model.model.config
    size, channels = int(config.image_size), int(config.num_channels)
    notes = []
    if image.size != (size, size):
        notes.append(
            f"The image was resized from {image.size[0]}x{image.size[1]} to {size}x{size}, the model's input size."
        )
    if demo_model.image_processor is not None:
        pixels = processed_pixels(demo_model.image_processor, [image], channels)
    else:  # the recipes' own transform: resize, [0, 1] -> [-1, 1]
        transform = ImageClassificationTransform(image_size=size, num_channels=channels)
        pixels = torch.stack(transform({"image": [image], "label": [0]})["pixel_values"])
    if tuple(pixels.shape[1:]) != (channels, size, size):
        raise DemoInputError(
            f"The image pre-processor of {demo_model.name} gives pixel values of shape {tuple(pixels.shape[1:])}, "
            f"but the model takes ({channels}, {size}, {size})."
        )
    return pixels, notes


def text_inputs(demo_model: DemoModel, value: Any) -> tuple[dict[str, torch.Tensor], list[str]]:
    """A tokenized batch of one sentence for ``demo_model``, and notes for the page (truncation)."""
    if not isinstance(value, str) or not value.strip():
        raise DemoInputError("The text is empty: type a sentence to explain.")
    tokenizer = demo_model.tokenizer
    limit = int(getattr(demo_model.model.config, "max_position_embeddings", 0) or tokenizer.model_max_length)
    limit = min(limit, int(tokenizer.model_max_length or limit))
    # The special-tokens mask keeps [CLS]/[SEP]-like tokens out of the scores (and the picture) for any model.
    batch = tokenizer(
        [value.strip()], truncation=True, max_length=limit, return_tensors="pt", return_special_tokens_mask=True
    )
    notes = []
    full = len(tokenizer(value.strip())["input_ids"])
    if full > limit:
        notes.append(f"The text was cut to its first {limit} tokens (of {full}), the model's maximum length.")
    keys = ("input_ids", "attention_mask", "token_type_ids", "special_tokens_mask")
    inputs = {key: batch[key] for key in keys if key in batch}
    return inputs, notes


def model_inputs(demo_model: DemoModel, value: Any) -> tuple[Any, list[str]]:
    """Inputs of one example for ``demo_model`` (pixels or a tokenized sentence) and notes for the page."""
    return image_inputs(demo_model, value) if demo_model.kind == IMAGE else text_inputs(demo_model, value)
