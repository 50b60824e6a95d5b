"""The card's attribution picture: a few samples explained on the clean input and under the scored attack.

The maps come from :func:`~hf_robattr.robustness.explain_examples` (the scoring core's attack and scores) and are
drawn by :mod:`hf_robattr.figures`, the renderer the demo uses too.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..attribution.inputs import model_modality
from ..figures import figure_rows, rows_figure, save_figure
from ..robustness import RobustnessConfig
from ..robustness.explained import explain_examples, head


ATTRIBUTION_PICTURE = "attribution_maps.png"
TRAINING_PICTURE = "training_curves.png"


def draw_attribution_picture(
    model: torch.nn.Module,
    inputs: Any,
    path: str | Path,
    robustness_config: RobustnessConfig | Mapping[str, Any] | None = None,
    *,
    num_samples: int = 4,
    tokenizer: Any = None,
) -> Path:
    """Write the card's PNG for the first ``num_samples`` of ``inputs``, attacked as ``robustness_config`` says.

    ``robustness_config`` is the run's :class:`~hf_robattr.RobustnessConfig` (or a dict of its settings); its first
    method is drawn.
    """
    config = RobustnessConfig.from_options(robustness_config).resolved(model_modality(model))
    samples = head(inputs, num_samples)
    explained = explain_examples(model, samples, config)
    title = f"{explained.method}: clean vs. {config.attack} attack (epsilon={config.epsilon:.3g})"
    input_ids = samples.get("input_ids") if isinstance(samples, Mapping) else None
    rows = figure_rows(explained, model, input_ids=input_ids, tokenizer=tokenizer)
    return save_figure(rows_figure([rows], title=title), path)
