"""Turn stored run records into the study's findings: per-cell summaries, trends, comparisons and the three claims.

Conventions:

- A run counts for the claims when its status is ``ok`` (matched budget: the target training loss was reached).
  ``not_fit``, ``diverged`` and ``error`` runs are counted and listed per cell, never silently dropped.
- The headline robustness score of a run is the top-k intersection under the top-k PGD attack, averaged over the
  gradient methods (``gradient/…``) or over the attention methods (``attention/…``); per-method values are in the
  tables and in ``results.json``.
- Trends are Spearman rank correlations over runs (seeds are replicates), with a p-value and a paired bootstrap
  95% CI. A trend "rises" when its CI lies above 0.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

import numpy as np

from .grid import StudySettings
from .runner import ROBUSTNESS_MEASURES
from .stats import Difference, MeanCI, Trend, difference_ci, mean_ci, rank_trend


__all__ = ["HEADLINE_MEASURE", "analyse", "claims", "run_values", "usable", "verdict"]

HEADLINE_MEASURE = "topk_intersection"
STATUSES = ("ok", "not_fit", "diverged", "error")
NO_RISE_BOUND = 0.3
DIFFERENCE_FIELDS = ("difference", "low", "high", "p_value", "n_a", "n_b")
DIAGNOSTICS = ("hessian_trace", "hessian_top_eigenvalue", "input_curvature", "attention_entropy")


def run_values(record: dict[str, Any], settings: StudySettings) -> dict[str, float]:
    """Flat scalar values of one run: accuracy, training cost, diagnostics, ``{method}/{measure}`` and the family
    averages ``gradient/{measure}`` and ``attention/{measure}``. Missing values are NaN."""
    values: dict[str, float] = {"accuracy": float(record.get("accuracy", math.nan))}
    training = record.get("training", {})
    for key in ("train_seconds", "seconds_per_step", "global_step", "epochs", "final_train_loss"):
        value = training.get(key)
        values[key] = math.nan if value is None else float(value)
    diagnostics = record.get("diagnostics", {})
    for key in DIAGNOSTICS:
        entry = diagnostics.get(key, {})
        values[key] = float(entry.get("value", math.nan))
        if "stderr" in entry:
            values[f"{key}_stderr"] = float(entry["stderr"])
    robustness = record.get("robustness", {})
    for family, methods in (("gradient", settings.gradient_methods), ("attention", settings.attention_methods)):
        for measure in ROBUSTNESS_MEASURES:
            per_method = [float(robustness.get(f"{m}/{measure}", math.nan)) for m in methods]
            for method, value in zip(methods, per_method):
                values[f"{method}/{measure}"] = value
            finite = [v for v in per_method if math.isfinite(v)]
            values[f"{family}/{measure}"] = float(np.mean(finite)) if finite else math.nan
    return values


def usable(record: dict[str, Any]) -> bool:
    """Whether a run counts for the claims (status ``ok``)."""
    return record.get("status") == "ok"


def _select(records: Iterable[dict[str, Any]], **criteria: Any) -> list[dict[str, Any]]:
    out = []
    for record in records:
        cell = record["cell"]
        fields = {**cell, "budget": record["budget"], "regime": record["regime"]}
        if all(
            fields.get(key) in value if isinstance(value, tuple) else fields.get(key) == value
            for key, value in criteria.items()
        ):
            out.append(record)
    return out


def _cell_key(record: dict[str, Any]) -> tuple:
    cell = record["cell"]
    return (
        record["budget"],
        cell["model"],
        cell["attention_type"],
        record["regime"],
        cell["learning_rate"],
        cell["batch_size"],
        cell["regularizer_weight"],
    )


def _label(cell: dict[str, Any], regime: str) -> str:
    text = f"{regime} lr={cell['learning_rate']:g} B={cell['batch_size']}"
    return text + (f" w={cell['regularizer_weight']:g}" if cell["regularizer"] != "none" else "")


def cell_summaries(
    records: list[dict[str, Any]], settings: StudySettings, statuses: tuple[str, ...] = ("ok",)
) -> list[dict[str, Any]]:
    """One row per cell and budget: status counts and, over its runs with one of ``statuses`` (default: the usable
    ones), means with 95% CIs of every value."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        groups[_cell_key(record)].append(record)
    rows = []
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2], k[3] != "sgd", k[3], k[5], k[4])):
        group = groups[key]
        first = group[0]
        counts = {status: sum(r.get("status") == status for r in group) for status in STATUSES}
        fitted = [run_values(r, settings) for r in group if r.get("status") in statuses]
        names = sorted({name for values in fitted for name in values})
        rows.append(
            {
                "budget": first["budget"],
                "model": first["cell"]["model"],
                "attention_type": first["cell"]["attention_type"],
                "regime": first["regime"],
                "label": _label(first["cell"], first["regime"]),
                "learning_rate": first["cell"]["learning_rate"],
                "batch_size": first["cell"]["batch_size"],
                "strength": first["strength"],
                "runs": len(group),
                "status_counts": counts,
                "errors": sorted({r["error"] for r in group if r.get("error")}),
                "values": {name: mean_ci([v.get(name, math.nan) for v in fitted]) for name in names},
            }
        )
    return rows


def _xy(records: list[dict[str, Any]], settings: StudySettings, x: str, y: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for record in records:
        values = run_values(record, settings)
        xs.append(record["strength"] if x == "strength" else values.get(x, math.nan))
        ys.append(values.get(y, math.nan))
    return xs, ys


def _trend(records: list[dict[str, Any]], settings: StudySettings, x: str, y: str) -> Trend:
    xs, ys = _xy(records, settings, x, y)
    return rank_trend(xs, ys)


def _sgd_runs(records: list[dict[str, Any]], model: str, attention: str, budget: str) -> list[dict[str, Any]]:
    chosen = _select(records, model=model, attention_type=attention, regime="sgd", budget=budget)
    return [r for r in chosen if usable(r) or (budget == "fixed" and r["status"] == "ok")]


def _values_of(records: list[dict[str, Any]], settings: StudySettings, name: str) -> list[float]:
    return [run_values(r, settings).get(name, math.nan) for r in records]


def strength_trends(records: list[dict[str, Any]], settings: StudySettings, budget: str) -> list[dict[str, Any]]:
    """Robustness against lr/batch over SGD runs: one row per model x attention type x method-or-family x measure."""
    rows = []
    for model in sorted({r["cell"]["model"] for r in records}):
        for attention in sorted({r["cell"]["attention_type"] for r in records if r["cell"]["model"] == model}):
            runs = _sgd_runs(records, model, attention, budget)
            if not runs:
                continue
            for target in ("gradient", "attention", *settings.methods):
                for measure in ROBUSTNESS_MEASURES[:3]:
                    trend = _trend(runs, settings, "strength", f"{target}/{measure}")
                    rows.append(
                        {
                            "model": model,
                            "attention_type": attention,
                            "target": target,
                            "measure": measure,
                            **asdict(trend),
                        }
                    )
    return rows


def sharpness_trends(records: list[dict[str, Any]], settings: StudySettings) -> list[dict[str, Any]]:
    """Robustness against sharpness (and curvature against curvature) over all usable matched runs per model and
    attention type (every regime: the mechanism should hold whatever produced the flatness)."""
    pairs = (
        ("hessian_trace", "gradient/topk_intersection"),
        ("hessian_top_eigenvalue", "gradient/topk_intersection"),
        ("input_curvature", "gradient/topk_intersection"),
        ("hessian_trace", "input_curvature"),
        ("hessian_trace", "attention/topk_intersection"),
        ("attention_entropy", "attention/topk_intersection"),
    )
    rows = []
    for model in sorted({r["cell"]["model"] for r in records}):
        for attention in sorted({r["cell"]["attention_type"] for r in records if r["cell"]["model"] == model}):
            runs = [r for r in _select(records, model=model, attention_type=attention, budget="matched") if usable(r)]
            for x, y in pairs:
                rows.append(
                    {
                        "model": model,
                        "attention_type": attention,
                        "x": x,
                        "y": y,
                        **asdict(_trend(runs, settings, x, y)),
                    }
                )
    return rows


def level_differences(records: list[dict[str, Any]], settings: StudySettings) -> list[dict[str, Any]]:
    """Kernel minus softmax at the same regime (matched budget), for the gradient and attention families."""
    rows = []
    matched = [r for r in records if r["budget"] == "matched" and usable(r)]
    cells = sorted(
        {(r["cell"]["model"], r["regime"], r["cell"]["learning_rate"], r["cell"]["batch_size"]) for r in matched}
    )
    for model, regime, lr, batch in cells:
        same = _select(matched, model=model, regime=regime, learning_rate=lr, batch_size=batch)
        kernel = [r for r in same if r["cell"]["attention_type"] == "kernel"]
        softmax = [r for r in same if r["cell"]["attention_type"] == "softmax"]
        if not kernel or not softmax:
            continue
        for family in ("gradient", "attention"):
            name = f"{family}/{HEADLINE_MEASURE}"
            diff = difference_ci(_values_of(kernel, settings, name), _values_of(softmax, settings, name))
            rows.append(
                {
                    "model": model,
                    "regime": regime,
                    "learning_rate": lr,
                    "batch_size": batch,
                    "family": family,
                    **asdict(diff),
                }
            )
    return rows


def _regime_runs(records: list[dict[str, Any]], model: str, attention: str, regime: str) -> list[dict[str, Any]]:
    return [
        r
        for r in _select(records, model=model, attention_type=attention, regime=regime, budget="matched")
        if usable(r)
    ]


def costs(records: list[dict[str, Any]], settings: StudySettings) -> list[dict[str, Any]]:
    """Training cost per matched cell: seconds to the target, seconds per step, and per-step cost relative to plain
    SGD at the same learning rate and batch size (the explicit baselines' overhead)."""
    rows = []
    matched = [r for r in records if r["budget"] == "matched" and r.get("training")]
    for summary in cell_summaries(matched, settings):
        same = _select(
            matched,
            model=summary["model"],
            attention_type=summary["attention_type"],
            regime="sgd",
            learning_rate=summary["learning_rate"],
            batch_size=summary["batch_size"],
        )
        plain = mean_ci(_values_of([r for r in same if usable(r)], settings, "seconds_per_step"))
        step = summary["values"].get("seconds_per_step", MeanCI(math.nan, math.nan, math.nan, 0))
        rows.append(
            {
                "model": summary["model"],
                "attention_type": summary["attention_type"],
                "regime": summary["regime"],
                "label": summary["label"],
                "train_seconds": asdict(
                    summary["values"].get("train_seconds", MeanCI(math.nan, math.nan, math.nan, 0))
                ),
                "seconds_per_step": asdict(step),
                "step_cost_vs_plain_sgd": step.mean / plain.mean if plain.n and step.n else math.nan,
            }
        )
    return rows


def _family_difference(
    a: list[dict[str, Any]], b: list[dict[str, Any]], settings: StudySettings, name: str
) -> Difference:
    return difference_ci(_values_of(a, settings, name), _values_of(b, settings, name))


def _strongest_sgd(records: list[dict[str, Any]], model: str, attention: str) -> list[dict[str, Any]]:
    runs = _sgd_runs(records, model, attention, "matched")
    if not runs:
        return []
    strongest = max(r["strength"] for r in runs)
    return [r for r in runs if r["strength"] == strongest]


def verdict(trends: list[Trend], expect_rise: bool) -> str:
    """``supported`` / ``contradicted`` / ``not supported`` / ``inconclusive`` / ``cannot be judged`` for trends
    expected to rise (``expect_rise``) or expected not to rise. "Not rising" is supported only when every CI's upper
    bound is below :data:`NO_RISE_BOUND` (absence of a detected rise alone is called inconclusive)."""
    if not trends or any(math.isnan(t.rho) or math.isnan(t.low) for t in trends):
        return "cannot be judged: too few usable runs"
    directions = [t.direction for t in trends]
    if expect_rise:
        if all(d == "rises" for d in directions):
            return "supported"
        return "contradicted" if any(d == "falls" for d in directions) else "not supported: no clear trend"
    if any(d == "rises" for d in directions):
        return "contradicted"
    if all(t.high < NO_RISE_BOUND for t in trends):
        return f"supported: a rise of rho >= {NO_RISE_BOUND} is excluded"
    return "inconclusive: no rise detected, but the CI does not exclude one"


def _trend_text(where: str, trend: Trend) -> str:
    verb = "shows no clear trend" if trend.direction == "no clear trend" else trend.direction
    return f"{verb} on the {where} ({trend.format()})"


def claims(records: list[dict[str, Any]], settings: StudySettings) -> dict[str, Any]:
    """The three claims, each as numbers, a verdict and one plain sentence that says what the data shows."""
    out: dict[str, Any] = {}
    name = f"gradient/{HEADLINE_MEASURE}"
    attention_name = f"attention/{HEADLINE_MEASURE}"
    vit_attentions = sorted({r["cell"]["attention_type"] for r in records if r["cell"]["model"] == "vit"})

    # Claim 1: gradient attributions vs implicit-regularization strength, against AdamW, and the cost.
    parts, versus_parts, trends, numbers = [], [], [], {}
    for attention in vit_attentions:
        trend = _trend(_sgd_runs(records, "vit", attention, "matched"), settings, "strength", name)
        strongest = _strongest_sgd(records, "vit", attention)
        versus = _family_difference(strongest, _regime_runs(records, "vit", attention, "adamw"), settings, name)
        trends.append(trend)
        numbers[attention] = {"trend": asdict(trend), "strongest_sgd_minus_adamw": asdict(versus)}
        parts.append(_trend_text(f"{attention} ViT", trend))
        versus_parts.append(f"{versus.format()} ({attention})")
    cost_rows = [c for c in costs(records, settings) if c["model"] == "vit" and c["regime"] not in ("sgd", "adamw")]
    cost_text = ", ".join(
        f"{c['regime']} {c['step_cost_vs_plain_sgd']:.1f}x ({c['attention_type']})"
        for c in cost_rows
        if math.isfinite(c["step_cost_vs_plain_sgd"])
    )
    baselines = []
    for attention in vit_attentions:
        sgd = _strongest_sgd(records, "vit", attention)
        for regime in sorted({r["regime"] for r in records if r["regime"] not in ("sgd", "adamw")}):
            diff = _family_difference(_regime_runs(records, "vit", attention, regime), sgd, settings, name)
            numbers[attention][f"{regime}_minus_strongest_sgd"] = asdict(diff)
            baselines.append(f"{regime} {diff.format()} ({attention})")
    result = verdict(trends, expect_rise=True)
    sentence = (
        f"Claim 1 ({result}): at matched fit, the top-k intersection of gradient attributions "
        f"({', '.join(settings.gradient_methods)}) under the top-k PGD attack "
        + "; ".join(parts or ["has no usable SGD runs"])
        + f"; the most strongly regularized SGD cell minus AdamW is {', '.join(versus_parts) or 'n/a'}"
    )
    if cost_text:
        sentence += f"; plain SGD adds no per-step cost, while the explicit baselines cost {cost_text} per step"
    if baselines:
        sentence += f", and their robustness minus that SGD cell is {'; '.join(baselines)}"
    out["claim_1"] = {"numbers": numbers, "cost": cost_rows, "verdict": result, "sentence": sentence + "."}

    # Claims 2 and 3: attention attributions under softmax (should not rise) and kernel (should rise).
    for claim, attention, expect_rise in (("claim_2", "softmax", False), ("claim_3", "kernel", True)):
        parts, trends, numbers = [], [], {}
        for model, where in (("vit", "ViT (images)"), ("bert", "BERT (text)")):
            runs = _sgd_runs(records, model, attention, "matched")
            if not any(r["cell"]["model"] == model and r["cell"]["attention_type"] == attention for r in records):
                continue
            trend = _trend(runs, settings, "strength", attention_name)
            trends.append(trend)
            numbers[model] = {"trend": asdict(trend)}
            parts.append(_trend_text(where, trend))
        result = verdict(trends, expect_rise)
        sentence = (
            f"Claim {claim[-1]} ({result}): under {attention} attention, the top-k intersection of attention "
            f"attributions ({', '.join(settings.attention_methods)}) against lr/batch at matched fit "
            + "; ".join(parts or ["has no runs"])
        )
        if claim == "claim_3":
            level = [
                row
                for row in level_differences(records, settings)
                if row["family"] == "attention" and row["regime"] == "sgd"
            ]
            numbers["kernel_minus_softmax_levels"] = level
            finite = [row for row in level if math.isfinite(row["difference"])]
            if finite:
                sentence += "; apart from the trend, kernel minus softmax at the same SGD cell is " + ", ".join(
                    f"{Difference(**{k: row[k] for k in DIFFERENCE_FIELDS}).format()} "
                    f"({row['model']} lr={row['learning_rate']:g} B={row['batch_size']})"
                    for row in finite
                )
        out[claim] = {"numbers": numbers, "verdict": result, "sentence": sentence + "."}
    return out


def fixed_vs_matched(records: list[dict[str, Any]], settings: StudySettings) -> dict[str, Any]:
    """The gradient-family trend under the fixed budget next to the matched one, and how far the fixed budget got."""
    rows = []
    fixed = [r for r in records if r["budget"] == "fixed"]
    for model in sorted({r["cell"]["model"] for r in fixed}):
        for attention in sorted({r["cell"]["attention_type"] for r in fixed if r["cell"]["model"] == model}):
            runs_fixed = _sgd_runs(records, model, attention, "fixed")
            runs_matched = _sgd_runs(records, model, attention, "matched")
            for family in ("gradient", "attention"):
                yname = f"{family}/{HEADLINE_MEASURE}"
                loss_trend = _trend(runs_fixed, settings, "strength", "final_train_loss")
                rows.append(
                    {
                        "model": model,
                        "attention_type": attention,
                        "family": family,
                        "matched": asdict(_trend(runs_matched, settings, "strength", yname)),
                        "fixed": asdict(_trend(runs_fixed, settings, "strength", yname)),
                        "fixed_final_loss_vs_strength": asdict(loss_trend),
                    }
                )
    return {"rows": rows}


def analyse(records: list[dict[str, Any]], settings: StudySettings) -> dict[str, Any]:
    """Everything the report shows, as JSON-ready data."""
    summaries = cell_summaries(records, settings)
    not_fit = cell_summaries([r for r in records if r.get("status") == "not_fit"], settings, ("not_fit",))
    return {
        "status_counts": {status: sum(r.get("status") == status for r in records) for status in STATUSES},
        "cells": [{**row, "values": {k: asdict(v) for k, v in row["values"].items()}} for row in summaries],
        "cells_not_fit": [{**row, "values": {k: asdict(v) for k, v in row["values"].items()}} for row in not_fit],
        "strength_trends": {budget: strength_trends(records, settings, budget) for budget in ("matched", "fixed")},
        "sharpness_trends": sharpness_trends(records, settings),
        "level_differences": level_differences(records, settings),
        "costs": costs(records, settings),
        "fixed_vs_matched": fixed_vs_matched(records, settings),
        "claims": claims(records, settings),
    }
