"""Similarity between clean and perturbed attribution maps, batched: every function maps two ``[B, ...]`` maps to
``[B]`` scores.

Ranges: ``topk_intersection`` in [0, 1]; ``kendall_tau``, ``spearman``, ``pearson``, ``cosine`` in [-1, 1] (1 means
identical ranking / direction); ``center_of_mass_shift`` in [0, diagonal of the map] (0 means no shift). Rank
statistics handle ties like scipy's defaults (tau-b, average ranks) and return NaN for a constant map, like scipy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch


def _flat(maps: torch.Tensor) -> torch.Tensor:
    return maps.reshape(maps.shape[0], -1)


class TopKCountError(ValueError):
    """An integer ``k`` larger than the attribution map it ranks (or below 1)."""


def resolve_k(k: int | float, num_features: int) -> int:
    """``k`` as a feature count: an int >= 1 is a count, a float in (0, 1) a fraction of the features."""
    if isinstance(k, bool) or not isinstance(k, int | float):
        raise TypeError(f"`k` must be an int (count) or a float in (0, 1) (fraction); got {k!r}.")
    if isinstance(k, float) and not k.is_integer():
        if not 0 < k < 1:
            raise ValueError(f"`k` as a fraction must lie in (0, 1); got {k}.")
        return max(1, round(k * num_features))
    if not 1 <= k <= num_features:
        raise TopKCountError(f"`k` must be between 1 and the number of features ({num_features}); got {k}.")
    return int(k)


def topk_mask(maps: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean ``[B, F]`` mask of each map's ``k`` largest entries."""
    flat = _flat(maps)
    mask = torch.zeros_like(flat, dtype=torch.bool)
    return mask.scatter_(1, flat.topk(k, dim=1).indices, True)


def token_counts(k: int | float, word_mask: torch.Tensor) -> list[int]:
    """``k`` as a count for each text (row of ``word_mask``, 1 for the tokens that are ranked: its word tokens by
    default): a fraction of them (at least 1), or an integer ``k`` cut to their number.

    Example: ``k=0.2`` on a text of 10 word tokens (subword pieces count one by one) between [CLS] and [SEP] gives
    2 slots.
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


# Up to this many features per map, exact pair counting (O(F^2) per example) runs on an accelerator; larger maps use
# the O(F log F) rank counting below. (Chosen against scipy's per-example loop; not re-measured against rank counting,
# which is likely faster there well below 4096.)
PAIRWISE_KENDALL_MAX_FEATURES = 4096
# On a CPU the crossover comes much earlier. 32 maps, one thread, a loaded 2-core CPU, ranges over three runs: pair
# counting costs 0.06-0.10 / 1.3-2.0 / 5.5-8.8 / 33-39 ms at 16 / 64 / 128 / 256 features, rank counting 0.6-1.0 /
# 0.7-1.3 / 0.9-1.6 / 1.3-2.2 ms. Rank counting wins from about 64 features, but the two can differ in the last bit
# (rank counting repeats scipy's float64 arithmetic, pair counting does not), so the threshold stays where the pinned
# reference values were computed. Patch grids and token maps stay below it.
PAIRWISE_KENDALL_MAX_FEATURES_CPU = 128


def kendall_tau(clean: torch.Tensor, perturbed: torch.Tensor) -> torch.Tensor:
    """Kendall's tau-b between the two maps' feature orderings (ties as in ``scipy.stats.kendalltau``). Range [-1, 1].

    Batched exact pair counting in torch, chunked over rows, for maps of up to
    :data:`PAIRWISE_KENDALL_MAX_FEATURES` features on an accelerator and :data:`PAIRWISE_KENDALL_MAX_FEATURES_CPU` on
    a CPU (patch grids, token maps); larger maps (pixel maps) are ranked and their discordant pairs counted in
    O(F log F) per example, all examples at once, giving the value ``scipy.stats.kendalltau`` gives, to the bit (NaN
    for a constant map or one with a NaN).
    """
    x, y = _flat(clean), _flat(perturbed)
    batch, features = x.shape
    limit = PAIRWISE_KENDALL_MAX_FEATURES
    if x.device.type == "cpu":
        limit = min(limit, PAIRWISE_KENDALL_MAX_FEATURES_CPU)
    if features > limit:
        return _ranked_kendall_tau(x, y).to(device=x.device, dtype=x.dtype)
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


# Kendall's tau-b by ranks, as scipy.stats.kendalltau computes it: order each row by (x, y), count the discordant
# pairs as the inversions of the y order, and the pairs tied in x, in y and in both, all in int64, every row at once.
# Against scipy example by example (what this replaces), 32 maps, one thread, a loaded 2-core CPU, ranges over three
# runs: 1.8-2.5 against 7.2-14 ms at 256 features, 5.8-8.3 against 11-14 ms at 1024, 22 against 20-22 ms at 3136; one
# map of 1024 features costs 0.9 against 0.3-0.6 ms. scipy's own O(F log F) loop is fast: what batching saves is its
# per-call overhead, and the sorts (numpy's, see _argsort) are most of what is left.


def _argsort(keys: torch.Tensor) -> torch.Tensor:
    """Row-wise argsort (not stable). On a CPU through numpy, whose vectorised sort is 2-3x faster than torch's there
    (32 x 1024 floats: 0.6 against 1.6 ms)."""
    if keys.device.type == "cpu":
        return torch.from_numpy(np.argsort(keys.numpy(), axis=1))
    return keys.argsort(dim=1)


def _run_starts(ordered: torch.Tensor) -> torch.Tensor:
    """For every position of rows sorted ascending, the position where its run of equal entries starts."""
    position = torch.arange(ordered.shape[1], device=ordered.device)
    new = torch.ones_like(ordered, dtype=torch.bool)
    torch.ne(ordered[:, 1:], ordered[:, :-1], out=new[:, 1:])
    return (new * position).cummax(dim=1).values


def _tied_pairs(starts: torch.Tensor) -> torch.Tensor:
    """Pairs of equal entries per row: each entry is tied with the ones of its run before it."""
    features = starts.shape[1]
    return features * (features - 1) // 2 - starts.sum(dim=1)


def _ranked(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(order, starts, ranks)``: the sorting permutation of each row, the run starts along it, and each entry's
    rank (the number of entries smaller than it; equal entries share it)."""
    order = _argsort(keys)
    starts = _run_starts(keys.gather(1, order))
    return order, starts, torch.empty_like(starts).scatter_(1, order, starts)


def _inversions(perm: torch.Tensor) -> torch.Tensor:
    """Inversions (pairs ``i < j`` with ``perm[i] > perm[j]``) of each row, a permutation of ``0..F-1``: a wavelet
    pass over the bits of the values, highest first. The row, padded to ``2**bits`` with its missing values in order,
    is kept sorted by the value bits above the current one, stably, so that it splits into blocks of equal high bits,
    half of them with the current bit set; a pair inverted at this bit is a set entry before a clear one in a block.
    Counting them and then moving each block's clear entries ahead of its set ones are O(F) per bit."""
    batch, features = perm.shape
    bits = max(1, (features - 1).bit_length())
    size = 1 << bits
    dtype = torch.int16 if size <= 1 << 14 else torch.int32 if size <= 1 << 30 else torch.int64
    values = torch.arange(size, dtype=dtype, device=perm.device).repeat(batch, 1)
    values[:, :features] = perm
    count = torch.zeros(batch, dtype=torch.int64, device=perm.device)
    for bit in reversed(range(bits)):
        half = 1 << bit
        blocks = values.view(batch, size // (2 * half), 2 * half)
        ones = (blocks >> bit) & 1
        ones_upto = ones.cumsum(dim=2, dtype=dtype)
        # a clear entry is inverted with the set ones before it; the block's ones_upto sum counts these plus each
        # set entry's own rank among the set ones (half * (half + 1) / 2 per block)
        count += ones_upto.sum(dim=(1, 2), dtype=torch.int64) - (size // (2 * half)) * half * (half + 1) // 2
        position = torch.arange(2 * half, dtype=dtype, device=perm.device)
        clear_to = position - ones_upto
        target = clear_to + ones * (2 * ones_upto + (half - 1) - position)  # a set entry goes to half + ones_upto - 1
        values = torch.empty_like(blocks).scatter_(2, target.long(), blocks).view(batch, size)
    return count


def _rank_counts(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``(xtie, ytie, ntie, dis)`` of scipy's tau-b, ``[B]`` int64 each, for NaN-free rows."""
    features = x.shape[1]
    _, x_starts, x_ranks = _ranked(x)
    _, y_starts, y_ranks = _ranked(y)
    shift = max(1, (features - 1).bit_length())
    _, _, yx_ranks = _ranked((y_ranks << shift) | x_ranks)
    xy_order, xy_starts, _ = _ranked((x_ranks << shift) | y_ranks)
    # each entry's place in the (y, x) order, visited in the (x, y) order; an entry tied with others in both x and y
    # takes its run's places in the same order in both, so that their pairs are not counted as inversions
    position = torch.arange(features, device=x.device)
    perm = yx_ranks.gather(1, xy_order) + (position - xy_starts)
    return _tied_pairs(x_starts), _tied_pairs(y_starts), _tied_pairs(xy_starts), _inversions(perm)


def _ranked_kendall_tau(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """scipy.stats.kendalltau's tau-b of each row pair of ``[B, F]`` maps, float64 on the CPU, bit for bit."""
    batch, features = x.shape
    x, y = (m.detach() if m.dtype in (torch.float32, torch.float64) else m.detach().double() for m in (x, y))
    has_nan = (x.isnan().any(dim=1) | y.isnan().any(dim=1)).cpu().numpy()
    if has_nan.any():
        x, y = x.masked_fill(x.isnan(), 0), y.masked_fill(y.isnan(), 0)
    # chunks of rows: several [rows, F] int64 tensors are alive at once, each kept to an eighth of the budget
    rows = max(1, _PAIR_BUDGET // (8 * max(1, features)))
    chunks = [_rank_counts(x[start : start + rows], y[start : start + rows]) for start in range(0, batch, rows)]
    xtie, ytie, ntie, dis = (torch.cat(parts).cpu().numpy() for parts in zip(*chunks))
    total = features * (features - 1) // 2
    # scipy's arithmetic in numpy, in its order: torch's float64 sqrt on a CPU is not always correctly rounded
    con_minus_dis = total - xtie - ytie + ntie - 2 * dis
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = con_minus_dis / np.sqrt(total - xtie) / np.sqrt(total - ytie)
    tau = np.minimum(1.0, np.maximum(-1.0, tau))
    tau[has_nan | (xtie == total) | (ytie == total)] = np.nan
    return torch.from_numpy(tau)


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
    if token_mask is None or bool(token_mask.all()):  # one group of the full width
        if token_mask is not None and isinstance(k, int):  # every token counts: a longer k is cut, as per group
            k = min(k, clean.flatten(1).shape[1])
        return {name: SIMILARITY_MEASURES[name](clean, perturbed, **({"k": k} if name == "topk_intersection" else {}))
                for name in names}  # fmt: skip
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
