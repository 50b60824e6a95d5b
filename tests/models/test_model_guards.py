"""The model built is the model asked for (issue 11): attention type, half precision, export, attention switching."""

import pytest
import torch
from transformers import ViTConfig, ViTForImageClassification
from transformers.utils import logging

from hf_robattr.attribution import attribute
from hf_robattr.models import (
    KERNEL_ATTENTION,
    SOFTMAX_ATTENTION,
    RobAttrBertConfig,
    RobAttrBertForSequenceClassification,
    RobAttrViTConfig,
    RobAttrViTForImageClassification,
    modeling_robattr_common,
)


HALF = [pytest.param(torch.float16, id="fp16"), pytest.param(torch.bfloat16, id="bf16")]


def _config(family, kwargs, **fields):
    config_class = RobAttrViTConfig if family == "vit" else RobAttrBertConfig
    return config_class(**kwargs, **fields)


def _model_class(family):
    return RobAttrViTForImageClassification if family == "vit" else RobAttrBertForSequenceClassification


@pytest.fixture
def family_inputs(vit_kwargs, bert_kwargs, pixel_values, text_batch):
    """(tiny config kwargs, model inputs) per family."""
    return {"vit": (vit_kwargs, {"pixel_values": pixel_values}), "bert": (bert_kwargs, dict(text_batch))}


FAMILIES = ["vit", "bert"]


# --- an attention type the code does not know is an error, never softmax ----------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_an_unknown_attention_type_that_slipped_past_validation_is_not_run_as_softmax(family, family_inputs):
    kwargs, _ = family_inputs[family]
    config = _config(family, kwargs)
    vars(config)["attention_type"] = "kernal"  # bypasses __setattr__, as a buggy caller or pickle could
    with pytest.raises(ValueError, match=r"attention_type must be one of \['softmax', 'kernel'\], got 'kernal'"):
        _model_class(family)(config)


# --- set_attn_implementation cannot switch the attention type --------------------------------------------------------


@pytest.mark.parametrize("requested", ["eager", "sdpa", SOFTMAX_ATTENTION])
@pytest.mark.parametrize("family", FAMILIES)
def test_a_kernel_model_refuses_another_attention_implementation(family, family_inputs, requested):
    kwargs, inputs = family_inputs[family]
    torch.manual_seed(0)
    model = _model_class(family)(_config(family, kwargs, attention_type="kernel")).eval()
    before = model(**inputs).logits
    with pytest.raises(ValueError) as raised:
        model.set_attn_implementation(requested)
    message = str(raised.value)
    assert f"set_attn_implementation({requested!r})" in message and "attention_type='kernel'" in message
    assert "from_pretrained(path, attention_type=" in message
    assert model.config._attn_implementation == KERNEL_ATTENTION
    torch.testing.assert_close(model(**inputs).logits, before)
    model.set_attn_implementation(KERNEL_ATTENTION)  # its own implementation is fine


@pytest.mark.parametrize("family", FAMILIES)
def test_a_softmax_model_refuses_kernel_attention_implementation(family, family_inputs):
    kwargs, _ = family_inputs[family]
    model = _model_class(family)(_config(family, kwargs))
    with pytest.raises(ValueError, match=r"attention_type='softmax'.*from_pretrained\(path, attention_type="):
        model.set_attn_implementation(KERNEL_ATTENTION)
    assert model.config._attn_implementation == SOFTMAX_ATTENTION


# --- FAVOR+ (and every map) builds, loads and runs in half precision ------------------------------------------------


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("family", FAMILIES)
def test_favor_models_build_and_run_in_half_precision(family, family_inputs, dtype):
    kwargs, inputs = family_inputs[family]
    config = _config(family, kwargs, attention_type="kernel", kernel_feature_map="favor")
    torch.manual_seed(0)
    full = _model_class(family)(config).eval()
    half = _model_class(family)._from_config(config, dtype=dtype).eval()
    half.load_state_dict(full.state_dict())
    inputs_half = {k: v.to(dtype) if v.is_floating_point() else v for k, v in inputs.items()}
    logits = half(**inputs_half).logits
    assert logits.dtype == dtype and torch.isfinite(logits).all()
    torch.testing.assert_close(logits.float(), full(**inputs).logits, atol=0.02, rtol=0.05)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # the default dtype that from_pretrained(dtype=...) sets while building
    try:
        built = _model_class(family)(config)
    finally:
        torch.set_default_dtype(previous)
    # drawn in fp32 from the same seed as the fp32 model's
    torch.testing.assert_close(
        next(b for n, b in built.named_buffers() if n.endswith("projection")),
        next(b for n, b in full.named_buffers() if n.endswith("projection")),
    )


@pytest.mark.filterwarnings("ignore::hf_robattr.models.KernelSwapWarning")
@pytest.mark.parametrize("dtype", HALF)
def test_a_plain_checkpoint_loads_as_half_precision_favor(tmp_path, vit_kwargs, pixel_values, dtype):
    torch.manual_seed(0)
    ViTForImageClassification(ViTConfig(**vit_kwargs)).save_pretrained(tmp_path)
    model = RobAttrViTForImageClassification.from_pretrained(
        tmp_path, attention_type="kernel", kernel_feature_map="favor", dtype=dtype
    ).eval()
    assert model.dtype == dtype
    assert torch.isfinite(model(pixel_values.to(dtype)).logits).all()


# --- attention weights stay on the autograd path in half precision -------------------------------------------------


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("feature_map", ["elu", "favor", "hedgehog"])
@pytest.mark.parametrize("family", FAMILIES)
def test_retain_grad_and_grad_attention_work_in_half_precision(family, family_inputs, feature_map, dtype):
    kwargs, inputs = family_inputs[family]
    config = _config(family, kwargs, attention_type="kernel", kernel_feature_map=feature_map)
    torch.manual_seed(0)
    full = _model_class(family)(config).eval()
    half = _model_class(family)._from_config(config, dtype=dtype).eval()
    half.load_state_dict(full.state_dict())
    inputs_half = {k: v.to(dtype) if v.is_floating_point() else v for k, v in inputs.items()}

    # the README's snippet
    out = half(**inputs_half, output_attentions=True)
    assert out.attentions[-1].dtype == dtype
    out.attentions[-1].retain_grad()
    out.logits[:, 0].sum().backward()
    assert out.attentions[-1].grad is not None and out.attentions[-1].grad.abs().sum() > 0

    maps = attribute(half, inputs_half, method="grad_attention", targets=0)
    reference = attribute(full, inputs, method="grad_attention", targets=0)
    assert torch.isfinite(maps).all() and maps.abs().sum() > 0
    scale = reference.abs().max()
    torch.testing.assert_close(maps.float() / scale, reference / scale, atol=0.05, rtol=0)


# --- torch.export ------------------------------------------------------------------------------------------------


def _other_padding(batch):
    """The same ids with another padding pattern than the one the model was exported with."""
    mask = torch.ones_like(batch["attention_mask"])
    mask[0, 7:] = 0
    mask[2, 5:] = 0
    return {**batch, "attention_mask": mask}


@pytest.mark.parametrize(
    ("feature_map", "masked"),
    [
        pytest.param("hedgehog", True, id="hedgehog-mask"),
        pytest.param("hedgehog", False, id="hedgehog-nomask"),
        pytest.param("favor", True, id="favor-mask"),
        pytest.param("elu", True, id="elu-mask"),
    ],
)
def test_kernel_bert_exports_and_matches_eager(bert_kwargs, text_batch, feature_map, masked):
    torch.manual_seed(0)
    config = RobAttrBertConfig(attention_type="kernel", kernel_feature_map=feature_map, **bert_kwargs)
    model = RobAttrBertForSequenceClassification(config).eval()
    batch = dict(text_batch) if masked else {"input_ids": text_batch["input_ids"]}
    exported = torch.export.export(model, (), batch).module()
    torch.testing.assert_close(exported(**batch).logits, model(**batch).logits, atol=1e-6, rtol=1e-5)
    if masked:  # nothing was specialised on the mask's values
        other = _other_padding(text_batch)
        torch.testing.assert_close(exported(**other).logits, model(**other).logits, atol=1e-6, rtol=1e-5)
        all_real = {**text_batch, "attention_mask": torch.ones_like(text_batch["attention_mask"])}
        torch.testing.assert_close(exported(**all_real).logits, model(**all_real).logits, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("feature_map", ["hedgehog", "favor"])
def test_kernel_vit_exports_and_matches_eager(vit_kwargs, pixel_values, feature_map):
    torch.manual_seed(0)
    config = RobAttrViTConfig(attention_type="kernel", kernel_feature_map=feature_map, **vit_kwargs)
    model = RobAttrViTForImageClassification(config).eval()
    exported = torch.export.export(model, (pixel_values,)).module()
    torch.testing.assert_close(exported(pixel_values).logits, model(pixel_values).logits, atol=1e-6, rtol=1e-5)
    other = torch.randn_like(pixel_values)
    torch.testing.assert_close(exported(other).logits, model(other).logits, atol=1e-6, rtol=1e-5)


# --- an attention implementation asked for at build: given to softmax models, noted by kernel models -------------


@pytest.mark.parametrize("requested", ["eager", "sdpa"])
@pytest.mark.parametrize("family", FAMILIES)
def test_loading_with_an_attention_implementation(tmp_path, family, family_inputs, requested, caplog, monkeypatch):
    """Softmax models run the implementation asked for. Kernel models keep kernel attention and say so: asking for
    "eager" at build is how transformers code (its own tests included) asks for attention weights, which kernel
    attention returns too; only switching a built model is refused (above)."""
    kwargs, inputs = family_inputs[family]
    torch.manual_seed(0)
    model_class = _model_class(family)
    softmax = model_class(_config(family, kwargs)).eval()
    softmax.save_pretrained(tmp_path / "softmax")
    loaded = model_class.from_pretrained(tmp_path / "softmax", attn_implementation=requested).eval()
    assert loaded.config._attn_implementation == requested
    torch.testing.assert_close(loaded(**inputs).logits, softmax(**inputs).logits, atol=1e-5, rtol=1e-5)

    kernel = model_class(_config(family, kwargs, attention_type="kernel")).eval()
    kernel.save_pretrained(tmp_path / "kernel")
    monkeypatch.setattr(logging.get_logger("transformers"), "propagate", True)  # let caplog see transformers' logs
    modeling_robattr_common.logger.warning_once.cache_clear()
    with caplog.at_level("WARNING"):
        loaded = model_class.from_pretrained(tmp_path / "kernel", attn_implementation=requested).eval()
    assert f"attn_implementation={requested!r} is ignored" in caplog.text and "attention_type='softmax'" in caplog.text
    assert loaded.config._attn_implementation == KERNEL_ATTENTION
    out = loaded(**inputs, output_attentions=True)
    torch.testing.assert_close(out.logits, kernel(**inputs).logits, atol=1e-6, rtol=1e-5)
    assert len(out.attentions) == kwargs["num_hidden_layers"]
