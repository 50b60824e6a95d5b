"""Checks of the conversion data against the teacher, run on every example before any training (cheap tensor checks;
one forward pass on two examples as a last guard), and the count of held-out examples that are training examples."""

from __future__ import annotations

import hashlib
from typing import Any

import torch
from transformers import PreTrainedModel

from .inputs import ExampleDataset, PaddingCollator


__all__ = ["check_examples", "count_shared_examples", "dry_run"]

# ``labels`` that mark an example (classifier) or token (masked LM) as unscored.
IGNORED_LABEL = -100


class _Refusal(ValueError):
    """A check's finding about one example (the caller adds which argument and model it concerns)."""


def _is_integer(value: torch.Tensor) -> bool:
    return not (value.is_floating_point() or value.is_complex() or value.dtype == torch.bool)


def _image_shape(config: Any) -> tuple[int, int, int]:
    size = config.image_size
    height, width = size if isinstance(size, (tuple, list)) else (size, size)
    return config.num_channels, height, width


def _check_text(example: dict[str, torch.Tensor], name: str, config: Any, vocab_size: int | None) -> None:
    ids = example["input_ids"]
    if ids.dim() != 1 or not _is_integer(ids):
        raise _Refusal(
            f"{name} has input_ids of shape {tuple(ids.shape)} and dtype {ids.dtype}; expected one sequence of "
            "integer token ids (a 1-D integer tensor) per example."
        )
    low, high = int(ids.min()), int(ids.max())
    if vocab_size is not None and not 0 <= low <= high < vocab_size:
        raise _Refusal(
            f"{name} has token ids in [{low}, {high}], but the vocabulary holds ids 0 to {vocab_size - 1}; "
            "tokenize with the model's own tokenizer."
        )
    max_positions = getattr(config, "max_position_embeddings", None)
    if max_positions is not None and len(ids) > max_positions:
        raise _Refusal(
            f"{name} has {len(ids)} tokens, more than the model's max_position_embeddings ({max_positions}); "
            f"truncate the texts to at most {max_positions} tokens (truncation=True, max_length={max_positions})."
        )
    for key in ("attention_mask", "token_type_ids"):
        value = example.get(key)
        if value is not None and value.shape != ids.shape:
            raise _Refusal(
                f"{name} has {key} of shape {tuple(value.shape)} for input_ids of shape {tuple(ids.shape)}; expected "
                "one value per token."
            )
    mask = example.get("attention_mask")
    if mask is not None and bool(((mask != 0) & (mask != 1)).any()):
        raise _Refusal(f"{name} has an attention_mask with values other than 0 and 1.")
    types = example.get("token_type_ids")
    type_vocab_size = getattr(config, "type_vocab_size", None)
    if types is not None and not _valid_ids(types, type_vocab_size):
        raise _Refusal(
            f"{name} has token_type_ids in [{types.min().item()}, {types.max().item()}] ({types.dtype}), but the "
            f"model has type_vocab_size={type_vocab_size}: expected integer ids from 0 to {(type_vocab_size or 1) - 1}."
        )


def _valid_ids(ids: torch.Tensor, size: int | None) -> bool:
    """Whether ``ids`` are integers from 0 to ``size - 1`` (any integers when ``size`` is None)."""
    if not ids.numel():
        return True
    return _is_integer(ids) and (size is None or 0 <= int(ids.min()) <= int(ids.max()) < size)


def _check_image(example: dict[str, torch.Tensor], name: str, config: Any) -> None:
    pixels, expected = example["pixel_values"], _image_shape(config)
    if tuple(pixels.shape) != expected:
        raise _Refusal(
            f"{name} has pixel_values of shape {tuple(pixels.shape)}, but the model takes images of shape {expected} "
            "(num_channels, image_size); resize them with the model's image processor."
        )


def _check_labels(example: dict[str, torch.Tensor], name: str, config: Any, task: str) -> None:
    labels = example["labels"]
    if task == "masked_lm":
        ids = example["input_ids"]
        if labels.shape != ids.shape or not _is_integer(labels):
            raise _Refusal(
                f"{name} has labels of shape {tuple(labels.shape)} and dtype {labels.dtype}; a masked LM takes one "
                f"integer label per token (shape {tuple(ids.shape)}, the input_ids' shape; {IGNORED_LABEL} where "
                "unscored). Drop class labels for a masked LM."
            )
        scored = labels[labels != IGNORED_LABEL]
        if scored.numel() and not 0 <= int(scored.min()) <= int(scored.max()) < config.vocab_size:
            raise _Refusal(
                f"{name} has token labels in [{int(scored.min())}, {int(scored.max())}]; expected ids from 0 to "
                f"{config.vocab_size - 1} (the vocabulary) or {IGNORED_LABEL}."
            )
        return
    num_labels = config.num_labels
    if labels.dim() != 0:
        raise _Refusal(
            f"{name} has labels of shape {tuple(labels.shape)}; a classifier takes one label per example (a 0-d "
            "tensor)."
        )
    if num_labels == 1:  # a regression head
        if labels.dtype == torch.bool or not bool(torch.isfinite(labels.double())):
            raise _Refusal(
                f"{name} has label {labels.item()!r}; a one-output (regression) head needs a finite number."
            )
        return
    label = labels.item()
    if not _is_integer(labels) or not (0 <= label < num_labels or label == IGNORED_LABEL):
        raise _Refusal(
            f"{name} has label {label!r} ({labels.dtype}), but the model has {num_labels} labels: expected an "
            f"integer class id from 0 to {num_labels - 1} (or {IGNORED_LABEL}: unscored)."
        )


def check_examples(
    teacher: PreTrainedModel, examples: list[dict[str, torch.Tensor]], *, task: str, argument: str
) -> None:
    """Check that every example of ``examples`` (the data passed as ``argument``) fits ``teacher``, a ``task`` model.

    Every example must have the keys of the first one (e.g. an ``attention_mask`` in all or in none). Text: 1-D
    integer ``input_ids`` within the vocabulary and at most ``max_position_embeddings`` long; ``attention_mask`` and
    ``token_type_ids`` of the same shape (0/1, and ids below ``type_vocab_size``). Images: ``pixel_values`` of the
    shape the model takes. ``labels`` (classifiers and masked LM; base models have none to check): one integer class
    id in ``[0, num_labels)`` per example for a classifier (a finite number for a one-output head), one token id (or
    -100) per token for a masked LM.

    Raises:
        ValueError: ``"{argument} do not fit the model (<class>): {argument}[i] ..."``, naming the first bad
            example and what was expected.
    """
    config = teacher.config
    embeddings = teacher.get_input_embeddings()
    vocab_size = embeddings.num_embeddings if isinstance(embeddings, torch.nn.Embedding) else None
    keys = sorted(examples[0])
    for index, example in enumerate(examples):
        name = f"{argument}[{index}]"
        try:
            if sorted(example) != keys:
                raise _Refusal(
                    f"{name} has the inputs {sorted(example)}, but {argument}[0] has {keys}: every example needs the "
                    "same inputs (an attention_mask, token_type_ids or labels in all examples or in none)."
                )
            if "input_ids" in example:
                _check_text(example, name, config, vocab_size)
            if "pixel_values" in example:
                _check_image(example, name, config)
            if "labels" in example and task != "base":
                _check_labels(example, name, config, task)
        except _Refusal as refusal:
            raise ValueError(f"{argument} do not fit the model ({type(teacher).__name__}): {refusal}") from None


def dry_run(teacher: PreTrainedModel, examples: list[dict], pad_token_id: int, argument: str = "inputs") -> None:
    """One teacher forward on the first two of ``examples`` (the data passed as ``argument``), a last guard after
    :func:`check_examples`. ``ValueError`` names ``argument``."""
    dataset = ExampleDataset(examples[:2])
    batch = PaddingCollator(pad_token_id)([dataset[i] for i in range(len(dataset))])
    batch = {k: v.to(teacher.device) for k, v in batch.items() if k not in ("example_index", "labels")}
    try:
        with torch.no_grad():
            teacher(**batch)
    except (RuntimeError, ValueError, IndexError, TypeError) as error:
        raise ValueError(f"{argument} do not fit the model ({type(teacher).__name__}): {error}") from error


def _fingerprint(example: dict[str, torch.Tensor]) -> bytes:
    """A digest of an example's model input (``input_ids`` or ``pixel_values``; masks and labels aside)."""
    key = "input_ids" if "input_ids" in example else "pixel_values"
    value = example[key].detach().cpu().contiguous()
    digest = hashlib.blake2b(f"{key}{tuple(value.shape)}{value.dtype}".encode(), digest_size=16)
    digest.update(value.reshape(-1).view(torch.uint8).numpy())
    return digest.digest()


def count_shared_examples(train: list[dict[str, torch.Tensor]], evaluation: list[dict[str, torch.Tensor]]) -> int:
    """How many examples of ``evaluation`` have the same model input (token ids or pixels) as an example of
    ``train``: 0 when the fidelity data is held out from the conversion data."""
    seen = {_fingerprint(example) for example in train}
    return sum(_fingerprint(example) in seen for example in evaluation)
