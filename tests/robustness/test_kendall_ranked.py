"""Kendall's tau-b of maps larger than the pair-counting threshold (pixel maps): rank counting in O(F log F) gives
``scipy.stats.kendalltau``'s value to the bit, NaNs included, and meets pair counting at the threshold."""

import warnings

import numpy as np
import pytest
import scipy.stats
import torch

from hf_robattr.robustness import similarity
from hf_robattr.robustness.similarity import PAIRWISE_KENDALL_MAX_FEATURES_CPU, kendall_tau


def scipy_tau(clean: torch.Tensor, perturbed: torch.Tensor) -> torch.Tensor:
    """scipy.stats.kendalltau example by example, on the maps as float64."""
    rows = zip(clean.reshape(len(clean), -1).double().numpy(), perturbed.reshape(len(perturbed), -1).double().numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on a constant input
        return torch.tensor([scipy.stats.kendalltau(a, b).statistic for a, b in rows], dtype=torch.float64)


def same(ours: torch.Tensor, reference: torch.Tensor) -> bool:
    """Equal entry by entry (``==``), NaN where the reference is NaN."""
    return ours.shape == reference.shape and bool(((ours == reference) | (ours.isnan() & reference.isnan())).all())


def maps(kind: str, shape: tuple[int, ...], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    clean = torch.rand(shape, generator=generator, dtype=torch.float64)
    perturbed = clean + 0.5 * torch.rand(shape, generator=generator, dtype=torch.float64)
    if kind == "levels":  # integers 0..4: many ties in each map and jointly
        clean = torch.randint(0, 5, shape, generator=generator).double()
        perturbed = (clean + torch.randint(0, 3, shape, generator=generator)).clamp(max=4).double()
    if kind == "half-zero":
        clean.view(shape[0], -1)[:, : clean[0].numel() // 2] = 0
    if kind == "anti":
        perturbed = -clean
    return clean, perturbed


@pytest.mark.parametrize("features", [200, 1024, 3000])
@pytest.mark.parametrize("kind", ["continuous", "levels", "half-zero", "anti"])
def test_equals_scipy_to_the_bit(features, kind):
    clean, perturbed = maps(kind, (37, features), seed=features)
    assert same(kendall_tau(clean, perturbed), scipy_tau(clean, perturbed))


@pytest.mark.parametrize("shape", [(1, 1024), (37, 32, 32), (5, 3, 16, 16), (2, 17000)], ids=str)
def test_batch_and_map_shapes(shape):
    """One example, 2-D maps, channel maps, and maps long enough for the counting to need int32."""
    for kind in ("continuous", "levels"):
        clean, perturbed = maps(kind, shape, seed=len(shape))
        assert same(kendall_tau(clean, perturbed), scipy_tau(clean, perturbed))


def test_constant_map_and_nan_entry_give_nan_like_scipy():
    clean, perturbed = maps("continuous", (4, 300), seed=1)
    clean[1] = 2.0  # constant map: every pair tied
    perturbed[2, 17] = torch.nan
    clean[3, :3], perturbed[3, :2] = torch.inf, -torch.inf  # infinities are ordinary values
    ours = kendall_tau(clean, perturbed)
    assert ours[1].isnan() and ours[2].isnan() and not ours[[0, 3]].isnan().any()
    assert same(ours, scipy_tau(clean, perturbed))


def test_float32_maps_give_float32_equal_to_scipy_after_the_cast():
    clean, perturbed = (m.float() for m in maps("continuous", (8, 1024), seed=2))
    ours = kendall_tau(clean, perturbed)
    assert ours.dtype == torch.float32
    assert same(ours, scipy_tau(clean, perturbed).float())


def test_rank_counting_meets_pair_counting_at_the_threshold(monkeypatch):
    features = PAIRWISE_KENDALL_MAX_FEATURES_CPU + 1
    for kind in ("continuous", "levels", "half-zero"):
        clean, perturbed = maps(kind, (6, features), seed=3)
        ranked = kendall_tau(clean, perturbed)
        monkeypatch.setattr(similarity, "PAIRWISE_KENDALL_MAX_FEATURES_CPU", features)
        torch.testing.assert_close(ranked, kendall_tau(clean, perturbed), rtol=1e-12, atol=1e-12)
        monkeypatch.undo()


def test_accelerator_sort_and_row_chunks_do_not_change_the_values(monkeypatch):
    """Off the CPU the rows are sorted by torch, not numpy; a small budget splits the batch into chunks."""
    clean, perturbed = maps("levels", (9, 500), seed=4)
    expected = scipy_tau(clean, perturbed)
    monkeypatch.setattr(similarity, "_argsort", lambda keys: keys.argsort(dim=1))
    assert same(kendall_tau(clean, perturbed), expected)
    monkeypatch.setattr(similarity, "_PAIR_BUDGET", 8 * 500 * 2)
    assert same(kendall_tau(clean, perturbed), expected)


@pytest.mark.parametrize("features", [1, 2, 3, 5, 16, 17, 100])
def test_inversions_count_every_pair(features):
    generator = torch.Generator().manual_seed(features)
    perm = torch.stack([torch.randperm(features, generator=generator) for _ in range(4)])
    perm = torch.cat([perm, torch.arange(features).flip(0)[None], torch.arange(features)[None]])
    later = torch.ones(features, features, dtype=torch.bool).triu(1)
    expected = ((perm[:, :, None] > perm[:, None, :]) & later).sum(dim=(1, 2))
    assert torch.equal(similarity._inversions(perm), expected)


def test_scipy_is_not_called(monkeypatch):
    """The rank path is torch (and numpy's sort) only: no example-by-example scipy call."""

    def refuse(*args, **kwargs):
        raise AssertionError("scipy.stats.kendalltau was called")

    monkeypatch.setattr(scipy.stats, "kendalltau", refuse)
    clean, perturbed = maps("continuous", (3, 400))
    assert np.isfinite(kendall_tau(clean, perturbed).numpy()).all()
