"""Never a confident number for a meaningless case (issue 11, section 3): what cannot be scored is left out and
counted, bad arguments are refused up front with their name, and nothing meant for JSON holds a NaN."""

import json
import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import hf_robattr
from hf_robattr.attribution import SmoothGrad
from hf_robattr.results_io import json_safe
from hf_robattr.robustness import hessian_trace, input_curvature, sensitivity_family


FAST = dict(num_steps=2, num_samples=2, batch_size=4, progress=False)


class CountingModel(nn.Module):
    """A linear image model that records the range of every input it sees and counts its forward passes."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(64, 3)
        self.calls, self.low, self.high = 0, math.inf, -math.inf

    def forward(self, x):
        self.calls += 1
        self.low, self.high = min(self.low, x.min().item()), max(self.high, x.max().item())
        return self.linear(torch.tanh(3 * x.flatten(1)))


class GatedModel(nn.Module):
    """Logits ``relu(sum(x) - 10)``: an image whose pixels sum to less than 10 has an all-zero saliency map."""

    def forward(self, x):
        s = torch.relu(x.flatten(1).sum(dim=1, keepdim=True) - 10)
        return torch.cat([s, -s, 0 * s], dim=1)


def _run(model, inputs, **kwargs):
    return hf_robattr.evaluate_attribution_robustness(model, inputs, **{**FAST, **kwargs})


# ---- left out and counted ------------------------------------------------------------------------------------------


def test_constant_image_is_left_out_counted_and_warned_once(images):
    images = images.clone()
    images[2] = 0.5  # zero-width range under the default per-image range
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _run(CountingModel(), images, return_per_sample=True)
    assert len([w for w in caught if "left out" in str(w.message)]) == 1
    assert result["num_skipped"] == 1 and result["saliency/num_skipped"] == 1 and result["num_samples"] == 6
    for key, values in result["per_sample"].items():
        assert math.isnan(values[2]), key
        assert not math.isnan(values[0]) or "change" in key, key
    # The mean is over the five examples that could be perturbed.
    spearman = [v for v in result["per_sample"]["saliency/spearman"] if not math.isnan(v)]
    assert result["saliency/spearman"] == pytest.approx(sum(spearman) / len(spearman))


def test_constant_image_is_scored_when_a_range_gives_it_room(images):
    images = images.clone()
    images[2] = 0.5
    result = _run(CountingModel(), images, input_range=(0.0, 1.0))
    assert result["num_skipped"] == 0


def test_all_zero_clean_map_is_left_out_of_that_method():
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    x[1] *= 0.01  # its pixels sum far below 10: the gate is closed, every gradient is 0
    x[[0, 2, 3]] += 0.5
    result = _run(GatedModel(), x, methods=("saliency", "input_x_gradient"), return_per_sample=True)
    assert result["saliency/num_skipped"] == 1 and result["input_x_gradient/num_skipped"] == 1
    assert result["num_skipped"] == 1
    assert math.isnan(result["per_sample"]["saliency/cosine"][1])
    assert result["saliency/topk_intersection"] == pytest.approx(1.0)  # the gate is linear in x when open


@pytest.mark.parametrize(
    ("make", "words"),
    [
        pytest.param(lambda x: x * 0 + 0.3, ["no example left", "cannot be perturbed"], id="all-constant"),
        pytest.param(lambda x: x * 0.01, ["no example left", "all-zero clean maps"], id="all-zero-maps"),
    ],
)
def test_nothing_left_raises(make, words):
    x = make(torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError) as caught:
        _run(GatedModel() if "zero" in words[1] else CountingModel(), x)
    for word in words:
        assert word in str(caught.value)


def test_padding_only_text_row_is_skipped(bert, text_batch):
    text_batch = {key: value.clone() for key, value in text_batch.items()}
    text_batch["attention_mask"][2] = 0
    text_batch["input_ids"][2] = 0
    with pytest.warns(UserWarning, match="text of padding only"):
        result = _run(bert, text_batch, methods=("saliency", "raw_attention"), return_per_sample=True)
    assert result["num_skipped"] == 1
    assert all(math.isnan(values[2]) for values in result["per_sample"].values())
    assert math.isfinite(result["saliency/kendall_tau"]) and math.isfinite(result["raw_attention/max_sensitivity"])


def test_integer_k_longer_than_a_text_is_cut_to_its_length(bert, text_batch):
    result = _run(bert, text_batch, k=50, measures=("topk_intersection",), attack="targeted")
    # Every real token is in the top 50 of a text of at most 7 tokens, before and after the attack.
    assert result["saliency/topk_intersection"] == pytest.approx(1.0)


def test_integer_k_larger_than_an_image_map_names_the_method(vit, images):
    # 64 pixels fit k = 20, the 16 patches of the attention map do not: the error says which method ran out.
    with pytest.raises(ValueError, match=r"method 'raw_attention': `k` must be between 1 and .* \(16\); got 20"):
        _run(vit, images, k=20, methods=("saliency", "raw_attention"), measures=("topk_intersection",))


def test_sensitivity_draws_stay_in_the_input_range():
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    x[:, :, 0, 0], x[:, :, 0, 1] = 0.0, 1.0
    model = CountingModel()
    _run(model, x, epsilon=0.5, input_range=(0.0, 1.0), measures=("max_sensitivity",), num_samples=8)
    assert model.low >= 0.0 and model.high <= 1.0
    model = CountingModel()
    sensitivity_family(model, x, epsilon=0.5, input_range=(0.0, 1.0), num_samples=8)
    assert model.low >= 0.0 and model.high <= 1.0


def test_input_range_that_excludes_the_inputs_is_refused(images):
    with pytest.raises(ValueError, match=r"`input_range` \(5.0, 6.0\) excludes the inputs.*\[0"):
        _run(CountingModel(), images, input_range=(5.0, 6.0))


# ---- every argument checked up front, by name ------------------------------------------------------------------------

BAD_CALLS = [
    pytest.param({"targets": "abc"}, TypeError, ["`targets`", "class indices"], id="string-targets"),
    pytest.param({"targets": [0.5, 1.0]}, TypeError, ["`targets`", "integers"], id="float-targets"),
    pytest.param({"targets": torch.rand(6)}, TypeError, ["`targets`", "float"], id="float-tensor-targets"),
    pytest.param({"targets": [0, -1, 0, 0, 0, 0]}, ValueError, ["`targets`", ">= 0"], id="negative-targets"),
    pytest.param({"targets": [0] * 7}, ValueError, ["`targets` has 7", "6 examples"], id="long-targets"),
    pytest.param({"targets": [0] * 5}, ValueError, ["`targets` has 5", "6 examples"], id="short-targets"),
    pytest.param({"target_region": torch.ones(8, 8)}, ValueError, ["`target_region`", "targeted"], id="region-topk"),
    pytest.param({"attack": "targeted", "target_region": [1]}, TypeError, ["`target_region`"], id="region-list"),
    pytest.param({"num_steps": 2.0}, TypeError, ["`num_steps`", "integer"], id="float-steps"),
    pytest.param({"restarts": 1.5}, TypeError, ["`restarts`"], id="float-restarts"),
    pytest.param({"num_samples": 0}, ValueError, ["`num_samples`", ">= 1"], id="no-samples"),
    pytest.param({"batch_size": 0}, ValueError, ["`batch_size`", ">= 1"], id="zero-batch"),
    pytest.param({"epsilon": True}, TypeError, ["`epsilon`", "bool"], id="bool-epsilon"),
    pytest.param({"epsilon": float("nan")}, ValueError, ["`epsilon`", "nan"], id="nan-epsilon"),
    pytest.param({"device": "gpu0"}, ValueError, ["`device`", "gpu0"], id="device"),
    pytest.param({"progress": "yes"}, TypeError, ["`progress`"], id="progress"),
    pytest.param({"return_per_sample": 1}, TypeError, ["`return_per_sample`"], id="per-sample-flag"),
    pytest.param({"epsilom": 0.1}, TypeError, ["epsilom", "'epsilon'"], id="unknown-setting"),
    pytest.param(
        {"method_kwargs": {"saliency": {"abs": True}}, "methods": "smoothgrad"},
        ValueError,
        ["`method_kwargs`", "saliency"],
        id="stray-method-kwargs",
    ),
]


@pytest.mark.parametrize(("kwargs", "error", "words"), BAD_CALLS)
def test_bad_arguments_fail_before_any_scoring(images, kwargs, error, words):
    model = CountingModel()
    with pytest.raises(error) as caught:
        _run(model, images, **kwargs)
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))
    assert model.calls == 0, "the error came after scoring had started"


@pytest.mark.parametrize(
    ("model", "inputs", "error", "words"),
    [
        pytest.param(None, "images", TypeError, ["`model`", "NoneType"], id="no-model"),
        pytest.param("model", None, TypeError, ["`inputs`"], id="no-inputs"),
        pytest.param("model", {"image": "images"}, ValueError, ["'image'", "pixel_values"], id="image-key"),
        pytest.param("model", 3.0, TypeError, ["`inputs`", "float"], id="number"),
        pytest.param("model", torch.zeros(0, 1, 8, 8), ValueError, ["no examples"], id="empty"),
    ],
)
def test_bad_model_or_inputs_are_named(images, model, inputs, error, words):
    model = CountingModel() if model == "model" else model
    inputs = images if isinstance(inputs, str) else inputs
    if isinstance(inputs, dict):
        inputs = {key: images for key in inputs}
    with pytest.raises(error) as caught:
        _run(model, inputs)
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))


def test_both_input_ids_and_embeddings_are_refused(bert, text_batch):
    embeds = bert.get_input_embeddings()(text_batch["input_ids"]).detach()
    with pytest.raises(ValueError, match="both `input_ids` and `inputs_embeds`"):
        _run(bert, {**text_batch, "inputs_embeds": embeds})


def test_numpy_scalars_and_a_single_measure_name(images):
    result = _run(CountingModel(), images, epsilon=np.float32(0.05), k=np.int64(5), measures="spearman")
    assert {key for key in result if key.startswith("saliency/")} == {
        "saliency/spearman",
        "saliency/spearman_std",
        "saliency/num_skipped",
    }


def test_targets_longer_than_an_iterable_of_batches(images):
    with pytest.raises(ValueError, match="`targets` has 8 entries but `inputs` has 6"):
        _run(CountingModel(), [images[:3], images[3:]], targets=[0] * 8)
    with pytest.raises(ValueError, match="`targets` has 4 entries, fewer than the examples"):
        _run(CountingModel(), [images[:3], images[3:]], targets=[0] * 4)


# ---- options of the building blocks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        pytest.param({"noise_level": float("nan")}, ValueError, ["`noise_level`", "nan"], id="nan-noise-level"),
        pytest.param({"noise_level": -0.1}, ValueError, ["`noise_level`", ">= 0"], id="negative-noise-level"),
        pytest.param({"stdev": float("inf")}, ValueError, ["`stdev`", "inf"], id="inf-stdev"),
        pytest.param({"n_samples": 0}, ValueError, ["`n_samples`", ">= 1"], id="no-samples"),
        pytest.param({"n_samples": 2.0}, TypeError, ["`n_samples`", "integer"], id="float-samples"),
    ],
)
def test_smoothgrad_options(kwargs, error, words):
    with pytest.raises(error) as caught:
        SmoothGrad(**kwargs)
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "error", "word"),
    [
        pytest.param({"epsilon": float("nan")}, ValueError, "`epsilon`", id="nan-epsilon"),
        pytest.param({"epsilon": 0.0}, ValueError, "`epsilon`", id="zero-epsilon"),
        pytest.param({"epsilon": -0.1}, ValueError, "`epsilon`", id="negative-epsilon"),
        pytest.param({"num_samples": 0}, ValueError, "`num_samples`", id="no-samples"),
        pytest.param({"batch_size": 0}, ValueError, "`batch_size`", id="zero-batch"),
        pytest.param({"methods": ("saliency", "smoothgrad")}, ValueError, "one method", id="two-methods"),
        pytest.param({"measures": ("spearman",)}, ValueError, "no sensitivity measure", id="no-family-measure"),
    ],
)
def test_sensitivity_family_options(images, kwargs, error, word):
    with pytest.raises(error, match=word):
        sensitivity_family(CountingModel(), images, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "word"),
    [
        pytest.param({"rel_stderr": -0.1}, ValueError, "`rel_stderr`", id="negative-rel-stderr"),
        pytest.param({"rel_stderr": float("nan")}, ValueError, "`rel_stderr`", id="nan-rel-stderr"),
        pytest.param({"num_probes": 1}, ValueError, "`num_probes`", id="one-probe"),
        pytest.param({"num_probes": 4.0}, TypeError, "`num_probes`", id="float-probes"),
        pytest.param({"num_probes": 4, "max_probes": 2}, ValueError, "`max_probes`", id="max-below-num"),
        pytest.param({"seed": -1}, ValueError, "`seed`", id="negative-seed"),
    ],
)
@pytest.mark.parametrize("diagnostic", [hessian_trace, input_curvature], ids=["trace", "input"])
def test_curvature_probe_options(diagnostic, kwargs, error, word):
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    batch = {"pixel_values": torch.rand(2, 1, 2, 2), "labels": torch.tensor([0, 1])}
    with pytest.raises(error, match=word):
        diagnostic(model, batch, **kwargs)


def test_input_curvature_refuses_padding_only_rows(bert, text_batch):
    batch = {key: value.clone() for key, value in text_batch.items()}
    batch["attention_mask"][1] = 0
    batch["labels"] = torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match=r"rows \[1\] are padding only"):
        input_curvature(bert, batch, num_probes=2, rel_stderr=None)


# ---- JSON --------------------------------------------------------------------------------------------------------


def test_json_safe_removes_nan_and_infinities():
    result = {
        "a/kendall_tau": math.nan,
        "b": math.inf,
        "n": np.float32(2.0),
        "t": torch.tensor(1.5),
        "l": (1, math.nan),
    }
    text = json.dumps(json_safe(result), allow_nan=False)
    assert json.loads(text) == {"a/kendall_tau": None, "b": None, "n": 2.0, "t": 1.5, "l": [1, None]}


class SumModel(nn.Module):
    """Logits ``sum(x) * [1, -1, 0]``: the saliency map is constant, so rank correlations are undefined (NaN)."""

    def forward(self, x):
        return x.flatten(1).sum(dim=1, keepdim=True) * torch.tensor([1.0, -1.0, 0.0])


def test_a_score_with_nan_becomes_valid_json(images):
    result = _run(SumModel(), images, attack="random")
    assert math.isnan(result["saliency/spearman"])  # as scipy.stats.spearmanr of a constant map
    assert json.loads(json.dumps(json_safe(result), allow_nan=False))["saliency/spearman"] is None
