"""RobAttr ViT/BERT models: softmax parity with HF, kernel-mode behaviour, checkpoint loading, Auto round trips."""

import json

import pytest
import torch
from transformers import (
    AutoModel,
    AutoModelForImageClassification,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    BertConfig,
    BertForSequenceClassification,
    ViTConfig,
    ViTForImageClassification,
)

from hf_robattr.models import (
    KERNEL_ATTENTION,
    SOFTMAX_ATTENTION,
    RobAttrBertConfig,
    RobAttrBertForMaskedLM,
    RobAttrBertForSequenceClassification,
    RobAttrBertModel,
    RobAttrViTConfig,
    RobAttrViTForImageClassification,
    RobAttrViTModel,
)


FEATURE_MAPS = ["elu", "relu", "favor", "hedgehog"]
ATTENTIONS = [pytest.param("softmax", None, id="softmax")] + [
    pytest.param("kernel", name, id=f"kernel-{name}") for name in FEATURE_MAPS
]


def _vit(vit_kwargs, attention_type="softmax", feature_map=None, **extra):
    torch.manual_seed(0)
    kwargs = {"attention_type": attention_type, **vit_kwargs, **extra}
    if feature_map:
        kwargs["kernel_feature_map"] = feature_map
    return RobAttrViTForImageClassification(RobAttrViTConfig(**kwargs)).eval()


def _bert(bert_kwargs, attention_type="softmax", feature_map=None, model_class=RobAttrBertForSequenceClassification):
    torch.manual_seed(0)
    kwargs = {"attention_type": attention_type, **bert_kwargs}
    if feature_map:
        kwargs["kernel_feature_map"] = feature_map
    return model_class(RobAttrBertConfig(**kwargs)).eval()


# --- softmax parity with HF's own classes ---------------------------------------------------------------------


@pytest.mark.parametrize("output_attentions", [pytest.param(False, id="sdpa"), pytest.param(True, id="weights")])
def test_vit_softmax_matches_hf(vit_kwargs, pixel_values, output_attentions):
    ours = _vit(vit_kwargs)
    hf = ViTForImageClassification(ViTConfig(**vit_kwargs)).eval()
    hf.load_state_dict(ours.state_dict())
    got = ours(pixel_values, output_attentions=output_attentions).logits
    want = hf(pixel_values).logits
    assert (got - want).abs().max() <= 1e-5


@pytest.mark.parametrize("output_attentions", [pytest.param(False, id="sdpa"), pytest.param(True, id="weights")])
def test_bert_softmax_matches_hf_on_padded_batch(bert_kwargs, text_batch, output_attentions):
    ours = _bert(bert_kwargs)
    hf = BertForSequenceClassification(BertConfig(**bert_kwargs)).eval()
    hf.load_state_dict(ours.state_dict())
    got = ours(**text_batch, output_attentions=output_attentions).logits
    want = hf(**text_batch).logits
    assert (got - want).abs().max() <= 1e-5
    eager = BertForSequenceClassification(BertConfig(**bert_kwargs, attn_implementation="eager")).eval()
    eager.load_state_dict(ours.state_dict())
    assert (got - eager(**text_batch).logits).abs().max() <= 1e-5


def test_attention_implementation_follows_attention_type(vit_kwargs):
    assert _vit(vit_kwargs).config._attn_implementation == SOFTMAX_ATTENTION
    assert _vit(vit_kwargs, "kernel").config._attn_implementation == KERNEL_ATTENTION
    eager = RobAttrViTForImageClassification(RobAttrViTConfig(**vit_kwargs, attn_implementation="eager"))
    assert eager.config._attn_implementation == "eager"


def test_softmax_mode_adds_no_weights(vit_kwargs, bert_kwargs):
    assert set(_vit(vit_kwargs).state_dict()) == set(ViTForImageClassification(ViTConfig(**vit_kwargs)).state_dict())
    hf_bert = BertForSequenceClassification(BertConfig(**bert_kwargs))
    assert set(_bert(bert_kwargs).state_dict()) == set(hf_bert.state_dict())


# --- output_attentions: weights for attribution -----------------------------------------------------------------


@pytest.mark.parametrize(("attention_type", "feature_map"), ATTENTIONS)
def test_vit_attention_weights(vit_kwargs, pixel_values, attention_type, feature_map):
    model = _vit(vit_kwargs, attention_type, feature_map)
    plain = model(pixel_values).logits
    out = model(pixel_values, output_attentions=True)
    assert len(out.attentions) == vit_kwargs["num_hidden_layers"]
    assert out.attentions[0].shape == (2, vit_kwargs["num_attention_heads"], 17, 17)
    torch.testing.assert_close(out.logits, plain, atol=1e-5, rtol=1e-5)
    row_sums = out.attentions[-1].sum(-1)
    if feature_map == "relu":  # an all-negative query has no features: its row is all zeros
        assert torch.all(row_sums <= 1 + 1e-5)
    else:
        torch.testing.assert_close(row_sums, torch.ones_like(row_sums), atol=1e-5, rtol=0)
    # the weights lie on the autograd path of the logits (needed by gradient x attention attribution)
    for attention in out.attentions:
        attention.retain_grad()
    out.logits[:, 0].sum().backward()
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in out.attentions)


@pytest.mark.parametrize("attention_type", ["softmax", "kernel"])
def test_output_attentions_can_be_set_on_the_config(vit_kwargs, pixel_values, attention_type):
    model = _vit(vit_kwargs, attention_type)
    model.config.output_attentions = True
    assert len(model(pixel_values).attentions) == vit_kwargs["num_hidden_layers"]
    with pytest.raises(ValueError, match="output_attentions=True needs attn_implementation in"):
        RobAttrViTConfig(attn_implementation="sdpa").output_attentions = True


@pytest.mark.parametrize(("attention_type", "feature_map"), ATTENTIONS)
def test_bert_attention_weights_ignore_padding(bert_kwargs, text_batch, attention_type, feature_map):
    model = _bert(bert_kwargs, attention_type, feature_map)
    out = model(**text_batch, output_attentions=True)
    torch.testing.assert_close(out.logits, model(**text_batch).logits, atol=1e-5, rtol=1e-5)
    assert torch.all(out.attentions[0][1, :, :, 6:] == 0) and torch.all(out.attentions[0][2, :, :, 3:] == 0)


@pytest.mark.parametrize("feature_map", FEATURE_MAPS)
def test_kernel_bert_input_gradients_agree_with_the_explicit_weights_path(bert_kwargs, text_batch, feature_map):
    model = _bert(bert_kwargs, "kernel", feature_map)
    embeds = model.bert.embeddings.word_embeddings(text_batch["input_ids"]).detach()
    grads = []
    for output_attentions in (False, True):
        inputs = embeds.clone().requires_grad_()
        logits = model(
            inputs_embeds=inputs, attention_mask=text_batch["attention_mask"], output_attentions=output_attentions
        ).logits
        grads.append(torch.autograd.grad(logits[:, 1].sum(), inputs)[0])
    torch.testing.assert_close(grads[0], grads[1], atol=1e-6, rtol=1e-4)
    assert torch.all(grads[0][1, 6:] == 0) and torch.all(grads[0][2, 3:] == 0)


@pytest.mark.parametrize("feature_map", FEATURE_MAPS)
def test_kernel_bert_real_tokens_ignore_padded_tokens(bert_kwargs, text_batch, feature_map):
    model = _bert(bert_kwargs, "kernel", feature_map, model_class=RobAttrBertModel)
    hidden = model(**text_batch).last_hidden_state
    other = dict(text_batch)
    other["input_ids"] = text_batch["input_ids"].clone()
    other["input_ids"][1, 6:] = 5
    other["input_ids"][2, 3:] = 9
    hidden_other = model(**other).last_hidden_state
    torch.testing.assert_close(hidden[1, :6], hidden_other[1, :6], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(hidden[2, :3], hidden_other[2, :3], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("feature_map", FEATURE_MAPS)
def test_kernel_vit_trains_with_dropout(vit_kwargs, pixel_values, feature_map):
    model = _vit(vit_kwargs, "kernel", feature_map, attention_probs_dropout_prob=0.3).train()
    loss = model(pixel_values, labels=torch.tensor([0, 2])).loss
    loss.backward()
    grads = [p.grad for n, p in model.named_parameters() if "q_proj" in n]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    if feature_map == "hedgehog":
        feature_map = model.vit.layers[0].attention.feature_map
        assert feature_map.query_weight.grad.abs().sum() > 0 and feature_map.key_weight.grad.abs().sum() > 0


# --- checkpoint loading ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("feature_map", FEATURE_MAPS)
def test_plain_vit_checkpoint_loads_into_kernel_model(vit_kwargs, pixel_values, tmp_path, feature_map):
    torch.manual_seed(0)
    hf = ViTForImageClassification(ViTConfig(**vit_kwargs)).eval()
    hf.save_pretrained(tmp_path)
    model, info = RobAttrViTForImageClassification.from_pretrained(
        tmp_path, attention_type="kernel", kernel_feature_map=feature_map, output_loading_info=True
    )
    assert not info["unexpected_keys"] and not info["mismatched_keys"]
    assert all(".feature_map." in key for key in info["missing_keys"])
    assert bool(info["missing_keys"]) == (feature_map in ("favor", "hedgehog"))
    assert model.config.model_type == "robattr-vit" and model.config.attention_type == "kernel"
    torch.testing.assert_close(model.vit.layers[1].attention.q_proj.weight, hf.vit.layers[1].attention.q_proj.weight)
    if feature_map == "hedgehog":  # initialised by _init_weights: identity projections, zero biases
        feature = model.vit.layers[0].attention.feature_map
        for side in ("query", "key"):
            torch.testing.assert_close(getattr(feature, f"{side}_weight")[0], torch.eye(8))
            assert torch.all(getattr(feature, f"{side}_bias") == 0)
    if feature_map == "favor":  # drawn from the seed, per layer
        layers = model.vit.layers
        assert not torch.allclose(
            layers[0].attention.feature_map.projection, layers[1].attention.feature_map.projection
        )
    softmax = RobAttrViTForImageClassification.from_pretrained(tmp_path).eval()
    assert (softmax(pixel_values).logits - hf(pixel_values).logits).abs().max() <= 1e-5


def test_plain_bert_checkpoint_loads_into_kernel_model(bert_kwargs, text_batch, tmp_path):
    torch.manual_seed(0)
    hf = BertForSequenceClassification(BertConfig(**bert_kwargs)).eval()
    hf.save_pretrained(tmp_path)
    model, info = RobAttrBertForSequenceClassification.from_pretrained(
        tmp_path, attention_type="kernel", kernel_feature_map="hedgehog", output_loading_info=True
    )
    assert not info["unexpected_keys"] and not info["mismatched_keys"]
    assert info["missing_keys"] and all(".feature_map." in key for key in info["missing_keys"])
    assert model.config.attention_type == "kernel"
    softmax = RobAttrBertForSequenceClassification.from_pretrained(tmp_path).eval()
    assert (softmax(**text_batch).logits - hf(**text_batch).logits).abs().max() <= 1e-5


def test_robattr_softmax_checkpoint_loads_into_plain_hf(vit_kwargs, pixel_values, tmp_path):
    model = _vit(vit_kwargs)
    model.save_pretrained(tmp_path)
    hf, info = ViTForImageClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert (hf.eval()(pixel_values).logits - model(pixel_values).logits).abs().max() <= 1e-5


# --- Auto classes --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("attention_type", "feature_map"), ATTENTIONS)
def test_vit_auto_round_trip(vit_kwargs, pixel_values, tmp_path, attention_type, feature_map):
    model = _vit(vit_kwargs, attention_type, feature_map)
    if feature_map == "hedgehog":  # make sure trained feature-map weights are saved, not re-initialised
        with torch.no_grad():
            model.vit.layers[0].attention.feature_map.key_weight.add_(0.5)
    model.save_pretrained(tmp_path)
    loaded = AutoModelForImageClassification.from_pretrained(tmp_path).eval()
    assert type(loaded) is RobAttrViTForImageClassification
    assert loaded.config.attention_type == attention_type
    assert loaded.config._attn_implementation == model.config._attn_implementation
    assert (loaded(pixel_values).logits - model(pixel_values).logits).abs().max() <= 1e-6
    base = AutoModel.from_pretrained(tmp_path)
    assert type(base) is RobAttrViTModel


@pytest.mark.parametrize(("attention_type", "feature_map"), [ATTENTIONS[0], ATTENTIONS[3], ATTENTIONS[4]])
def test_bert_auto_round_trip(bert_kwargs, text_batch, tmp_path, attention_type, feature_map):
    model = _bert(bert_kwargs, attention_type, feature_map)
    model.save_pretrained(tmp_path / "cls")
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "cls").eval()
    assert type(loaded) is RobAttrBertForSequenceClassification
    assert (loaded(**text_batch).logits - model(**text_batch).logits).abs().max() <= 1e-6

    mlm = _bert(bert_kwargs, attention_type, feature_map, model_class=RobAttrBertForMaskedLM)
    mlm.save_pretrained(tmp_path / "mlm")
    loaded_mlm = AutoModelForMaskedLM.from_pretrained(tmp_path / "mlm").eval()
    assert type(loaded_mlm) is RobAttrBertForMaskedLM
    assert (loaded_mlm(**text_batch).logits - mlm(**text_batch).logits).abs().max() <= 1e-5
    assert loaded_mlm.cls.predictions.decoder.weight is loaded_mlm.bert.embeddings.word_embeddings.weight


# --- higher-order gradients and attention switching ---------------------------------------------------------------


@pytest.mark.parametrize(("attention_type", "feature_map"), [ATTENTIONS[0], ATTENTIONS[1], ATTENTIONS[4]])
def test_double_backward_through_the_model(vit_kwargs, pixel_values, attention_type, feature_map):
    """Input-gradient penalties and attribution attacks differentiate an input gradient once more."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    model = _vit(vit_kwargs, attention_type, feature_map)
    pixels = pixel_values.clone().requires_grad_()
    # PyTorch's default CPU SDPA kernel has no double backward; the math backend has.
    with sdpa_kernel(SDPBackend.MATH):
        logits = model(pixels).logits
        (input_grad,) = torch.autograd.grad(logits[:, 0].sum(), pixels, create_graph=True)
        input_grad.pow(2).sum().backward()
    assert model.vit.layers[0].attention.q_proj.weight.grad.abs().sum() > 0


def test_softmax_model_switches_its_softmax_implementation(vit_kwargs, pixel_values):
    softmax = _vit(vit_kwargs)
    want = softmax(pixel_values).logits
    softmax.set_attn_implementation("eager")
    assert softmax.config._attn_implementation == "eager"
    torch.testing.assert_close(softmax(pixel_values).logits, want, atol=1e-5, rtol=1e-5)
    softmax.set_attn_implementation(SOFTMAX_ATTENTION)
    assert softmax.config._attn_implementation == SOFTMAX_ATTENTION


def test_hedgehog_checkpoint_with_one_shared_map_loads_with_its_weights(vit_kwargs, pixel_values, tmp_path):
    """A Hedgehog folder saved before separate query/key maps existed: ``feature_map.weight``/``bias`` and no
    ``kernel_shared_qk_map`` in its config.json."""
    model = _vit(vit_kwargs, "kernel", "hedgehog", kernel_shared_qk_map=True)
    with torch.no_grad():
        model.vit.layers[1].attention.feature_map.weight.add_(0.5)
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["kernel_shared_qk_map"]
    (tmp_path / "config.json").write_text(json.dumps(config))

    loaded, info = AutoModelForImageClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert loaded.config.kernel_shared_qk_map is True
    assert (loaded.eval()(pixel_values).logits - model(pixel_values).logits).abs().max() <= 1e-6
    fresh = _vit(vit_kwargs, "kernel", "hedgehog")  # new models get a map each for queries and keys
    assert {"query_weight", "key_weight"} <= {
        n for n, _ in fresh.vit.layers[0].attention.feature_map.named_parameters()
    }
