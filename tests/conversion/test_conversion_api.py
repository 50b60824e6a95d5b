"""convert_to_kernel: bad inputs fail before any training with clear errors; a seed fixes the converted weights."""

import pytest
import torch
from conversion_helpers import QUICK
from transformers import BertConfig, BertForQuestionAnswering, Trainer

from hf_robattr.conversion import convert_to_kernel
from hf_robattr.models import RobAttrBertConfig, RobAttrBertModel


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if any Trainer starts training."""

    def refuse(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(Trainer, "train", refuse)


def _tiny_kernel_bert():
    config = RobAttrBertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=32, attention_type="kernel", kernel_feature_map="hedgehog")  # fmt: skip
    return RobAttrBertModel(config)


@pytest.mark.parametrize(
    "case, error, message",
    [
        ("question_answering", TypeError, "model must be a ViT or BERT model .* got BertForQuestionAnswering"),
        ("linear", TypeError, "got Linear"),
        ("kernel", ValueError, "already uses attention_type='kernel'"),
        (
            "feature_map",
            ValueError,
            r"feature_map must be one of \['elu', 'favor', 'hedgehog', 'relu'\], got 'gaussian'",
        ),
        ("empty", ValueError, "inputs is empty"),
        ("empty_eval", ValueError, "eval_inputs is empty"),
        ("too_few", ValueError, r"holds 4 examples, fewer than the stage 1 global batch size \(16\)"),
        ("wrong_shape", ValueError, "inputs do not fit the model"),
        ("setting", TypeError, r"Unknown conversion setting\(s\) \['transfer_step'\]"),
        ("texts_without_tokenizer", ValueError, "needs tokenizer="),
    ],
)
def test_bad_inputs_fail_before_training(teachers, text_ids, images, no_training, case, error, message):
    model, inputs, kwargs = teachers["bert"], text_ids[0], dict(QUICK)
    if case == "question_answering":
        model = BertForQuestionAnswering(BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1,
                                                    num_attention_heads=2, intermediate_size=32))  # fmt: skip
    elif case == "linear":
        model = torch.nn.Linear(4, 4)
    elif case == "kernel":
        model = _tiny_kernel_bert()
    elif case == "feature_map":
        kwargs["feature_map"] = "gaussian"
    elif case == "empty":
        inputs = {"input_ids": torch.zeros(0, 12, dtype=torch.long)}
    elif case == "empty_eval":
        kwargs["eval_inputs"] = []
    elif case == "too_few":
        inputs = {k: v[:4] for k, v in inputs.items()}
    elif case == "wrong_shape":
        model, inputs = teachers["vit"], torch.randn(32, 3, 12, 12)  # the model takes 8x8 images
    elif case == "setting":
        kwargs["transfer_step"] = 3
    elif case == "texts_without_tokenizer":
        inputs = ["a sentence"] * 32
    with pytest.raises(error, match=message):
        convert_to_kernel(model, inputs, **kwargs)


def _weights(model) -> dict[str, torch.Tensor]:
    return {name: value.clone() for name, value in model.state_dict().items()}


def test_the_seed_fixes_the_converted_weights(teachers, text_ids):
    settings = {
        **QUICK,
        "transfer_steps": 8,
        "recovery_steps": 8,
        "feature_map": "elu",
    }  # random LoRA init in both stages
    first = _weights(convert_to_kernel(teachers["bert_classifier"], text_ids[0], **settings).model)
    second = _weights(convert_to_kernel(teachers["bert_classifier"], text_ids[0], **settings).model)
    other = _weights(convert_to_kernel(teachers["bert_classifier"], text_ids[0], **settings, seed=1).model)
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name
    assert any(not torch.equal(first[name], other[name]) for name in first)


def test_the_users_model_is_not_changed(teachers, text_ids):
    model = teachers["bert"]
    before = _weights(model)
    result = convert_to_kernel(model, text_ids[0], **{**QUICK, "transfer_steps": 5, "recovery_steps": 5})
    after = _weights(model)
    assert all(torch.equal(before[name], after[name]) for name in before)
    assert model.config.model_type == "bert" and result.model.config.attention_type == "kernel"
    assert result.model.config.kernel_feature_map == "hedgehog" and not result.model.training
    # a plain BERT config has no kernel fields: the student still gets separate query and key maps (Hedgehog), not
    # the single map that old kernel configs without the field load as
    assert result.model.config.kernel_shared_qk_map is False
    maps = {n.rsplit(".", 1)[-1] for n, _ in result.model.named_parameters() if ".feature_map." in n}
    assert maps == {"query_weight", "query_bias", "key_weight", "key_bias"}
