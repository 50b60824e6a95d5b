"""Training curves: robustness and sharpness over training, as the model card shows them (attribution maps:
:mod:`.maps`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


# Logged keys are matched by name: the training callbacks log e.g. "diagnostics/robustness/saliency/spearman" and
# "diagnostics/hessian_trace"; an eval adds an "eval_" prefix. The robustness panel shows the similarity measures
# (all in [-1, 1], so they share an axis).
ROBUSTNESS_KEY = re.compile(r"(topk_intersection|kendall_tau|spearman)$", re.IGNORECASE)
SHARPNESS_KEY = re.compile(r"(sharpness|hessian|eigenvalue|curvature)", re.IGNORECASE)
_LABEL_PREFIX = re.compile(r"^(eval_)?(diagnostics/)?(robustness/|sharpness/)?")
_SKIP_KEY = re.compile(r"(_std|_stderr|stderr|/std)$|num_samples|runtime|per_second", re.IGNORECASE)


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
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.5 * len(panels), 3.6))
    axes = figure.subplots(1, len(panels), squeeze=False)
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
    return path
