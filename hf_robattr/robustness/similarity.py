"""Similarity between clean and perturbed attribution maps, batched: every function maps two ``[B, ...]`` maps to
``[B]`` scores.

Ranges: ``topk_intersection`` in [0, 1]; ``kendall_tau``, ``spearman``, ``pearson``, ``cosine`` in [-1, 1] (1 means
identical ranking / direction); ``center_of_mass_shift`` in [0, diagonal of the map] (0 means no shift). Rank
statistics handle ties like scipy's defaults (tau-b, average ranks) and return NaN for a constant map, like scipy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch


def _flat(maps: torch.Tensor) -> torch.Tensor:
    return maps.reshape(maps.shape[0], -1)


def resolve_k(k: int | float, num_features: int) -> int:
    """``k`` as a feature count: an int >= 1 is a count, a float in (0, 1) a fraction of the features."""
    if isinstance(k, bool) or not isinstance(k, int | float):
        raise TypeError(f"`k` must be an int (count) or a float in (0, 1) (fraction); got {k!r}.")
    if isinstance(k, float) and not k.is_integer():
        if not 0 < k < 1:
            raise ValueError(f"`k` as a fraction must lie in (0, 1); got {k}.")
        return max(1, round(k * num_features))
    if not 1 <= k <= num_features:
        raise ValueError(f"`k` must be between 1 and the number of features ({num_features}); got {k}.")
    return int(k)


def topk_mask(maps: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean ``[B, F]`` mask of each map's ``k`` largest entries."""
    flat = _flat(maps)
    mask = torch.zeros_like(flat, dtype=torch.bool)
    return mask.scatter_(1, flat.topk(k, dim=1).indices, True)


def token_counts(k: int | float, word_mask: torch.Tensor) -> list[int]:
    """``k`` as a count for each text (row of ``word_mask``, 1 for the tokens that are ranked: its word tokens by
    default): a fraction of them (at least 1), or an integer ``k`` cut to their number.

    Example: ``k=0.2`` on a text of 10 words between [CLS] and [SEP] gives 2 slots.
    """
    lengths = word_mask.bool().sum(dim=1).tolist()
    return [resolve_k(min(k, length) if isinstance(k, int) else k, length) for length in lengths]


def masked_topk_mask(maps: torch.Tensor, counts: list[int], valid: torch.Tensor) -> torch.Tensor:
    """Boolean ``[B, F]`` mask of each row's ``counts[b]`` largest entries among its ``valid`` ones (text: the word
    tokens; padding and, by default, special tokens are never chosen)."""
    flat = torch.where(_flat(valid).bool(), _flat(maps), -torch.inf)
    order = flat.argsort(dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order).scatter_(
        1, order, torch.arange(flat.shape[1], device=flat.device).expand_as(order)
    )
    return ranks < torch.tensor(counts, device=flat.device).unsqueeze(1)


def topk_intersection(clean: torch.Tensor, perturbed: torch.Tensor, k: int | float = 0.1) -> torch.Tensor:
    """Fraction of the ``k`` largest features of ``clean`` that are also among the ``k`` largest of ``perturbed``
    (Ghorbani et al. 2019). Range [0, 1]."""
    count = resolve_k(k, _flat(clean).shape[1])
    both = topk_mask(clean, count) & topk_mask(perturbed, count)
    return both.sum(dim=1).to(clean.dtype) / count


# Pairwise comparisons of F features cost F x F per example; chunk rows to keep memory near this many elements.
_PAIR_BUDGET = 1 << 24


# Above this many features per map, pairwise counting (O(F^2)) costs more than scipy's O(F log F) per example.
PAIRWISE_KENDALL_MAX_FEATURES = 4096
# On a CPU the crossover comes much earlier: 32 maps of 1024 features (a 32 x 32 pixel map) cost 1.07 CPU s by pair
# counting and 0.019 s with scipy; of 128 features, 0.017 and 0.012 (one thread, 2-core CPU). Patch grids and token
# maps stay below it.
PAIRWISE_KENDALL_MAX_FEATURES_CPU = 128


def kendall_tau(clean: torch.Tensor, perturbed: torch.Tensor) -> torch.Tensor:
    """Kendall's tau-b between the two maps' feature orderings (ties as in ``scipy.stats.kendalltau``). Range [-1, 1].

    Batched exact pair counting in torch, chunked over rows, for maps of up to
    :data:`PAIRWISE_KENDALL_MAX_FEATURES` features on an accelerator and :data:`PAIRWISE_KENDALL_MAX_FEATURES_CPU` on
    a CPU (patch grids, token maps); larger maps (pixel maps) use ``scipy.stats.kendalltau`` example by example, the
    same statistic in O(F log F).
    """
    x, y = _flat(clean), _flat(perturbed)
    batch, features = x.shape
    limit = PAIRWISE_KENDALL_MAX_FEATURES
    if x.device.type == "cpu":
        limit = min(limit, PAIRWISE_KENDALL_MAX_FEATURES_CPU)
    if features > limit:
        import scipy.stats

        rows = zip(x.detach().double().cpu().numpy(), y.detach().double().cpu().numpy())
        values = [scipy.stats.kendalltau(a, b).statistic for a, b in rows]
        return torch.tensor(values, dtype=x.dtype, device=x.device)
    rows = max(1, _PAIR_BUDGET // max(1, batch * features))
    concordance = torch.zeros(batch, dtype=torch.float64, device=x.device)
    pairs_x = torch.zeros_like(concordance)
    pairs_y = torch.zeros_like(concordance)
    for start in range(0, features, rows):
        sx = torch.sign(x[:, start : start + rows, None] - x[:, None, :])
        sy = torch.sign(y[:, start : start + rows, None] - y[:, None, :])
        concordance += (sx * sy).sum(dim=(1, 2), dtype=torch.float64)
        pairs_x += sx.abs().sum(dim=(1, 2), dtype=torch.float64)
        pairs_y += sy.abs().sum(dim=(1, 2), dtype=torch.float64)
    return (concordance / torch.sqrt(pairs_x * pairs_y)).to(x.dtype)


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks 1..F of each row, ties getting their average rank (``scipy.stats.rankdata(method="average")``)."""
    flat = _flat(values).contiguous()
    ordered = flat.sort(dim=1).values
    below = torch.searchsorted(ordered, flat, right=False)
    upto = torch.searchsorted(ordered, flat, right=True)
    return (below + upto + 1).to(flat.dtype) / 2


def pearson(clean: torch.Tensor, perturbed: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of the two maps' values. Range [-1, 1]; NaN if a map is constant."""
    x, y = _flat(clean), _flat(perturbed)
    x = x - x.mean(dim=1, keepdim=True)
    y = y - y.mean(dim=1, keepdim=True)
    return (x * y).sum(dim=1) / (x.norm(dim=1) * y.norm(dim=1))


def spearman(clean: torch.Tensor, perturbed: torch.Tensor) -> torch.Tensor:
    """Spearman's rho: Pearson correlation of average ranks (as ``scipy.stats.spearmanr``). Range [-1, 1]."""
    return pearson(average_ranks(clean), average_ranks(perturbed))


def cosine(clean: torch.Tensor, perturbed: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of the flattened maps. Range [-1, 1] (here [0, 1] for non-negative maps). Two all-zero maps
    are identical: 1 (as their top-k intersection); an all-zero map against a non-zero one: 0."""
    x, y = _flat(clean), _flat(perturbed)
    value = torch.nn.functional.cosine_similarity(x, y, dim=1, eps=1e-12)
    both_zero = (x == 0).all(dim=1) & (y == 0).all(dim=1)
    return torch.where(both_zero, torch.ones_like(value), value)


def center_of_mass(maps: torch.Tensor) -> torch.Tensor:
    """Centre of mass of ``|map|`` in index coordinates: ``[B, map.dim() - 1]``."""
    weights = maps.abs()
    total = _flat(weights).sum(dim=1).clamp_min(1e-12)
    coords = []
    for dim in range(1, maps.dim()):
        positions = torch.arange(maps.shape[dim], dtype=maps.dtype, device=maps.device)
        shape = [1] * maps.dim()
        shape[dim] = -1
        coords.append(_flat(weights * positions.view(shape)).sum(dim=1) / total)
    return torch.stack(coords, dim=1)


def center_of_mass_shift(clean: torch.Tensor, perturbed: torch.Tensor) -> torch.Tensor:
    """Euclidean distance between the centres of mass of ``|clean|`` and ``|perturbed|``, in map cells (pixels,
    patches or tokens). Range [0, diagonal]."""
    return (center_of_mass(clean) - center_of_mass(perturbed)).norm(dim=1)


SIMILARITY_MEASURES: dict[str, Callable[..., torch.Tensor]] = {
    "topk_intersection": topk_intersection,
    "kendall_tau": kendall_tau,
    "spearman": spearman,
    "pearson": pearson,
    "cosine": cosine,
    "center_of_mass_shift": center_of_mass_shift,
}

# Documented ranges, checked by the tests.
SIMILARITY_RANGES: dict[str, tuple[float, float]] = {
    "topk_intersection": (0.0, 1.0),
    "kendall_tau": (-1.0, 1.0),
    "spearman": (-1.0, 1.0),
    "pearson": (-1.0, 1.0),
    "cosine": (-1.0, 1.0),
    "center_of_mass_shift": (0.0, math.inf),
}


def similarity_scores(
    clean: torch.Tensor,
    perturbed: torch.Tensor,
    names: Sequence[str],
    k: int | float,
    token_mask: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Similarity measures ``{name: [B]}`` between maps; for text only the tokens of ``token_mask`` count (pass the
    word mask: padding and special tokens are then left out).

    Examples with the same number of counted tokens are scored together, so a left-out token never enters a
    ranking; a fractional ``k`` is a fraction of each text's counted tokens (at least 1), an integer ``k`` longer
    than that is cut to it.
    """
    measure_kwargs = {"topk_intersection": {"k": k}}
    if token_mask is None or bool(token_mask.all()):
        return {name: SIMILARITY_MEASURES[name](clean, perturbed, **measure_kwargs.get(name, {})) for name in names}
    real = token_mask.bool()
    lengths = real.sum(dim=1)
    scores = {name: clean.new_full((clean.shape[0],), torch.nan) for name in names}
    for length in lengths.unique().tolist():
        rows = (lengths == length).nonzero().squeeze(1)
        group_mask = real[rows]
        group_clean = clean[rows][group_mask].view(len(rows), length)
        group_perturbed = perturbed[rows][group_mask].view(len(rows), length)
        group_kwargs = {"topk_intersection": {"k": min(k, length) if isinstance(k, int) else k}}
        for name in names:
            value = SIMILARITY_MEASURES[name](group_clean, group_perturbed, **group_kwargs.get(name, {}))
            scores[name][rows] = value.to(scores[name].dtype)
    return scores
