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


# The page's limits on its numeric settings (its sliders and number boxes); the explain path checks them too, since
# the /explain API of an image model skips Gradio's own checks.
NUM_STEPS_RANGE = (1, 100)
MIN_EPSILON = 0.0  # exclusive: the radius must be positive


def _number(name: str, value: Any) -> float:
    """A page setting as a finite number, or :class:`DemoInputError` naming ``name`` and what is expected."""
    if isinstance(value, bool):
        raise DemoInputError(f"Invalid setting: `{name}` must be a number, got the boolean {value!r}.")
    try:
        number = float(value)
    except (TypeError, ValueError) as error:
        raise DemoInputError(f"Invalid setting: `{name}` must be a number, got {value!r}.") from error
    if not math.isfinite(number):
        raise DemoInputError(f"Invalid setting: `{name}` must be a finite number, got {value!r}.")
    return number


def _page_numbers(epsilon: Any, k: Any, num_steps: Any) -> dict[str, Any]:
    """The numeric page settings given (``None`` or ``""`` keeps the base value), checked against the page's
    limits."""
    changes: dict[str, Any] = {}
    if epsilon is not None and epsilon != "":
        if isinstance(epsilon, str) and epsilon.strip().lower() == "auto":
            raise DemoInputError(
                "Invalid setting: `epsilon` must be a positive number; the page does not calibrate 'auto' (a run "
                "scored with 'auto' starts the page from the radius it calibrated)."
            )
        changes["epsilon"] = _number("epsilon", epsilon)
        if changes["epsilon"] <= MIN_EPSILON:
            raise DemoInputError(f"Invalid setting: `epsilon` must be a positive number, got {epsilon!r}.")
    if k is not None and k != "":
        number = _number("k", k)
        if number <= 0 or (number >= 1 and not number.is_integer()):
            raise DemoInputError(
                f"Invalid setting: `k` must be a count (integer >= 1) or a fraction in (0, 1), got {k!r}."
            )
        changes["k"] = int(number) if number >= 1 else number
    if num_steps is not None and num_steps != "":
        number, (low, high) = _number("num_steps", num_steps), NUM_STEPS_RANGE
        if not number.is_integer() or not low <= number <= high:
            raise DemoInputError(
                f"Invalid setting: `num_steps` must be a whole number from {low} to {high}, got {num_steps!r}."
            )
        changes["num_steps"] = int(number)
    return changes


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
    """``base`` with the page's settings (``None`` keeps the base value).

    ``epsilon`` must be a positive number (not ``"auto"``), ``k`` a count or a fraction in (0, 1), ``num_steps`` a
    whole number in :data:`NUM_STEPS_RANGE`; booleans are refused. A bad value raises :class:`DemoInputError`
    naming the setting and what is allowed."""
    changes: dict[str, Any] = {}
    if method:
        changes["methods"] = (method,)
        changes["method_kwargs"] = {name: kw for name, kw in base.method_kwargs.items() if name == method}
    for name, value in (("attack", attack), ("norm", norm)):
        if value is not None and value != "":
            changes[name] = value
    changes.update(_page_numbers(epsilon, k, num_steps))
    try:
        return base.replace(**changes)
    except (TypeError, ValueError) as error:
        raise DemoInputError(f"Invalid setting: {error}") from error


def mixed_kinds_error(models: Sequence[DemoModel]) -> str | None:
    """The message for models that take different inputs (an image and a text model), or ``None``."""
    if len({model.kind for model in models}) < 2:
        return None
    kinds = " and ".join(f"{model.name}: {model.kind}" for model in models)
    return f"The two models take different inputs ({kinds}); compare models of the same kind."


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
        # exactly the positions the scorer leaves out are hidden ([CLS]/[SEP]..., never [UNK])
        scored = explained.token_mask[0].bool().tolist() if explained.token_mask is not None else [True] * len(tokens)
        record["tokens"] = tokens
        record["scored_tokens"] = scored
        record["special_tokens"] = sorted({token for token, kept in zip(tokens, scored) if not kept})
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
        DemoInputError: an empty sentence, an unreadable image, an invalid setting, or models of different kinds.
    """
    if not models:
        raise DemoInputError("No model to explain with.")
    mixed = mixed_kinds_error(models)
    if mixed:
        raise DemoInputError(mixed)
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
            cells.append("left out" if value is None else f"{value:.3g}")  # 3 significant digits: 3e-4 stays
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
    """``[(token, weight in [0, 1])]`` of one model's clean or attacked map (the tokens the scorer leaves out, e.g.
    [CLS]/[SEP], hidden; [UNK] shown), for colouring the tokens on the page; both maps share the clean and attacked
    maximum."""
    tokens = record.get("tokens") or []
    scored = record.get("scored_tokens")
    if scored is None:  # an older record: hide by the special tokens' text
        special = set(record.get("special_tokens") or [])
        scored = [token not in special for token in tokens]
    keep = [i for i, kept in enumerate(scored) if kept]
    clean, attacked = record["clean_map"], record["attacked_map"]
    top = max([abs(values[i]) for values in (clean, attacked) for i in keep] or [1.0]) or 1.0
    values = clean if which == "clean" else attacked
    return [(tokens[i], abs(values[i]) / top) for i in keep]
