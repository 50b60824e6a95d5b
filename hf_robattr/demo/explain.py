"""What the demo computes for one input: the maps, predictions and per-example scores of each model, as a picture
(the card's renderer) and a JSON-ready dict. No Gradio here, so it is tested and reused without a server."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..figures import figure_rows, figure_to_image, rows_figure
from ..robustness import ExplainedExamples, RobustnessConfig, explain_examples
from .inputs import model_inputs
from .loading import DemoInputError, DemoModel


# The scores of one example on the page: headline measures first.
DEMO_MEASURES = ("topk_intersection", "kendall_tau", "max_sensitivity", "spearman", "prediction_change_rate")
MEASURE_LABELS = {
    "topk_intersection": "top-k intersection (higher: more robust)",
    "kendall_tau": "Kendall tau (higher: more robust)",
    "spearman": "Spearman rho (higher: more robust)",
    "max_sensitivity": "max-sensitivity (lower: more robust)",
    "prediction_change_rate": "attack met a label change (1 = yes)",
}
# The settings the page lets the user change; everything else comes from the first model's configuration.
PAGE_SETTINGS = ("method", "attack", "epsilon", "norm", "k", "num_steps")

Progress = Callable[[float, str], None]


@dataclass
class DemoResult:
    """The outcome for one input: the picture (``PIL.Image``) and the JSON-ready scores (see :func:`explain`)."""

    picture: Any
    scores: dict[str, Any]


def page_config(
    base: RobustnessConfig,
    *,
    method: str | None = None,
    attack: str | None = None,
    epsilon: float | None = None,
    norm: str | None = None,
    k: float | None = None,
    num_steps: float | None = None,
) -> RobustnessConfig:
    """``base`` with the page's settings (``None`` keeps the base value); a bad value raises :class:`DemoInputError`
    with the config's own message (it names the setting and what is allowed)."""
    changes: dict[str, Any] = {}
    if method:
        changes["methods"] = (method,)
        changes["method_kwargs"] = {name: kw for name, kw in base.method_kwargs.items() if name == method}
    for name, value in (("attack", attack), ("epsilon", epsilon), ("norm", norm)):
        if value is not None and value != "":
            changes[name] = value
    for name, value in (("k", k), ("num_steps", num_steps)):
        if value is not None and value != "":
            number = float(value)
            changes[name] = int(number) if number >= 1 and number.is_integer() else number
    try:
        return base.replace(**changes)
    except (TypeError, ValueError) as error:
        raise DemoInputError(f"Invalid setting: {error}") from error


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _tokens(demo_model: DemoModel, inputs: Any) -> list[str] | None:
    if demo_model.tokenizer is None:
        return None
    return demo_model.tokenizer.convert_ids_to_tokens(inputs["input_ids"][0].tolist())


def model_scores(demo_model: DemoModel, explained: ExplainedExamples, inputs: Any) -> dict[str, Any]:
    """The JSON record of one model's explanation of the (single) example."""
    maps = explained.maps
    label = demo_model.label(int(maps.labels[0]))
    perturbed = bool(maps.perturbed[0])
    record: dict[str, Any] = {
        "name": demo_model.name,
        "attention_type": demo_model.attention_type,
        "prediction": label,
        # the attack only returns label-preserving points: the attacked input keeps the prediction when one exists
        "prediction_after_attack": label if perturbed else None,
        "label_preserving_point_found": perturbed,
        "left_out": bool(explained.skipped[0]),
        "scores": {name: _finite(value) for name, value in explained.example_scores(0).items()},
        "clean_map": maps.clean_maps[0].tolist(),
        "attacked_map": maps.attacked_maps[0].tolist(),
    }
    tokens = _tokens(demo_model, inputs)
    if tokens is not None:
        record["tokens"] = tokens
        record["special_tokens"] = sorted(set(tokens) & set(demo_model.tokenizer.all_special_tokens))
    return record


def explain(
    models: Sequence[DemoModel], value: Any, *, progress: Progress | None = None, **settings: Any
) -> DemoResult:
    """Explain ``value`` (an image file or a sentence) with every model, under the same attack.

    The settings start from the first model's configuration (its ``results.json``) changed by ``settings``: the
    page's ``method``, ``attack``, ``epsilon``, ``norm``, ``k``, ``num_steps`` (see :func:`page_config`). The scores
    of each model are ``evaluate_attribution_robustness`` on this one example with these settings. ``progress``
    is called with ``(fraction done, message)``.

    Returns:
        The picture (one row per model: input, clean map, attacked input, attacked map; or coloured tokens) and
        ``{"settings": ..., "notes": [...], "models": [{"name", "prediction", "prediction_after_attack",
        "label_preserving_point_found", "scores", "clean_map", "attacked_map", "tokens"?}]}``.

    Raises:
        DemoInputError: an empty sentence, an unreadable image, or an invalid setting.
    """
    if not models:
        raise DemoInputError("No model to explain with.")
    config = page_config(models[0].config, **settings)
    report = progress or (lambda fraction, message: None)
    notes: list[str] = []
    records, rows = [], []
    for index, demo_model in enumerate(models):
        report(index / len(models), f"Attacking the {config.methods[0]} map of {demo_model.name}")
        inputs, input_notes = model_inputs(demo_model, value)
        notes += [note for note in input_notes if note not in notes]
        explained = explain_examples(demo_model.model, inputs, config, measures=DEMO_MEASURES)
        records.append(model_scores(demo_model, explained, inputs))
        prefix = f"{demo_model.name}: " if len(models) > 1 else ""
        rows.append(
            figure_rows(
                explained,
                demo_model.model,
                input_ids=inputs.get("input_ids") if isinstance(inputs, dict) else None,
                tokenizer=demo_model.tokenizer,
                prefix=prefix,
            )
        )
    report(1.0, "Drawing the maps")
    title = f"{config.methods[0]}: clean vs. {config.attack} attack (epsilon={config.epsilon:.3g}, {config.norm})"
    picture = figure_to_image(rows_figure(rows, title=title))
    settings = {name: getattr(config, name) for name in ("attack", "epsilon", "norm", "k", "num_steps")}
    settings.update(
        method=config.methods[0], restarts=config.restarts, num_samples=config.num_samples, seed=config.seed
    )
    return DemoResult(picture=picture, scores={"settings": settings, "notes": notes, "models": records})


def summary_markdown(scores: dict[str, Any]) -> str:
    """The page's table: predictions before and after the attack and the scores, one column per model."""
    models = scores.get("models") or []
    if not models:
        return ""
    header = "| | " + " | ".join(f"**{m['name']}**" for m in models) + " |"
    lines = [header, "|---" * (len(models) + 1) + "|"]
    lines.append("| prediction | " + " | ".join(str(m["prediction"]) for m in models) + " |")
    lines.append(
        "| after the attack | "
        + " | ".join(
            "-" if m["prediction_after_attack"] is None else str(m["prediction_after_attack"]) for m in models
        )
        + " |"
    )
    for name in DEMO_MEASURES:
        cells = []
        for m in models:
            value = m["scores"].get(name)
            cells.append("left out" if value is None else f"{value:.3f}")
        lines.append(f"| {MEASURE_LABELS[name]} | " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    left_out = [m["name"] for m in models if m.get("left_out")]
    if left_out:
        text += (
            f"\n\nFor {', '.join(left_out)} this input cannot be scored (it cannot be perturbed, e.g. a constant "
            "image, or its clean map is all zeros): every measure leaves it out."
        )
    missing = [m["name"] for m in models if not m["label_preserving_point_found"] and not m.get("left_out")]
    if missing:
        text += (
            f"\n\nFor {', '.join(missing)} every point the attack visited changed the prediction: there is no "
            "label-preserving attacked map, so the similarity scores leave this example out."
        )
    for note in scores.get("notes") or []:
        text += f"\n\n*{note}*"
    return text


def token_highlights(record: dict[str, Any], which: str) -> list[tuple[str, float]]:
    """``[(token, weight in [0, 1])]`` of one model's clean or attacked map (special tokens hidden), for colouring
    the tokens on the page; both maps share the clean and attacked maximum."""
    tokens, special = record.get("tokens") or [], set(record.get("special_tokens") or [])
    keep = [i for i, token in enumerate(tokens) if token not in special]
    clean, attacked = record["clean_map"], record["attacked_map"]
    top = max([abs(values[i]) for values in (clean, attacked) for i in keep] or [1.0]) or 1.0
    values = clean if which == "clean" else attacked
    return [(tokens[i], abs(values[i]) / top) for i in keep]
