"""Which tokens of a text are special ([CLS], [SEP], <s>, </s>, padding): from the batch's ``special_tokens_mask``,
the ids the model config names, or the tokenizer saved with the model."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping

import torch
from torch import nn


__all__ = [
    "SPECIAL_TOKENS_MASK",
    "SPECIAL_TOKEN_ID_FIELDS",
    "padding_ids",
    "saved_tokenizer_special_ids",
    "special_token_ids",
    "special_tokens",
]

# The batch key of a tokenizer's special-tokens mask (``tokenizer(..., return_special_tokens_mask=True)``): 1 for a
# special token. Read to build the word mask, never passed to the model.
SPECIAL_TOKENS_MASK = "special_tokens_mask"

# Model-config fields that name a special token's id, where set.
SPECIAL_TOKEN_ID_FIELDS = ("cls_token_id", "sep_token_id", "bos_token_id", "eos_token_id", "pad_token_id")


def special_token_ids(model: nn.Module) -> list[int]:
    """The special token ids that ``model.config`` names (:data:`SPECIAL_TOKEN_ID_FIELDS`, where set), sorted; where
    it names none but padding (BERT configs), also those of the tokenizer saved with the model, if any."""
    config = getattr(model, "config", None)
    ids: set[int] = set()
    for name in SPECIAL_TOKEN_ID_FIELDS:
        value = getattr(config, name, None)
        for item in value if isinstance(value, list | tuple) else (value,):
            if isinstance(item, int) and not isinstance(item, bool) and item >= 0:
                ids.add(item)
    if not ids - padding_ids(model):
        ids.update(saved_tokenizer_special_ids(getattr(config, "name_or_path", None) or ""))
    return sorted(ids)


def padding_ids(model: nn.Module) -> set[int]:
    """The padding id that ``model.config`` names, as a set (empty when none)."""
    pad = getattr(getattr(model, "config", None), "pad_token_id", None)
    return {pad} if isinstance(pad, int) else set()


@functools.lru_cache(maxsize=32)
def saved_tokenizer_special_ids(name_or_path: str) -> tuple[int, ...]:
    """The [CLS]/[SEP]/<s>/</s>/padding ids (:data:`SPECIAL_TOKEN_ID_FIELDS`) of the tokenizer stored at
    ``name_or_path`` (a folder, or a Hub id already in the local cache; never downloaded), or ``()`` when there is
    none."""
    if not name_or_path:
        return ()
    from transformers import AutoTokenizer

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tokenizer = AutoTokenizer.from_pretrained(name_or_path, local_files_only=True)
    except Exception:  # any failure means: no usable tokenizer saved there
        return ()
    # Without vocabulary files transformers builds an empty tokenizer of default special tokens: not the model's.
    if len(tokenizer) <= len(set(getattr(tokenizer, "all_special_ids", ()))):
        return ()
    # The ids that frame a text ([UNK] stands for a word, so it is not one of them), as the recipes name them.
    ids = (getattr(tokenizer, name, None) for name in SPECIAL_TOKEN_ID_FIELDS)
    return tuple(sorted({i for i in ids if isinstance(i, int) and i >= 0}))


def special_tokens(
    model: nn.Module, tensors: Mapping[str, torch.Tensor], shape: torch.Size
) -> tuple[torch.Tensor, bool]:
    """``[B, T]`` boolean: which tokens are special (see :func:`prepare_inputs` for the sources), and whether anything
    named them: a ``special_tokens_mask``, or special ids beyond padding read from ``input_ids``. False means every
    real token counts as a word only because nothing said otherwise: ids whose special tokens nothing names, or
    ``inputs_embeds`` without a mask for a model that frames its texts with special tokens (the embeddings hold no
    ids to find them by). Embeddings for a model that names no special token beyond padding have none to name."""
    given = tensors.get(SPECIAL_TOKENS_MASK)
    if given is not None:
        if given.shape != shape:
            raise ValueError(
                f"`inputs['{SPECIAL_TOKENS_MASK}']` must have the tokens' shape {list(shape)} (1 for a special "
                f"token); got {list(given.shape)}."
            )
        return given.bool(), True
    ids = tensors.get("input_ids")
    known = special_token_ids(model)
    framed = bool(set(known) - padding_ids(model))  # the model has special tokens beyond padding
    if ids is None:  # embeddings hold no ids to find them by: named only when there are none
        return torch.zeros(shape, dtype=torch.bool, device=tensors["inputs_embeds"].device), not framed
    special = torch.tensor(known, dtype=ids.dtype, device=ids.device)
    return torch.isin(ids, special), framed
