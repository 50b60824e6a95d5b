"""Every attribution method on common Hugging Face classifiers, built from tiny random configs (no downloads):
gradient methods on any of them, attention methods on the global-attention ones, a clear error for the others, and
references (captum, a hand-written rollout) where one exists."""

import pytest
import torch
from captum.attr import InputXGradient as CaptumInputXGradient
from captum.attr import Saliency as CaptumSaliency
from transformers import (
    AlbertConfig,
    AlbertForSequenceClassification,
    BertConfig,
    BertForSequenceClassification,
    ConvNextConfig,
    ConvNextForImageClassification,
    DeiTConfig,
    DeiTForImageClassification,
    DeiTForImageClassificationWithTeacher,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    ElectraConfig,
    ElectraForSequenceClassification,
    RobertaConfig,
    RobertaForSequenceClassification,
    SwinConfig,
    SwinForImageClassification,
    ViTConfig,
    ViTForImageClassification,
)

from hf_robattr.attribution import ATTENTION_METHODS, GRADIENT_METHODS, attribute, prepare_inputs
from hf_robattr.models import (
    RobAttrBertConfig,
    RobAttrBertForSequenceClassification,
    RobAttrViTConfig,
    RobAttrViTForImageClassification,
)


ENCODER = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
IMAGE = dict(image_size=8, patch_size=2, num_channels=3, num_labels=3, **ENCODER)
TEXT = dict(vocab_size=40, max_position_embeddings=24, num_labels=2, **ENCODER)

# name -> (model class, config); each model is built seeded from its tiny config.
IMAGE_MODELS = {
    "vit": (ViTForImageClassification, lambda: ViTConfig(**IMAGE)),
    "deit": (DeiTForImageClassification, lambda: DeiTConfig(**IMAGE)),
    "deit-with-teacher": (DeiTForImageClassificationWithTeacher, lambda: DeiTConfig(**IMAGE)),
    "robattr-vit-softmax": (RobAttrViTForImageClassification, lambda: RobAttrViTConfig(**IMAGE)),
    "robattr-vit-kernel": (
        RobAttrViTForImageClassification,
        lambda: RobAttrViTConfig(attention_type="kernel", **IMAGE),
    ),
}
TEXT_MODELS = {
    "bert": (BertForSequenceClassification, lambda: BertConfig(**TEXT)),
    "roberta": (RobertaForSequenceClassification, lambda: RobertaConfig(**TEXT)),
    "distilbert": (
        DistilBertForSequenceClassification,
        lambda: DistilBertConfig(
            vocab_size=40, max_position_embeddings=24, dim=16, n_layers=2, n_heads=2, hidden_dim=32, num_labels=2
        ),
    ),
    "albert": (AlbertForSequenceClassification, lambda: AlbertConfig(embedding_size=8, **TEXT)),
    "electra": (ElectraForSequenceClassification, lambda: ElectraConfig(embedding_size=8, **TEXT)),
    "robattr-bert-softmax": (RobAttrBertForSequenceClassification, lambda: RobAttrBertConfig(**TEXT)),
    "robattr-bert-kernel": (
        RobAttrBertForSequenceClassification,
        lambda: RobAttrBertConfig(attention_type="kernel", **TEXT),
    ),
}
# Classifiers without one global attention row: gradient methods only.
NO_GLOBAL_ROW = {
    "swin": (
        SwinForImageClassification,
        lambda: SwinConfig(
            image_size=8, patch_size=2, num_channels=3, embed_dim=8, depths=[1, 1], num_heads=[2, 2], window_size=2
        ),
    ),
    "convnext": (
        ConvNextForImageClassification,
        lambda: ConvNextConfig(num_channels=3, hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, image_size=8),
    ),
}


def _build(table, name):
    model_class, config = table[name]
    torch.manual_seed(0)
    return model_class(config()).eval()


def _images():
    return torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(3))


def _text(pad_id: int = 0, left: bool = False):
    """Two texts of ids in [5, 40): 6 real tokens and 4 real tokens plus 2 padding (right, or left with ``left``)."""
    ids = torch.randint(5, 40, (2, 6), generator=torch.Generator().manual_seed(4))
    mask = torch.ones_like(ids)
    padding = slice(0, 2) if left else slice(4, 6)
    ids[1, padding], mask[1, padding] = pad_id, 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}


def _params(table):
    return [pytest.param(name, id=name) for name in table]


@pytest.mark.parametrize("method", sorted(GRADIENT_METHODS))
@pytest.mark.parametrize("name", _params(IMAGE_MODELS) + _params(NO_GLOBAL_ROW))
def test_gradient_methods_on_image_classifiers(name, method):
    model = _build({**IMAGE_MODELS, **NO_GLOBAL_ROW}, name)
    options = {"integrated_gradients": {"n_steps": 4}, "smoothgrad": {"n_samples": 2}}.get(method, {})
    maps = attribute(model, _images(), method=method, **options)
    assert maps.shape == (2, 8, 8) and torch.isfinite(maps).all() and maps.abs().sum() > 0


@pytest.mark.parametrize("method", sorted(GRADIENT_METHODS))
@pytest.mark.parametrize("name", _params(TEXT_MODELS))
def test_gradient_methods_on_text_classifiers(name, method):
    model = _build(TEXT_MODELS, name)
    options = {"integrated_gradients": {"n_steps": 4}, "smoothgrad": {"n_samples": 2}}.get(method, {})
    maps = attribute(model, _text(model.config.pad_token_id or 0), method=method, **options)
    assert maps.shape == (2, 6) and torch.isfinite(maps).all()
    assert (maps[1, 4:] == 0).all() and (maps[:, :4] != 0).any()


@pytest.mark.parametrize("method", sorted(ATTENTION_METHODS))
@pytest.mark.parametrize("name", _params(IMAGE_MODELS))
def test_attention_methods_give_patch_maps_on_image_classifiers(name, method):
    # DeiT has a [CLS] and a distillation token before its 16 patches: the map is over the 4 x 4 patches only.
    model = _build(IMAGE_MODELS, name)
    maps = attribute(model, _images(), method=method)
    assert maps.shape == (2, 4, 4) and torch.isfinite(maps).all()


@pytest.mark.parametrize("method", sorted(ATTENTION_METHODS))
@pytest.mark.parametrize("name", _params(TEXT_MODELS))
def test_attention_methods_on_text_classifiers(name, method):
    model = _build(TEXT_MODELS, name)
    maps = attribute(model, _text(model.config.pad_token_id or 0), method=method)
    assert maps.shape == (2, 6) and torch.isfinite(maps).all()
    assert (maps[:, 0] == 0).all() and (maps[1, 4:] == 0).all()
    assert (maps >= 0).all() and maps[:, 1:4].sum() > 0


@pytest.mark.parametrize("method", sorted(ATTENTION_METHODS))
@pytest.mark.parametrize("name", _params(NO_GLOBAL_ROW))
def test_attention_methods_refuse_models_without_a_global_row(name, method):
    model = _build(NO_GLOBAL_ROW, name)
    with pytest.raises(ValueError, match=rf"{name} .*global attention row|global attention row.*{name}") as error:
        attribute(model, _images(), method=method)
    assert all(gradient in str(error.value) for gradient in GRADIENT_METHODS)


def _captum_text(model, batch, prepared, captum_class):
    def forward(embeds):
        return model(inputs_embeds=embeds, **prepared.extra).logits

    grads = captum_class(forward).attribute(prepared.features.clone(), target=torch.tensor([1, 0]))
    return grads.sum(dim=-1) * batch["attention_mask"]


@pytest.mark.parametrize(
    ("method", "captum_class"),
    [
        pytest.param("saliency", CaptumSaliency, id="saliency"),
        pytest.param("input_x_gradient", CaptumInputXGradient, id="ixg"),
    ],
)
def test_gradient_maps_equal_captum_on_deit(method, captum_class):
    model = _build(IMAGE_MODELS, "deit-with-teacher")
    images, targets = _images(), torch.tensor([2, 0])
    expected = captum_class(lambda x: model(pixel_values=x).logits).attribute(images.clone(), target=targets)
    maps = attribute(model, images, method=method, targets=targets)
    torch.testing.assert_close(maps, expected.sum(dim=1), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    ("method", "captum_class"),
    [
        pytest.param("saliency", CaptumSaliency, id="saliency"),
        pytest.param("input_x_gradient", CaptumInputXGradient, id="ixg"),
    ],
)
def test_gradient_maps_equal_captum_on_roberta(method, captum_class):
    model = _build(TEXT_MODELS, "roberta")
    batch = _text(pad_id=model.config.pad_token_id, left=True)
    prepared = prepare_inputs(model, batch)
    expected = _captum_text(model, batch, prepared, captum_class)
    maps = attribute(model, batch, method=method, targets=torch.tensor([1, 0]))
    torch.testing.assert_close(maps, expected, rtol=1e-4, atol=1e-6)


def test_roberta_embedding_path_equals_the_ids_path_under_left_padding():
    # RoBERTa numbers positions from the ids (padding keeps padding_idx): the attributed embeddings must see the same.
    model = _build(TEXT_MODELS, "roberta")
    batch = _text(pad_id=model.config.pad_token_id, left=True)
    prepared = prepare_inputs(model, batch)
    with torch.no_grad():
        by_ids = model(**batch).logits
        by_embeddings = model(inputs_embeds=prepared.features, **prepared.extra).logits
    torch.testing.assert_close(by_embeddings, by_ids, rtol=0, atol=1e-6)


def test_distilbert_gets_no_token_type_ids():
    model = _build(TEXT_MODELS, "distilbert")
    prepared = prepare_inputs(model, _text())
    assert "token_type_ids" not in prepared.extra and "attention_mask" in prepared.extra


def test_rollout_on_deit_equals_a_hand_computed_cls_row():
    model = _build(IMAGE_MODELS, "deit")
    images = _images()
    model.set_attn_implementation("eager")
    with torch.no_grad():
        attentions = model(pixel_values=images, output_attentions=True).attentions
    expected = []
    for example in range(images.shape[0]):
        tokens = attentions[0].shape[-1]
        rollout = torch.eye(tokens)
        for weights in attentions:
            mixed = 0.5 * weights[example].mean(dim=0) + 0.5 * torch.eye(tokens)
            mixed = mixed / mixed.sum(dim=-1, keepdim=True)
            rollout = mixed @ rollout
        # Row 0 is [CLS]; column 1 is the distillation token; the 16 patches follow, row by row.
        expected.append(rollout[0, 2:].reshape(4, 4))
    model.set_attn_implementation("sdpa")
    torch.testing.assert_close(attribute(model, images, method="rollout"), torch.stack(expected), rtol=1e-5, atol=1e-7)
