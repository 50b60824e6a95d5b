"""Per-example baselines of every measure, from maps the scorer already has: ``chance`` (the clean map against its
own shuffled copy) and ``noise`` (the clean map against the maps at uniform draws from the ball).

:mod:`.saturation` compares the scores with them; see there for what each one tells.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from hf_robattr.attribution.random_streams import ExampleStreams

from .saturation import PERFECT
from .sensitivity import sensitivity_ratio
from .similarity import SIMILARITY_MEASURES


# (clean [N, ...], perturbed [N, ...], scored-feature mask [N, T] or None, measure names) -> {name: [N]}
Compare = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None, Sequence[str]], dict[str, torch.Tensor]]

# Sensitivity-type measures whose chance level is the ratio ||a - shuffled(a)|| / ||a||; local Lipschitz and relative
# input stability divide by an input distance that a shuffled map has no counterpart for.
CHANCE_RATIO_MEASURES = ("attack_sensitivity", "max_sensitivity", "avg_sensitivity")
# Shuffles per example whose scores are averaged: one shuffle of a short text's top-1 scores 0 or 1, too noisy a
# baseline; the average of 8 costs no model pass.
CHANCE_SHUFFLES = 8


def baseline_measures(measures: Sequence[str]) -> dict[str, list[str]]:
    """``{"chance": [...], "noise": [...]}``: the measures among ``measures`` that get each baseline."""
    similarity = [name for name in SIMILARITY_MEASURES if name in measures]
    return {
        "chance": similarity + [name for name in CHANCE_RATIO_MEASURES if name in measures],
        "noise": similarity + (["attack_sensitivity"] if "attack_sensitivity" in measures else []),
    }


def shuffled(maps: torch.Tensor, mask: torch.Tensor | None, streams: ExampleStreams) -> torch.Tensor:
    """Each map with its scored features (``mask`` ``[B, T]``; all features when ``None``) in a random order drawn
    from the example's stream; other features stay where they are."""
    flat = maps.reshape(maps.shape[0], -1)
    # Keys for the scored positions only: the amount of padding does not change an example's shuffles.
    keys = streams.draw("rand", (flat.shape[1],), dtype=torch.float64, device="cpu", positions=mask)
    position = torch.arange(flat.shape[1])
    scored = torch.ones_like(keys, dtype=torch.bool) if mask is None else mask.bool().cpu()
    # Per row, the scored positions in ascending order, then the others; and the scored positions in the order of
    # their keys, then the others in ascending order (keys are distinct doubles, so the order is the one argsort
    # of the scored keys alone gives). Scattering the second into the first moves only the scored features.
    slots = torch.where(scored, position, position + flat.shape[1]).argsort(dim=1)
    sources = torch.where(scored, keys, torch.inf).argsort(dim=1, stable=True)
    return (
        torch.empty_like(flat)
        .scatter_(1, slots.to(flat.device), flat.gather(1, sources.to(flat.device)))
        .view_as(maps)
    )


def chance_scores(
    compare: Compare,
    clean: torch.Tensor,
    mask: torch.Tensor | None,
    streams: ExampleStreams,
    similarity_names: Sequence[str],
    ratio_names: Sequence[str],
) -> dict[str, torch.Tensor]:
    """``{measure: [B]}``: the mean over :data:`CHANCE_SHUFFLES` shuffled copies of each clean map of each
    similarity measure between the map and the copy, and of the sensitivity ratio ``||a - copy|| / ||a||`` (the
    chance level of ``attack_sensitivity`` and ``max_/avg_sensitivity``)."""
    # The shuffles are drawn one after the other (each example's stream in the same order as ever), then compared
    # as one batch of CHANCE_SHUFFLES x B rows: one call of each measure instead of one per shuffle.
    copies = [shuffled(clean, mask, streams) for _ in range(CHANCE_SHUFFLES)]
    scores: dict[str, torch.Tensor] = {}
    if similarity_names:
        rows = torch.cat(copies)
        repeated_mask = None if mask is None else mask.repeat(CHANCE_SHUFFLES, 1)
        scores = compare(
            clean.repeat(CHANCE_SHUFFLES, *[1] * (clean.dim() - 1)), rows, repeated_mask, similarity_names
        )
    ratio = sensitivity_ratio(clean, torch.stack(copies, dim=1)).T.flatten()
    scores.update({name: ratio for name in ratio_names if name in CHANCE_RATIO_MEASURES})
    means = {}
    for name, values in scores.items():
        table = values.view(CHANCE_SHUFFLES, clean.shape[0]).to(clean.dtype)
        total = table[0]
        for copy in table[1:]:  # summed shuffle by shuffle, in their order
            total = total + copy
        means[name] = total / CHANCE_SHUFFLES
    return means


def noise_scores(
    compare: Compare,
    clean: torch.Tensor,
    sampled: torch.Tensor,
    valid: torch.Tensor,
    mask: torch.Tensor | None,
    similarity_names: Sequence[str],
) -> dict[str, torch.Tensor]:
    """``{measure: [B]}``: each similarity measure at the worst of the label-keeping uniform draws (``sampled``
    ``[B, S, ...]``, ``valid`` ``[B, S]``; NaN where no draw kept the label), and ``attack_sensitivity``'s noise
    counterpart, the largest ``||a - a'|| / ||a||`` over those draws."""
    batch, samples = sampled.shape[:2]
    flat_mask = None if mask is None else mask.repeat_interleave(samples, dim=0)
    values = compare(clean.repeat_interleave(samples, dim=0), sampled.flatten(0, 1), flat_mask, similarity_names)
    ratio = sensitivity_ratio(clean, sampled)
    values["attack_sensitivity"] = ratio.flatten()
    scores = {}
    for name, flat in values.items():
        table = flat.view(batch, samples).to(clean.dtype)
        sign = PERFECT[name][1] if name in PERFECT else 1
        filler = torch.full_like(table, torch.inf * sign)
        worst = torch.where(valid, table, filler)
        worst = worst.amin(dim=1) if sign > 0 else worst.amax(dim=1)
        scores[name] = torch.where(valid.any(dim=1), worst, torch.full_like(worst, torch.nan))
    return scores
