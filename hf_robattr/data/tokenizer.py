"""An offline WordPiece tokenizer for the embedded text dataset (no download, no training)."""

from __future__ import annotations

from collections.abc import Iterable

from transformers import BertTokenizerFast

from .embedded import NEUTRAL_WORDS, SENTIMENT_NEGATIVE_WORDS, SENTIMENT_POSITIVE_WORDS


__all__ = ["SPECIAL_TOKENS", "build_offline_tokenizer"]

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def build_offline_tokenizer(words: Iterable[str] | None = None, *, model_max_length: int = 64) -> BertTokenizerFast:
    """A lower-casing BERT (WordPiece) tokenizer whose vocabulary is the special tokens plus ``words``.

    ``words`` defaults to the vocabulary of the embedded ``synthetic_sentiment`` set, so every word is one token.
    The tokenizer is built in memory from the vocabulary and saves normally with ``save_pretrained``.
    """
    if words is None:
        words = (*NEUTRAL_WORDS, *SENTIMENT_POSITIVE_WORDS, *SENTIMENT_NEGATIVE_WORDS)
    vocab = list(dict.fromkeys((*SPECIAL_TOKENS, *(w.lower() for w in words))))
    return BertTokenizerFast(
        vocab={token: index for index, token in enumerate(vocab)}, model_max_length=model_max_length
    )
