"""A few examples explained, attacked and scored by the scoring core in one run: the maps behind the card picture
and the demo, with their per-example scores (those of ``evaluate_attribution_robustness``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..robustness import RobustnessConfig, RobustnessScorer


# The measures shown per example (the demo's table and the card picture's captions).
EXAMPLE_MEASURES = ("topk_intersection", "kendall_tau", "spearman", "max_sensitivity", "prediction_change_rate")


@dataclass(frozen=True)
class ExplainedExamples:
    """Clean and attacked attribution maps of a few examples, with their predictions and per-example scores.

    Attributes:
        method: the attribution method.
        clean_maps / attacked_maps: ``[N, H, W]`` (images) or ``[N, T]`` (text) maps.
        features / attacked_features: the clean and attacked inputs (pixels, or token embeddings for text).
        labels: the predicted class of each input; the attacked input keeps it (the attack only returns
            label-preserving points).
        perturbed: whether the attack found a label-preserving perturbed point (else the example is unperturbed and
            left out of the similarity measures).
        skipped: examples left out of every measure (they cannot be perturbed, e.g. a constant image, or their clean
            map is all zeros).
        scores: ``{measure: [value per example]}`` from ``evaluate_attribution_robustness`` (NaN = left out).
        token_mask: ``[N, T]`` real-token mask for text, ``None`` for images.
    """

    method: str
    clean_maps: torch.Tensor
    attacked_maps: torch.Tensor
    features: torch.Tensor
    attacked_features: torch.Tensor
    labels: torch.Tensor
    perturbed: torch.Tensor
    skipped: torch.Tensor
    scores: dict[str, list[float]]
    token_mask: torch.Tensor | None

    @property
    def is_image(self) -> bool:
        """Whether the examples are images (else text)."""
        return self.token_mask is None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def example_scores(self, index: int) -> dict[str, float | None]:
        """The scores of example ``index`` (``None`` where it was left out of a measure)."""
        return {
            name: None if values[index] is None or math.isnan(values[index]) else float(values[index])
            for name, values in self.scores.items()
        }


def head(inputs: Any, count: int) -> Any:
    """The first ``count`` examples of a pixel tensor or a tokenized batch."""
    if isinstance(inputs, torch.Tensor):
        return inputs[:count]
    if isinstance(inputs, Mapping):
        return {key: value[:count] if isinstance(value, torch.Tensor) else value for key, value in inputs.items()}
    raise TypeError(f"`inputs` must be a pixel-values tensor or a tokenized batch, got {type(inputs).__name__}.")


def explain_examples(
    model: torch.nn.Module,
    inputs: Any,
    config: RobustnessConfig | Mapping[str, Any] | None = None,
    *,
    method: str | None = None,
    measures: Sequence[str] = EXAMPLE_MEASURES,
) -> ExplainedExamples:
    """Explain ``inputs``, attack them as ``config`` says, and score each example, in one run of the scoring core.

    The scores are those of ``evaluate_attribution_robustness(model, inputs, config, return_per_sample=True)`` for
    ``method`` and ``measures``, and the maps are the ones they were computed from
    (:class:`~hf_robattr.RobustnessScorer` with ``keep_maps=True``).

    Args:
        model: an image or text classifier.
        inputs: a few examples (one batch): pixel values ``[N, C, H, W]`` or a tokenized batch.
        config: the scoring settings (default: the defaults of :class:`~hf_robattr.RobustnessConfig`).
        method: the attribution method (default: the config's first).
        measures: the per-example measures to compute.
    """
    config = RobustnessConfig.from_options(config)
    method = method or config.methods[0]
    single = config.replace(
        methods=(method,),
        measures=tuple(measures),
        method_kwargs={name: kw for name, kw in config.method_kwargs.items() if name == method},
    )
    with RobustnessScorer(model, single) as scorer:
        batch = scorer.score_batch(inputs, keep_maps=True)
    maps = batch.maps[method]
    scores = {
        name: batch.per_sample[f"{method}/{name}"].tolist()
        for name in measures
        if f"{method}/{name}" in batch.per_sample
    }
    return ExplainedExamples(
        method=method,
        clean_maps=maps.clean_maps.detach().cpu(),
        attacked_maps=maps.attacked_maps.detach().cpu(),
        features=maps.features.detach().cpu(),
        attacked_features=maps.attacked_features.detach().cpu(),
        labels=maps.labels.detach().cpu(),
        perturbed=maps.perturbed.detach().cpu(),
        skipped=batch.skipped[method].detach().cpu(),
        scores=scores,
        token_mask=_token_mask(inputs, maps.clean_maps),
    )


def _token_mask(inputs: Any, maps: torch.Tensor) -> torch.Tensor | None:
    """``[N, T]`` real-token mask of a tokenized batch (``None`` for images)."""
    if not isinstance(inputs, Mapping) or "pixel_values" in inputs:
        return None
    mask = inputs.get("attention_mask")
    return torch.ones(maps.shape[:2]) if mask is None else torch.as_tensor(mask).detach().cpu()
