"""Study v3's analysis (issue 25.4-25.7): the claims on three co-primary measures with cell random effects, gated by
the manipulation check, saturation and the positive controls (:mod:`~hf_robattr.study.checks_v3`), decided by one
rule shape (:mod:`~hf_robattr.study.rules_v3`), with lack of fit, the fit covariate and simulated error rates."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from .cell_effects import Spread, cell_slope, estimate_spread, simulate_error_rates
from .checks_v3 import (
    CO_PRIMARY,
    CovariateSlope,
    ErrorRate,
    LackOfFitRow,
    ManipulationCheck,
    Margin,
    PositiveControl,
    covariate_slope,
    lack_of_fit_row,
    manipulation_check,
    margin_for,
    measure_values,
    positive_control,
    value_keys,
    xs_cells_seeds,
)
from .claims import ClaimTest, Interaction
from .rules_v3 import claim_3_tests_v3, claim_tests_v3, decide_slope
from .settings import StudySettings
from .summaries import RunSummary, sgd_runs


__all__ = ["V3Findings", "analyse_v3"]


@dataclass
class V3Findings:
    """What v3 checks beside the claims (see :mod:`~hf_robattr.study.checks_v3`); ``fit_outcomes``: per arm, the
    main SGD runs by matched-fit outcome; ``saturated``: the ``arm/attention/method/measure`` read as untested."""

    manipulation_check: list[ManipulationCheck] = field(default_factory=list)
    margins: list[Margin] = field(default_factory=list)
    positive_controls: list[PositiveControl] = field(default_factory=list)
    lack_of_fit: list[LackOfFitRow] = field(default_factory=list)
    covariate: list[CovariateSlope] = field(default_factory=list)
    error_rates: list[ErrorRate] = field(default_factory=list)
    fit_outcomes: dict[str, dict[str, int]] = field(default_factory=dict)
    saturated: list[str] = field(default_factory=list)


def _saturated(runs: list[RunSummary], key: str) -> int:
    return sum(key in r.saturated for r in runs)


class _Model:
    """One model's runs and checks, for one measure at a time."""

    def __init__(self, settings, findings, arm, attention, runs, clean, check):
        self.settings, self.findings, self.arm, self.attention = settings, findings, arm, attention
        self.runs, self.clean, self.check = runs, clean, check

    def slopes(self, methods, measure, sign, attention_family: bool):
        runs = self.clean if attention_family else self.runs
        x, cells, seeds = xs_cells_seeds(runs)
        slopes, margins, gates, controls = {}, {}, {}, {}
        for method in methods:
            key, smaller = value_keys(self.settings, self.arm, method, measure)
            if not any(key in r.values for r in runs):
                continue
            slopes[method] = cell_slope(x, measure_values(runs, key, sign), cells, seeds)
            margin = margin_for(self.arm, self.attention, method, measure, runs, key, sign, self.settings.margin)
            margins[method] = margin.margin
            self.findings.margins.append(margin)
            self.findings.lack_of_fit.append(
                lack_of_fit_row(self.arm, self.attention, method, measure, runs, key, sign, self.settings.alpha)
            )
            self.findings.covariate.append(covariate_slope(self.arm, self.attention, method, measure, runs, key, sign))
            flagged = _saturated(runs, key)
            if not self.check.passed:
                gates[method] = self.check.reason
            elif flagged * 2 > len(runs):
                gates[method] = f"untested: saturated ({flagged} of {len(runs)} runs flagged by the scoring)"
                self.findings.saturated.append(f"{self.arm}/{self.attention}/{method}/{measure}")
            if smaller is not None and attention_family:
                span = margin.margin * margin.doublings
                control = positive_control(
                    self.arm, self.attention, method, measure, runs, (smaller, key), sign, self.settings.alpha, span
                )
                if control is not None:
                    self.findings.positive_controls.append(control)
                    controls[method] = control.passed
        return slopes, margins, gates, controls


def _error_rates(settings: StudySettings, model: _Model, method: str, claim: int) -> list[ErrorRate]:
    measure = settings.headline_measure
    key, _ = value_keys(settings, model.arm, method, measure)
    runs = model.runs
    x, cells, seeds = xs_cells_seeds(runs)
    y = measure_values(runs, key, 1)
    if len(set(cells)) < 3 or not any(math.isfinite(v) for v in y):
        return []
    spread = estimate_spread(x, y, cells, seeds)
    if not (math.isfinite(spread.cell_sd) and math.isfinite(spread.run_sd)):
        return []
    margin = margin_for(model.arm, model.attention, method, measure, runs, key, 1, settings.margin).margin
    layout = sorted({(c, xv) for c, xv in zip(cells, x)})
    cell_x = [xv for _, xv in layout]
    seed_count = max(len(set(seeds)), 1)

    def decide(xs, ys, cell_labels, blocks) -> str:
        slope = cell_slope(xs, ys, cell_labels, blocks)
        return decide_slope(claim, slope.p_above(0.0), slope.p_below(margin), settings.alpha)

    rows = []
    for truth in (0.0, margin):
        rates = simulate_error_rates(
            decide, cell_x, seeds=seed_count, slope=truth, spread=Spread(spread.cell_sd, spread.run_sd),
            simulations=settings.error_rate_simulations, seed=0,
        )  # fmt: skip
        rows.append(
            ErrorRate(
                model.arm, model.attention, measure, f"claim {claim} ({method})", truth, spread.cell_sd,
                spread.run_sd, settings.error_rate_simulations, rates,
            )
        )  # fmt: skip
    return rows


def _fit_outcomes(runs: list[RunSummary], arm: str) -> dict[str, int]:
    main = [r for r in runs if r.arm == arm and r.role == "main" and r.regime == "sgd"]
    return dict(sorted(Counter(r.fit_outcome or r.status for r in main).items()))


def analyse_v3(
    settings: StudySettings, runs: list[RunSummary], degenerate: set[tuple]
) -> tuple[list[ClaimTest], list[Interaction], V3Findings]:
    """The v3 claims, their interactions, and the findings beside them, over the usable plain-SGD runs."""
    findings, claims, interactions = V3Findings(), [], []
    alpha = settings.alpha
    for protocol, grid in settings.arms:
        findings.fit_outcomes[protocol.arm] = _fit_outcomes(runs, protocol.arm)
        models = {}
        for attention in grid.attention_types:
            sgd = sgd_runs(runs, protocol.arm, attention)
            if not sgd:
                continue
            check = manipulation_check(protocol.arm, attention, sgd, alpha)
            findings.manipulation_check.append(check)
            clean = sgd_runs(runs, protocol.arm, attention, degenerate)
            models[attention] = _Model(settings, findings, protocol.arm, attention, sgd, clean, check)
        for measure, sign in CO_PRIMARY:
            attention_results = {}
            for attention, model in models.items():
                name = f"{protocol.arm}-{attention}"
                slopes, margins, gates, _ = model.slopes(protocol.gradient_methods, measure, sign, False)
                claims += claim_tests_v3(1, name, measure, slopes, margins, alpha=alpha, gates=gates)
                attention_results[attention] = model.slopes(protocol.attention_methods, measure, sign, True)
            if "softmax" not in attention_results:
                continue
            slopes, margins, gates, controls = attention_results["softmax"]
            second = claim_tests_v3(
                2, f"{protocol.arm}-softmax", measure, slopes, margins, alpha=alpha, gates=gates, controls=controls
            )
            claims += second
            if "kernel" not in attention_results:
                continue
            kernel_slopes, kernel_margins, kernel_gates, _ = attention_results["kernel"]
            gates = {}
            for test in second:
                if test.method not in kernel_slopes:
                    continue
                gates[test.method] = kernel_gates.get(test.method, "") or (
                    "" if test.verdict == "supported" else "untested: claim 2 is not supported for this method"
                )
            tests, pairs = claim_3_tests_v3(
                protocol.arm, measure, kernel_slopes, slopes, kernel_margins, alpha=alpha, gates=gates
            )
            claims += tests
            interactions += pairs
        for attention, model in models.items():
            findings.error_rates += _error_rates(settings, model, protocol.gradient_methods[0], 1)
            if attention == "softmax":
                findings.error_rates += _error_rates(settings, model, protocol.attention_methods[0], 2)
    return claims, interactions, findings
