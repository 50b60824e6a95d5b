"""The sensitivity family against captum.metrics.sensitivity_max and Quantus, with the same noise fed to both."""

import numpy as np
import pytest
import quantus
import torch
from captum.attr import Saliency as CaptumSaliency
from captum.metrics import sensitivity_max
from torch import nn

from hf_robattr.attribution import Saliency, prepare_inputs
from hf_robattr.robustness.sampled_sensitivity import perturbed_explanations, sensitivity_family
from hf_robattr.robustness.sensitivity import SENSITIVITY_MEASURES, sensitivity_measures


SAMPLES = 6


@pytest.fixture
def setup():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.Softplus(), nn.Flatten(), nn.Linear(4 * 36, 3)).eval()
    generator = torch.Generator().manual_seed(5)
    x = torch.rand(4, 2, 6, 6, generator=generator) + 0.1
    noise = (torch.rand(4, SAMPLES, 2, 6, 6, generator=generator) * 2 - 1) * 0.05
    with torch.no_grad():
        targets = model(x).argmax(1)
    prepared = prepare_inputs(model, x)
    clean = Saliency().explain(model, prepared, targets).maps
    perturbed, _logits = perturbed_explanations(model, Saliency(), prepared, targets, noise, batch_size=5)
    ours = sensitivity_measures(clean, perturbed, inputs=x, perturbed_inputs=x.unsqueeze(1) + noise)
    return model, x, noise, targets, ours


def _reduced_saliency(model):
    # Our maps: |gradient| summed over channels, the same reduction done on captum's output.
    def explain(inputs, target):
        inputs = inputs[0] if isinstance(inputs, tuple) else inputs
        # captum's sensitivity_max expects a tuple of explanations.
        return (CaptumSaliency(model).attribute(inputs, target=target).sum(1, keepdim=True),)

    return explain


def test_max_sensitivity_equals_captum(setup):
    model, x, noise, targets, ours = setup
    flat_noise = noise.reshape(-1, *x.shape[1:])
    expected = sensitivity_max(
        _reduced_saliency(model),
        x,
        perturb_func=lambda inputs, perturb_radius=0.0: inputs + flat_noise,
        n_perturb_samples=SAMPLES,
        target=targets,
    )
    torch.testing.assert_close(ours["max_sensitivity"], expected, rtol=1e-5, atol=1e-7)


def _quantus_noise(noise, x):
    draws = iter(range(SAMPLES))

    def perturb(arr, indices, **kwargs):
        step = next(draws)
        return arr + noise[:, step].reshape(x.shape[0], -1).numpy()

    return perturb


def _quantus_explain(model, inputs, targets, **kwargs):
    inputs = torch.as_tensor(inputs).requires_grad_(True)
    targets = torch.as_tensor(targets)
    return CaptumSaliency(model).attribute(inputs, target=targets).sum(1, keepdim=True).detach().numpy()


QUANTUS = [
    pytest.param("max_sensitivity", quantus.MaxSensitivity, id="MaxSensitivity"),
    pytest.param("avg_sensitivity", quantus.AvgSensitivity, id="AvgSensitivity"),
    pytest.param("local_lipschitz", quantus.LocalLipschitzEstimate, id="LocalLipschitzEstimate"),
    pytest.param("relative_input_stability", quantus.RelativeInputStability, id="RelativeInputStability"),
]


@pytest.mark.parametrize(("name", "metric_cls"), QUANTUS)
def test_equals_quantus_with_the_same_noise(setup, name, metric_cls):
    model, x, noise, targets, ours = setup
    metric = metric_cls(
        nr_samples=SAMPLES,
        perturb_func=_quantus_noise(noise, x),
        normalise=False,
        abs=False,
        disable_warnings=True,
        return_nan_when_prediction_changes=False,
    )
    expected = metric(
        model=model,
        x_batch=x.numpy(),
        y_batch=targets.numpy(),
        explain_func=_quantus_explain,
        device="cpu",
        batch_size=x.shape[0],
    )
    np.testing.assert_allclose(ours[name].numpy(), np.asarray(expected, dtype=np.float64), rtol=1e-4)


def test_invalid_samples_are_left_out():
    clean = torch.ones(2, 3)
    perturbed = torch.stack([torch.ones(2, 3), 3 * torch.ones(2, 3)], dim=1)
    valid = torch.tensor([[True, False], [False, False]])
    x = torch.ones(2, 3)
    result = sensitivity_measures(clean, perturbed, inputs=x, perturbed_inputs=x.unsqueeze(1) + 1, valid=valid)
    assert result["max_sensitivity"][0] == 0 and torch.isnan(result["max_sensitivity"][1])


def test_unknown_measure_is_named():
    with pytest.raises(ValueError, match="max_sensitivity"):
        sensitivity_measures(
            torch.ones(1, 2),
            torch.ones(1, 1, 2),
            inputs=torch.ones(1, 2),
            perturbed_inputs=torch.ones(1, 1, 2),
            measures=("maxsens",),
        )


@pytest.mark.parametrize("name", [pytest.param(name, id=name) for name in SENSITIVITY_MEASURES])
def test_values_are_non_negative(setup, name):
    assert torch.all(setup[4][name] >= 0)


def test_sensitivity_family_takes_given_noise_and_checks_its_shape(setup):
    model, x, noise, _targets, ours = setup
    direct = sensitivity_family(model, x, perturbations=noise, keep_label=False, batch_size=7)
    for name, values in ours.items():
        torch.testing.assert_close(direct[name], values)
    with pytest.raises(ValueError, match="`perturbations`"):
        sensitivity_family(model, x, perturbations=noise[:, :, 0])


def test_sensitivity_family_draws_from_the_ball_by_seed(setup):
    model, x, *_ = setup
    first = sensitivity_family(model, x, num_samples=4, seed=1)
    assert torch.equal(
        first["max_sensitivity"], sensitivity_family(model, x, num_samples=4, seed=1)["max_sensitivity"]
    )
    assert not torch.equal(
        first["max_sensitivity"], sensitivity_family(model, x, num_samples=4, seed=2)["max_sensitivity"]
    )


def test_nan_perturbations_are_refused_not_scored(vit, images):
    """Red-team finding: NaN perturbations gave NaN sensitivities with no error."""
    offsets = torch.zeros(images.shape[0], 2, *images.shape[1:])
    offsets[0, 1, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="`perturbations` contains NaN"):
        sensitivity_family(vit, images, method="saliency", perturbations=offsets)
    clean = torch.rand(2, 4)
    with pytest.raises(ValueError, match="`perturbed` contains NaN"):
        sensitivity_measures(
            clean, torch.full((2, 3, 4), float("nan")), inputs=torch.rand(2, 4), perturbed_inputs=torch.rand(2, 3, 4)
        )
