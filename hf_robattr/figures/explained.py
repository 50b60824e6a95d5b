"""Rows of explained examples for the attribution renderer: each example's clean and attacked map, its input
(image) or tokens (text), captioned with the prediction and its headline scores. The card's picture and the demo draw
through these."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..robustness.explained import ExplainedExamples
from .maps import attribution_figure


__all__ = ["FigureRows", "example_caption", "figure_rows", "label_name", "rows_figure", "tokens_without_special"]


def label_name(model: Any, index: int) -> str:
    """The class name of ``index`` from the model's ``config.id2label`` (the index when there is none)."""
    id2label = getattr(getattr(model, "config", None), "id2label", None) or {}
    name = id2label.get(index, id2label.get(str(index)))
    return str(name) if name is not None else str(index)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def example_caption(explained: ExplainedExamples, index: int, model: Any, prefix: str = "") -> str:
    """One line per example: the prediction (the attacked point keeps it) and the headline scores."""
    parts = [f"{prefix}{label_name(model, int(explained.maps.labels[index]))}"]
    if bool(explained.skipped[index]):
        parts.append("left out (cannot be perturbed, or a zero map)")
    elif not bool(explained.maps.perturbed[index]):
        parts.append("no label-preserving point")
    scores = explained.example_scores(index)
    for name, short in (("topk_intersection", "top-k"), ("kendall_tau", "tau")):
        if name in scores and scores[name] is not None:
            parts.append(f"{short} {_fmt(scores[name])}")
    return " · ".join(parts)


def tokens_without_special(
    explained: ExplainedExamples, input_ids: torch.Tensor, tokenizer: Any
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[list[str]]]:
    """Per example: the clean and attacked maps and the tokens at exactly the positions the scorer scores
    (``explained.token_mask``): [CLS]/[SEP]/[PAD]-like positions are hidden (they dwarf the words), while
    out-of-vocabulary words ([UNK]) are scored and so shown."""
    mask = explained.token_mask
    clean_rows, attacked_rows, token_rows = [], [], []
    for row, ids in enumerate(input_ids.tolist()):
        scored = mask[row].bool().tolist() if mask is not None else [True] * len(ids)
        keep = [position for position, kept in enumerate(scored[: len(ids)]) if kept] or list(range(len(ids)))
        clean_rows.append(explained.maps.clean_maps[row, keep])
        attacked_rows.append(explained.maps.attacked_maps[row, keep])
        token_rows.append(tokenizer.convert_ids_to_tokens([ids[p] for p in keep]))
    return clean_rows, attacked_rows, token_rows


@dataclass
class FigureRows:
    """The rows of one :class:`ExplainedExamples` as the renderer takes them (per-row lists)."""

    clean: list[torch.Tensor]
    attacked: list[torch.Tensor]
    captions: list[str]
    images: list[torch.Tensor] | None = None
    attacked_images: list[torch.Tensor] | None = None
    tokens: list[list[str]] | None = None


def figure_rows(
    explained: ExplainedExamples,
    model: Any,
    *,
    input_ids: torch.Tensor | None = None,
    tokenizer: Any = None,
    prefix: str = "",
) -> FigureRows:
    """The rows of ``explained``: images with their attacked twins, or tokens (special tokens hidden when
    ``tokenizer`` and ``input_ids`` are given), each captioned with its predictions and scores."""
    captions = [example_caption(explained, row, model, prefix) for row in range(len(explained))]
    maps = explained.maps
    if explained.is_image:
        return FigureRows(
            list(maps.clean_maps),
            list(maps.attacked_maps),
            captions,
            images=list(maps.features),
            attacked_images=list(maps.attacked_features),
        )
    if tokenizer is not None and input_ids is not None:
        clean, attacked, tokens = tokens_without_special(explained, input_ids, tokenizer)
        return FigureRows(clean, attacked, captions, tokens=tokens)
    mask = explained.token_mask.bool()
    clean = [maps.clean_maps[row][mask[row]] for row in range(len(explained))]
    attacked = [maps.attacked_maps[row][mask[row]] for row in range(len(explained))]
    return FigureRows(clean, attacked, captions)


def rows_figure(parts: Sequence[FigureRows], *, title: str | None = None) -> Any:
    """One figure of the rows of several explanations (e.g. two models on the same input), in order."""

    def joined(name: str) -> list | None:
        values = [getattr(part, name) for part in parts]
        return None if any(value is None for value in values) else [row for value in values for row in value]

    return attribution_figure(
        joined("clean"),
        joined("attacked"),
        images=joined("images"),
        attacked_images=joined("attacked_images"),
        tokens=joined("tokens"),
        row_labels=joined("captions"),
        title=title,
    )
