"""The study's figures, written as PNG files with ``matplotlib.figure.Figure`` (no pyplot: the caller's backend and
global state are left alone).

- ``robustness_vs_strength_<model>.png``: per method family and method, robustness of SGD runs against lr/batch,
  one line per attention type with its 95% CI band, AdamW as a dashed reference line.
- ``sharpness_vs_robustness_<model>.png``: Hessian trace against gradient-attribution robustness, one point per
  run, coloured by regime.
- ``training_cost.png``: mean wall-clock training time to the matched target per cell, with 95% CIs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.figure import Figure

from .analysis import HEADLINE_MEASURE, run_values, usable
from .grid import StudySettings


__all__ = ["plot_robustness_vs_strength", "plot_sharpness_vs_robustness", "plot_training_cost", "write_plots"]

_COLORS = {"softmax": "tab:blue", "kernel": "tab:orange"}


def _finite(value: float) -> bool:
    return value is not None and math.isfinite(value)


def plot_robustness_vs_strength(cells: list[dict[str, Any]], model: str, settings: StudySettings, path: Path) -> bool:
    """Robustness (top-k intersection) against lr/batch for ``model``; ``False`` when there is nothing to draw."""
    rows = [c for c in cells if c["budget"] == "matched" and c["model"] == model]
    if not rows:
        return False
    targets = ["gradient", "attention", *settings.methods]
    columns = min(4, len(targets))
    lines = math.ceil(len(targets) / columns)
    figure = Figure(figsize=(4 * columns, 3.2 * lines))
    axes = figure.subplots(lines, columns, squeeze=False)
    for axis, target in zip(axes.flat, targets):
        name = f"{target}/{HEADLINE_MEASURE}"
        for attention in sorted({c["attention_type"] for c in rows}):
            sgd = sorted(
                (c for c in rows if c["attention_type"] == attention and c["regime"] == "sgd"),
                key=lambda c: c["strength"],
            )
            points = [
                (c["strength"], c["values"].get(name)) for c in sgd if c["values"].get(name) and c["values"][name]["n"]
            ]
            color = _COLORS.get(attention)
            if points:
                xs = [x for x, _ in points]
                means = [v["mean"] for _, v in points]
                lows = [v["low"] if _finite(v["low"]) else v["mean"] for _, v in points]
                highs = [v["high"] if _finite(v["high"]) else v["mean"] for _, v in points]
                axis.plot(xs, means, marker="o", color=color, label=f"{attention} SGD")
                axis.fill_between(xs, lows, highs, color=color, alpha=0.2)
            for cell in rows:
                value = cell["values"].get(name)
                if cell["attention_type"] == attention and cell["regime"] == "adamw" and value and value["n"]:
                    axis.axhline(value["mean"], color=color, linestyle="--", linewidth=1, label=f"{attention} AdamW")
        axis.set_xscale("log")
        axis.set_title(f"{target} methods (mean)" if target in ("gradient", "attention") else target, fontsize=9)
        axis.set_xlabel("lr / batch")
        axis.set_ylabel("top-k intersection")
    for axis in list(axes.flat)[len(targets) :]:
        axis.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, loc="lower center", ncol=4, fontsize=8)
    figure.suptitle(f"{model}: attribution robustness under the top-k attack vs implicit-regularization strength")
    figure.tight_layout(rect=(0, 0.06, 1, 0.95))
    figure.savefig(path, dpi=110)
    return True


def plot_sharpness_vs_robustness(
    records: list[dict[str, Any]], model: str, settings: StudySettings, path: Path
) -> bool:
    """Hessian trace (log x where positive) against gradient-family robustness, one point per usable matched run."""
    runs = [r for r in records if r["cell"]["model"] == model and r["budget"] == "matched" and usable(r)]
    if not runs:
        return False
    attentions = sorted({r["cell"]["attention_type"] for r in runs})
    figure = Figure(figsize=(5 * len(attentions), 4))
    axes = figure.subplots(1, len(attentions), squeeze=False)
    regimes = sorted({r["regime"] for r in runs})
    colors = {regime: matplotlib.colormaps["tab10"](i) for i, regime in enumerate(regimes)}
    for axis, attention in zip(axes.flat, attentions):
        logscale = True
        for regime in regimes:
            chosen = [r for r in runs if r["regime"] == regime and r["cell"]["attention_type"] == attention]
            values = [run_values(r, settings) for r in chosen]
            xs = [v["hessian_trace"] for v in values]
            ys = [v[f"gradient/{HEADLINE_MEASURE}"] for v in values]
            logscale = logscale and all(x > 0 for x in xs if _finite(x))
            axis.scatter(xs, ys, color=colors[regime], label=regime, s=18)
        if logscale:
            axis.set_xscale("log")
        axis.set_title(f"{model}, {attention} attention", fontsize=9)
        axis.set_xlabel("Hessian trace (parameter space)")
        axis.set_ylabel("gradient methods: top-k intersection")
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return True


def plot_training_cost(costs: list[dict[str, Any]], path: Path) -> bool:
    """Bars of mean training time to the matched target per cell (95% CI error bars)."""
    rows = [c for c in costs if c["train_seconds"]["n"]]
    if not rows:
        return False
    labels = [f"{c['model']} {c['attention_type']}\n{c['label']}" for c in rows]
    means = [c["train_seconds"]["mean"] for c in rows]
    errors = [
        [m - (c["train_seconds"]["low"] if _finite(c["train_seconds"]["low"]) else m) for m, c in zip(means, rows)],
        [(c["train_seconds"]["high"] if _finite(c["train_seconds"]["high"]) else m) - m for m, c in zip(means, rows)],
    ]
    colors = [
        "tab:green" if c["regime"] == "sgd" else "tab:gray" if c["regime"] == "adamw" else "tab:red" for c in rows
    ]
    figure = Figure(figsize=(max(6, 0.45 * len(rows)), 4.5))
    axis = figure.subplots()
    axis.bar(range(len(rows)), means, yerr=errors, color=colors, capsize=2)
    axis.set_xticks(range(len(rows)))
    axis.set_xticklabels(labels, rotation=90, fontsize=6)
    axis.set_ylabel("training wall-clock to the target (s)")
    axis.set_title("Training cost per cell\n(green: plain SGD, grey: AdamW, red: explicit baselines)", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return True


def write_plots(
    analysis: dict[str, Any], records: list[dict[str, Any]], settings: StudySettings, directory: Path
) -> list[str]:
    """Write every figure into ``directory``; return the file names written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for model in sorted({r["cell"]["model"] for r in records}):
        name = f"robustness_vs_strength_{model}.png"
        if plot_robustness_vs_strength(analysis["cells"], model, settings, directory / name):
            written.append(name)
        name = f"sharpness_vs_robustness_{model}.png"
        if plot_sharpness_vs_robustness(records, model, settings, directory / name):
            written.append(name)
    if plot_training_cost(analysis["costs"], directory / "training_cost.png"):
        written.append("training_cost.png")
    return written
