"""Curvature diagnostics against exact Hessians of small models; attention entropy on a known case."""

import math

import pytest
import torch
from tiny_models import tiny_bert
from torch import nn
from torch.func import functional_call, hessian

from hf_robattr.robustness import attention_entropy, hessian_top_eigenvalue, hessian_trace, input_curvature


@pytest.fixture
def small():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3))
    generator = torch.Generator().manual_seed(1)
    batch = {"pixel_values": torch.randn(8, 4, generator=generator), "labels": torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])}
    return model, batch


def _exact_parameter_hessian(model, batch):
    names = [name for name, _ in model.named_parameters()]
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    shapes = [p.shape for p in model.parameters()]

    def loss(vector):
        params, start = {}, 0
        for name, shape in zip(names, shapes):
            params[name] = vector[start : start + shape.numel()].view(shape)
            start += shape.numel()
        logits = functional_call(model, params, (batch["pixel_values"],))
        return nn.functional.cross_entropy(logits, batch["labels"])

    return hessian(loss)(flat)


def test_hutchinson_trace_matches_the_exact_trace(small):
    model, batch = small
    exact = torch.trace(_exact_parameter_hessian(model, batch)).item()
    estimate = hessian_trace(model, batch, num_probes=400, seed=0, rel_stderr=None)
    assert estimate.num_probes == 400 and estimate.stderr > 0
    assert abs(estimate.value - exact) < 4 * estimate.stderr


def test_power_iteration_finds_the_top_eigenvalue(small):
    model, batch = small
    eigenvalues = torch.linalg.eigvalsh(_exact_parameter_hessian(model, batch))
    top = eigenvalues[eigenvalues.abs().argmax()].item()
    estimate = hessian_top_eigenvalue(model, batch, num_iterations=100, seed=0)
    assert estimate.value == pytest.approx(top, rel=1e-3)


def test_input_curvature_matches_exact_input_hessians(small):
    model, batch = small
    probes = 300
    estimate = input_curvature(model, batch, num_probes=probes, seed=0, rel_stderr=None)
    # Same directions as the estimator draws: per probe, one unit direction per example.
    generator = torch.Generator().manual_seed(0)
    directions = torch.randn((probes, 8, 4), generator=generator)
    directions = directions / directions.norm(dim=2, keepdim=True)
    norms = []
    for i in range(8):
        x, y = batch["pixel_values"][i], batch["labels"][i : i + 1]
        h = hessian(lambda v, y=y: nn.functional.cross_entropy(model(v[None]), y))(x)
        norms.append((directions[:, i] @ h).norm(dim=1))
    expected = torch.stack(norms, dim=1).mean().item()
    assert estimate.value == pytest.approx(expected, rel=1e-4)


def test_state_and_flags_are_restored(small):
    model, batch = small
    model.train()
    model[0].requires_grad_(False)
    for diagnostic in (hessian_trace, input_curvature):
        diagnostic(model, batch, num_probes=4, rel_stderr=None)
    hessian_top_eigenvalue(model, batch, num_iterations=3)
    assert model.training
    assert [p.requires_grad for p in model.parameters()] == [False, False, True, True]


def test_same_seed_same_estimate(small):
    model, batch = small
    assert hessian_trace(model, batch, num_probes=10, seed=5, rel_stderr=None) == hessian_trace(
        model, batch, num_probes=10, seed=5, rel_stderr=None
    )
    assert hessian_trace(model, batch, num_probes=10, seed=5, rel_stderr=None) != hessian_trace(
        model, batch, num_probes=10, seed=6, rel_stderr=None
    )


def test_hf_models_and_text(small):
    bert = tiny_bert(vocab_size=30, num_hidden_layers=1, intermediate_size=16, max_position_embeddings=8)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    batch = {
        "input_ids": torch.tensor([[2, 5, 7, 3], [2, 9, 0, 0]]),
        "attention_mask": mask,
        "labels": torch.tensor([0, 1]),
    }
    for value in (
        hessian_trace(bert, batch, num_probes=4, rel_stderr=None),
        input_curvature(bert, batch, num_probes=4, rel_stderr=None),
    ):
        assert math.isfinite(value.value) and math.isfinite(value.stderr)
    entropies = attention_entropy(bert, batch)
    assert len(entropies) == 1 and 0 < entropies[0] <= math.log(4)
    assert bert.config._attn_implementation == "sdpa"


def test_uniform_attention_has_entropy_log_n(vit):
    """The tiny one-channel ViT: 8x8 images in 2x2 patches, so 16 patches and [CLS]."""
    for layer in vit.vit.layers:
        # Zero queries make every score equal, so every row is uniform over the 17 tokens.
        nn.init.zeros_(layer.attention.q_proj.weight)
        nn.init.zeros_(layer.attention.q_proj.bias)
    entropies = attention_entropy(vit, {"pixel_values": torch.rand(2, 1, 8, 8)})
    assert entropies == pytest.approx([math.log(17)] * 2, rel=1e-5)


@pytest.mark.parametrize("probes", [pytest.param(1, id="one-probe"), pytest.param(0, id="zero-probes")])
def test_too_few_probes_are_rejected(small, probes):
    model, batch = small
    with pytest.raises(ValueError, match="`num_probes`"):
        hessian_trace(model, batch, num_probes=probes)


def test_batch_without_labels_is_rejected(small):
    model, batch = small
    with pytest.raises(ValueError, match="`labels`"):
        input_curvature(model, {"pixel_values": batch["pixel_values"]})


def test_probes_are_added_until_the_stderr_target(small):
    model, batch = small
    fixed = hessian_trace(model, batch, num_probes=4, rel_stderr=None)
    adaptive = hessian_trace(model, batch, num_probes=4, rel_stderr=0.1, max_probes=3000)
    assert fixed.num_probes == 4
    assert adaptive.num_probes > 4 and adaptive.stderr <= 0.1 * abs(adaptive.value)
    capped = hessian_trace(model, batch, num_probes=4, rel_stderr=1e-9, max_probes=60)
    assert capped.num_probes == 60
