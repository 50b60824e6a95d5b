"""Pictures for model cards: attribution maps clean beside attacked, and robustness/sharpness over training."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


ATTRIBUTION_PICTURE = "attribution_maps.png"
TRAINING_PICTURE = "training_curves.png"

# Logged keys are matched by name: the training callbacks log e.g. "diagnostics/robustness/saliency/spearman" and
# "diagnostics/hessian_trace"; an eval adds an "eval_" prefix. The robustness panel shows the similarity measures
# (all in [-1, 1], so they share an axis).
ROBUSTNESS_KEY = re.compile(r"(topk_intersection|kendall_tau|spearman)$", re.IGNORECASE)
SHARPNESS_KEY = re.compile(r"(sharpness|hessian|eigenvalue|curvature)", re.IGNORECASE)
_LABEL_PREFIX = re.compile(r"^(eval_)?(diagnostics/)?(robustness/|sharpness/)?")
_SKIP_KEY = re.compile(r"(_std|_stderr|stderr|/std)$|num_samples|runtime|per_second", re.IGNORECASE)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _series(log_history: Sequence[dict[str, Any]], pattern: re.Pattern[str]) -> dict[str, tuple[list, list]]:
    series: dict[str, tuple[list, list]] = {}
    for row in log_history:
        step = row.get("step")
        if step is None:
            continue
        for key, value in row.items():
            if key == "step" or _SKIP_KEY.search(key) or not pattern.search(key):
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value):
                steps, values = series.setdefault(key, ([], []))
                steps.append(step)
                values.append(float(value))
    return series


def plot_training_curves(log_history: Sequence[dict[str, Any]], path: str | Path) -> Path | None:
    """Plot logged robustness and sharpness against the training step; ``None`` (no file) when neither was logged.

    Args:
        log_history: ``trainer.state.log_history`` (rows with a ``step`` and logged values).
        path: the PNG to write.
    """
    robustness = _series(log_history, ROBUSTNESS_KEY)
    sharpness = {key: value for key, value in _series(log_history, SHARPNESS_KEY).items() if key not in robustness}
    # Robustness similarities share one axis; each sharpness estimate has its own scale, so its own panel.
    panels = [("Attribution robustness", robustness)] if robustness else []
    panels += [(_LABEL_PREFIX.sub("", key), {key: series}) for key, series in sorted(sharpness.items())]
    if not panels:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False)
    for axis, (title, data) in zip(axes[0], panels):
        for key, (steps, values) in sorted(data.items()):
            axis.plot(steps, values, marker="o", markersize=3, label=_LABEL_PREFIX.sub("", key))
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("training step")
        axis.grid(alpha=0.3)
        if len(data) > 1:
            axis.legend(fontsize=7)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _as_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().float().cpu().numpy()
    return np.asarray(value, dtype=np.float32)


def _image_for_display(image: np.ndarray) -> np.ndarray:
    """``[C, H, W]`` or ``[H, W]`` to a displayable array scaled to [0, 1]."""
    if image.ndim == 3 and image.shape[0] in (1, 3):
        image = np.transpose(image, (1, 2, 0))
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    low, high = float(image.min()), float(image.max())
    return (image - low) / (high - low) if high > low else np.zeros_like(image)


def plot_attribution_maps(
    clean_maps: Any,
    attacked_maps: Any,
    path: str | Path,
    *,
    images: Any = None,
    attacked_images: Any = None,
    tokens: Sequence[Sequence[str]] | None = None,
    title: str | None = None,
) -> Path:
    """Draw attribution maps of a few samples, clean beside attacked, one row per sample.

    Args:
        clean_maps: ``[N, H, W]`` (images) or ``[N, T]`` (text) maps on the clean inputs.
        attacked_maps: the maps on the perturbed inputs, same shape.
        path: the PNG to write.
        images: optional ``[N, C, H, W]`` clean inputs, drawn in the first column.
        attacked_images: optional perturbed inputs, drawn in the last column.
        tokens: for text maps, the tokens of each sample (labels of the bars).
        title: the figure title.
    """
    clean, attacked = _as_numpy(clean_maps), _as_numpy(attacked_maps)
    if clean.shape != attacked.shape:
        raise ValueError(
            f"`clean_maps` {tuple(clean.shape)} and `attacked_maps` {tuple(attacked.shape)} must have the same shape."
        )
    if clean.ndim not in (2, 3) or clean.shape[0] == 0:
        raise ValueError(f"`clean_maps` must be [N, H, W] (images) or [N, T] (text) with N > 0, got {clean.shape}.")
    plt = _pyplot()
    count = clean.shape[0]
    if clean.ndim == 3:
        columns: list[tuple[str, Any]] = []
        if images is not None:
            columns.append(("input", _as_numpy(images)))
        columns += [("clean attribution", clean), ("attacked attribution", attacked)]
        if attacked_images is not None:
            columns.append(("attacked input", _as_numpy(attacked_images)))
        figure, axes = plt.subplots(count, len(columns), figsize=(2.4 * len(columns), 2.4 * count), squeeze=False)
        for row in range(count):
            for column, (name, data) in enumerate(columns):
                axis = axes[row][column]
                if name.endswith("input"):
                    picture = _image_for_display(data[row])
                    axis.imshow(picture, cmap="gray" if picture.ndim == 2 else None)
                else:  # clean and attacked maps of a sample share one colour scale
                    top = float(max(np.abs(clean[row]).max(), np.abs(attacked[row]).max())) or 1.0
                    axis.imshow(np.abs(data[row]), cmap="inferno", vmin=0.0, vmax=top)
                axis.set_xticks([])
                axis.set_yticks([])
                if row == 0:
                    axis.set_title(name, fontsize=9)
    else:
        figure, axes = plt.subplots(count, 1, figsize=(8, 1.6 * count), squeeze=False)
        for row in range(count):
            axis = axes[row][0]
            positions = np.arange(clean.shape[1])
            axis.bar(positions - 0.2, np.abs(clean[row]), width=0.4, label="clean")
            axis.bar(positions + 0.2, np.abs(attacked[row]), width=0.4, label="attacked")
            if tokens is not None:
                axis.set_xticks(positions)
                labels = [*list(tokens[row])[: len(positions)], *[""] * max(0, len(positions) - len(tokens[row]))]
                axis.set_xticklabels(labels, rotation=90, fontsize=6)
            if row == 0:
                axis.legend(fontsize=7)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
