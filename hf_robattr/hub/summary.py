"""The few lines a recipe ends with: where the run's files are, its headline scores, and what to run next."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..training import RunRecord


__all__ = ["run_folder_summary", "saturation_note", "training_headline"]

# Measures shown in a training run's headline, with the direction that is more robust.
_HEADLINE_MEASURES = (
    ("topk_intersection", "top-k intersection", "higher"),
    ("max_sensitivity", "max sensitivity", "lower"),
)


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def saturation_note(saturated: dict[str, Any]) -> str:
    """The measures that cannot rank models on these inputs (``results.json``'s ``robustness_saturated``, see
    ``hf_robattr.robustness.saturation``): where each sits and on how many examples, and how to read them."""
    where = {"ceiling": "at its ceiling", "floor": "at chance", "noise": "no worse than random noise"}
    items = []
    for key, record in saturated.items():
        record = record if isinstance(record, dict) else {}
        judged = record.get("judged", record.get("scored"))  # records written before `judged` existed
        count = f" ({record['examples']} of {judged} examples)" if None not in (record.get("examples"), judged) else ""
        items.append(f"`{key}` {where.get(record.get('kind'), 'saturated')}{count}")
    return (
        "; ".join(items) + ". A saturated measure cannot rank "
        "models on these inputs: read it as untested, not as robust or fragile (a larger or calibrated radius, "
        "`epsilon='auto'`, may make it measure)."
    )


def training_headline(results: RunRecord | dict[str, Any]) -> list[str]:
    """The headline of a training run's record (a :class:`~hf_robattr.training.RunRecord`, or its ``results.json``
    dict): test accuracy, and per scored method its top-k intersection and max sensitivity (each with the direction
    that is more robust)."""
    record = results if isinstance(results, RunRecord) else RunRecord.from_json(results)
    lines = []
    if record.eval.accuracy is not None:
        count = record.dataset.num_eval_samples
        lines.append(f"Test accuracy {_percent(record.eval.accuracy)}" + (f" on {count} examples." if count else "."))
    scores, saturated = record.robustness, record.robustness_saturated
    methods = list(dict.fromkeys(key.split("/", 1)[0] for key in scores))
    parts = []
    for method in methods:
        shown = [
            f"{title} {scores[f'{method}/{key}']:.3f} ({better} is more robust"
            + ("; saturated)" if f"{method}/{key}" in saturated else ")")
            for key, title, better in _HEADLINE_MEASURES
            if isinstance(scores.get(f"{method}/{key}"), float)
            and scores[f"{method}/{key}"] == scores[f"{method}/{key}"]
        ]
        if shown:
            parts.append(f"{method}: " + ", ".join(shown))
    if parts:
        config = dict(record.robustness_config.settings)
        calibration = record.robustness_config.epsilon_calibration
        if isinstance(calibration, dict) and isinstance(calibration.get("value"), float):
            config["epsilon"] = f"auto = {calibration['value']:.4g}"
        how = ", ".join(f"{k} {config[k]:.4g}" if isinstance(config[k], float) else f"{k} {config[k]}"
                        for k in ("attack", "epsilon") if k in config)  # fmt: skip
        count = record.dataset.num_robustness_examples
        where = f" on {count} test examples" if count else ""
        lines.append(f"Attribution robustness{where}" + (f" ({how})" if how else "") + ": " + "; ".join(parts) + ".")
        if saturated:
            lines.append("Saturated measures (all of them in results.json): " + saturation_note(saturated))
    elif record.training.diverged:
        lines.append(
            f"Training diverged at step {record.training.diverged_at_step} (--divergence_loss "
            f"{record.training.divergence_loss}): attribution robustness was not scored."
        )
    elif not isinstance(results, dict) or results.get("robustness") is not None:  # scoring ran, nothing to show
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
    if pushed_repo and "/" in pushed_repo:
        lines.append(f"  pushed to https://huggingface.co/{pushed_repo}")
    elif pushed_repo:  # a bare NAME goes to the namespace of the token's user; the push logs the full URL
        lines.append(f"  pushed to https://huggingface.co/<your user name>/{pushed_repo}")
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
