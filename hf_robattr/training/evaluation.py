"""What a run measures after training: test accuracy (the Trainer's ``compute_metrics``) and attribution
robustness on the first test examples."""

from __future__ import annotations

import numpy as np
import torch
from transformers import EvalPrediction

from hf_robattr.data import model_inputs
from hf_robattr.robustness import RobustnessConfig, evaluate_attribution_robustness

from .data_preparation import PreparedData


__all__ = ["compute_accuracy", "score_test_robustness"]


def compute_accuracy(prediction: EvalPrediction) -> dict[str, float]:
    """``compute_metrics`` for the Trainer: top-1 accuracy."""
    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    return {"accuracy": float((np.argmax(logits, axis=-1) == prediction.label_ids).mean())}


def score_test_robustness(
    model: torch.nn.Module,
    data: PreparedData,
    config: RobustnessConfig,
    *,
    num_examples: int,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> dict[str, float]:
    """Score attribution robustness under ``config`` on the first ``num_examples`` test examples, with their true
    labels as attribution targets (:func:`~hf_robattr.evaluate_attribution_robustness`).

    Returns its dict: ``"{method}/{measure}"``, ``"{method}/{measure}_std"``, ``"num_samples"`` (examples scored) as
    floats (NaN where no example could be scored), and the nested ``"saturated"``, ``"baselines"`` (and, with
    ``epsilon="auto"``, ``"epsilon_calibration"``) entries; ``{}`` when ``num_examples`` is 0.
    """
    if num_examples == 0:
        return {}
    size = min(num_examples, len(data.test))
    batch = data.collator([data.test[i] for i in range(size)])
    model.eval()
    scores = evaluate_attribution_robustness(
        model, model_inputs(batch), config, targets=batch["labels"], device=device, progress=progress
    )
    return {key: value if isinstance(value, dict) else float(value) for key, value in scores.items()}
