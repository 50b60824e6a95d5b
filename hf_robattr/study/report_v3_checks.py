"""The sections of the study v3 report on the checks that gate its claims: the manipulation check, the fit (excluded
runs, the loss covariate, the fixed-budget arm), margins, positive controls, lack of fit and the rules' error rates.
:func:`error_rate_lines` states the error rates in a few sentences (for the README)."""

from __future__ import annotations

from typing import Any

from .analysis import Analysis
from .error_rates_v3 import ErrorRate
from .report_tables import number, p_value, slope_text, table


__all__ = ["checks_sections_v3", "error_rate_lines"]


SERIES = ["arm", "attention", "method", "measure"]  # the columns naming one series of a check's table


def _series(row: Any) -> list[str]:
    """The cells of :data:`SERIES` for a check's row (any row with ``arm``, ``attention_type``, ``method``,
    ``measure``)."""
    return [row.arm, row.attention_type, row.method, row.measure]


def _manipulation(analysis: Analysis) -> list[str]:
    rows = [
        [
            m.arm,
            m.attention_type,
            slope_text(m.trace),
            slope_text(m.top_eigenvalue),
            p_value(m.p),
            "**passed**" if m.passed else f"**failed**: {m.reason.removeprefix('untested: ')}",
        ]
        for m in analysis.v3.manipulation_check
    ]
    header = ["arm", "attention", "log Hessian trace per doubling", "log top eigenvalue (reported)", "p (falls)"]
    text = (
        "Pre-registered: the slope of log Hessian trace on log2(lr/B) over each model's usable runs, with a cell "
        f"random effect, must be shown < 0 (one-sided, alpha {analysis.settings.alpha:g}); the slopes' p in the "
        "columns are two-sided."
    )
    return ["## Manipulation check: does curvature fall with lr/B?", "", text, "", *table([*header, "check"], rows)]


def _fit(analysis: Analysis) -> list[str]:
    v3, measure = analysis.v3, analysis.settings.headline_measure
    lines = ["## Fit: excluded runs, the loss at the stop as a covariate", ""]
    for arm, counts in v3.fit_outcomes.items():
        if counts:
            text = ", ".join(f"{n} {outcome}" for outcome, n in counts.items())
            lines.append(f"- {arm}: {text} (main SGD runs; a fixed budget has no band: its runs count by status).")
    for arm, outcomes in v3.excluded.items():
        for outcome, keys in outcomes.items():
            lines.append(
                f"- excluded from {arm}'s claims, {outcome} ({len(keys)}): " + ", ".join(f"`{k}`" for k in keys)
            )
    rows = [
        [c.arm, c.attention_type, c.method, slope_text(c.plain), slope_text(c.adjusted)]
        for c in v3.covariate
        if c.measure == measure
    ]
    lines += [
        "",
        f"Each claim slope of {measure} (higher = more robust) beside the same slope with the cell mean of log "
        "(training loss at the stop) as a covariate of the cell means (every co-primary measure in results.json):",
        "",
    ]
    return lines + table(["arm", "attention", "method", "slope", "slope adjusted for the loss at the stop"], rows)


def _budget(analysis: Analysis) -> list[str]:
    rows = [
        [
            f"{b.matched_arm} / {b.budget_arm}",
            b.attention_type,
            b.method,
            b.measure,
            slope_text(b.matched),
            slope_text(b.budget),
            slope_text(b.budget_adjusted),
            slope_text(b.difference),
        ]
        for b in analysis.v3.budget_contrasts
        if b.measure == analysis.settings.headline_measure
    ]
    if not rows:
        return []
    text = (
        "The fixed-budget arm trains the same model on the same data for a fixed number of examples, so its loss at "
        "the stop moves with lr/B; it is analysed by the same rules (its verdicts are in the claims above) and set "
        "here beside its matched-fit twin, headline measure (every co-primary measure in results.json)."
    )
    header = ["arms (matched / budget)", "attention", "method", "measure", "matched fit", "fixed budget"]
    header += ["fixed budget, adjusted for the loss", "budget - matched"]
    return ["## What changes without matched fit", "", text, "", *table(header, rows)]


def _margins(analysis: Analysis) -> list[str]:
    rows = [
        [
            *_series(m),
            number(m.run_sd, 4),
            number(m.doublings, 1),
            number(m.margin, 4) + ("" if m.source == "spread" else " (fixed: no spread)"),
        ]
        for m in analysis.v3.margins
    ]
    header = [*SERIES, "seed-to-seed SD", "doublings (D)", "margin = SD / D"]
    return ["## Margins", "", *table(header, rows)]


def _controls(analysis: Analysis) -> list[str]:
    rows = [
        [
            *_series(c),
            f"{c.factor:g}",
            number(c.gain, 4, True),
            number(c.margin_span, 4),
            p_value(c.p),
            str(c.n),
            "**passed**" if c.passed else "**failed**",
        ]
        for c in analysis.v3.positive_controls
    ]
    header = [*SERIES, "s", "gain (planted model)", "margin x D", "p (one-sided)"]
    text = (
        "The planted model g(x) = f(c + s(x - c)) is f scored at s times the radius; the gain is the mean paired "
        "difference (higher = more robust) over the model's runs, beside the change a margin-sized slope makes over "
        "the grid (margin x D). Attention methods and measures not scored at a smaller radius have no control: "
        "their claim-2 equivalence cannot count as support."
    )
    return [
        "## Positive controls: a planted, more robust model",
        "",
        text,
        "",
        *table([*header, "runs", "control"], rows),
    ]


def _lack_of_fit(analysis: Analysis) -> list[str]:
    rows = [
        [
            *_series(r),
            f"F = {number(r.test.f, 2)} on ({r.test.df_lack}, {r.test.df_pure})",
            p_value(r.test.p),
            slope_text(r.lr) if r.lr is not None else "",
            slope_text(r.batch) if r.batch is not None else "",
        ]
        for r in analysis.v3.lack_of_fit
    ]
    alpha = analysis.settings.alpha
    rejected = sum(r.test.rejects(alpha) for r in analysis.v3.lack_of_fit)
    text = (
        f"The line in log2(lr/B) is rejected in {rejected} of {len(rows)} series (alpha {alpha:g}, per model, method "
        "and co-primary measure at the main radius); there lr and B are reported separately (fitted together on the "
        "cell means: under the lr/B line they are b and -b)."
    )
    header = [*SERIES, "lack of fit", "p", "log2 lr slope", "log2 B slope"]
    return ["## Lack of fit of the line in log2(lr/B)", "", text, "", *table(header, rows)]


def _truth(rate: ErrorRate) -> str:
    truth = "0" if rate.true_slope == 0 else f"margin ({number(rate.true_slope, 4)})"
    return f"{truth}, softmax too" if rate.softmax_slope else truth


def _error_rates(analysis: Analysis) -> list[str]:
    rates = analysis.v3.error_rates
    rows = [
        [
            e.arm,
            e.attention_type,
            e.rule,
            e.method,
            _truth(e),
            f"{number(e.cell_sd, 4)} / {number(e.run_sd, 4)}",
            f"{e.cells} x {e.seeds}",
            f"**{number(e.error, 3)}**",
            ", ".join(f"{verdict} {number(share, 3)}" for verdict, share in e.rates.items()),
        ]
        for e in rates
    ]
    n = rates[0].simulations if rates else analysis.settings.error_rate_simulations
    text = (
        f"Each rule replayed on {n} simulated studies (seeded) with the model's own cells and seeds, at the cell and "
        "run spread of the headline measure of the family's least favourable method (largest cell / run SD), the "
        "margin estimated from each simulated study by the margin rule. The error bounded at alpha: *supported* at "
        "a true slope of 0 (claims 1 and 3) or at the margin (claim 2), *contradicted* at the margin (claims 1 and "
        "3) or at 0 (claim 2); claim 3 *supported* also where the softmax slope equals the kernel's (an interaction "
        f"of 0). Monte Carlo standard error near 0.05: {number((0.05 * 0.95 / n) ** 0.5, 3)}."
    )
    header = ["arm", "attention", "rule", "spread of", "true slope", "cell / run SD", "cells x seeds", "error"]
    return ["## Error rates at the spread these runs show", "", text, "", *table([*header, "all verdicts"], rows)]


def error_rate_lines(analysis: Analysis) -> list[str]:
    """One sentence per simulated rule and truth: how often it gives the verdict its guarantee bounds."""
    if analysis.v3 is None:
        return []
    out = []
    for e in analysis.v3.error_rates:
        out.append(
            f"{e.rule} on {e.arm}-{e.attention_type}: {e.bounded} at a true slope of "
            f"{'0' if e.true_slope == 0 else f'the margin ({number(e.true_slope, 4)})'}"
            f"{' on both attention types' if e.softmax_slope else ''} in "
            f"{number(100 * e.error, 1)}% of {e.simulations} simulated studies (alpha {analysis.settings.alpha:g})."
        )
    return out


def checks_sections_v3(analysis: Analysis) -> list[str]:
    """The sections of v3's checks, in the order a reader needs them (none for a v2 analysis)."""
    if analysis.v3 is None:
        return []
    lines = _manipulation(analysis) + _fit(analysis) + _budget(analysis) + _margins(analysis)
    lines += _controls(analysis) + _lack_of_fit(analysis) + _error_rates(analysis)
    if analysis.v3.saturated:
        lines += ["Read as untested (saturated in most runs): " + ", ".join(analysis.v3.saturated) + ".", ""]
    return lines
