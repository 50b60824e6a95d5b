"""From per-example values to the flat result dict, and the counts of examples left out."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import torch


def summarise(per_sample: Mapping[str, torch.Tensor], num_examples: int, keep: bool) -> dict[str, Any]:
    """``{key: mean, key_std: population std}`` over the examples that are not NaN, plus ``"num_samples"`` and,
    with ``keep``, ``"per_sample"`` (lists, NaN where an example was left out)."""
    summary: dict[str, Any] = {}
    samples: dict[str, list[float]] = {}
    for key, values in per_sample.items():
        values = values.double().cpu()
        finite = values[~torch.isnan(values)]
        summary[key] = finite.mean().item() if finite.numel() else math.nan
        summary[f"{key}_std"] = finite.std(unbiased=False).item() if finite.numel() else math.nan
        samples[key] = values.tolist()
    summary["num_samples"] = float(num_examples)
    if keep:
        summary["per_sample"] = samples
    return summary


def skip_counts(unperturbable: torch.Tensor, skipped: Mapping[str, torch.Tensor], *, warn: bool) -> dict[str, float]:
    """``"num_skipped"`` (examples left out of at least one method) and ``"{method}/num_skipped"``; warns once when
    any example was left out, and raises ``ValueError`` when a method has no example left to score."""
    total = int(unperturbable.numel())
    cannot = int(unperturbable.sum())
    counts = {f"{method}/num_skipped": float(rows.sum()) for method, rows in skipped.items()}
    any_skipped = torch.stack(list(skipped.values())).any(dim=0) if skipped else unperturbable
    counts["num_skipped"] = float(any_skipped.sum())
    zero_maps = {method: int((rows & ~unperturbable).sum()) for method, rows in skipped.items()}
    reasons = (
        f"{cannot} of {total} cannot be perturbed (a constant image under the default per-image input range, or a "
        f"text of padding only or with no word token, only special tokens: see `special_tokens`); all-zero clean "
        f"maps (nothing to rank or compare): {zero_maps}"
    )
    empty = [method for method, rows in skipped.items() if bool(rows.all())]
    if empty:
        raise ValueError(f"no example left to score for {empty}: {reasons}. No score is reported for them.")
    if warn and counts["num_skipped"]:
        warnings.warn(
            f"attribution robustness: {int(counts['num_skipped'])} of {total} examples left out of some measures: "
            f"{reasons}. They are counted under 'num_skipped' and '{{method}}/num_skipped'.",
            UserWarning,
            stacklevel=3,
        )
    return counts
