"""Inputs of the wrong dtype, shape or modality are refused with the argument's name and what was expected, before
they reach torch or transformers (whose own errors name neither)."""

from types import SimpleNamespace

import datasets
import pytest
import torch
from tiny_models import padded_text_batch, tiny_bert
from torch import nn
from transformers import RobertaConfig, RobertaForSequenceClassification

import hf_robattr
from hf_robattr.attribution.input_checks import check_token_length, max_token_positions
from hf_robattr.metrics.inputs import dataset_to_inputs


FAST = dict(methods=("saliency",), epsilon=0.05, num_steps=1, num_samples=2, progress=False)


def _score(model, inputs, **options):
    return hf_robattr.evaluate_attribution_robustness(model, inputs, **{**FAST, **options})


@pytest.mark.parametrize(
    ("change", "error", "words"),
    [
        pytest.param(
            lambda b: {**b, "input_ids": b["input_ids"].float()}, TypeError, ["input_ids", "integer"], id="float-ids"
        ),
        pytest.param(
            lambda b: {**b, "input_ids": b["input_ids"] + 100},
            ValueError,
            ["input_ids", "embedding table"],
            id="out-of-vocabulary",
        ),
        pytest.param(
            lambda b: {**b, "input_ids": -b["input_ids"] - 1}, ValueError, ["input_ids", "[-"], id="negative-ids"
        ),
        pytest.param(
            lambda b: {"input_ids": b["input_ids"][0]},
            ValueError,
            ["input_ids", "[batch, tokens]", "unsqueeze"],
            id="one-text",
        ),
        pytest.param(
            lambda b: {**b, "attention_mask": b["attention_mask"][:, :5]},
            ValueError,
            ["attention_mask", "tokens' shape"],
            id="short-mask",
        ),
        pytest.param(
            lambda b: {**b, "token_type_ids": torch.zeros(4, 3, dtype=torch.long)},
            ValueError,
            ["token_type_ids"],
            id="token-types",
        ),
        pytest.param(
            lambda b: torch.rand(4, 3, 8, 8),
            TypeError,
            ["BertForSequenceClassification", "tokenized text", "pixel values"],
            id="pixels-to-bert",
        ),
    ],
)
def test_bad_text_inputs_are_named(bert, text_batch, change, error, words):
    with pytest.raises(error) as caught:
        _score(bert, change(text_batch))
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))


def test_text_to_an_image_model_and_integer_pixels_are_named(vit, images, text_batch):
    with pytest.raises(TypeError, match="ViTForImageClassification takes pixel values; got tokenized text"):
        _score(vit, text_batch)
    with pytest.raises(TypeError, match=r"floating-point pixel values; got dtype torch.uint8.*float\(\) / 255"):
        _score(vit, (images * 255).to(torch.uint8))
    with pytest.raises(TypeError, match=r"inputs\['pixel_values'\]"):
        _score(vit, {"pixel_values": (images * 255).to(torch.uint8)})


def test_valid_inputs_still_score(bert, text_batch):
    """The checks leave well-formed batches alone: integer ids of any integer dtype, a broadcast position row."""
    as_int32 = {key: value.to(torch.int32) for key, value in text_batch.items()}
    assert _score(bert, as_int32)["num_samples"] == len(text_batch["input_ids"])


class _NoAbsolutePositions(nn.Linear):
    """A model whose config has ``max_position_embeddings`` but adds no absolute positions (DeBERTa-v2/v3)."""

    def __init__(self) -> None:
        super().__init__(2, 2)
        self.config = SimpleNamespace(max_position_embeddings=16, position_biased_input=False)


def test_max_token_positions_reads_the_position_table(bert, vit):
    assert max_token_positions(bert) == bert.config.max_position_embeddings == 16
    # RoBERTa numbers positions from padding_idx + 1: 12 positions, padding_idx 3, so 8 tokens.
    roberta = tiny_bert(RobertaConfig, RobertaForSequenceClassification, pad_token_id=3, max_position_embeddings=12)
    assert max_token_positions(roberta) == 12 - 3 - 1
    assert max_token_positions(vit) is None  # no such field: no limit
    assert max_token_positions(_NoAbsolutePositions()) is None
    assert max_token_positions(nn.Linear(2, 2)) is None


def test_token_ids_longer_than_the_position_table_are_named(bert):
    ids = torch.randint(1, 40, (2, 20))
    with pytest.raises(
        ValueError,
        match=r"`inputs\['input_ids'\]` holds 20 tokens per example \(shape \[2, 20\]\); BertForSequenceClassification "
        r"takes at most 16 \(config.max_position_embeddings = 16\).*max_length=16",
    ):
        check_token_length(bert, ids)
    check_token_length(bert, ids[:, :16])  # at the limit
    roberta = tiny_bert(RobertaConfig, RobertaForSequenceClassification, pad_token_id=1, max_position_embeddings=12)
    with pytest.raises(ValueError, match=r"holds 11 tokens.*at most 10 .*less 2 for positions numbered from padding"):
        check_token_length(roberta, ids[:, :11])
    check_token_length(roberta, ids[:, :10])


def test_the_core_refuses_token_ids_longer_than_the_position_table(bert):
    """Without the check, BERT fails in its embeddings: "The expanded size of the tensor (20) must match ... (16)"."""
    with pytest.raises(ValueError, match=r"`inputs\['input_ids'\]` holds 20 tokens per example.*at most 16"):
        _score(bert, padded_text_batch((20, 12), seed=2, length=20))


def test_a_one_logit_model_is_refused_before_scoring(images):
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 1))
    with pytest.raises(ValueError, match=r"`model` returns 1 logit per example.*at least 2 classes"):
        _score(model, images)


@pytest.mark.parametrize(
    ("labels", "word"),
    [pytest.param(["pos", "neg", "pos"], "'pos'", id="names"), pytest.param([0.7, 1.2, 0.1], "0.7", id="fractions")],
)
def test_metric_label_columns_must_hold_class_indices(labels, word):
    tokenizer = hf_robattr.build_offline_tokenizer()
    dataset = datasets.Dataset.from_dict({"text": ["a great film", "dull", "fine"], "label": labels})
    with pytest.raises(
        ValueError, match=rf"`label_column` 'label' must hold class indices.*{word}.*class_encode_column"
    ):
        dataset_to_inputs(dataset, tokenizer=tokenizer, label_column="label")


def test_metric_label_columns_of_whole_floats_and_class_labels_are_classes():
    tokenizer = hf_robattr.build_offline_tokenizer()
    dataset = datasets.Dataset.from_dict({"text": ["a great film", "dull", "fine"], "label": [1.0, 0.0, 1.0]})
    _, targets = dataset_to_inputs(dataset, tokenizer=tokenizer, label_column="label")
    assert targets.tolist() == [1, 0, 1] and targets.dtype == torch.long
    encoded = dataset.map(lambda row: {"name": ["neg", "pos"][int(row["label"])]}).class_encode_column("name")
    _, targets = dataset_to_inputs(encoded, tokenizer=tokenizer, label_column="name")
    assert targets.tolist() == [1, 0, 1]
