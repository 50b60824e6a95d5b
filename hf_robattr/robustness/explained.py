"""A few examples explained, attacked and scored by the scoring core in one run: the maps behind the card picture
and the demo, with their per-example scores (those of ``evaluate_attribution_robustness``)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .batch_scoring import AttackedMaps, RobustnessScorer
from .config import RobustnessConfig


# The measures shown per example (the demo's table and the card picture's captions).
EXAMPLE_MEASURES = ("topk_intersection", "kendall_tau", "spearman", "max_sensitivity", "prediction_change_rate")


@dataclass(frozen=True)
class ExplainedExamples:
    """A few examples explained and attacked by the scoring core, with their per-example scores.

    Attributes:
        method: the attribution method.
        maps: the core's :class:`~hf_robattr.robustness.AttackedMaps`: clean and attacked maps (``[N, H, W]`` for
            images, ``[N, T]`` for text), clean and attacked features (pixels, or token embeddings), the
            predictions (the attacked point keeps them: the attack only returns label-preserving points) and
            ``perturbed`` (whether such a point was found; else the example is unperturbed and left out of the
            similarity measures).
        skipped: examples left out of every measure (they cannot be perturbed, e.g. a constant image, or their clean
            map is all zeros).
        scores: ``{measure: [value per example]}``, those of ``evaluate_attribution_robustness`` (NaN = left out).
        token_mask: ``[N, T]`` mask of the tokens that are scored and drawn for text (the word tokens; every real
            token with ``special_tokens="include"``), ``None`` for images.
    """

    method: str
    maps: AttackedMaps
    skipped: torch.Tensor
    scores: dict[str, list[float]]
    token_mask: torch.Tensor | None

    @property
    def is_image(self) -> bool:
        """Whether the examples are images (else text)."""
        return self.token_mask is None

    def __len__(self) -> int:
        return int(self.maps.labels.shape[0])

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
    (:meth:`~hf_robattr.RobustnessScorer.score_batch` with ``keep_maps=True``).

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
    maps = AttackedMaps(**{f.name: _on_cpu(getattr(maps, f.name)) for f in dataclasses.fields(maps)})
    scores = {
        name: batch.per_sample[f"{method}/{name}"].tolist()
        for name in measures
        if f"{method}/{name}" in batch.per_sample
    }
    return ExplainedExamples(
        method=method,
        maps=maps,
        skipped=batch.skipped[method].detach().cpu(),
        scores=scores,
        token_mask=maps.word_mask,
    )


def _on_cpu(value: torch.Tensor | None) -> torch.Tensor | None:
    return None if value is None else value.detach().cpu()
