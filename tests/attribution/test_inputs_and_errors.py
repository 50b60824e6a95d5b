"""Input handling and error messages that name the bad argument; beta-smoothing."""

import pytest
import torch
from tiny_models import NoLogits
from torch import nn

from hf_robattr.attribution import ATTRIBUTION_METHODS, attribute, softplus_smoothing


BAD_INPUTS = [
    pytest.param(lambda m, x, t: attribute(m, x, method="nope"), ValueError, "saliency", id="unknown-method"),
    pytest.param(
        lambda m, x, t: attribute(m, x.masked_fill(x > 0.5, float("nan"))), ValueError, "`inputs`", id="nan-pixels"
    ),
    pytest.param(
        lambda m, x, t: attribute(m, {"input_ids": t["input_ids"], "attention_mask": t["attention_mask"][:2]}),
        ValueError,
        "mismatched batch sizes",
        id="mismatched-batch",
    ),
    pytest.param(lambda m, x, t: attribute(m, x, targets=[0, 1]), ValueError, "`targets`", id="targets-length"),
    pytest.param(lambda m, x, t: attribute(m, x, targets=[0, 1, 9]), ValueError, "`targets`", id="targets-range"),
    pytest.param(lambda m, x, t: attribute(m, x, targets="abc"), TypeError, "`targets`", id="string-targets"),
    pytest.param(lambda m, x, t: attribute(m, x, targets=[0.5] * 3), TypeError, "`targets`", id="float-targets"),
    pytest.param(lambda m, x, t: attribute(m, x, n_steps=3), TypeError, "unexpected options", id="bad-option"),
    pytest.param(
        lambda m, x, t: attribute(m, x, method="smoothgrad", noise_level=float("nan")),
        ValueError,
        "`noise_level`",
        id="nan-noise",
    ),
    pytest.param(lambda m, x, t: attribute(m, x, method="rollout"), TypeError, "attention", id="plain-attention"),
]


@pytest.mark.parametrize(("call", "error", "message"), BAD_INPUTS)
def test_bad_input_names_the_argument(images, text_batch, bert, call, error, message):
    model = bert if "mismatched" in message else nn.Sequential(nn.Flatten(), nn.Linear(192, 3))
    with pytest.raises(error, match=message):
        call(model, images, text_batch)


def test_unknown_method_lists_every_valid_name(images):
    with pytest.raises(ValueError) as info:
        attribute(nn.Sequential(nn.Flatten(), nn.Linear(192, 3)), images, method="gradcam")
    assert all(name in str(info.value) for name in ATTRIBUTION_METHODS)


def test_model_without_logits_is_rejected():
    with pytest.raises(TypeError, match="logits"):
        attribute(NoLogits(12), torch.rand(2, 3, 2, 2))


def test_plain_module_maps_keep_their_layout():
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
    assert attribute(model, torch.rand(3, 5)).shape == (3, 5)


def test_softplus_smoothing_swaps_relus_and_restores_them():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    x = torch.randn(4, 6)
    plain = attribute(model, x, targets=0)
    with softplus_smoothing(model, 1.0) as count:
        assert count == 2 and isinstance(model[1], nn.Softplus)
    assert isinstance(model[1], nn.ReLU) and isinstance(model[3], nn.ReLU)
    smooth = attribute(model, x, targets=0, smoothing_beta=1.0)
    sharp = attribute(model, x, targets=0, smoothing_beta=1e4)
    assert not torch.allclose(plain, smooth)
    torch.testing.assert_close(sharp, plain, rtol=1e-3, atol=1e-4)


def test_smoothing_beta_must_be_positive(images):
    with pytest.raises(ValueError, match="smoothing_beta"):
        attribute(nn.Sequential(nn.Flatten(), nn.Linear(192, 3)), images, smoothing_beta=0.0)


def test_smoothing_a_model_without_relus_warns(images):
    with pytest.warns(UserWarning, match="no nn.ReLU"):
        attribute(nn.Sequential(nn.Flatten(), nn.Linear(192, 3)), images, smoothing_beta=2.0)


def test_a_list_of_single_images_names_the_fix():
    """Red-team finding: a list of CHW tensors failed with 'not enough values to unpack'."""
    from tiny_models import tiny_vit

    import hf_robattr

    model = tiny_vit()
    images = [torch.rand(3, 8, 8) for _ in range(2)]
    with pytest.raises(ValueError, match=r"\[batch, channels, height, width\].*torch.stack"):
        hf_robattr.evaluate_attribution_robustness(model, images, progress=False)
    with pytest.raises(ValueError, match=r"unsqueeze\(0\)"):
        hf_robattr.attribute(model, images[0])


@pytest.mark.parametrize(
    "baseline",
    [torch.zeros(3, 3, 8, 8), torch.zeros(5, 2), torch.full((3, 8, 8), float("nan"))],
    ids=["wrong-batch", "wrong-shape", "nan"],
)
def test_an_integrated_gradients_baseline_that_does_not_fit_is_named(baseline):
    """Red-team finding: an IG baseline with the wrong batch size raised a bare RuntimeError."""
    from tiny_models import tiny_vit

    import hf_robattr

    with pytest.raises(ValueError, match="`baseline`"):
        hf_robattr.attribute(tiny_vit(), torch.rand(2, 3, 8, 8), method="integrated_gradients", baseline=baseline)
