"""Checks of what a user passes as model inputs, each naming the bad argument and what was expected, so that a
wrong dtype, shape or modality fails here instead of deep inside torch or transformers."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .argument_checks import is_integer


__all__ = [
    "check_batch",
    "check_class_logits",
    "check_finite",
    "check_image_batch",
    "check_modality",
    "check_pixels",
    "check_token_ids",
    "check_token_length",
    "check_token_shapes",
    "max_token_positions",
    "padding_aware_numbering",
]


def check_finite(name: str, value: torch.Tensor) -> None:
    """No NaN or infinity in a floating-point input."""
    if value.is_floating_point() and not torch.isfinite(value).all():
        raise ValueError(f"`{name}` contains NaN or infinite values; expected finite numbers.")


def check_batch(value: torch.Tensor, name: str) -> None:
    """A non-empty batch with a leading batch dimension."""
    if value.dim() < 2 or value.shape[0] == 0:
        raise ValueError(
            f"`{name}` must be a non-empty batch with a leading batch dimension; got shape {tuple(value.shape)}."
        )


def check_image_batch(model: nn.Module, pixels: torch.Tensor, name: str) -> None:
    """A transformers image model takes ``[batch, channels, height, width]``: name a single image or a list of them."""
    channels = getattr(getattr(model, "config", None), "num_channels", None)
    if channels is not None and pixels.dim() != 4:
        raise ValueError(
            f"`{name}` must be pixel values [batch, channels, height, width] for {type(model).__name__}; got shape "
            f"{tuple(pixels.shape)}. One image: add a batch dimension (image.unsqueeze(0)); a list of images: stack "
            "them (torch.stack(images)); a list of batches: each one [batch, channels, height, width]."
        )


def check_pixels(pixels: torch.Tensor, name: str) -> None:
    """Pixel values are floating point: gradients and perturbations need real numbers."""
    if not pixels.is_floating_point():
        raise TypeError(
            f"`{name}` must hold floating-point pixel values; got dtype {pixels.dtype}. Convert raw images first, "
            "e.g. `images.float() / 255` or the model's image processor."
        )


def check_modality(model: nn.Module, modality: str | None, given: str, name: str) -> None:
    """Pixel values for an image model, token ids or embeddings for a text model (``modality`` ``None``: unknown)."""
    if modality is None or modality == given:
        return
    takes = "tokenized text (`input_ids` or `inputs_embeds`)" if modality == "text" else "pixel values"
    got = "pixel values" if given == "image" else "tokenized text"
    raise TypeError(f"`{name}`: {type(model).__name__} takes {takes}; got {got}.")


def check_token_ids(ids: torch.Tensor, vocab_size: int | None) -> None:
    """``input_ids``: integers ``[batch, tokens]`` inside the embedding table."""
    name = "inputs['input_ids']"
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise TypeError(f"`{name}` must hold integer token ids; got dtype {ids.dtype}.")
    if ids.dim() != 2 or ids.shape[0] == 0 or ids.shape[1] == 0:
        raise ValueError(
            f"`{name}` must be a non-empty batch of token ids [batch, tokens]; got shape {tuple(ids.shape)}. One "
            "text: add a batch dimension (ids.unsqueeze(0), or tokenize a list of texts with return_tensors='pt')."
        )
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or (vocab_size is not None and high >= vocab_size):
        raise ValueError(
            f"`{name}` holds ids in [{low}, {high}]; the model's embedding table has ids 0..{vocab_size - 1 if vocab_size else '?'}"
            ". Tokenize with the model's own tokenizer."
        )


def padding_aware_numbering(model: nn.Module) -> tuple[Callable[..., torch.Tensor], int] | None:
    """The embedding layer's ``create_position_ids_from_input_ids`` and ``padding_idx`` where it numbers positions
    from the ids (RoBERTa: from ``padding_idx + 1``, padding kept at ``padding_idx``); ``None`` for plain
    numbering from 0."""
    for module in model.modules():
        make = getattr(module, "create_position_ids_from_input_ids", None)
        padding_idx = getattr(module, "padding_idx", None)
        if callable(make) and isinstance(padding_idx, int):
            return make, padding_idx
    return None


def _position_offset(model: nn.Module) -> int:
    """Positions a model's embeddings never give a token: ``padding_idx + 1`` under padding-aware numbering."""
    numbering = padding_aware_numbering(model)
    return 0 if numbering is None else numbering[1] + 1


def max_token_positions(model: nn.Module) -> int | None:
    """The most tokens per example ``model`` can embed: ``config.max_position_embeddings``, less the offset of
    positions numbered from ``padding_idx + 1`` (RoBERTa: 514 - 2 = 512).

    ``None`` when the config has no ``max_position_embeddings`` or the model adds no absolute positions to its inputs
    (``position_biased_input=False``, e.g. DeBERTa-v2/v3): the length is then not bounded by a position table.
    """
    config = getattr(model, "config", None)
    limit = getattr(config, "max_position_embeddings", None)
    if not is_integer(limit) or getattr(config, "position_biased_input", True) is False:
        return None
    return int(limit) - _position_offset(model)


def check_token_length(model: nn.Module, ids: torch.Tensor, name: str = "inputs['input_ids']") -> None:
    """``input_ids`` no longer than the model's position table (:func:`max_token_positions`): a longer batch would
    fail inside the model's embeddings with a shape error that names neither the argument nor the limit."""
    limit = max_token_positions(model)
    if limit is None or ids.dim() < 2 or ids.shape[-1] <= limit:
        return
    config = model.config
    offset = config.max_position_embeddings - limit
    source = f"config.max_position_embeddings = {config.max_position_embeddings}"
    if offset:
        source += f", less {offset} for positions numbered from padding_idx + 1"
    raise ValueError(
        f"`{name}` holds {ids.shape[-1]} tokens per example (shape {list(ids.shape)}); "
        f"{type(model).__name__} takes at most {limit} ({source}). Truncate when tokenizing: "
        f"tokenizer(texts, truncation=True, max_length={limit})."
    )


def check_token_shapes(tensors: dict[str, torch.Tensor], shape: torch.Size, keys: tuple[str, ...]) -> None:
    """The per-token columns ``keys`` (attention mask, token types) have the tokens' shape."""
    for key in keys:
        value = tensors.get(key)
        if value is not None and value.shape != shape:
            raise ValueError(f"`inputs['{key}']` must have the tokens' shape {list(shape)}; got {list(value.shape)}.")


def check_class_logits(logits: torch.Tensor) -> None:
    """Robustness scores keep the predicted label (the argmax): a one-logit model has no label to keep."""
    if logits.shape[1] < 2:
        raise ValueError(
            f"`model` returns {logits.shape[1]} logit per example; robustness scores need a classifier with at least "
            "2 classes (the label an attack must keep is the argmax, always 0 for one logit). Wrap a one-logit "
            "binary model to return [0, z]."
        )
