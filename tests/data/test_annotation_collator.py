"""DataCollatorWithAnnotations: rationale masks padded with 0 beside the tokens; plain batches unchanged."""

import pytest
import torch
from transformers import DataCollatorWithPadding

from hf_robattr.data import SENTIMENT_POSITIVE_WORDS, DataCollatorWithAnnotations, build_offline_tokenizer


@pytest.fixture
def tokenizer():
    return build_offline_tokenizer()


def features(tokenizer, texts, rationales):
    rows = []
    for text, rationale in zip(texts, rationales):
        encoded = dict(tokenizer(text))
        rows.append({**encoded, "labels": 1, "rationale_mask": rationale})
    return rows


@pytest.mark.parametrize("side", ["right", "left"])
def test_rationale_mask_is_padded_like_the_tokens(tokenizer, side):
    tokenizer.padding_side = side
    rows = features(tokenizer, ["a good film", "the plot was good and the music great"], [[0, 0, 1, 0, 0], [1] * 10])
    batch = DataCollatorWithAnnotations(tokenizer)(rows)
    assert batch["rationale_mask"].shape == batch["input_ids"].shape == (2, 10)
    expected = torch.tensor([0, 0, 1, 0, 0] + [0] * 5)
    expected = expected if side == "right" else expected.roll(5)
    assert torch.equal(batch["rationale_mask"][0], expected)
    assert torch.equal(batch["rationale_mask"][0].bool() & ~batch["attention_mask"][0].bool(), torch.zeros(10).bool())


def test_without_annotations_it_is_data_collator_with_padding(tokenizer):
    rows = [
        {k: v for k, v in row.items() if k != "rationale_mask"} for row in features(tokenizer, ["a", "b c"], [[], []])
    ]
    ours, theirs = DataCollatorWithAnnotations(tokenizer)(rows), DataCollatorWithPadding(tokenizer)(rows)
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[key], theirs[key]) for key in ours)


def test_the_rationale_marks_the_sentiment_words(tokenizer):
    from hf_robattr.data import TextClassificationTransform

    transform = TextClassificationTransform(tokenizer, rationale_column="rationale")
    word = SENTIMENT_POSITIVE_WORDS[0]
    out = transform({"sentence": [f"the film was {word}"], "label": [1], "rationale": [[3]]})
    tokens = tokenizer.convert_ids_to_tokens(out["input_ids"][0])
    assert [token for token, flag in zip(tokens, out["rationale_mask"][0]) if flag] == [word]
