"""Gradient methods against captum, on images and on text embeddings."""

import pytest
import torch
from captum.attr import InputXGradient as CaptumInputXGradient
from captum.attr import IntegratedGradients as CaptumIntegratedGradients
from captum.attr import NoiseTunnel
from captum.attr import Saliency as CaptumSaliency

from hf_robattr.attribution import (
    InputXGradient,
    IntegratedGradients,
    Saliency,
    SmoothGrad,
    attribute,
    forward_logits,
    prepare_inputs,
)


def _captum_reference(name, forward, x, targets, noise_seed):
    if name == "saliency":
        return CaptumSaliency(forward).attribute(x, target=targets)
    if name == "input_x_gradient":
        return CaptumInputXGradient(forward).attribute(x, target=targets)
    if name == "integrated_gradients":
        return CaptumIntegratedGradients(forward).attribute(x, target=targets, n_steps=16)
    torch.manual_seed(noise_seed)
    return NoiseTunnel(CaptumSaliency(forward)).attribute(
        x, target=targets, nt_type="smoothgrad", nt_samples=5, stdevs=0.1
    )


def _ours(name, x, noise_seed):
    if name == "smoothgrad":
        # The exact draws captum makes: torch.normal over the repeat_interleaved batch.
        torch.manual_seed(noise_seed)
        noise = torch.normal(0, torch.full((x.shape[0] * 5, *x.shape[1:]), 0.1))
        return SmoothGrad(n_samples=5, noise=noise.view(x.shape[0], 5, *x.shape[1:]))
    if name == "integrated_gradients":
        return IntegratedGradients(n_steps=16)
    return {"saliency": Saliency, "input_x_gradient": InputXGradient}[name]()


METHODS = ["saliency", "input_x_gradient", "integrated_gradients", "smoothgrad"]


@pytest.mark.parametrize("name", [pytest.param(name, id=name) for name in METHODS])
def test_matches_captum_on_images(vit, images, name):
    targets = torch.tensor([0, 2, 1])
    prepared = prepare_inputs(vit, images)
    expected = _captum_reference(name, lambda x: vit(pixel_values=x).logits, images.clone(), targets, 7)
    ours, _ = _ours(name, images, 7).per_feature(vit, prepared, targets)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", [pytest.param(name, id=name) for name in METHODS])
def test_matches_captum_on_text_embeddings(bert, text_batch, name):
    prepared = prepare_inputs(bert, text_batch)
    targets = torch.tensor([1, 0, 1])

    mask = text_batch["attention_mask"]

    def forward(embeds):
        # captum expands the batch example-major for NoiseTunnel and step-major for IntegratedGradients.
        repeats = embeds.shape[0] // mask.shape[0]
        expanded = mask.repeat_interleave(repeats, dim=0) if name == "smoothgrad" else mask.repeat(repeats, 1)
        return bert(inputs_embeds=embeds, attention_mask=expanded).logits

    expected = _captum_reference(name, forward, prepared.features.clone(), targets, 3)
    ours, _ = _ours(name, prepared.features, 3).per_feature(bert, prepared, targets)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", [pytest.param(name, id=name) for name in METHODS])
def test_maps_are_reduced_and_padding_is_zero(bert, text_batch, vit, images, name):
    image_maps = attribute(vit, images, method=name)
    assert image_maps.shape == (3, 8, 8)
    text_maps = attribute(bert, text_batch, method=name)
    assert text_maps.shape == (3, 7)
    assert torch.all(text_maps[text_batch["attention_mask"] == 0] == 0)
    assert torch.all(text_maps[text_batch["attention_mask"] == 1] != 0)


@pytest.mark.parametrize("name", [pytest.param(name, id=name) for name in METHODS])
def test_create_graph_gives_input_gradients(vit, images, name):
    x = images.clone().requires_grad_(True)
    prepared = prepare_inputs(vit, images).with_features(x)
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.MATH):
        maps = attribute(
            vit,
            prepared,
            method=name,
            targets=0,
            create_graph=True,
            **({"n_samples": 3} if name == "smoothgrad" else {}),
        )
        (grad,) = torch.autograd.grad(maps.pow(2).sum(), x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


@pytest.mark.parametrize("name", [pytest.param(name, id=name) for name in METHODS if name != "smoothgrad"])
def test_batched_equals_one_by_one(vit, images, name):
    together = attribute(vit, images, method=name)
    alone = torch.cat([attribute(vit, images[i : i + 1], method=name) for i in range(3)])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-6)


def test_integrated_gradients_chunking_is_invisible(vit, images):
    whole = attribute(vit, images, method="integrated_gradients", n_steps=8)
    chunked = attribute(vit, images, method="integrated_gradients", n_steps=8, internal_batch_size=5)
    torch.testing.assert_close(whole, chunked, rtol=1e-5, atol=1e-7)


def test_integrated_gradients_completeness(vit, images):
    # Sum of IG attributions equals f(x) - f(baseline) up to the quadrature error.
    prepared = prepare_inputs(vit, images)
    targets = torch.tensor([0, 1, 2])
    values, _ = IntegratedGradients(n_steps=64).per_feature(vit, prepared, targets)
    with torch.no_grad():
        gap = forward_logits(vit, prepared).gather(1, targets[:, None]).squeeze(1) - forward_logits(
            vit, prepared.with_features(torch.zeros_like(images))
        ).gather(1, targets[:, None]).squeeze(1)
    torch.testing.assert_close(values.flatten(1).sum(1), gap, rtol=1e-2, atol=1e-4)
