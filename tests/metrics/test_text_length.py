"""A text dataset the metric encodes fits the model's position table: long texts are truncated to the tokens the model
embeds (``max_position_embeddings``, less RoBERTa's ``padding_idx + 1`` offset), and a bad ``max_length`` is named."""

import datasets
import pytest
from tiny_models import tiny_bert, tiny_text_bert
from transformers import RobertaConfig, RobertaForSequenceClassification

import hf_robattr
from hf_robattr.metrics import dataset_to_inputs


OPTIONS = {"methods": "saliency", "epsilon": 0.1, "num_steps": 1, "k": 2, "num_samples": 1, "progress": False}
WORDS = 40
LONG = datasets.Dataset.from_dict({"text": ["word " * WORDS, "a good film"]})


@pytest.fixture(scope="module")
def tokenizer():
    return hf_robattr.build_offline_tokenizer()


def _roberta(tokenizer, positions: int = 12):
    """A tiny RoBERTa: its positions start at ``padding_idx + 1``, so it embeds ``positions - padding_idx - 1``."""
    return tiny_bert(
        RobertaConfig,
        RobertaForSequenceClassification,
        vocab_size=tokenizer.vocab_size,
        pad_token_id=tokenizer.pad_token_id,
        max_position_embeddings=positions,
        num_hidden_layers=1,
        attn_implementation="eager",
    )


def test_long_texts_are_truncated_to_the_models_positions(tokenizer):
    model = tiny_text_bert(tokenizer)
    assert model.config.max_position_embeddings == 16
    # 42 tokens would crash inside BERT's embeddings ("size of tensor a (42) must match ... (16)").
    result = hf_robattr.AttributionRobustness().compute(model=model, inputs=LONG, tokenizer=tokenizer, **OPTIONS)
    assert result["num_samples"] == 2
    inputs, _ = dataset_to_inputs(LONG, tokenizer=tokenizer, model=model)
    first = inputs["input_ids"][0]
    assert first.shape == (16,)
    assert first[0] == tokenizer.cls_token_id and first[-1] == tokenizer.sep_token_id  # truncated, not cut off


def test_roberta_positions_start_after_padding_idx(tokenizer):
    model = _roberta(tokenizer)
    limit = 12 - tokenizer.pad_token_id - 1
    inputs, _ = dataset_to_inputs(LONG, tokenizer=tokenizer, model=model)
    assert inputs["input_ids"].shape[1] == limit
    result = hf_robattr.AttributionRobustness().compute(model=model, inputs=LONG, tokenizer=tokenizer, **OPTIONS)
    assert result["num_samples"] == 2


@pytest.mark.parametrize(
    ("max_length", "with_model", "width"),
    [
        pytest.param(8, True, 8, id="shorter-than-the-model"),
        pytest.param(100, True, 16, id="capped-at-the-model"),
        pytest.param(None, True, 16, id="default-the-model"),
        pytest.param(None, False, WORDS + 2, id="no-model-the-tokenizer"),
        pytest.param(8, False, 8, id="no-model-max-length"),
    ],
)
def test_max_length_is_capped_at_the_models_positions(tokenizer, max_length, with_model, width):
    model = tiny_text_bert(tokenizer) if with_model else None
    inputs, _ = dataset_to_inputs(LONG, tokenizer=tokenizer, model=model, max_length=max_length)
    assert inputs["input_ids"].shape[1] == width


@pytest.mark.parametrize(
    ("max_length", "error", "match"),
    [
        pytest.param(0, ValueError, r"`max_length` must be an integer >= 1; got 0\.", id="zero"),
        pytest.param(-3, ValueError, r"`max_length` must be an integer >= 1; got -3\.", id="negative"),
        pytest.param(2.5, TypeError, r"`max_length` must be an integer >= 1; got 2\.5", id="fraction"),
        pytest.param(True, TypeError, r"`max_length` must be an integer >= 1; got True", id="bool"),
        pytest.param(
            2, ValueError, r"`max_length` must be larger than the tokenizer's 2 special tokens", id="no-word"
        ),
    ],
)
def test_a_bad_max_length_is_named(tokenizer, max_length, error, match):
    model = tiny_text_bert(tokenizer)
    with pytest.raises(error, match=match):
        hf_robattr.AttributionRobustness().compute(
            model=model, inputs=LONG, tokenizer=tokenizer, max_length=max_length, **OPTIONS
        )
