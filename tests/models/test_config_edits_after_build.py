"""Editing an attention field of a built model's config: the attention modules keep the values they were built
with, so ``save_pretrained`` refuses a config that no longer describes the model (it would reload as another one)."""

import re

import pytest
import torch

from hf_robattr.models import (
    RobAttrBertConfig,
    RobAttrBertForSequenceClassification,
    RobAttrViTConfig,
    RobAttrViTForImageClassification,
)


FAMILIES = ["vit", "bert"]
# One row per kernel field: the edit, which changes the model when it is built from the edited config.
KERNEL_EDITS = [
    pytest.param("kernel_eps", 10.0, id="eps"),
    pytest.param("kernel_feature_map", "relu", id="feature-map"),
    pytest.param("kernel_num_features", 8, id="num-features"),
    pytest.param("kernel_seed", 3, id="seed"),
    pytest.param("kernel_redraw_interval", 5, id="redraw"),
    pytest.param("kernel_shared_qk_map", True, id="shared-qk"),
]


@pytest.fixture
def family_inputs(vit_kwargs, bert_kwargs, pixel_values, text_batch):
    """(tiny config kwargs, model inputs) per family."""
    return {"vit": (vit_kwargs, {"pixel_values": pixel_values}), "bert": (bert_kwargs, dict(text_batch))}


def _model(family: str, kwargs: dict, **fields):
    torch.manual_seed(0)
    if family == "vit":
        return RobAttrViTForImageClassification(RobAttrViTConfig(**kwargs, **fields)).eval()
    return RobAttrBertForSequenceClassification(RobAttrBertConfig(**kwargs, **fields)).eval()


def _logits(model, inputs) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).logits


@pytest.mark.parametrize(("field", "value"), KERNEL_EDITS)
@pytest.mark.parametrize("family", FAMILIES)
def test_a_kernel_model_refuses_to_save_after_a_kernel_field_was_edited(tmp_path, family, family_inputs, field, value):
    kwargs, _ = family_inputs[family]
    # favor reads every kernel field (features, seed, redraw); hedgehog is the map that reads kernel_shared_qk_map
    feature_map = "hedgehog" if field == "kernel_shared_qk_map" else "favor"
    model = _model(family, kwargs, attention_type="kernel", kernel_feature_map=feature_map)
    built = getattr(model.config, field)
    setattr(model.config, field, value)
    with pytest.raises(ValueError) as raised:
        model.save_pretrained(tmp_path)
    message = str(raised.value)
    assert f"{field} from {built!r} to {value!r}" in message
    assert f"from_pretrained(path, {field}={value!r})" in message
    assert f"restore config.{field} = {built!r}" in message
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("family", FAMILIES)
def test_the_refusal_names_every_edited_field(tmp_path, family, family_inputs):
    kwargs, _ = family_inputs[family]
    model = _model(family, kwargs, attention_type="kernel")
    model.config.kernel_eps = 1e-3
    model.config.kernel_feature_map = "relu"
    with pytest.raises(ValueError, match=re.escape("(kernel_feature_map from 'elu' to 'relu', kernel_eps from 1e-06")):
        model.save_pretrained(tmp_path)


@pytest.mark.parametrize("family", FAMILIES)
def test_the_edit_changes_nothing_in_memory_and_the_advised_reload_applies_it(tmp_path, family, family_inputs):
    kwargs, inputs = family_inputs[family]
    model = _model(family, kwargs, attention_type="kernel")
    before = _logits(model, inputs)
    model.save_pretrained(tmp_path)

    model.config.kernel_eps = 10.0
    torch.testing.assert_close(_logits(model, inputs), before, rtol=0, atol=0)  # why saving it would be wrong

    # reference: a model built from the edited config, with the same weights
    rebuilt = _model(family, kwargs, attention_type="kernel", kernel_eps=10.0)
    rebuilt.load_state_dict(model.state_dict())
    expected = _logits(rebuilt, inputs)
    assert not torch.allclose(expected, before, rtol=0, atol=1e-6)  # the edit matters once it is applied
    reloaded = type(model).from_pretrained(tmp_path, kernel_eps=10.0).eval()
    torch.testing.assert_close(_logits(reloaded, inputs), expected)
    reloaded.save_pretrained(tmp_path / "again")  # a from_pretrained keyword is not an edit after build
    torch.testing.assert_close(_logits(type(model).from_pretrained(tmp_path / "again").eval(), inputs), expected)


@pytest.mark.parametrize("family", FAMILIES)
def test_restoring_the_built_value_saves_a_model_that_reloads_identically(tmp_path, family, family_inputs):
    kwargs, inputs = family_inputs[family]
    model = _model(family, kwargs, attention_type="kernel")
    model.config.kernel_eps = 10.0
    model.config.kernel_eps = 1e-6
    model.save_pretrained(tmp_path)
    torch.testing.assert_close(_logits(type(model).from_pretrained(tmp_path).eval(), inputs), _logits(model, inputs))


@pytest.mark.parametrize("family", FAMILIES)
def test_a_softmax_model_ignores_kernel_fields_and_saves_after_they_are_edited(tmp_path, family, family_inputs):
    kwargs, inputs = family_inputs[family]
    model = _model(family, kwargs)
    model.config.kernel_eps = 10.0  # softmax attention does not read it
    model.save_pretrained(tmp_path)
    reloaded = type(model).from_pretrained(tmp_path).eval()
    assert reloaded.config.kernel_eps == 10.0
    torch.testing.assert_close(_logits(reloaded, inputs), _logits(model, inputs))


@pytest.mark.parametrize("family", FAMILIES)
def test_an_edited_attention_type_is_still_refused_first(tmp_path, family, family_inputs):
    kwargs, _ = family_inputs[family]
    model = _model(family, kwargs, attention_type="kernel")
    model.config.kernel_eps = 10.0
    model.config.attention_type = "softmax"
    with pytest.raises(ValueError, match=r"attention_type was changed to 'softmax' after this model was built"):
        model.save_pretrained(tmp_path)
    assert not list(tmp_path.iterdir())
