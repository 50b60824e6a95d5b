"""The few lines a recipe ends with: where the run's files are, its headline scores, and what to run next."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


__all__ = ["run_folder_summary", "training_headline"]

# Measures shown in a training run's headline, with the direction that is more robust.
_HEADLINE_MEASURES = (
    ("topk_intersection", "top-k intersection", "higher"),
    ("max_sensitivity", "max sensitivity", "lower"),
)


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def training_headline(results: dict[str, Any]) -> list[str]:
    """The headline of a training run's ``results.json`` record: test accuracy, and per scored method its top-k
    intersection and max sensitivity (each with the direction that is more robust)."""
    lines = []
    evaluation, dataset = results.get("eval") or {}, results.get("dataset") or {}
    if evaluation.get("accuracy") is not None:
        count = dataset.get("num_eval_samples")
        lines.append(
            f"Test accuracy {_percent(evaluation['accuracy'])}" + (f" on {count} examples." if count else ".")
        )
    scores = results.get("robustness") or {}
    methods = list(dict.fromkeys(key.split("/", 1)[0] for key in scores))
    parts = []
    for method in methods:
        shown = [
            f"{title} {scores[f'{method}/{key}']:.3f} ({better} is more robust)"
            for key, title, better in _HEADLINE_MEASURES
            if isinstance(scores.get(f"{method}/{key}"), float)
            and scores[f"{method}/{key}"] == scores[f"{method}/{key}"]
        ]
        if shown:
            parts.append(f"{method}: " + ", ".join(shown))
    if parts:
        config = results.get("robustness_config") or {}
        how = ", ".join(f"{k} {config[k]:.4g}" if isinstance(config[k], float) else f"{k} {config[k]}"
                        for k in ("attack", "epsilon") if k in config)  # fmt: skip
        count = dataset.get("num_robustness_examples")
        where = f" on {count} test examples" if count else ""
        lines.append(f"Attribution robustness{where}" + (f" ({how})" if how else "") + ": " + "; ".join(parts) + ".")
    elif results.get("robustness") is not None:
        lines.append("Attribution robustness was not scored (--robustness_num_examples 0).")
    return lines


def run_folder_summary(
    output_dir: str | Path,
    headline: Sequence[str],
    *,
    pushed_repo: str | None = None,
    demo: bool = True,
    convert: bool = False,
) -> str:
    """The summary a recipe prints last: where the model, ``results.json`` and the card are, the ``headline`` lines,
    and the next commands (push unless ``pushed_repo`` says it is pushed, the explorer with ``demo``, the conversion
    to kernel attention with ``convert``)."""
    folder = Path(output_dir)
    lines = [
        f"Done. Everything is in {folder}/:",
        f"  model    {folder}/ (model.safetensors, config.json and the modeling code: loads with "
        "from_pretrained(..., trust_remote_code=True))",
        f"  results  {folder / 'results.json'}",
        f"  card     {folder / 'README.md'}",
        *headline,
        "Next:",
    ]
    if pushed_repo:
        lines.append(f"  pushed to https://huggingface.co/{pushed_repo}")
    else:
        lines.append(f"  hf-robattr push {folder} ORG/NAME   # publish it on the Hub (needs a token: hf auth login)")
    if demo:
        lines.append(f'  hf-robattr demo {folder}   # explore its attributions (pip install -e ".[demo]")')
    if convert:
        lines.append(
            f"  python recipes/convert_to_kernel.py --model_name_or_path {folder} --output_dir {folder}-kernel"
            "   # the same model with kernel attention"
        )
    return "\n".join(lines)
