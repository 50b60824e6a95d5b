"""Similarity measures against scipy and hand-computed cases; documented ranges."""

import numpy as np
import pytest
import scipy.stats
import torch

from hf_robattr.robustness.similarity import (
    SIMILARITY_MEASURES,
    SIMILARITY_RANGES,
    average_ranks,
    center_of_mass_shift,
    cosine,
    kendall_tau,
    pearson,
    spearman,
    topk_intersection,
)


def _pairs(kind, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(5, 60, generator=generator, dtype=torch.float64)
    y = x + 0.3 * torch.rand(5, 60, generator=generator, dtype=torch.float64)
    if kind == "ties":
        x, y = (x * 4).round(), (y * 4).round()
    if kind == "anti":
        y = -x
    return x, y


SCIPY = (
    [
        pytest.param(kendall_tau, lambda a, b: scipy.stats.kendalltau(a, b).statistic, kind, id=f"kendall-{kind}")
        for kind in ("continuous", "ties", "anti")
    ]
    + [
        pytest.param(spearman, lambda a, b: scipy.stats.spearmanr(a, b).statistic, kind, id=f"spearman-{kind}")
        for kind in ("continuous", "ties", "anti")
    ]
    + [
        pytest.param(pearson, lambda a, b: scipy.stats.pearsonr(a, b).statistic, kind, id=f"pearson-{kind}")
        for kind in ("continuous", "ties")
    ]
)


@pytest.mark.parametrize(("ours", "reference", "kind"), SCIPY)
def test_rank_statistics_match_scipy(ours, reference, kind):
    x, y = _pairs(kind)
    expected = torch.tensor([reference(a.numpy(), b.numpy()) for a, b in zip(x, y)])
    torch.testing.assert_close(ours(x, y), expected, rtol=1e-10, atol=1e-10)


def test_average_ranks_match_scipy_rankdata():
    x, _ = _pairs("ties")
    expected = torch.tensor(np.stack([scipy.stats.rankdata(row) for row in x.numpy()]))
    torch.testing.assert_close(average_ranks(x), expected)


def test_kendall_chunking_is_invisible(monkeypatch):
    x, y = _pairs("ties", seed=3)
    whole = kendall_tau(x, y)
    monkeypatch.setattr("hf_robattr.robustness.similarity._PAIR_BUDGET", 7)
    torch.testing.assert_close(kendall_tau(x, y), whole)


@pytest.mark.parametrize("limit", ["PAIRWISE_KENDALL_MAX_FEATURES", "PAIRWISE_KENDALL_MAX_FEATURES_CPU"])
def test_large_maps_use_the_same_statistic(monkeypatch, limit):
    x, y = _pairs("ties", seed=5)
    pairwise = kendall_tau(x, y)
    monkeypatch.setattr(f"hf_robattr.robustness.similarity.{limit}", 10)
    torch.testing.assert_close(kendall_tau(x, y), pairwise, rtol=1e-12, atol=1e-12)


def test_constant_map_gives_nan_like_scipy():
    x = torch.ones(1, 10)
    y = torch.arange(10.0).view(1, 10)
    assert torch.isnan(kendall_tau(x, y)).all() and torch.isnan(spearman(x, y)).all()


def test_topk_intersection_counts_shared_top_features():
    clean = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0]])
    perturbed = torch.tensor([[5.0, 0.0, 3.0, 2.0, 1.0]])
    assert topk_intersection(clean, perturbed, k=2).item() == pytest.approx(0.5)
    assert topk_intersection(clean, perturbed, k=3).item() == pytest.approx(2 / 3)
    assert topk_intersection(clean, perturbed, k=0.4).item() == pytest.approx(0.5)


@pytest.mark.parametrize(
    "k", [pytest.param(0, id="zero"), pytest.param(1.5, id="float-above-one"), pytest.param(9, id="too-many")]
)
def test_topk_rejects_bad_k(k):
    with pytest.raises(ValueError, match="`k`"):
        topk_intersection(torch.rand(1, 5), torch.rand(1, 5), k=k)


def test_center_of_mass_shift_in_cells():
    clean = torch.zeros(1, 4, 4)
    clean[0, 0, 0] = 1.0
    moved = torch.zeros(1, 4, 4)
    moved[0, 3, 3] = 2.0
    assert center_of_mass_shift(clean, moved).item() == pytest.approx(3 * 2**0.5)
    assert center_of_mass_shift(clean, clean).item() == 0


@pytest.mark.parametrize("name", [pytest.param(name, id=name) for name in SIMILARITY_MEASURES])
def test_measures_stay_in_documented_range(name):
    generator = torch.Generator().manual_seed(4)
    clean = torch.rand(16, 6, 6, generator=generator)
    perturbed = torch.where(
        torch.rand(16, 6, 6, generator=generator) > 0.5, clean, torch.rand(16, 6, 6, generator=generator)
    )
    values = SIMILARITY_MEASURES[name](clean, perturbed)
    low, high = SIMILARITY_RANGES[name]
    if name == "center_of_mass_shift":
        high = (5**2 + 5**2) ** 0.5
    assert torch.all(values >= low - 1e-6) and torch.all(values <= high + 1e-6)
    identical = SIMILARITY_MEASURES[name](clean, clean)
    expected = 0.0 if name == "center_of_mass_shift" else 1.0
    torch.testing.assert_close(identical, torch.full_like(identical, expected))


def test_all_zero_maps_have_defined_similarities():
    """Red-team finding: two identical all-zero maps scored top-k 1 but cosine 0. Identical maps are identical (1);
    a zero map against a non-zero one shares no direction (0); rank correlations of a constant map stay NaN, as
    scipy's."""
    zeros, ones = torch.zeros(2, 6), torch.ones(2, 6)
    assert torch.equal(cosine(zeros, zeros), torch.ones(2))
    assert torch.equal(topk_intersection(zeros, zeros, k=2), torch.ones(2))
    assert torch.equal(cosine(zeros, ones), torch.zeros(2))
    assert torch.isnan(kendall_tau(zeros, ones)).all()
