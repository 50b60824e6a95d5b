"""The error rates of study v3's decision rules at the spread the runs show (issue 25.4), for the report and README.

Each rule (:mod:`~hf_robattr.study.rules_v3`: claim 1, claim 2, claim 3) is replayed on studies simulated by
:func:`~hf_robattr.study.cell_effects.simulate_error_rates` (a cell random effect, seed effects and run noise) on the
model's own cells (their ``log2(lr/B)``) and number of seeds, at the cell and run spread that
:func:`~hf_robattr.study.cell_effects.estimate_spread` reads from its runs, on the headline measure. The rule is
replayed as the analysis runs it: the cell-means slope, and the margin *estimated from each simulated study* by the
margin rule (:func:`~.checks_v3.margin_rule`), so the rates include what estimating the margin costs. Two truths per
rule: a slope of 0 and a slope equal to the true margin (``run_sd / doublings``). Claim 3's softmax series is drawn
from the softmax model's layout and spread with a true slope of 0 (claim 3 is tested only where claim 2 holds), and
a third truth checks its interaction test: kernel and softmax slopes both at the kernel's true margin (an
interaction of 0, so *supported* is the error).

Of the family's methods, the one whose headline measure shows the largest cell spread relative to its run spread is
used (the least favourable: the margin is in run-spread units, the slope's standard error grows with the cell
spread). One method per rule, so no Holm: Holm over several methods only lowers the rates. Claim 2's positive
control is taken as passed (a failed control only turns *supported* into *inconclusive*). Simulated studies are
complete (one run per cell and seed); the stored grid may miss a few excluded runs.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from scipy import special

from .batched_rules import batch_slopes, decide_rows, layout_of, margins, near
from .cell_effects import Spread, cell_slope, estimate_spread, simulate_error_rates
from .checks_v3 import design_doublings, margin_rule, measure_values, value_keys, xs_cells_seeds
from .rules_v3 import decide_claim_3, decide_slope, untested_reason
from .settings import StudySettings
from .stats import slope_difference
from .summaries import RunSummary


__all__ = ["ErrorRate", "rule_error_rates"]


@dataclass(frozen=True)
class ErrorRate:
    """How often ``rule`` (``"claim 1"`` / ``"claim 2"`` / ``"claim 3"``) gives each verdict on simulated studies
    of one model: the true slope, the spread used (read from ``method``'s headline measure), the layout, and the
    share of each verdict in ``rates``."""

    arm: str
    attention_type: str
    measure: str
    rule: str
    true_slope: float
    cell_sd: float
    run_sd: float
    simulations: int
    rates: dict[str, float] = field(default_factory=dict)
    method: str = ""
    cells: int = 0
    seeds: int = 0
    softmax_slope: float = 0.0  # claim 3: the true slope of the softmax series beside the kernel's

    @property
    def bounded(self) -> str:
        """The verdict whose rate the rule bounds at ``alpha`` at this truth: at a true slope of 0, claim 1 or 3
        *supported* or claim 2 *contradicted*; at the margin, claim 1 or 3 *contradicted* or claim 2 *supported*."""
        if self.rule == "claim 3" and self.softmax_slope >= self.true_slope:
            return "supported"  # a true interaction <= 0 (the slope of 0 included)
        return "contradicted" if (self.rule == "claim 2") == (self.true_slope == 0) else "supported"

    @property
    def error(self) -> float:
        """The share of :attr:`bounded` verdicts."""
        return self.rates.get(self.bounded, 0.0)


@dataclass(frozen=True)
class _Layout:
    """A model's runs as the simulation needs them: its cells' ``x``, its seed count, and the spread chosen."""

    method: str
    cell_x: list[float]
    seeds: int
    spread: Spread


def _layout(settings: StudySettings, arm: str, methods: Sequence[str], runs: Sequence[RunSummary]) -> _Layout | None:
    """The least favourable method's spread (see the module docstring); ``None`` when no spread can be read."""
    x, cells, seeds = xs_cells_seeds(runs)
    if len(set(cells)) < 3:
        return None
    chosen = None
    for method in methods:
        key = value_keys(settings, arm, method, settings.headline_measure)[0]
        spread = estimate_spread(x, measure_values(runs, key, 1), cells, seeds)
        if not (math.isfinite(spread.cell_sd) and math.isfinite(spread.run_sd) and spread.run_sd > 0):
            continue
        ratio = spread.cell_sd / spread.run_sd
        if chosen is None or ratio > chosen[0]:
            chosen = (ratio, method, spread)
    if chosen is None:
        return None
    cell_x = [value for _, value in sorted(dict(zip(cells, x)).items())]
    return _Layout(chosen[1], cell_x, len(set(seeds)), chosen[2])


def _draws(layout: _Layout, simulations: int, seed: int, slope: float = 0.0) -> list[tuple]:
    """``simulations`` studies drawn from ``layout`` with a true slope of ``slope`` (``simulate_error_rates``'s
    model)."""
    drawn: list[tuple] = []

    def keep(*study) -> str:
        drawn.append(study)
        return ""

    simulate_error_rates(
        keep, layout.cell_x, seeds=layout.seeds, slope=slope, spread=layout.spread, simulations=simulations, seed=seed
    )
    return drawn


def _slope_rule(claim: int, settings: StudySettings, doublings: float):
    def decide(x, y, cells, blocks) -> str:
        slope = cell_slope(x, y, cells, blocks)
        if untested_reason(slope):
            return "untested"
        margin = margin_rule(x, y, cells, blocks, settings.margin, doublings)[2]
        return decide_slope(claim, slope.p_above(0.0), slope.p_below(margin), settings.alpha)

    def batch(x, ys, cells, blocks) -> list[str]:
        """``decide`` on every row of ``ys`` (see :mod:`.batched_rules`)."""
        layout = layout_of(x, cells, blocks)
        if layout is None:
            return [decide(list(x), list(y), cells, blocks) for y in ys]
        slopes = batch_slopes(layout, ys)
        margin, sure = margins(layout, slopes, np.abs(ys).max(axis=1), settings.margin, doublings)
        rises, small = slopes.p_above(0.0), slopes.p_below(margin)
        clear = slopes.clear & sure & ~near(rises, settings.alpha) & ~near(small, settings.alpha)
        return decide_rows(
            clear,
            lambda i: decide_slope(claim, float(rises[i]), float(small[i]), settings.alpha),
            lambda i: decide(list(x), list(ys[i]), cells, blocks),
        )

    decide.batch = batch
    return decide


def _claim_3_rule(settings: StudySettings, doublings: float, softmax: list[tuple]):
    studies = iter(softmax)

    def decide_against(x, y, cells, blocks, reference: tuple) -> str:
        kernel, reference = cell_slope(x, y, cells, blocks), cell_slope(*reference)
        if untested_reason(kernel) or untested_reason(reference):
            return "untested"
        margin = margin_rule(x, y, cells, blocks, settings.margin, doublings)[2]
        interaction = slope_difference(kernel, reference).p_above(0.0)
        return decide_claim_3(kernel.p_above(0.0), kernel.p_below(margin), interaction, settings.alpha)

    def decide(x, y, cells, blocks) -> str:
        return decide_against(x, y, cells, blocks, next(studies))

    def batch(x, ys, cells, blocks) -> list[str]:
        """``decide`` on every row of ``ys``, row ``i`` against the ``i``-th softmax study (see
        :mod:`.batched_rules`)."""
        references = [next(studies) for _ in range(len(ys))]
        first = references[0]  # (x, y, cells, blocks), as _draws keeps them
        layout, reference_layout = layout_of(x, cells, blocks), layout_of(first[0], first[2], first[3])
        same = all(r[0] == first[0] and r[2] == first[2] and r[3] == first[3] for r in references)
        if layout is None or reference_layout is None or not same:
            return [decide_against(list(x), list(y), cells, blocks, r) for y, r in zip(ys, references)]
        kernel = batch_slopes(layout, ys)
        reference = batch_slopes(reference_layout, np.asarray([r[1] for r in references], dtype=float))
        margin, sure = margins(layout, kernel, np.abs(ys).max(axis=1), settings.margin, doublings)
        rises, small = kernel.p_above(0.0), kernel.p_below(margin)
        va, vb = kernel.stderr**2, reference.stderr**2
        with np.errstate(invalid="ignore", divide="ignore"):
            df = (va + vb) ** 2 / (va**2 / kernel.df + vb**2 / reference.df)
            interaction = special.stdtr(df, -(kernel.estimate - reference.estimate) / np.sqrt(va + vb))
        clear = kernel.clear & reference.clear & sure
        for p in (rises, small, interaction):
            clear &= ~near(p, settings.alpha)
        return decide_rows(
            clear,
            lambda i: decide_claim_3(float(rises[i]), float(small[i]), float(interaction[i]), settings.alpha),
            lambda i: decide_against(list(x), list(ys[i]), cells, blocks, references[i]),
        )

    decide.batch = batch
    return decide


def _replay(
    settings, arm, attention, rule, layout: _Layout, decide_for, truths: Sequence[float] | None = None, softmax=0.0
) -> list[ErrorRate]:
    n = settings.error_rate_simulations
    seed = zlib.crc32(f"{arm}/{attention}/{rule}".encode())
    true_margin = layout.spread.run_sd / design_doublings(settings, arm)
    rows = []
    for truth in (0.0, true_margin) if truths is None else truths:
        rates = simulate_error_rates(
            decide_for(), layout.cell_x, seeds=layout.seeds, slope=truth, spread=layout.spread, simulations=n,
            seed=seed,
        )  # fmt: skip
        spread = layout.spread
        rows.append(
            ErrorRate(
                arm, attention, settings.headline_measure, rule, truth, spread.cell_sd, spread.run_sd, n, rates,
                layout.method, len(layout.cell_x), layout.seeds, softmax,
            )
        )  # fmt: skip
    return rows


def rule_error_rates(
    settings: StudySettings, arm: str, models: Mapping[str, tuple[list[RunSummary], list[RunSummary]]]
) -> list[ErrorRate]:
    """The error rates of each rule that applies to the models of ``arm`` (``models``: attention type -> (the runs
    of claim 1, the runs of claims 2 and 3)): claim 1 per model, claim 2 on the softmax model, claim 3 on the kernel
    model against the softmax one."""
    protocol = settings.protocol(arm)
    doublings = design_doublings(settings, arm)
    rows: list[ErrorRate] = []
    layouts = {a: _layout(settings, arm, protocol.attention_methods, clean) for a, (_, clean) in models.items()}
    for attention, (runs, _) in models.items():
        gradient = _layout(settings, arm, protocol.gradient_methods, runs)
        if gradient is not None:
            rows += _replay(
                settings, arm, attention, "claim 1", gradient, partial(_slope_rule, 1, settings, doublings)
            )
        attention_layout = layouts[attention]
        if attention == "softmax" and attention_layout is not None:
            rows += _replay(
                settings, arm, attention, "claim 2", attention_layout, partial(_slope_rule, 2, settings, doublings)
            )
        softmax = layouts.get("softmax")
        if attention == "kernel" and attention_layout is not None and softmax is not None:
            seed = zlib.crc32(f"{arm}/softmax/claim 3".encode())
            draws = _draws(softmax, settings.error_rate_simulations, seed)
            claim_3 = partial(_claim_3_rule, settings, doublings)
            rows += _replay(settings, arm, attention, "claim 3", attention_layout, partial(claim_3, draws))
            # both slopes at the kernel's true margin: the interaction is 0, so *supported* is the error
            both = attention_layout.spread.run_sd / doublings
            draws = _draws(softmax, settings.error_rate_simulations, seed, slope=both)
            rows += _replay(
                settings, arm, attention, "claim 3", attention_layout, partial(claim_3, draws), (both,), both
            )
    return rows
