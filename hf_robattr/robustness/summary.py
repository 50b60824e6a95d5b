"""From per-example values to the flat result dict, and a JSON-safe copy of any result."""

from __future__ import annotations

import math
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


def json_ready(value: Any) -> Any:
    """A copy of ``value`` that ``json.dumps(..., allow_nan=False)`` accepts: NaN and infinities become ``None``,
    tuples lists, numpy / torch scalars Python numbers; dicts and lists are copied recursively.

    Use it on a robustness result before writing it to JSON (``results.json``): a NaN means "no example left to
    average" and must not be written as the non-standard ``NaN`` literal.
    """
    if isinstance(value, Mapping):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    elif hasattr(value, "item") and callable(value.item) and getattr(value, "shape", None) == ():
        value = value.item()  # numpy scalar
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
