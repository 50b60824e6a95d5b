"""The study's measurements of a trained model against independent references: attention preconditions (scipy's
entropy, numpy's statistics, set-based recall), patch pooling (reshape and sum), and the robustness keys."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy import stats
from tiny_models import tiny_robattr_vit

from hf_robattr.attribution import prepare_inputs
from hf_robattr.attribution.attention import forward_with_attentions
from hf_robattr.study.measure import _pool_to_patches, preconditions, robustness, value_key
from hf_robattr.study.pool import EvalPool
from hf_robattr.study.protocol import ArmProtocol


@pytest.fixture(scope="module")
def model():
    return tiny_robattr_vit(num_hidden_layers=1)


def _pool(seed=0):
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.rand(5, 3, 8, 8, generator=generator) * 2 - 1
    masks = torch.zeros(5, 8, 8)
    masks[:, :4, :4] = 1.0  # the evidence covers the top-left 2x2 patches of the 4x4 grid
    masks[0] = 0.0  # an example without evidence is left out of the recall
    return EvalPool({"pixel_values": pixels}, torch.tensor([0, 1, 2, 0, 1]), masks, "test")


def test_preconditions_match_independent_references(model):
    pool = _pool()
    protocol = ArmProtocol(arm="t", model="vit", dataset="d", image_size=8, patch_size=2)
    values = preconditions(model, pool, protocol)
    with torch.no_grad():
        prepared = prepare_inputs(model, pool.inputs)
        _, attentions = forward_with_attentions(model, prepared, prepared.features)
    rows = attentions[-1][:, :, 0, :].double().numpy()  # [B, heads, 17]
    ratios = [stats.entropy(rows[b, h]) / math.log(17) for b in range(5) for h in range(2)]
    cvs = [np.std(rows[b, h]) / np.mean(rows[b, h]) for b in range(5) for h in range(2)]
    assert values["cls_entropy_ratio"] == pytest.approx(np.mean(ratios), rel=1e-5)
    assert values["cls_cv"] == pytest.approx(np.mean(cvs), rel=1e-4)
    evidence = {0, 1, 4, 5}  # patch indices of the top-left 2x2 patches on the 4x4 grid
    recalls = []
    for b in range(1, 5):
        scores = rows[b].mean(axis=0)[1:]
        top = set(np.argsort(-scores, kind="stable")[: len(evidence)].tolist())
        recalls.append(len(top & evidence) / len(evidence))
    assert values["evidence_recall"] == pytest.approx(np.mean(recalls))
    assert values["evidence_chance"] == pytest.approx(4 / 16)


def test_patch_pooling_sums_magnitudes_per_patch():
    maps = torch.randn(2, 8, 8)
    expected = maps.abs().reshape(2, 4, 2, 4, 2).sum(dim=(2, 4))
    assert torch.allclose(_pool_to_patches(maps, 2), expected, atol=1e-6)


def test_robustness_keys_cover_the_protocol(model):
    protocol = ArmProtocol(
        arm="t", model="vit", dataset="d", image_size=8, patch_size=2, epsilons=(0.05, 0.1), main_epsilon=0.1,
        attack_steps=1, gradient_methods=("saliency", "integrated_gradients"), attention_methods=("raw_attention",),
        sweep_methods=("saliency",), ig_steps=2, ig_examples=2, sensitivity_samples=1, robustness_batch_size=4,
        saturation_methods=("saliency",), saturation_budgets=((2, 1),), saturation_examples=3,
    )  # fmt: skip
    pool = _pool()
    values = robustness(model, pool, protocol, seed=0, saturation=True)
    main = value_key("topk", 0.1, "saliency", "topk_intersection")
    assert len(values[main]) == 5 and len(values[value_key("topk", 0.1, "integrated_gradients", "kendall_tau")]) == 2
    for key in (value_key("noise", 0.05, "saliency", "topk_intersection"),
                value_key("topk", 0.1, "saliency", "patch_topk_intersection"),
                value_key("topk", 0.1, "raw_attention", "max_sensitivity"),
                value_key("topk", 0.1, "saliency", "topk_intersection@2x1")):  # fmt: skip
        assert key in values, key
    assert value_key("topk", 0.05, "raw_attention", "topk_intersection") not in values  # not a sweep method
    assert value_key("topk", 0.1, "raw_attention", "patch_topk_intersection") not in values  # already patches
    # the same seed gives the same values; another seed other attack starts
    again = robustness(model, pool, replace(protocol), seed=0, saturation=True)
    assert np.allclose(again[main], values[main], equal_nan=True)
