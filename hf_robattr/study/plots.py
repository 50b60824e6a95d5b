"""The study's figures, drawn from the :class:`~hf_robattr.study.analysis.Analysis` alone with
``matplotlib.figure.Figure`` (no pyplot: the caller's backend and global state are left alone) and saved as
palette PNGs (small files for the repository).

- ``robustness_vs_strength_<arm>.png``: per method, the cell means of the headline measure against
  ``log2(lr/B)`` (95% CI bars), one colour per attention type, AdamW as a dashed line;
- ``epsilon_sweep_<arm>.png``: the top-k attack and the noise baseline against the radius (usable SGD runs);
- ``preconditions.png``: each run's [CLS]-row coefficient of variation against raw attention's evidence recall
  above chance, with the degenerate thresholds;
- ``training_cost.png``: seconds per optimizer step of each regime relative to plain SGD at the same lr and B.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Collection
from pathlib import Path
from typing import NamedTuple

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from .analysis import Analysis
from .measure import value_key
from .settings import StudySettings
from .stats import mean_ci
from .summaries import Preconditions


__all__ = ["write_plots"]

_COLORS = {"softmax": "#1f77b4", "kernel": "#ff7f0e"}


def _save(figure: Figure, path: Path) -> None:
    canvas = FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    canvas.print_png(buffer, metadata={"Software": None})
    image = Image.open(buffer).convert("RGB").quantize(colors=64)
    image.save(path, format="PNG", optimize=True)


def _finite(value: float) -> bool:
    return value is not None and math.isfinite(value)


def _strength_figure(analysis: Analysis, arm: str, path: Path) -> bool:
    protocol, grid = analysis.settings.arm(arm)
    cells = [c for c in analysis.cells if c.arm == arm]
    if not cells:
        return False
    methods = protocol.methods
    columns = min(3, len(methods))
    rows = math.ceil(len(methods) / columns)
    figure = Figure(figsize=(4.2 * columns, 3.2 * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    measure = analysis.settings.headline_measure
    for axis, method in zip(axes.flat, methods):
        key = value_key("topk", protocol.main_epsilon, method, measure)
        for attention in grid.attention_types:
            sgd = sorted(
                (c for c in cells if c.attention_type == attention and c.regime == "sgd"),
                key=lambda c: c.log2_strength,
            )
            points = [(c.log2_strength, c.values[key]) for c in sgd if key in c.values and c.values[key].n]
            color = _COLORS.get(attention)
            if points:
                xs = [x for x, _ in points]
                means = [v.mean for _, v in points]
                errors = [
                    [v.mean - v.low if _finite(v.low) else 0 for _, v in points],
                    [v.high - v.mean if _finite(v.high) else 0 for _, v in points],
                ]
                axis.errorbar(xs, means, yerr=errors, fmt="o", color=color, capsize=2, label=f"{attention} SGD")
            for cell in cells:
                value = cell.values.get(key)
                if cell.attention_type == attention and cell.regime == "adamw" and value and value.n:
                    axis.axhline(value.mean, color=color, linestyle="--", linewidth=1, label=f"{attention} AdamW")
        axis.set_title(method, fontsize=9)
        axis.set_xlabel("log2(lr / B)")
        axis.set_ylabel(measure)
    for axis in list(axes.flat)[len(methods) :]:
        axis.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, loc="lower center", ncol=4, fontsize=8)
    figure.suptitle(f"{arm}: {measure} under the top-k attack (epsilon {protocol.main_epsilon:g}) vs lr/B")
    figure.tight_layout(rect=(0, 0.06, 1, 0.95))
    _save(figure, path)
    return True


def _epsilon_figure(analysis: Analysis, arm: str, path: Path) -> bool:
    protocol, grid = analysis.settings.arm(arm)
    runs = [r for r in analysis.runs if r.usable and r.arm == arm and r.regime == "sgd"]
    if not runs:
        return False
    figure = Figure(figsize=(4.2 * len(protocol.sweep_methods), 3.4))
    axes = figure.subplots(1, len(protocol.sweep_methods), squeeze=False)
    for axis, method in zip(axes.flat, protocol.sweep_methods):
        for attention in grid.attention_types:
            chosen = [r for r in runs if r.attention_type == attention]
            for attack, style in (("topk", "-"), ("noise", ":")):
                means = [
                    mean_ci(
                        [r.values.get(value_key(attack, e, method, "topk_intersection"), math.nan) for r in chosen]
                    ).mean
                    for e in protocol.epsilons
                ]
                if any(_finite(m) for m in means):
                    axis.plot(
                        protocol.epsilons,
                        means,
                        style,
                        marker="o",
                        color=_COLORS.get(attention),
                        label=f"{attention} {attack}",
                    )
        axis.set_title(method, fontsize=9)
        axis.set_xlabel("epsilon")
        axis.set_ylabel("top-k intersection")
        axis.legend(fontsize=7)
    figure.suptitle(f"{arm}: attack (solid) and noise baseline (dotted) against the radius")
    figure.tight_layout()
    _save(figure, path)
    return True


class _PreconditionAxes(NamedTuple):
    x: Callable[[Preconditions], float]
    y: Callable[[Preconditions], float]
    bars: tuple[float, float]  # the degenerate thresholds on x and y
    x_scale: str
    x_label: str
    y_label: str
    title: str


def _paired_axes(settings: StudySettings) -> _PreconditionAxes:
    return _PreconditionAxes(
        lambda p: p.entropy_drop,
        lambda p: p.recall_gain if _finite(p.recall_gain) else 0.0,
        (settings.min_entropy_drop, settings.min_recall_gain),
        "linear",
        "[CLS]-row entropy ratio drop vs the same-seed untrained model",
        "evidence recall gain vs untrained (0: no masks)",
        "Paired with the untrained model (degenerate: left of dashed or below dotted)",
    )


def _absolute_axes(settings: StudySettings) -> _PreconditionAxes:
    return _PreconditionAxes(
        lambda p: max(p.cls_cv, 1e-4),
        lambda p: p.evidence_recall - p.evidence_chance if _finite(p.evidence_recall) else 0.0,
        (settings.min_cls_cv, settings.min_recall_gain),
        "log",
        "[CLS]-row coefficient of variation (last layer)",
        "raw-attention evidence recall - chance (0 without masks)",
        "Attention preconditions per run (dashed/dotted: degenerate thresholds)",
    )


def _preconditions_figure(analysis: Analysis, path: Path) -> bool:
    """Each run's attention checks on the axes of the rule that judged it: one panel per rule used."""
    runs = [r for r in analysis.runs if r.usable and r.preconditions is not None]
    if not runs:
        return False
    settings = analysis.settings
    panels = [
        (axes, chosen)
        for axes, chosen in (
            (_paired_axes(settings), [r for r in runs if r.preconditions.entropy_drop is not None]),
            (_absolute_axes(settings), [r for r in runs if r.preconditions.entropy_drop is None]),
        )
        if chosen
    ]
    figure = Figure(figsize=(6 * len(panels), 4.2))
    markers = {arm: marker for arm, marker in zip(settings.arm_names, "osD^v")}
    for axis, (axes, chosen_runs) in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels):
        for arm in settings.arm_names:
            for attention, color in _COLORS.items():
                chosen = [r.preconditions for r in chosen_runs if r.arm == arm and r.attention_type == attention]
                if not chosen:
                    continue
                axis.scatter(
                    [axes.x(p) for p in chosen],
                    [axes.y(p) for p in chosen],
                    s=14,
                    color=color,
                    marker=markers[arm],
                    label=f"{arm} {attention}",
                    alpha=0.7,
                )
        axis.axvline(axes.bars[0], color="grey", linestyle="--", linewidth=1)
        axis.axhline(axes.bars[1], color="grey", linestyle=":", linewidth=1)
        axis.set_xscale(axes.x_scale)
        axis.set_xlabel(axes.x_label)
        axis.set_ylabel(axes.y_label)
        axis.set_title(axes.title, fontsize=9)
        axis.legend(fontsize=7)
    figure.tight_layout()
    _save(figure, path)
    return True


def _cost_figure(analysis: Analysis, path: Path) -> bool:
    rows = [c for c in analysis.costs if _finite(c.step_cost_vs_sgd) and c.label.split()[0] != "sgd"]
    rows += [
        c
        for c in analysis.costs
        if c.label.split()[0] == "sgd"
        and any(
            r.arm == c.arm and r.attention_type == c.attention_type and r.label.split()[1:3] == c.label.split()[1:3]
            for r in rows
        )
    ]
    if not rows:
        return False
    rows.sort(key=lambda c: (c.arm, c.attention_type, c.label))
    figure = Figure(figsize=(max(5, 0.6 * len(rows)), 4))
    axis = figure.subplots()
    axis.bar(
        range(len(rows)),
        [c.step_cost_vs_sgd for c in rows],
        color=["#2ca02c" if c.label.startswith("sgd") else "#d62728" for c in rows],
    )
    axis.set_xticks(range(len(rows)))
    axis.set_xticklabels([f"{c.arm} {c.attention_type}\n{c.label}" for c in rows], rotation=90, fontsize=6)
    axis.set_ylabel("seconds per step / plain SGD's")
    axis.set_title("Per-step training cost at equal lr and B (green: plain SGD)", fontsize=9)
    figure.tight_layout()
    _save(figure, path)
    return True


def write_plots(analysis: Analysis, directory: str | Path, only: Collection[str] | None = None) -> list[str]:
    """Write every figure into ``directory`` (or the ones named in ``only``); return the file names written (a figure
    with nothing to draw is not written)."""
    directory = Path(directory)
    figures: dict[str, Callable[[Path], bool]] = {}
    for arm in analysis.settings.arm_names:
        figures[f"robustness_vs_strength_{arm}.png"] = lambda path, arm=arm: _strength_figure(analysis, arm, path)
        figures[f"epsilon_sweep_{arm}.png"] = lambda path, arm=arm: _epsilon_figure(analysis, arm, path)
    figures["preconditions.png"] = lambda path: _preconditions_figure(analysis, path)
    figures["training_cost.png"] = lambda path: _cost_figure(analysis, path)
    if only is not None:
        if isinstance(only, str):
            raise TypeError(f"`only` must be a collection of figure names, not the string {only!r}.")
        unknown = sorted(set(only) - set(figures))
        if unknown:
            raise ValueError(f"`only` names no figure of this study: {unknown}; expected some of {sorted(figures)}.")
    directory.mkdir(parents=True, exist_ok=True)
    return [name for name, draw in figures.items() if (only is None or name in only) and draw(directory / name)]
