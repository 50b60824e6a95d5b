"""Each regularizer's parameter gradient against a direct computation of its formula (float64)."""

import copy

import pytest
import torch
import torch.nn.functional as F
from training_helpers import regularizer_gradient

from hf_robattr.attribution import twice_differentiable_attention
from hf_robattr.training import (
    CurvatureRegularizer,
    GradientNormRegularizer,
    IGNormRegularizer,
    InputGradNormRegularizer,
    SAMRegularizer,
    get_regularizer,
)


WEIGHT = 0.7


def params(model):
    return [p for p in model.parameters() if p.requires_grad]


def per_sample(model, batch):
    """Yield ``(x_i, forward_i, label_i)``: sample i's input (pixels or word embeddings) and its logits function."""
    for i in range(len(batch["labels"])):
        if "pixel_values" in batch:
            x = batch["pixel_values"][i : i + 1].clone().requires_grad_(True)
            yield x, (lambda v: model(pixel_values=v).logits), batch["labels"][i : i + 1]
        else:
            x = model.get_input_embeddings()(batch["input_ids"][i : i + 1])
            mask = batch["attention_mask"][i : i + 1]
            yield x, (lambda v, m=mask: model(inputs_embeds=v, attention_mask=m).logits), batch["labels"][i : i + 1]


def reference_gradient(model, objective):
    model.zero_grad(set_to_none=True)
    with twice_differentiable_attention():
        value = objective()
    grads = torch.autograd.grad(value, params(model), allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params(model), grads)]


def assert_grads_close(actual, expected, rtol=1e-7, atol=1e-9):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e, rtol=rtol, atol=atol)


def input_grad_norm_objective(model, batch):
    losses, penalties = [], []
    for x, forward, label in per_sample(model, batch):
        loss = F.cross_entropy(forward(x), label)
        (grad,) = torch.autograd.grad(loss, x, create_graph=True)
        losses.append(loss)
        penalties.append(grad.pow(2).sum())
    return torch.stack(losses).mean() + WEIGHT * torch.stack(penalties).mean()


@pytest.mark.parametrize("model_name", ["vit", "kernel_vit", "bert"])
def test_input_grad_norm_matches_per_sample_double_backprop(model_name, request):
    model = request.getfixturevalue(model_name)
    batch = request.getfixturevalue("text_batch" if model_name == "bert" else "image_batch")
    actual = regularizer_gradient(InputGradNormRegularizer(WEIGHT), model, batch)
    expected = reference_gradient(model, lambda: input_grad_norm_objective(model, batch))
    assert_grads_close(actual, expected)


def test_curvature_matches_finite_difference_formula(vit, image_batch):
    h = 0.05
    actual = regularizer_gradient(CurvatureRegularizer(WEIGHT, step=h), vit, image_batch)

    def objective():
        losses, penalties = [], []
        for x, forward, label in per_sample(vit, image_batch):
            loss = F.cross_entropy(forward(x), label)
            (grad,) = torch.autograd.grad(loss, x, create_graph=True)
            z = grad.detach().sign() / grad.detach().sign().norm()
            x2 = (x + h * z).detach().requires_grad_(True)
            (grad2,) = torch.autograd.grad(F.cross_entropy(forward(x2), label), x2, create_graph=True)
            losses.append(loss)
            penalties.append((grad2 - grad).pow(2).sum() / h**2)
        return torch.stack(losses).mean() + WEIGHT * torch.stack(penalties).mean()

    assert_grads_close(actual, reference_gradient(vit, objective))


def test_igr_gradient_is_loss_gradient_plus_2_lambda_hessian_gradient(vit, image_batch):
    """d/dtheta (L + lambda ||g||^2) = g + 2 lambda H g, with H g by central finite differences of g."""
    actual = regularizer_gradient(GradientNormRegularizer(WEIGHT), vit, image_batch)

    def loss_gradient(model):
        loss = F.cross_entropy(model(pixel_values=image_batch["pixel_values"]).logits, image_batch["labels"])
        return torch.autograd.grad(loss, params(model))

    g = loss_gradient(vit)
    eps = 1e-5
    shifted = []
    for sign in (1, -1):
        model = copy.deepcopy(vit)
        with torch.no_grad():
            for p, gi in zip(params(model), g):
                p.add_(sign * eps * gi)
        shifted.append(loss_gradient(model))
    hg = [(plus - minus) / (2 * eps) for plus, minus in zip(*shifted)]
    expected = [gi + 2 * WEIGHT * hgi for gi, hgi in zip(g, hg)]
    assert_grads_close(actual, expected, rtol=1e-5, atol=1e-7)


def fixed_delta(batch_input, epsilon, seed=3):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(batch_input.shape, generator=generator, dtype=batch_input.dtype) * 2 - 1) * epsilon


def ig_norm_objective(model, batch, delta, steps):
    """Per sample, a Python loop over the m path points: mean CE + lambda * mean ||(x - b) * mean_k grad_k||_1."""
    losses, penalties = [], []
    for i, (x, forward, label) in enumerate(per_sample(model, batch)):
        losses.append(F.cross_entropy(forward(x), label))
        b = x + delta[i : i + 1]
        total = 0
        for k in range(1, steps + 1):
            point = b + (k / steps) * (x - b)
            if not point.requires_grad:
                point.requires_grad_(True)
            (grad,) = torch.autograd.grad(F.cross_entropy(forward(point), label), point, create_graph=True)
            total = total + grad
        penalties.append(((x - b) * total / steps).abs().sum())
    return torch.stack(losses).mean() + WEIGHT * torch.stack(penalties).mean()


@pytest.mark.parametrize(
    ("model_name", "chunk_size"),
    [
        pytest.param("vit", 5, id="vit-one-graph"),
        pytest.param("vit", 2, id="vit-chunked"),
        pytest.param("bert", 2, id="bert-chunked"),
    ],
)
def test_ig_norm_matches_loop_over_path_points(model_name, chunk_size, request, monkeypatch):
    model = request.getfixturevalue(model_name)
    batch = request.getfixturevalue("text_batch" if model_name == "bert" else "image_batch")
    steps, epsilon = 5, 0.3
    shape = batch["pixel_values"].shape if "pixel_values" in batch else (*batch["input_ids"].shape, 8)
    delta = fixed_delta(torch.zeros(shape, dtype=torch.float64), epsilon)
    regularizer = IGNormRegularizer(WEIGHT, steps=steps, chunk_size=chunk_size, epsilon=epsilon)
    monkeypatch.setattr(regularizer, "baseline_offset", lambda x: delta)
    assert regularizer.owns_backward() == (chunk_size < steps)
    actual = regularizer_gradient(regularizer, model, batch)
    expected = reference_gradient(model, lambda: ig_norm_objective(model, batch, delta, steps))
    assert_grads_close(actual, expected)


def test_ig_norm_chunked_equals_one_graph(vit, image_batch):
    grads = []
    for chunk_size in (10, 3):
        torch.manual_seed(0)
        grads.append(
            regularizer_gradient(IGNormRegularizer(WEIGHT, steps=10, chunk_size=chunk_size), vit, image_batch)
        )
    assert_grads_close(*grads)


def test_sam_gradient_is_gradient_at_ascent_point(vit, image_batch):
    rho = 0.05
    actual = regularizer_gradient(SAMRegularizer(rho), vit, image_batch)
    before = [p.detach().clone() for p in params(vit)]

    def loss(model):
        return F.cross_entropy(model(pixel_values=image_batch["pixel_values"]).logits, image_batch["labels"])

    g = torch.autograd.grad(loss(vit), params(vit))
    norm = torch.sqrt(sum(gi.pow(2).sum() for gi in g))
    moved = copy.deepcopy(vit)
    with torch.no_grad():
        for p, gi in zip(params(moved), g):
            p.add_(rho * gi / norm)
    expected = torch.autograd.grad(loss(moved), params(moved))
    assert_grads_close(actual, list(expected))
    for p, b in zip(params(vit), before):  # parameters restored exactly
        torch.testing.assert_close(p.detach(), b, rtol=0, atol=1e-15)


def test_unknown_regularizer_names_it():
    with pytest.raises(ValueError, match=r"Unknown --regularizer 'l2'.*input_grad_norm"):
        get_regularizer("l2")


@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        pytest.param(InputGradNormRegularizer, {"weight": -1.0}, "regularizer_weight", id="weight"),
        pytest.param(IGNormRegularizer, {"steps": 0}, "ig_steps", id="ig-steps"),
        pytest.param(IGNormRegularizer, {"chunk_size": 0}, "ig_chunk_size", id="ig-chunk"),
        pytest.param(CurvatureRegularizer, {"step": 0.0}, "curvature_step", id="curvature-step"),
    ],
)
def test_bad_regularizer_options(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)
