"""The sensitivity family, from clean maps and maps of perturbed copies of each example.

Given ``S`` perturbations per example, with clean map ``a``, perturbed maps ``a'_s``, input ``x`` and perturbed
inputs ``x'_s`` (all flattened per example, norms are Euclidean / Frobenius):

- ``max_sensitivity`` = max_s ``||a - a'_s|| / ||a||`` (Yeh et al. 2019; exactly ``captum.metrics.sensitivity_max``
  with a zero-norm ``a`` counted as 1). Range [0, inf); 0 means the map does not move.
- ``avg_sensitivity``: the same ratio averaged over ``s``. Range [0, inf).
- ``local_lipschitz`` = max_s ``||a - a'_s|| / ||x - x'_s||`` (Alvarez-Melis & Jaakkola 2018; Quantus
  ``LocalLipschitzEstimate``). Range [0, inf).
- ``relative_input_stability`` = max_s ``||(a - a'_s) / a|| / ||(x - x'_s) / x||`` (Agarwal et al. 2022, with
  Quantus' guards: zero entries of ``a`` and ``x`` divide by ``eps = 1e-6``, and a denominator of exactly 0
  becomes ``eps``; it is not a floor, so a tiny nonzero denominator gives a huge value). Range [0, inf).

Perturbed samples flagged in ``valid=False`` (e.g. whose label flipped) are left out of the max/mean; an example with
no valid sample gets NaN.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


EPS_MIN = 1e-6


def _flat(tensor: torch.Tensor, leading: int) -> torch.Tensor:
    return tensor.reshape(*tensor.shape[:leading], -1)


def sensitivity_ratio(clean: torch.Tensor, perturbed: torch.Tensor, **_: torch.Tensor) -> torch.Tensor:
    """``||a - a'|| / ||a||`` for clean maps ``[B, ...]`` and perturbed maps ``[B, S, ...]``: ``[B, S]``."""
    norm = _flat(clean, 1).norm(dim=1, keepdim=True)
    norm = torch.where(norm == 0, torch.ones_like(norm), norm)
    return _flat(perturbed - clean.unsqueeze(1), 2).norm(dim=2) / norm


def lipschitz_ratio(
    clean: torch.Tensor, perturbed: torch.Tensor, *, inputs: torch.Tensor, perturbed_inputs: torch.Tensor
) -> torch.Tensor:
    """``||a - a'|| / ||x - x'||``: ``[B, S]``."""
    numerator = _flat(perturbed - clean.unsqueeze(1), 2).norm(dim=2)
    return numerator / _flat(perturbed_inputs - inputs.unsqueeze(1), 2).norm(dim=2)


def relative_input_stability_ratio(
    clean: torch.Tensor, perturbed: torch.Tensor, *, inputs: torch.Tensor, perturbed_inputs: torch.Tensor
) -> torch.Tensor:
    """``||(a - a') / a|| / ||(x - x') / x||`` with Quantus' zero guards (eps for zero entries of ``a`` and ``x``, and
    for a denominator of exactly 0): ``[B, S]``."""
    safe_a = clean + (clean == 0) * EPS_MIN
    safe_x = inputs + (inputs == 0) * EPS_MIN
    numerator = _flat((clean.unsqueeze(1) - perturbed) / safe_a.unsqueeze(1), 2).norm(dim=2)
    denominator = _flat((inputs.unsqueeze(1) - perturbed_inputs) / safe_x.unsqueeze(1), 2).norm(dim=2)
    return numerator / (denominator + (denominator == 0) * EPS_MIN)


def _masked_max(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    filled = torch.where(valid, values, torch.full_like(values, -torch.inf)).amax(dim=1)
    return torch.where(valid.any(dim=1), filled, torch.full_like(filled, torch.nan))


def _masked_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    count = valid.sum(dim=1)
    total = torch.where(valid, values, torch.zeros_like(values)).sum(dim=1)
    return torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, torch.nan))


# measure name -> (per-sample ratio, reduction over samples)
SENSITIVITY_MEASURES: dict[str, tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor]]] = {
    "max_sensitivity": (sensitivity_ratio, _masked_max),
    "avg_sensitivity": (sensitivity_ratio, _masked_mean),
    "local_lipschitz": (lipschitz_ratio, _masked_max),
    "relative_input_stability": (relative_input_stability_ratio, _masked_max),
}


def sensitivity_measures(
    clean: torch.Tensor,
    perturbed: torch.Tensor,
    *,
    inputs: torch.Tensor,
    perturbed_inputs: torch.Tensor,
    valid: torch.Tensor | None = None,
    measures: tuple[str, ...] | None = None,
) -> dict[str, torch.Tensor]:
    """Every measure of the family (or those named in ``measures``) per example, ``{name: [B]}``.

    ``clean`` ``[B, ...]`` and ``perturbed`` ``[B, S, ...]`` are maps; ``inputs`` ``[B, ...]`` and
    ``perturbed_inputs`` ``[B, S, ...]`` the inputs they came from; ``valid`` ``[B, S]`` marks samples to use.
    """
    names = tuple(SENSITIVITY_MEASURES) if measures is None else measures
    unknown = [name for name in names if name not in SENSITIVITY_MEASURES]
    if unknown:
        raise ValueError(
            f"unknown sensitivity `measures` {unknown}; expected names from {sorted(SENSITIVITY_MEASURES)}."
        )
    for name, tensor in (
        ("clean", clean),
        ("perturbed", perturbed),
        ("inputs", inputs),
        ("perturbed_inputs", perturbed_inputs),
    ):
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ValueError(f"`{name}` contains NaN or infinite values; expected finite maps and inputs.")
    if valid is None:
        valid = torch.ones(perturbed.shape[:2], dtype=torch.bool, device=perturbed.device)
    cache: dict[Callable[..., torch.Tensor], torch.Tensor] = {}
    results = {}
    for name in names:
        ratio, reduce = SENSITIVITY_MEASURES[name]
        if ratio not in cache:
            cache[ratio] = ratio(clean, perturbed, inputs=inputs, perturbed_inputs=perturbed_inputs)
        results[name] = reduce(cache[ratio], valid)
    return results
