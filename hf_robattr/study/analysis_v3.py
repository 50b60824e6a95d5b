"""Study v3's analysis (issue 25.2-25.7): the claims on three co-primary measures with cell random effects, gated by
the manipulation check, saturation and the positive controls (:mod:`~hf_robattr.study.checks_v3`), decided by one
rule shape (:mod:`~hf_robattr.study.rules_v3`), with lack of fit, the fit covariate, the fixed-budget arm beside its
matched-fit twin, and the rules' simulated error rates (:mod:`~hf_robattr.study.error_rates_v3`).

Only usable runs enter a claim: main plain-SGD runs with status ``ok`` (under the two-sided matched fit: inside the
band); the others are counted and listed by outcome (:attr:`V3Findings.excluded`). Gradient methods use all of a
model's usable runs, attention methods those outside degenerate cells: cells where most runs fail the attention rule
(:mod:`~hf_robattr.study.summaries`: paired with the same-seed untrained model for arms trained from scratch).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from .cell_effects import cell_slope
from .checks_v3 import (
    CO_PRIMARY,
    CovariateSlope,
    LackOfFitRow,
    ManipulationCheck,
    Margin,
    PositiveControl,
    covariate_slope,
    design_doublings,
    lack_of_fit_row,
    manipulation_check,
    margin_for,
    measure_values,
    positive_control,
    value_keys,
    xs_cells_seeds,
)
from .claims import ClaimTest, Interaction
from .error_rates_v3 import ErrorRate, rule_error_rates
from .rules_v3 import claim_3_tests_v3, claim_tests_v3
from .settings import StudySettings
from .stats import Slope, slope_difference
from .summaries import RunSummary, sgd_runs


__all__ = ["BudgetContrast", "V3Findings", "analyse_v3", "budget_pairs"]


@dataclass(frozen=True)
class BudgetContrast:
    """One claim slope of the matched-fit arm beside the same slope of its fixed-budget twin (same task, model and
    grid): what changes without matched fit. ``budget_adjusted``: the budget arm's slope adjusted for its loss at the
    stop; ``difference``: budget - matched (independent runs)."""

    matched_arm: str
    budget_arm: str
    attention_type: str
    method: str
    measure: str
    matched: Slope
    budget: Slope
    budget_adjusted: Slope
    difference: Slope


@dataclass
class V3Findings:
    """What v3 checks beside the claims (see :mod:`~hf_robattr.study.checks_v3`). ``fit_outcomes``: per arm, the
    main SGD runs by matched-fit outcome (a fixed budget has none: its runs count by status); ``excluded``: per arm
    and outcome, the keys of the runs kept out of the claims; ``saturated``: the ``arm/attention/method/measure``
    read as untested because the scoring flagged them in most runs."""

    manipulation_check: list[ManipulationCheck] = field(default_factory=list)
    margins: list[Margin] = field(default_factory=list)
    positive_controls: list[PositiveControl] = field(default_factory=list)
    lack_of_fit: list[LackOfFitRow] = field(default_factory=list)
    covariate: list[CovariateSlope] = field(default_factory=list)
    error_rates: list[ErrorRate] = field(default_factory=list)
    fit_outcomes: dict[str, dict[str, int]] = field(default_factory=dict)
    saturated: list[str] = field(default_factory=list)
    excluded: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    budget_contrasts: list[BudgetContrast] = field(default_factory=list)


@dataclass
class _Family:
    """One model's slopes for one method family and measure, with what the rules need beside them."""

    slopes: dict[str, Slope] = field(default_factory=dict)
    margins: dict[str, float] = field(default_factory=dict)
    gates: dict[str, str] = field(default_factory=dict)
    controls: dict[str, bool] = field(default_factory=dict)


class _Model:
    """One model's runs and manipulation check; computes its slopes and checks one measure at a time."""

    def __init__(self, settings, findings, arm, attention, runs, clean, check):
        self.settings, self.findings, self.arm, self.attention = settings, findings, arm, attention
        self.runs, self.clean, self.check = runs, clean, check
        self.covariates: dict[tuple[str, str], CovariateSlope] = {}

    def gate(self, runs: list[RunSummary], method: str, measure: str, key: str) -> str:
        """Why this model's verdicts on ``method`` and ``measure`` are untested (``""``: they are not)."""
        flagged = sum(key in r.saturated for r in runs)
        if runs and flagged * 2 > len(runs):
            self.findings.saturated.append(f"{self.arm}/{self.attention}/{method}/{measure}")
            saturated = f"untested: saturated ({flagged} of {len(runs)} runs flagged by the scoring)"
        else:
            saturated = ""
        return self.check.reason if not self.check.passed else saturated

    def family(self, methods, measure: str, sign: int, attention_family: bool) -> _Family:
        runs = self.clean if attention_family else self.runs
        x, cells, seeds = xs_cells_seeds(runs)
        out, s = _Family(), self.settings
        for method in methods:
            key, smaller, factor = value_keys(s, self.arm, method, measure)
            if not any(key in r.values for r in runs):
                # untested, yet kept in its Holm family as a test that does not reject (as the rules state)
                out.slopes[method] = cell_slope(x, [math.nan] * len(runs), cells, seeds)
                out.margins[method] = math.nan
                out.gates[method] = "untested: no run stored a value of this method and measure"
                continue
            out.slopes[method] = cell_slope(x, measure_values(runs, key, sign), cells, seeds)
            doublings = design_doublings(s, self.arm)
            margin = margin_for(self.arm, self.attention, method, measure, runs, key, sign, s.margin, doublings)
            out.margins[method] = margin.margin
            self.findings.margins.append(margin)
            self.findings.lack_of_fit.append(
                lack_of_fit_row(self.arm, self.attention, method, measure, runs, key, sign, s.alpha)
            )
            covariate = covariate_slope(self.arm, self.attention, method, measure, runs, key, sign)
            self.findings.covariate.append(covariate)
            self.covariates[(method, measure)] = covariate
            gate = self.gate(runs, method, measure, key)
            if gate:
                out.gates[method] = gate
            if smaller is not None and attention_family:
                span = margin.margin * margin.doublings
                control = positive_control(
                    self.arm, self.attention, method, measure, runs, (smaller, key), sign, s.alpha, span, factor
                )
                if control is not None:
                    self.findings.positive_controls.append(control)
                    out.controls[method] = control.passed
        return out


def _claim_3_gates(kernel: _Family, softmax: _Family, second: list[ClaimTest]) -> dict[str, str]:
    """Per method, why claim 3 is untested: either model's gate (claim 3 needs both manipulation checks), then
    claim 2 not supported on the softmax model."""
    gates = {}
    for test in second:
        if test.method not in kernel.slopes:
            continue
        reason = kernel.gates.get(test.method) or softmax.gates.get(test.method, "")
        if not reason and test.verdict != "supported":
            reason = (
                f"untested: claim 2 is {test.verdict} for this method and measure; claim 3 is tested only where "
                "claim 2 is supported"
            )
        if reason:
            gates[test.method] = reason
    return gates


def _fit_outcomes(runs: list[RunSummary], arm: str) -> tuple[dict[str, int], dict[str, list[str]]]:
    main = [r for r in runs if r.arm == arm and r.role == "main" and r.regime == "sgd"]
    counts = Counter(r.fit_outcome or r.status for r in main)
    excluded = defaultdict(list)
    for run in main:
        if not run.usable:
            excluded[run.fit_outcome or run.status].append(run.key)
    return dict(sorted(counts.items())), {k: sorted(v) for k, v in sorted(excluded.items())}


def budget_pairs(settings: StudySettings) -> list[tuple[str, str]]:
    """``(matched arm, fixed-budget arm)`` for every fixed-budget arm with a two-sided matched-fit twin (the same
    model on the same data set)."""
    pairs = []
    for budget, _ in settings.arms:
        if budget.fit_rule != "budget":
            continue
        for matched, _ in settings.arms:
            if matched.fit_rule == "band" and (matched.model, matched.dataset) == (budget.model, budget.dataset):
                pairs.append((matched.arm, budget.arm))
    return pairs


def _budget_contrasts(settings, families, models) -> list[BudgetContrast]:
    rows = []
    for matched_arm, budget_arm in budget_pairs(settings):
        for (arm, attention, measure, attention_family), family in families.items():
            budget = families.get((budget_arm, attention, measure, attention_family))
            if arm != matched_arm or budget is None:
                continue
            for method, slope in family.slopes.items():
                if method not in budget.slopes:
                    continue
                adjusted = models[(budget_arm, attention)].covariates[(method, measure)].adjusted
                other = budget.slopes[method]
                rows.append(
                    BudgetContrast(
                        matched_arm, budget_arm, attention, method, measure, slope, other, adjusted,
                        slope_difference(other, slope),
                    )
                )  # fmt: skip
    return rows


def analyse_v3(
    settings: StudySettings, runs: list[RunSummary], degenerate: set[tuple]
) -> tuple[list[ClaimTest], list[Interaction], V3Findings]:
    """The v3 claims, their interactions, and the findings beside them, over the usable plain-SGD runs."""
    findings, claims, interactions = V3Findings(), [], []
    alpha = settings.alpha
    families: dict[tuple[str, str, str, bool], _Family] = {}
    models: dict[tuple[str, str], _Model] = {}
    for protocol, grid in settings.arms:
        arm = protocol.arm
        outcomes, excluded = _fit_outcomes(runs, arm)
        if outcomes:
            findings.fit_outcomes[arm] = outcomes
        if excluded:
            findings.excluded[arm] = excluded
        present = {}
        for attention in grid.attention_types:
            sgd = sgd_runs(runs, arm, attention)
            if not sgd:
                continue
            check = manipulation_check(arm, attention, sgd, alpha)
            findings.manipulation_check.append(check)
            clean = sgd_runs(runs, arm, attention, degenerate)
            present[attention] = models[(arm, attention)] = _Model(
                settings, findings, arm, attention, sgd, clean, check
            )
        for measure, sign in CO_PRIMARY:
            attention_families = {}
            for attention, model in present.items():
                gradient = model.family(protocol.gradient_methods, measure, sign, False)
                families[(arm, attention, measure, False)] = gradient
                claims += claim_tests_v3(
                    1, f"{arm}-{attention}", measure, gradient.slopes, gradient.margins, alpha=alpha,
                    gates=gradient.gates,
                )  # fmt: skip
                attention_families[attention] = model.family(protocol.attention_methods, measure, sign, True)
                families[(arm, attention, measure, True)] = attention_families[attention]
            softmax = attention_families.get("softmax")
            if softmax is None:
                continue
            second = claim_tests_v3(
                2, f"{arm}-softmax", measure, softmax.slopes, softmax.margins, alpha=alpha, gates=softmax.gates,
                controls=softmax.controls,
            )  # fmt: skip
            claims += second
            kernel = attention_families.get("kernel")
            if kernel is None:
                continue
            tests, pairs = claim_3_tests_v3(
                arm, measure, kernel.slopes, softmax.slopes, kernel.margins, alpha=alpha,
                gates=_claim_3_gates(kernel, softmax, second),
            )  # fmt: skip
            claims += tests
            interactions += pairs
        findings.error_rates += rule_error_rates(settings, arm, {a: (m.runs, m.clean) for a, m in present.items()})
    findings.budget_contrasts = _budget_contrasts(settings, families, models)
    return claims, interactions, findings
