"""The public entry point: values on known cases, ranges, determinism, model state, text, datasets, errors."""

import math

import datasets
import pytest
import torch
from result_helpers import flat_numbers
from tiny_models import NoLogits, tiny_vit
from torch import nn

import hf_robattr
from hf_robattr.robustness import MEASURES, SIMILARITY_MEASURES
from hf_robattr.robustness.similarity import SIMILARITY_RANGES, similarity_scores


FAST = dict(num_steps=2, num_samples=3, batch_size=4, progress=False)


def test_linear_model_saliency_is_constant(linear_model, images):
    result = hf_robattr.evaluate_attribution_robustness(linear_model, images, epsilon=0.05, **FAST)
    for name in ("topk_intersection", "kendall_tau", "spearman", "pearson", "cosine"):
        assert result[f"saliency/{name}"] == pytest.approx(1.0, abs=1e-6), name
    for name in (
        "center_of_mass_shift",
        "attack_sensitivity",
        "max_sensitivity",
        "avg_sensitivity",
        "local_lipschitz",
    ):
        assert result[f"saliency/{name}"] == pytest.approx(0.0, abs=1e-6), name
    assert result["num_samples"] == 6


def test_keys_and_documented_ranges(vit, images):
    result = hf_robattr.evaluate_attribution_robustness(
        vit, images, methods=("saliency", "rollout"), epsilon=0.1, **FAST
    )
    for method in ("saliency", "rollout"):
        for measure in MEASURES:
            value = result[f"{method}/{measure}"]
            assert isinstance(value, float) and math.isfinite(value), (method, measure)
            low, high = SIMILARITY_RANGES.get(measure, (0.0, math.inf))
            if measure == "center_of_mass_shift":
                high = math.hypot(7, 7)
            if measure == "prediction_change_rate":
                high = 1.0
            assert low - 1e-6 <= value <= high + 1e-6, (method, measure, value)


def test_same_seed_same_numbers_other_seed_other_numbers(vit, images):
    kwargs = dict(methods=("saliency", "smoothgrad"), attack="random", restarts=2, epsilon=0.1, **FAST)
    first = hf_robattr.evaluate_attribution_robustness(vit, images, seed=3, **kwargs)
    again = hf_robattr.evaluate_attribution_robustness(vit, images, seed=3, **kwargs)
    other = hf_robattr.evaluate_attribution_robustness(vit, images, seed=4, **kwargs)
    assert first == again
    assert first["saliency/max_sensitivity"] != other["saliency/max_sensitivity"]


def test_model_state_is_restored(vit, images):
    vit.train()
    vit.vit.embeddings.requires_grad_(False)
    flags = [p.requires_grad for p in vit.parameters()]
    hf_robattr.evaluate_attribution_robustness(vit, images[:2], methods=("saliency", "grad_attention"), **FAST)
    assert vit.training and all(module.training for module in vit.modules())
    assert [p.requires_grad for p in vit.parameters()] == flags
    assert vit.config._attn_implementation == "sdpa"


def test_text_with_padding(bert, text_batch):
    methods = ("saliency", "integrated_gradients", "raw_attention", "grad_attention")
    result = hf_robattr.evaluate_attribution_robustness(
        bert, text_batch, methods=methods, epsilon=0.05, method_kwargs={"integrated_gradients": {"n_steps": 4}}, **FAST
    )
    assert result["num_samples"] == 4
    assert "saliency/center_of_mass_shift" not in result
    assert all(math.isfinite(result[f"{m}/max_sensitivity"]) for m in methods)


@pytest.mark.parametrize("measures", [("center_of_mass_shift",), ("topk_intersection", "center_of_mass_shift")])
def test_text_refuses_an_image_only_measure_asked_for_by_name(bert, text_batch, measures):
    with pytest.raises(ValueError, match=r"`measures` asks for \['center_of_mass_shift'\], defined for images only"):
        hf_robattr.evaluate_attribution_robustness(bert, text_batch, methods=("saliency",), measures=measures, **FAST)


def test_padding_is_left_out_of_similarities():
    generator = torch.Generator().manual_seed(0)
    clean = torch.rand(3, 6, generator=generator)
    perturbed = clean + 0.3 * torch.rand(3, 6, generator=generator)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0]])
    names = list(SIMILARITY_MEASURES)[:-1]
    padded = similarity_scores(clean * mask, perturbed * mask, names, 0.5, mask)
    for row, length in ((1, 4), (2, 3)):
        alone = similarity_scores(clean[row : row + 1, :length], perturbed[row : row + 1, :length], names, 0.5)
        for name in names:
            torch.testing.assert_close(padded[name][row : row + 1], alone[name], msg=name)


def test_dataset_and_iterable_inputs_give_the_same_numbers(vit, images):
    dataset = datasets.Dataset.from_dict({"pixel_values": images.numpy(), "label": [0] * 6})
    kwargs = dict(attack="random", epsilon=0.1, **FAST)
    from_tensor = hf_robattr.evaluate_attribution_robustness(vit, images, **kwargs)
    from_dataset = hf_robattr.evaluate_attribution_robustness(vit, dataset, **kwargs)
    from_batches = hf_robattr.evaluate_attribution_robustness(vit, [images[:4], images[4:]], **kwargs)
    tensor, dataset, batches = (flat_numbers(r) for r in (from_tensor, from_dataset, from_batches))
    assert tensor == pytest.approx(dataset) and tensor == pytest.approx(batches)


def test_a_streaming_dataset_gives_the_numbers_of_the_tensor(vit, images):
    streaming = datasets.Dataset.from_dict({"pixel_values": images.numpy(), "label": [0] * 6}).to_iterable_dataset()
    kwargs = dict(attack="random", epsilon=0.1, **{**FAST, "batch_size": 4})
    from_tensor = hf_robattr.evaluate_attribution_robustness(vit, images, **kwargs)
    from_stream = hf_robattr.evaluate_attribution_robustness(vit, streaming, **kwargs)
    assert flat_numbers(from_stream) == pytest.approx(flat_numbers(from_tensor))
    assert from_stream["num_samples"] == 6
    auto = hf_robattr.evaluate_attribution_robustness(vit, streaming, **{**kwargs, "epsilon": "auto"})
    assert auto["epsilon_calibration"]["examples"] == 6  # read across its batches of 4 and 2


def test_unpadded_text_dataset_is_padded_per_batch(bert):
    rows = [[2, 5, 7, 9, 3], [2, 8, 3], [2, 6, 11, 3]]
    padded = {
        "input_ids": torch.tensor([row + [0] * (5 - len(row)) for row in rows]),
        "attention_mask": torch.tensor([[1] * len(row) + [0] * (5 - len(row)) for row in rows]),
    }
    kwargs = dict(attack="random", epsilon=0.05, **{**FAST, "batch_size": 3})
    from_dataset = hf_robattr.evaluate_attribution_robustness(
        bert, datasets.Dataset.from_dict({"input_ids": rows, "text": ["a", "b", "c"]}), **kwargs
    )
    from_padded = hf_robattr.evaluate_attribution_robustness(bert, padded, **kwargs)
    assert flat_numbers(from_dataset) == pytest.approx(flat_numbers(from_padded))


def test_per_sample_values_and_targets(vit, images):
    result = hf_robattr.evaluate_attribution_robustness(
        vit, images, targets=[0, 1, 2, 0, 1, 2], measures=("max_sensitivity",), return_per_sample=True, **FAST
    )
    assert set(result) == {
        "saliency/max_sensitivity",
        "saliency/max_sensitivity_std",
        "num_samples",
        "num_skipped",
        "saliency/num_skipped",
        "per_sample",
        "baselines",
        "saturated",
    }
    assert len(result["per_sample"]["saliency/max_sensitivity"]) == 6
    assert set(result["baselines"]) == {"saliency/max_sensitivity"}
    assert len(result["per_sample"]["saliency/max_sensitivity@chance"]) == 6


BAD = [
    pytest.param({"epsilon": 0.0}, "`epsilon`", id="zero-epsilon"),
    pytest.param({"epsilon": -1.0}, "`epsilon`", id="negative-epsilon"),
    pytest.param({"methods": ("saliency", "lime")}, "integrated_gradients", id="unknown-method"),
    pytest.param({"attack": "fgsm"}, "mass_center", id="unknown-attack"),
    pytest.param({"measures": ("kendall",)}, "kendall_tau", id="unknown-measure"),
    pytest.param({"targets": [0, 1]}, "`targets`", id="short-targets"),
    pytest.param({"num_samples": 0}, "`num_samples`", id="no-samples"),
    pytest.param({"norm": "l1"}, "`norm`", id="bad-norm"),
    pytest.param({"method_kwargs": {"smoothgrad": {"n_samples": 2}}}, "`method_kwargs`", id="stray-method-kwargs"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD)
def test_bad_arguments_are_named(linear_model, images, kwargs, message):
    with pytest.raises(ValueError, match=message):
        hf_robattr.evaluate_attribution_robustness(linear_model, images, **{**FAST, **kwargs})


def test_nan_inputs_are_named(linear_model, images):
    images[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"`inputs`.*NaN"):
        hf_robattr.evaluate_attribution_robustness(linear_model, images, **FAST)


def test_mismatched_batch_sizes_are_named(bert, text_batch):
    text_batch["attention_mask"] = text_batch["attention_mask"][:3]
    with pytest.raises(ValueError, match="`inputs` has mismatched batch sizes"):
        hf_robattr.evaluate_attribution_robustness(bert, text_batch, **FAST)


def test_model_without_logits_is_named(images):
    with pytest.raises(TypeError, match="`model` must return classification logits"):
        hf_robattr.evaluate_attribution_robustness(NoLogits(64), images, **FAST)


def test_similarity_measure_names_are_all_scored(vit, images):
    result = hf_robattr.evaluate_attribution_robustness(vit, images[:2], measures=tuple(SIMILARITY_MEASURES), **FAST)
    assert {f"saliency/{name}" for name in SIMILARITY_MEASURES} <= set(result)


@pytest.mark.parametrize(
    "attention_type", [pytest.param("softmax", id="softmax"), pytest.param("kernel", id="kernel")]
)
def test_robattr_models_with_attention_methods(attention_type, images):
    models = pytest.importorskip("hf_robattr.models")
    model = tiny_vit(
        models.RobAttrViTConfig,
        models.RobAttrViTForImageClassification,
        num_channels=1,
        attention_type=attention_type,
    )
    result = hf_robattr.evaluate_attribution_robustness(
        model, images[:3], methods=("raw_attention", "grad_attention"), epsilon=0.1, **FAST
    )
    for method in ("raw_attention", "grad_attention"):
        assert 0.0 <= result[f"{method}/topk_intersection"] <= 1.0
        assert math.isfinite(result[f"{method}/max_sensitivity"])


def test_smoothing_beta_changes_relu_scores_and_is_undone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 3))
    x = torch.rand(4, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    kwargs = dict(epsilon=0.1, measures=("max_sensitivity",), **FAST)
    plain = hf_robattr.evaluate_attribution_robustness(model, x, **kwargs)
    smooth = hf_robattr.evaluate_attribution_robustness(model, x, smoothing_beta=2.0, **kwargs)
    assert plain["saliency/max_sensitivity"] != smooth["saliency/max_sensitivity"]
    assert isinstance(model[2], nn.ReLU)


def test_explicit_device_gives_the_same_numbers(linear_model, images):
    kwargs = dict(epsilon=0.05, attack="random", **FAST)
    default = hf_robattr.evaluate_attribution_robustness(linear_model, images, **kwargs)
    assert hf_robattr.evaluate_attribution_robustness(linear_model, images, device="cpu", **kwargs) == default


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(vit, images):
    kwargs = dict(methods=("saliency", "rollout"), epsilon=0.1, attack="random", **FAST)
    on_cpu = hf_robattr.evaluate_attribution_robustness(vit, images, **kwargs)
    on_cuda = hf_robattr.evaluate_attribution_robustness(vit, images, device="cuda", **kwargs)
    assert next(vit.parameters()).device.type == "cpu"
    assert flat_numbers(on_cuda) == pytest.approx(flat_numbers(on_cpu), rel=1e-3, abs=1e-5)


def test_patch_pooling_compares_maps_per_patch(vit, images):
    from hf_robattr.robustness import topk_intersection
    from hf_robattr.robustness.similarity import kendall_tau

    config = hf_robattr.RobustnessConfig(
        methods=("saliency", "rollout"),
        map_pooling="patch",
        epsilon=0.1,
        k=4,
        measures=("topk_intersection", "kendall_tau"),
        **{k: v for k, v in FAST.items() if k != "progress"},
    )
    result = hf_robattr.evaluate_attribution_robustness(vit, images, config, return_per_sample=True, progress=False)
    with hf_robattr.RobustnessScorer(vit, config) as scorer:
        maps = scorer.score_batch(images, keep_maps=True).maps["saliency"]

    # Naive reference: sum |a| over each 2x2 patch of the 8x8 map, then the measures on the 4x4 grids.
    def pool(m):
        return m.abs().reshape(6, 4, 2, 4, 2).sum(dim=(2, 4))

    clean, attacked = pool(maps.clean_maps), pool(maps.attacked_maps)
    perturbed = maps.perturbed
    expected_topk = torch.where(perturbed, topk_intersection(clean, attacked, k=4), torch.nan)
    expected_tau = torch.where(perturbed, kendall_tau(clean, attacked), torch.nan)
    torch.testing.assert_close(
        torch.tensor(result["per_sample"]["saliency/topk_intersection"], dtype=torch.float64),
        expected_topk.double(),
        equal_nan=True,
    )
    torch.testing.assert_close(
        torch.tensor(result["per_sample"]["saliency/kendall_tau"], dtype=torch.float64),
        expected_tau.double(),
        equal_nan=True,
    )
    # Attention maps are already on the patch grid: pooling leaves them alone.
    unpooled = hf_robattr.evaluate_attribution_robustness(
        vit, images, config.replace(map_pooling="none"), progress=False
    )
    assert result["rollout/kendall_tau"] == pytest.approx(unpooled["rollout/kendall_tau"])
    with pytest.raises(ValueError, match="patch_size"):
        hf_robattr.evaluate_attribution_robustness(
            nn.Sequential(nn.Flatten(), nn.Linear(64, 3)), images, config.replace(methods="saliency"), progress=False
        )
