"""RobAttr configs: saved fields, validation errors, and the attention implementation derived from them."""

import json

import pytest
from transformers import AutoConfig

from hf_robattr.models import RobAttrBertConfig, RobAttrViTConfig


CONFIG_CLASSES = [pytest.param(RobAttrViTConfig, id="vit"), pytest.param(RobAttrBertConfig, id="bert")]

BAD_VALUES = [
    pytest.param({"attention_type": "linear"}, r"attention_type must be one of \['softmax', 'kernel'\]", id="type"),
    pytest.param(
        {"kernel_feature_map": "cosine"},
        r"kernel_feature_map must be one of \['elu', 'favor', 'hedgehog', 'relu'\], got 'cosine'",
        id="feature-map",
    ),
    pytest.param({"kernel_num_features": 0}, r"kernel_num_features must be a positive int", id="num-features"),
    pytest.param({"kernel_redraw_interval": -1}, r"kernel_redraw_interval must be >= 0", id="redraw"),
    pytest.param({"kernel_eps": 0.0}, r"kernel_eps must be a float > 0", id="eps"),
]


@pytest.mark.parametrize("config_class", CONFIG_CLASSES)
@pytest.mark.parametrize(("kwargs", "message"), BAD_VALUES)
def test_bad_values_raise_a_clear_error(config_class, kwargs, message):
    with pytest.raises(ValueError, match=message):
        config_class(**kwargs)


def test_kernel_bert_must_be_an_encoder():
    with pytest.raises(ValueError, match="is_decoder and add_cross_attention must be False"):
        RobAttrBertConfig(attention_type="kernel", is_decoder=True)


@pytest.mark.parametrize("config_class", CONFIG_CLASSES)
def test_fields_are_saved_and_reloaded(config_class, tmp_path):
    config = config_class(
        attention_type="kernel", kernel_feature_map="favor", kernel_num_features=24, kernel_seed=7, kernel_eps=1e-5
    )
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == config_class.model_type
    assert "_attn_implementation" not in saved and "attn_implementation" not in saved
    reloaded = AutoConfig.from_pretrained(tmp_path)
    assert type(reloaded) is config_class
    for field in ("attention_type", "kernel_feature_map", "kernel_num_features", "kernel_seed", "kernel_eps"):
        assert getattr(reloaded, field) == getattr(config, field)
