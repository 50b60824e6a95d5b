"""Explain perturbed copies of each example in large batches: the maps behind the sensitivity family, the noise
baseline and the ``epsilon="auto"`` calibration."""

from __future__ import annotations

import torch
from torch import nn

from hf_robattr.attribution.base import AttributionMethod
from hf_robattr.attribution.inputs import PreparedInputs
from hf_robattr.attribution.random_streams import ExampleStreams


def perturbed_explanations(
    model: nn.Module,
    method: AttributionMethod,
    prepared: PreparedInputs,
    targets: torch.Tensor,
    offsets: torch.Tensor,
    batch_size: int,
    streams: ExampleStreams | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Maps ``[B, S, ...]`` and logits ``[B, S, C]`` of ``prepared`` shifted by ``offsets`` ``[B, S, ...]``.

    The ``B * S`` perturbed examples run in chunks of ``batch_size``, whatever ``B`` is. ``streams`` (one per copy,
    example-major) replace the random streams the copies draw from (e.g. SmoothGrad's noise); by default the copies
    of an example share its stream, drawing from it in turn.
    """
    batch, samples = offsets.shape[:2]
    expanded = prepared.repeat_interleave(samples)
    if streams is not None:
        expanded = expanded.with_streams(streams)
    expanded = expanded.with_features(expanded.features + offsets.reshape(-1, *offsets.shape[2:]))
    expanded_targets = targets.repeat_interleave(samples)
    maps, logits = [], []
    for start in range(0, batch * samples, batch_size):
        part = slice(start, start + batch_size)
        result = method.explain(model, expanded.select(part), expanded_targets[part])
        maps.append(result.maps)
        logits.append(result.logits)
    maps_t, logits_t = torch.cat(maps), torch.cat(logits)
    return maps_t.view(batch, samples, *maps_t.shape[1:]), logits_t.view(batch, samples, -1)
