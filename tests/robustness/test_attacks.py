"""Attacks: stronger than random noise, label preserved, inside the ball and the valid range; text in embedding space."""

import pytest
import torch

from hf_robattr.attribution import (
    Saliency,
    forward_logits,
    frozen_eval,
    prepare_inputs,
    twice_differentiable_attention,
)
from hf_robattr.robustness import ATTACKS, AttackProblem, RobustnessConfig, get_attack, topk_intersection
from hf_robattr.robustness.perturbations import ball_radius


def _run(model, inputs, attack, seed=0, **settings):
    prepared = prepare_inputs(model, inputs)
    with torch.no_grad():
        labels = forward_logits(model, prepared).argmax(1)
    method = Saliency()
    clean = method.explain(model, prepared, labels).maps
    config = RobustnessConfig(attack=attack, **settings)
    problem = AttackProblem(
        model, method, prepared, labels, labels, clean, config, generator=torch.Generator().manual_seed(seed)
    )
    with frozen_eval(model), twice_differentiable_attention():
        result = get_attack(attack)()(problem)
    return prepared, labels, clean, result


def test_topk_attack_beats_random_noise_of_the_same_epsilon(vit, images):
    _, _, clean, attacked = _run(vit, images, "topk", epsilon=0.1, num_steps=10, k=8)
    _, _, _, noisy = _run(vit, images, "random", epsilon=0.1, k=8)
    attacked_overlap = topk_intersection(clean, attacked.maps, k=8).mean()
    random_overlap = topk_intersection(clean, noisy.maps, k=8).mean()
    assert attacked_overlap < random_overlap - 0.1


@pytest.mark.parametrize("attack", [pytest.param(name, id=name) for name in ATTACKS])
@pytest.mark.parametrize("norm", [pytest.param("linf", id="linf"), pytest.param("l2", id="l2")])
def test_labels_kept_and_points_inside_ball_and_range(vit, images, attack, norm):
    epsilon = 0.8 if norm == "l2" else 0.3  # large enough that some points flip labels
    prepared, labels, _, result = _run(vit, images, attack, epsilon=epsilon, norm=norm, num_steps=3, restarts=2)
    with torch.no_grad():
        assert torch.equal(forward_logits(vit, prepared.with_features(result.features)).argmax(1), labels)
    delta = (result.features - images).flatten(1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    assert torch.all(size <= epsilon + 1e-5)
    low = images.flatten(1).amin(1)[:, None]
    high = images.flatten(1).amax(1)[:, None]
    assert torch.all(result.features.flatten(1) >= low - 1e-6) and torch.all(result.features.flatten(1) <= high + 1e-6)
    unperturbed = ~result.perturbed
    assert torch.equal(result.features[unperturbed], images[unperturbed])


def test_label_flips_are_reported(linear_model, images):
    # A huge ball flips labels at once; those examples stay unperturbed and are flagged.
    _, _, _, result = _run(linear_model, images, "random", epsilon=50.0, input_range=(-100.0, 100.0), restarts=3)
    assert result.label_changed.any()
    assert torch.all(result.perturbed | result.label_changed)


def test_text_attack_stays_in_embedding_balls_and_leaves_padding(bert, text_batch):
    prepared, _labels, _, result = _run(bert, text_batch, "topk", epsilon=0.05, num_steps=3)
    radius = ball_radius(prepared, 0.05, "linf")
    delta = result.features - prepared.features
    assert torch.all(delta.abs() <= radius + 1e-6)
    assert torch.all(delta[text_batch["attention_mask"] == 0] == 0)
    assert result.perturbed.any()


def test_restarts_do_not_do_worse(vit, images):
    _, _, clean, one = _run(vit, images, "topk", epsilon=0.1, num_steps=3, k=8)
    _, _, _, three = _run(vit, images, "topk", epsilon=0.1, num_steps=3, k=8, restarts=3)
    assert topk_intersection(clean, three.maps, k=8).mean() <= topk_intersection(clean, one.maps, k=8).mean() + 1e-6


def test_registry_returns_classes():
    assert all(get_attack(name) is cls for name, cls in ATTACKS.items())


def test_unknown_attack_lists_valid_names():
    with pytest.raises(ValueError, match="mass_center"):
        get_attack("fgsm")


@pytest.mark.parametrize("fixture, modality", [("vit", "image"), ("bert", "text")])
def test_the_default_radius_is_the_modality_default_and_auto_is_refused(fixture, modality, request):
    from hf_robattr.robustness.config import DEFAULT_EPSILONS

    model = request.getfixturevalue(fixture)
    inputs = request.getfixturevalue("images" if modality == "image" else "text_batch")
    prepared, _, _, default = _run(model, inputs, "random", seed=3)
    _, _, _, explicit = _run(model, inputs, "random", seed=3, epsilon=DEFAULT_EPSILONS[modality])
    assert torch.equal(default.features, explicit.features)
    assert not torch.equal(default.features, prepared.features)
    with pytest.raises(ValueError, match="epsilon='auto'"):
        _run(model, inputs, "random", epsilon="auto")
