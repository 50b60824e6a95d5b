"""Attention methods: naive references, HF softmax models (SDPA switched to eager and back), kernel models."""

import math

import pytest
import torch
from tiny_models import tiny_bert, tiny_vit

from hf_robattr.attribution import (
    AttentionRollout,
    GradAttention,
    RawAttention,
    attribute,
    prepare_inputs,
    twice_differentiable_attention,
)


ATTENTION = ["raw_attention", "rollout", "grad_attention"]


def _random_attentions(layers=3, batch=2, heads=2, tokens=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return tuple(torch.rand(batch, heads, tokens, tokens, generator=generator).softmax(-1) for _ in range(layers))


def test_rollout_matches_a_loop_over_examples():
    attentions = _random_attentions()
    ours = AttentionRollout().scores(attentions, None)
    for b in range(2):
        result = torch.eye(5)
        for weights in attentions:
            mixed = 0.5 * weights[b].mean(0) + 0.5 * torch.eye(5)
            mixed = mixed / mixed.sum(-1, keepdim=True)
            result = mixed @ result
        torch.testing.assert_close(ours[b], result[0])


def test_grad_attention_matches_a_loop_over_examples():
    attentions = _random_attentions(seed=1)
    gradients = tuple(torch.randn_like(a) for a in attentions)
    ours = GradAttention().scores(attentions, gradients)
    for b in range(2):
        relevance = torch.eye(5)
        for weights, grad in zip(attentions, gradients):
            cam = torch.relu(weights[b] * grad[b]).mean(0)
            relevance = relevance + cam @ relevance
        torch.testing.assert_close(ours[b], (relevance - torch.eye(5))[0])


def test_raw_attention_is_last_layer_cls_row(vit, images):
    vit.set_attn_implementation("eager")
    with torch.no_grad():
        weights = vit(pixel_values=images, output_attentions=True).attentions[-1]
    expected = weights.mean(1)[:, 0, 1:].reshape(3, 4, 4)
    torch.testing.assert_close(attribute(vit, images, method="raw_attention"), expected)


@pytest.mark.parametrize("name", [pytest.param(name, id=name) for name in ATTENTION])
def test_hf_sdpa_models_are_switched_back(vit, bert, images, text_batch, name):
    assert attribute(vit, images, method=name).shape == (3, 4, 4)
    text_maps = attribute(bert, text_batch, method=name)
    assert text_maps.shape == (3, 7)
    assert torch.all(text_maps[text_batch["attention_mask"] == 0] == 0)
    assert torch.all(text_maps[:, 0] == 0)
    assert vit.config._attn_implementation == "sdpa" and bert.config._attn_implementation == "sdpa"


def test_padding_does_not_change_text_maps(bert, text_batch):
    # Example 2 has 3 real tokens: its map must not depend on how much padding follows.
    short = {key: value[2:3, :3] for key, value in text_batch.items()}
    for name in ATTENTION:
        padded = attribute(bert, text_batch, method=name)[2, :3]
        torch.testing.assert_close(padded, attribute(bert, short, method=name)[0], rtol=1e-4, atol=1e-6)


def _robattr_models(attention_type):
    models = pytest.importorskip("hf_robattr.models")
    vit = tiny_vit(models.RobAttrViTConfig, models.RobAttrViTForImageClassification, attention_type=attention_type)
    bert = tiny_bert(
        models.RobAttrBertConfig, models.RobAttrBertForSequenceClassification, attention_type=attention_type
    )
    return vit, bert


CASES = [pytest.param(kind, name, id=f"{kind}-{name}") for kind in ("softmax", "kernel") for name in ATTENTION]


@pytest.mark.parametrize(("attention_type", "name"), CASES)
def test_robattr_models_are_differentiable_through_attention(attention_type, name, images, text_batch):
    vit, bert = _robattr_models(attention_type)
    for model, inputs in ((vit, images), (bert, text_batch)):
        prepared = prepare_inputs(model, inputs)
        features = prepared.features.clone().requires_grad_(True)
        with twice_differentiable_attention():
            maps = attribute(model, prepared.with_features(features), method=name, targets=0, create_graph=True)
            (grad,) = torch.autograd.grad(maps.sum(), features)
        assert torch.isfinite(maps).all()
        assert grad.abs().sum() > 0, f"{name} on {attention_type} {type(model).__name__} has no input gradient"


def test_kernel_rows_are_distributions(images):
    vit, _ = _robattr_models("kernel")
    maps = attribute(vit, images, method="raw_attention")
    # Raw attention of the CLS row over patches sums to 1 minus its weight on CLS itself.
    assert torch.all(maps >= 0) and torch.all(maps.flatten(1).sum(1) <= 1 + 1e-5)
    assert math.isclose(float(RawAttention().scores(_random_attentions(), None).sum(1)[0]), 1.0, rel_tol=1e-5)
