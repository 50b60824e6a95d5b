"""Render the study: ``report.md`` (claims, tables, figures, protocol) and ``results.json`` (all numbers, all runs)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .analysis import HEADLINE_MEASURE, analyse
from .grid import StudySettings
from .plots import write_plots
from .stats import MeanCI, Trend


__all__ = ["write_report"]


def _ci(value: dict[str, Any] | None, digits: int = 3) -> str:
    if not value:
        return "n/a"
    return MeanCI(**value).format(digits)


def _trend(value: dict[str, Any]) -> str:
    return Trend(**value).format()


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    if not rows:
        return ["_(no rows)_", ""]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _status(counts: dict[str, int]) -> str:
    return " / ".join(str(counts.get(s, 0)) for s in ("ok", "not_fit", "diverged", "error"))


def _cells_table(cells: list[dict[str, Any]], budget: str) -> list[str]:
    header = [
        "model", "attention", "cell", "lr/B", "runs ok/not fit/diverged/error", "accuracy",
        f"gradient {HEADLINE_MEASURE}", f"attention {HEADLINE_MEASURE}", "gradient kendall_tau",
        "gradient max_sensitivity", "Hessian trace", "input curvature", "attention entropy", "train s",
    ]  # fmt: skip
    rows = []
    for c in cells:
        if c["budget"] != budget:
            continue
        v = c["values"]
        rows.append(
            [
                c["model"], c["attention_type"], c["label"], f"{c['strength']:.2g}", _status(c["status_counts"]),
                _ci(v.get("accuracy")), _ci(v.get(f"gradient/{HEADLINE_MEASURE}")),
                _ci(v.get(f"attention/{HEADLINE_MEASURE}")), _ci(v.get("gradient/kendall_tau")),
                _ci(v.get("gradient/max_sensitivity"), 4), _ci(v.get("hessian_trace"), 1),
                _ci(v.get("input_curvature"), 3), _ci(v.get("attention_entropy"), 2), _ci(v.get("train_seconds"), 1),
            ]
        )  # fmt: skip
    return _table(header, rows)


def _method_table(cells: list[dict[str, Any]], settings: StudySettings) -> list[str]:
    header = ["model", "attention", "cell", *settings.methods]
    rows = []
    for c in cells:
        if c["budget"] == "matched":
            rows.append(
                [c["model"], c["attention_type"], c["label"]]
                + [_ci(c["values"].get(f"{m}/{HEADLINE_MEASURE}")) for m in settings.methods]
            )
    return _table(header, rows)


def _settings_lines(settings: StudySettings) -> list[str]:
    s = settings
    return [
        f"- Data: images `{s.image_dataset}` ({s.image_size}x{s.image_size}, patch {s.patch_size}: "
        f"{(s.image_size // s.patch_size) ** 2} patches), text `{s.text_dataset}`; fixed splits (seed 0).",
        f"- Models from scratch: hidden {s.hidden_size}, {s.num_hidden_layers} layers, {s.num_attention_heads} heads, "
        f"MLP {s.intermediate_size}; kernel attention feature map `{s.kernel_feature_map}`.",
        f"- Matched fit: train until the logged training loss <= {s.target_train_loss} (images) / "
        f"{s.text_target_train_loss} (text), at most {s.max_epochs:g} epochs (runs that miss it are `not_fit`). "
        f"Fixed budget: {s.fixed_epochs:g} epochs. Constant learning rate. Divergence: loss non-finite or > "
        f"{s.divergence_loss:g}.",
        f"- Robustness: up to {s.eval_examples} correctly classified test examples; top-k PGD attack on each map "
        f"(k = {s.topk:g}, L-inf epsilon {s.attack_epsilon:.3g} on [-1, 1] pixels / {s.text_epsilon:g} relative on "
        f"embeddings, {s.attack_steps} steps, worst of {s.attack_restarts} restarts, label preserved); top-k "
        f"intersection and Kendall tau between clean and attacked maps; max-sensitivity over "
        f"{s.sensitivity_samples} uniform draws. Methods: {', '.join(s.methods)} (IG with {s.ig_steps} steps, "
        f"scored on the first {s.ig_eval_examples} of those examples: it costs ~10x the others under attack).",
        f"- Diagnostics on the first {s.diagnostics_batch_size} training examples: Hessian trace (Hutchinson, "
        f">= {s.trace_probes} probes, more up to {s.trace_max_probes} until stderr <= 10%), top Hessian eigenvalue "
        f"({s.power_iterations} power iterations), input curvature (>= {s.input_probes} probes), attention entropy.",
    ]


def _claims_lines(claims: dict[str, Any]) -> list[str]:
    lines = []
    for key in ("claim_1", "claim_2", "claim_3"):
        lines += [f"- {claims[key]['sentence']}", ""]
    return lines


def _trend_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    return [[r["model"], r["attention_type"], r["target"], r["measure"], _trend(_trend_fields(r))] for r in rows]


def _trend_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("rho", "p_value", "low", "high", "n")}


def _fixed_lines(fixed: dict[str, Any]) -> list[str]:
    header = [
        "model",
        "attention",
        "family",
        "matched: rho vs lr/B",
        "fixed budget: rho vs lr/B",
        "fixed: final loss vs lr/B",
    ]
    rows = [
        [
            r["model"],
            r["attention_type"],
            r["family"],
            _trend(r["matched"]),
            _trend(r["fixed"]),
            _trend(r["fixed_final_loss_vs_strength"]),
        ]
        for r in fixed["rows"]
    ]
    return _table(header, rows)


def _problem_lines(cells: list[dict[str, Any]]) -> list[str]:
    lines = []
    for c in cells:
        counts = c["status_counts"]
        bad = {k: counts[k] for k in ("not_fit", "diverged", "error") if counts.get(k)}
        if bad:
            text = ", ".join(f"{n} {k}" for k, n in bad.items())
            errors = f" Errors: {'; '.join(c['errors'])}" if c["errors"] else ""
            lines.append(
                f"- {c['budget']} {c['model']} {c['attention_type']} `{c['label']}`: {text} of {c['runs']}.{errors}"
            )
    return lines or ["- None: every run reached its target without diverging."]


def write_report(
    records: list[dict[str, Any]],
    settings: StudySettings,
    directory: str | Path,
    *,
    expected_runs: int,
    title_note: str | None = None,
    timing: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Analyse ``records`` and write ``report.md``, ``results.json`` and the PNG figures into ``directory``.

    ``expected_runs`` is the size of the grid: a report over fewer records says it is partial. ``title_note``
    (e.g. ``"PILOT"``) is put in the title. Returns the analysis.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    analysis = analyse(records, settings)
    figures = write_plots(analysis, records, settings, directory)
    complete = len(records) >= expected_runs
    results = {
        "scale": settings.scale,
        "settings": asdict(settings),
        "settings_fingerprint": settings.fingerprint(),
        "runs_expected": expected_runs,
        "runs_stored": len(records),
        "complete": complete,
        "timing": timing or {},
        "analysis": analysis,
        "runs": [{k: v for k, v in r.items() if k != "traceback"} for r in records],
    }
    with open(directory / "results.json", "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=1, default=str)

    note = f" ({title_note})" if title_note else ""
    counts = analysis["status_counts"]
    lines = [
        f"# Reproducing the paper's three claims: scale `{settings.scale}`{note}",
        "",
        f"Runs stored: {len(records)} of {expected_runs}"
        + ("" if complete else " - **partial study: the numbers below cover only the stored runs**")
        + f". Status: {counts['ok']} ok, {counts['not_fit']} not fit (missed the target loss), "
        f"{counts['diverged']} diverged, {counts['error']} errors.",
        "",
    ]
    if settings.scale == "ci":
        lines += ["> Scale `ci` is a smoke test of the pipeline (tiny grid, few steps): its numbers mean nothing.", ""]
    lines += ["## The claims", "", *_claims_lines(analysis["claims"])]
    lines += [
        "Reading: a trend **rises** when the 95% bootstrap CI of Spearman's rho lies above 0 and p < 0.05, **falls** "
        "when both say it is below, "
        "otherwise there is no clear trend. Claim 2 (no rise) counts as supported only when every CI's upper bound "
        "is below 0.3; a mere absence of a detected rise is called inconclusive. Only runs that reached the target "
        "loss (`ok`) count.",
        "",
        "## Figures",
        "",
    ]
    lines += [f"![{name}]({name})" for name in figures] + [""]
    lines += [
        "## Cells at matched fit (means with 95% CIs over seeds)",
        "",
        *_cells_table(analysis["cells"], "matched"),
    ]
    lines += [
        "### Top-k intersection per attribution method (matched fit)",
        "",
        *_method_table(analysis["cells"], settings),
    ]
    lines += ["## Trends: robustness against lr/batch (SGD runs, matched fit)", ""]
    lines += _table(
        ["model", "attention", "methods", "measure", "Spearman rho [95% CI], p"],
        _trend_rows(analysis["strength_trends"]["matched"]),
    )
    lines += ["## Sharpness against robustness (all regimes, matched fit)", ""]
    lines += _table(
        ["model", "attention", "x", "y", "Spearman rho [95% CI], p"],
        [
            [r["model"], r["attention_type"], r["x"], r["y"], _trend(_trend_fields(r))]
            for r in analysis["sharpness_trends"]
        ],
    )
    lines += ["## Level difference: kernel minus softmax at the same regime (matched fit, Welch 95% CI)", ""]
    lines += _table(
        ["model", "regime", "lr", "B", "family", "kernel - softmax"],
        [
            [r["model"], r["regime"], f"{r['learning_rate']:g}", str(r["batch_size"]), r["family"],
             _diff(r)]
            for r in analysis["level_differences"]
        ],
    )  # fmt: skip
    lines += ["## Training cost (matched fit)", ""]
    lines += _table(
        ["model", "attention", "cell", "train s to target", "s per step", "per-step cost vs plain SGD"],
        [
            [c["model"], c["attention_type"], c["label"], _ci(c["train_seconds"], 1), _ci(c["seconds_per_step"], 4),
             "n/a" if not math.isfinite(c["step_cost_vs_plain_sgd"]) else f"{c['step_cost_vs_plain_sgd']:.2f}x"]
            for c in analysis["costs"]
        ],
    )  # fmt: skip
    lines += [
        "## Fixed budget against matched fit",
        "",
        "The same SGD/AdamW cells trained for a fixed number of epochs. Under a fixed budget the large-batch cells "
        "take fewer steps and stop less fitted; if robustness tracks under-training rather than implicit "
        "regularization, the fixed-budget trend differs from the matched one.",
        "",
        *_fixed_lines(analysis["fixed_vs_matched"]),
        "### Cells under the fixed budget",
        "",
        *_cells_table(analysis["cells"], "fixed"),
        "## Runs that missed the target, diverged or failed (kept, not dropped)",
        "",
        *_problem_lines(analysis["cells"]),
        "",
        "Runs that missed the target were measured anyway; their values (not used for the claims):",
        "",
        *_cells_table(analysis["cells_not_fit"], "matched"),
        "",
        "## Protocol",
        "",
        *_settings_lines(settings),
        "",
    ]
    if timing:
        lines += ["## Timing", "", *[f"- {k}: {v}" for k, v in timing.items()], ""]
    (directory / "report.md").write_text("\n".join(lines), encoding="utf-8")
    return analysis


def _diff(row: dict[str, Any]) -> str:
    from .stats import Difference

    return Difference(**{k: row[k] for k in ("difference", "low", "high", "p_value", "n_a", "n_b")}).format()
