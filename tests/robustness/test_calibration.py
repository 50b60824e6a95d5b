"""``epsilon="auto"``: the radius follows the documented rule (checked on a model where it is known in closed form),
is reproducible for a seed, is recorded in the result, and refuses inputs it cannot calibrate on."""

import math

import pytest
import torch
from torch import nn
from transformers import HfArgumentParser

import hf_robattr
from hf_robattr.robustness import RobustnessArguments, RobustnessConfig, RobustnessScorer
from hf_robattr.robustness.calibration import CALIBRATION_DRAWS, NOISE_TARGET, calibrate_epsilon


class Quadratic(nn.Module):
    """Logit 0 = ``sum_i a_i x_i + b x_i^2`` + 100 (the label never changes), logit 1 = 0: its saliency is
    ``a + 2 b x``, so noise ``d`` moves it by exactly ``2 b ||d||``."""

    def __init__(self, features: int, b: float):
        super().__init__()
        self.a = nn.Parameter(torch.randn(features, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
        self.b = b

    def forward(self, x):
        flat = x.flatten(1)
        first = flat @ self.a + self.b * (flat**2).sum(dim=1) + 100
        return torch.stack([first, torch.zeros_like(first)], dim=1)


def _images(count=16, side=8):
    return torch.zeros(count, 1, side, side, dtype=torch.float64)


def test_the_radius_is_where_noise_moves_the_map_by_the_target():
    features, b = 64, 0.5
    model = Quadratic(features, b)
    config = RobustnessConfig(input_range=(-10.0, 10.0))
    calibration = calibrate_epsilon(model, _images(), config)
    # At x = 0 the map is a; uniform noise on [-r, r]^n has E||d|| ~ r sqrt(n / 3) (within a percent at n = 64).
    expected = NOISE_TARGET * model.a.norm().item() / (2 * b * math.sqrt(features / 3))
    assert calibration.value == pytest.approx(expected, rel=0.05)
    assert calibration.moved["saliency"] == pytest.approx(NOISE_TARGET, rel=0.01)
    assert calibration.draws == CALIBRATION_DRAWS and "bisection" in calibration.rule


def test_smoothgrad_noise_is_common_to_the_clean_and_perturbed_maps():
    """SmoothGrad of the quadratic model is its saliency at the noisy points, a + 2b (x + mean noise): with the same
    noise in the clean and the perturbed maps only the input moves, so its radius is saliency's. With fresh noise per
    map its own sampling noise (here about 10% of the map) already exceeds the target at any radius and the radius
    fell to the bottom of the search (2^-20 of the range), and it changed with the global torch seed."""
    model = Quadratic(64, 0.5)
    images = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    config = RobustnessConfig(
        methods=("saliency", "smoothgrad"), method_kwargs={"smoothgrad": {"n_samples": 4}}, input_range=(-10.0, 10.0)
    )
    radii = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)
        radii.append(calibrate_epsilon(model, images, config).per_method)
    assert radii[0] == radii[1]
    assert radii[0]["smoothgrad"] == pytest.approx(radii[0]["saliency"], rel=0.05)


def test_methods_outside_the_config_are_calibrated_with_their_options(vit, images):
    config = RobustnessConfig(methods=("saliency",))
    calibration = calibrate_epsilon(vit, images, config, methods=("smoothgrad",))
    assert set(calibration.per_method) == {"smoothgrad"}
    both = config.replace(methods=("saliency", "smoothgrad"))
    assert calibrate_epsilon(vit, images, both, methods=("smoothgrad",)).per_method == calibration.per_method


def test_the_same_seed_gives_the_same_radius(vit, images):
    config = RobustnessConfig(seed=4)
    first, again = (calibrate_epsilon(vit, images, config).value for _ in range(2))
    assert first == again
    assert calibrate_epsilon(vit, images, config.replace(seed=5)).value == pytest.approx(first, rel=0.5)


def test_auto_is_resolved_and_recorded_in_the_result(vit, images):
    options = dict(methods=("saliency",), num_steps=2, num_samples=2, progress=False)
    result = hf_robattr.evaluate_attribution_robustness(vit, images, epsilon="auto", **options)
    chosen = result["epsilon_calibration"]["value"]
    fixed = hf_robattr.evaluate_attribution_robustness(vit, images, epsilon=chosen, **options)
    assert result["saliency/topk_intersection"] == fixed["saliency/topk_intersection"]
    assert "epsilon_calibration" not in fixed


class TwoQuadratics(Quadratic):
    """Class 0 as in :class:`Quadratic` (always predicted), class 1 ``sum_i c_i x_i + e x_i^2``: explaining class 1
    moves its map by exactly ``2 e ||d||``."""

    def __init__(self, features: int, b: float, e: float):
        super().__init__(features, b)
        self.c = nn.Parameter(torch.randn(features, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
        self.e = e

    def forward(self, x):
        flat = x.flatten(1)
        second = flat @ self.c + self.e * (flat**2).sum(dim=1)
        return torch.stack([super().forward(x)[:, 0], second], dim=1)


def test_the_radius_is_that_of_the_classes_explained():
    features, b, e = 64, 0.5, 4.0
    model = TwoQuadratics(features, b, e)
    config = RobustnessConfig(input_range=(-10.0, 10.0))
    predicted = calibrate_epsilon(model, _images(), config).value
    assert predicted == pytest.approx(
        NOISE_TARGET * model.a.norm().item() / (2 * b * math.sqrt(features / 3)), rel=0.05
    )
    for targets in (torch.ones(16, dtype=torch.long), torch.tensor(1)):
        explained = calibrate_epsilon(model, _images(), config, targets=targets).value
        assert explained == pytest.approx(
            NOISE_TARGET * model.c.norm().item() / (2 * e * math.sqrt(features / 3)), rel=0.05
        )
    with pytest.raises(ValueError, match="`targets` has 3 entries"):
        calibrate_epsilon(model, [_images(2), _images(2)], config, targets=torch.ones(3, dtype=torch.long))


def test_examples_that_scoring_leaves_out_are_left_out_of_the_calibration(vit, images):
    config = RobustnessConfig(seed=2)
    plain = calibrate_epsilon(vit, images, config)
    constant = torch.full((2, *images.shape[1:]), 0.5)
    padded = calibrate_epsilon(vit, torch.cat([images, constant]), config)
    assert (padded.value, padded.examples) == (plain.value, plain.examples) == (plain.value, len(images))
    with pytest.raises(ValueError, match="none of the first 2 examples can be perturbed"):
        calibrate_epsilon(vit, constant, config)


def test_a_list_of_small_batches_is_read_across_batches(vit, images):
    config = RobustnessConfig(seed=2)
    whole = calibrate_epsilon(vit, images, config)
    split = calibrate_epsilon(vit, [images[:1], images[1:4], images[4:]], config)
    assert (split.value, split.examples) == (whole.value, whole.examples)


def test_unpadded_token_batches_of_different_lengths_calibrate_like_one_padded_batch(bert, text_batch):
    rows = [ids[mask.bool()].tolist() for ids, mask in zip(text_batch["input_ids"], text_batch["attention_mask"])]
    batches = [{"input_ids": rows[:1]}, {"input_ids": rows[1:]}]  # padded to 7, then to 7 again, per batch
    batches[0]["input_ids"][0] = batches[0]["input_ids"][0][:4]  # a first batch shorter than the second
    whole = {"input_ids": [batches[0]["input_ids"][0], *rows[1:]]}
    config = RobustnessConfig(seed=1)
    split, together = calibrate_epsilon(bert, batches, config), calibrate_epsilon(bert, whole, config)
    assert split.examples == together.examples == 4
    assert split.value == pytest.approx(together.value, rel=0.01)  # padding changes float sums, not the rule


def test_maps_that_noise_cannot_move_are_refused(linear_model, images):
    with pytest.raises(ValueError, match=r"epsilon='auto'.*fixed `epsilon`"):
        calibrate_epsilon(linear_model, images, RobustnessConfig())


def test_a_one_shot_iterator_is_refused(vit, images):
    with pytest.raises(ValueError, match="one-shot iterator"):
        hf_robattr.evaluate_attribution_robustness(vit, iter([images]), epsilon="auto", progress=False)


def test_the_scorer_needs_a_resolved_radius(vit):
    with pytest.raises(ValueError, match="numeric `epsilon`"):
        RobustnessScorer(vit, RobustnessConfig(epsilon="auto"))


@pytest.mark.parametrize(
    ("given", "expected"), [("auto", "auto"), ("AUTO", "auto"), (0.1, 0.1)], ids=["auto", "upper", "number"]
)
def test_config_accepts_auto_or_a_number(given, expected):
    assert RobustnessConfig(epsilon=given).epsilon == expected
    assert RobustnessConfig.from_json(RobustnessConfig(epsilon=given).to_json()).epsilon == expected


@pytest.mark.parametrize("bad", ["big", "", -1.0, 0.0, math.nan], ids=["word", "empty", "negative", "zero", "nan"])
def test_config_refuses_other_radii(bad):
    with pytest.raises((ValueError, TypeError), match="epsilon"):
        RobustnessConfig(epsilon=bad)


def test_the_default_radius_depends_on_the_modality(vit, bert):
    assert RobustnessConfig().epsilon is None
    assert RobustnessConfig().resolved("image").epsilon == pytest.approx(8 / 255)
    assert RobustnessConfig().resolved("text").epsilon == 0.01
    assert RobustnessConfig(epsilon=0.2).resolved("text").epsilon == 0.2
    assert RobustnessScorer(vit, RobustnessConfig()).config.epsilon == pytest.approx(8 / 255)
    assert RobustnessScorer(bert, RobustnessConfig()).config.epsilon == 0.01
    with pytest.raises(ValueError, match="modality"):
        RobustnessConfig().resolved("audio")


@pytest.mark.parametrize(("flag", "expected"), [("auto", "auto"), ("0.25", 0.25)])
def test_the_command_line_flag_takes_auto(flag, expected):
    (flags,) = HfArgumentParser(RobustnessArguments).parse_args_into_dataclasses(["--robustness_epsilon", flag])
    assert flags.to_config().epsilon == expected


def test_the_command_line_flag_names_a_bad_radius():
    with pytest.raises(ValueError, match="robustness_epsilon"):
        HfArgumentParser(RobustnessArguments).parse_args_into_dataclasses(["--robustness_epsilon", "wide"])
