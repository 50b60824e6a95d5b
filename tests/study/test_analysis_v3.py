"""Study v3's analysis end to end on fake runs with planted effects (``study_helpers.fake_run``: gradient maps rise
0.03 per doubling of lr/B, softmax attention maps are flat, kernel ones rise 0.04, curvature falls), and on records
changed to plant what each check must catch: curvature that does not fall (every verdict untested, on one model or
both), saturation, a positive control that fails, a zero slope under a huge cell spread, a bend in lr/B, the loss at
the stop as a covariate, excluded runs, a fixed-budget twin, NaN values and no runs at all. ``results.json`` holds
the new keys, round-trips and re-renders byte for byte."""

import gzip
import json
import math

import numpy as np
import pytest
from scipy import stats
from study_helpers import DEGENERATE_CELL, fake_run

from hf_robattr.study import arm_specs, get_settings
from hf_robattr.study.analysis import analyse
from hf_robattr.study.analysis_v3 import V3Findings, budget_pairs
from hf_robattr.study.checks_v3 import UNTREATED
from hf_robattr.study.report import render_report
from hf_robattr.study.results import V3_TOP_LEVEL, from_jsonable, load_results, save_results, to_jsonable
from hf_robattr.study.rules_v3 import NO_CONTROL
from hf_robattr.study.settings import StudySettings
from hf_robattr.study.stats import slope_difference


MAIN, HALF = "0.0313725", "0.0156863"  # the cpu scale's main radius (8/255) and half of it, as value keys spell them


@pytest.fixture(scope="module")
def settings():
    return get_settings("cpu", error_rate_simulations=200)


@pytest.fixture(scope="module")
def records(settings):
    protocol, grid = settings.arm("vit")
    return [fake_run(spec) for spec in arm_specs(protocol, grid)]


def _analysis(settings, records):
    return analyse(records, settings, expected_runs=len(records))


def _copy(records):
    return json.loads(json.dumps(records))


def _claims(analysis, claim, measure="topk_intersection", method=None):
    return [
        c
        for c in analysis.claims
        if c.claim == claim and c.measure == measure and (method is None or c.method == method)
    ]


def _set(record, method, measure, value, radius=MAIN):
    """Every example of ``method``'s ``measure`` under the top-k attack at ``radius`` set to ``value``."""
    key = f"topk|{radius}|{method}|{measure}"
    record["robustness"][key] = [value] * len(record["robustness"][key])


def _shift(record, method, measure, delta, radius=MAIN):
    key = f"topk|{radius}|{method}|{measure}"
    record["robustness"][key] = [None if v is None else v + delta for v in record["robustness"][key]]


@pytest.fixture(scope="module")
def planted(settings, records):
    return _analysis(settings, records)


def test_the_planted_verdicts_come_out(planted):
    assert all(check.passed for check in planted.v3.manipulation_check)
    assert {c.verdict for c in _claims(planted, 1)} == {"supported"}
    assert all(c.estimate == pytest.approx(0.03, abs=0.005) for c in _claims(planted, 1))
    second = _claims(planted, 2)
    assert second and all(c.verdict != "contradicted" for c in second)
    # flat softmax maps are not shown below a margin of one seed-SD over the grid with five seeds (the rule's
    # power is simulated in test_rules_v3.py), so claim 3 is untested wherever claim 2 is not supported
    third = {c.method: c for c in _claims(planted, 3)}
    for test in second:
        if test.verdict != "supported":
            assert third[test.method].verdict == "untested"
            assert third[test.method].untested.startswith(f"untested: claim 2 is {test.verdict}")
    assert {"topk_intersection", "kendall_tau", "max_sensitivity"} == {c.measure for c in planted.claims}


def test_curvature_that_does_not_fall_makes_every_verdict_untested(settings, records):
    rng = np.random.default_rng(0)
    flat = _copy(records)
    for record in flat:
        record["diagnostics"]["hessian_trace"]["value"] = 100.0 + rng.normal(0, 2)
    analysis = _analysis(settings, flat)
    assert not any(check.passed for check in analysis.v3.manipulation_check)
    assert analysis.claims and {c.verdict for c in analysis.claims} == {"untested"}
    assert all(c.untested.startswith(UNTREATED) and math.isnan(c.p) for c in analysis.claims)


def test_claim_3_needs_both_models_manipulation_checks(settings, records):
    rng = np.random.default_rng(1)
    changed = _copy(records)
    for record in changed:
        if record["cell"]["attention_type"] == "softmax":
            record["diagnostics"]["hessian_trace"]["value"] = 100.0 + rng.normal(0, 2)
    analysis = _analysis(settings, changed)
    checks = {c.attention_type: c for c in analysis.v3.manipulation_check}
    assert checks["kernel"].passed and not checks["softmax"].passed
    assert checks["softmax"].reason.startswith(UNTREATED + " (vit softmax: log Hessian trace slope")
    softmax = [c for c in analysis.claims if c.model == "vit-softmax"]
    assert softmax and all(c.untested == checks["softmax"].reason for c in softmax)
    kernel = [c for c in analysis.claims if c.model == "vit-kernel"]
    assert kernel and all(c.verdict != "untested" for c in kernel)
    third = [c for c in analysis.claims if c.claim == 3]
    assert third and all(c.untested == checks["softmax"].reason for c in third)


def test_a_measure_saturated_in_most_runs_is_untested(settings, records):
    key = f"topk|{MAIN}|saliency|topk_intersection"
    saturated = _copy(records)
    for record in saturated:
        record["saturated"] = {key: {"kind": "ceiling"}}
    analysis = _analysis(settings, saturated)
    chosen = _claims(analysis, 1, method="saliency")
    assert chosen and all(c.verdict == "untested" and c.untested.startswith("untested: saturated (") for c in chosen)
    assert {c.verdict for c in _claims(analysis, 1, method="input_x_gradient")} == {"supported"}
    assert "vit/softmax/saliency/topk_intersection" in analysis.v3.saturated


def test_the_positive_control_is_scipys_one_sided_t_test(settings, planted):
    control = next(c for c in planted.v3.positive_controls if c.attention_type == "softmax")
    runs = [
        r
        for r in planted.runs
        if r.usable and r.attention_type == "softmax" and r.regime == "sgd"
        and ("softmax", r.learning_rate, r.batch_size) != DEGENERATE_CELL  # degenerate cells: out of claims 2 and 3
    ]  # fmt: skip
    small, main = (f"topk|{e}|{control.method}|{control.measure}" for e in (HALF, MAIN))
    gains = [r.values[small] - r.values[main] for r in runs]
    expected = stats.ttest_1samp(gains, 0.0, alternative="greater")
    assert control.p == pytest.approx(expected.pvalue, rel=1e-9) and control.passed
    assert control.gain == pytest.approx(np.mean(gains)) and control.factor == pytest.approx(0.5)
    assert {c.method for c in planted.v3.positive_controls} == {"raw_attention"}  # the only swept attention method


def _falling_softmax_raw_attention(records, control_gain):
    """Softmax raw attention falls 0.02 per doubling (no gain: claim 2 holds); its half-radius score is
    ``control_gain`` above its main-radius score."""
    changed = _copy(records)
    for record in changed:
        if record["cell"]["attention_type"] == "softmax":
            x = record["log2_strength"] + 9
            for measure in ("topk_intersection", "kendall_tau"):
                _shift(record, "raw_attention", measure, -0.02 * x)
                main = record["robustness"][f"topk|{MAIN}|raw_attention|{measure}"]
                record["robustness"][f"topk|{HALF}|raw_attention|{measure}"] = [
                    None if v is None else v + control_gain for v in main
                ]
    return changed


def test_claim_2_support_needs_a_passing_positive_control(settings, records):
    passing = _analysis(settings, _falling_softmax_raw_attention(records, 0.05))
    (second,) = _claims(passing, 2, method="raw_attention")
    assert second.verdict == "supported" and second.note == ""
    (third,) = _claims(passing, 3, method="raw_attention")
    assert third.verdict == "supported"  # kernel rises 0.04, softmax falls: the interaction is positive
    failing = _analysis(settings, _falling_softmax_raw_attention(records, -0.05))
    control = next(
        c for c in failing.v3.positive_controls if c.attention_type == "softmax" and c.measure == "topk_intersection"
    )
    assert not control.passed and control.gain == pytest.approx(-0.05, abs=1e-6)
    (second,) = _claims(failing, 2, method="raw_attention")
    assert second.verdict == "inconclusive" and second.note.startswith("inconclusive: the positive control failed")
    (third,) = _claims(failing, 3, method="raw_attention")
    assert third.verdict == "untested" and third.untested.startswith("untested: claim 2 is inconclusive")
    # rollout has no control at all (not scored at half the radius): its equivalence, if shown, cannot count
    for test in _claims(passing, 2, method="rollout") + _claims(passing, 2, method="grad_attention"):
        assert test.verdict != "supported" and (test.note in ("", NO_CONTROL))


def test_margins_come_from_the_seed_to_seed_spread(planted):
    margin = next(m for m in planted.v3.margins if m.source == "spread")
    assert margin.doublings == pytest.approx(8.0) and margin.margin == pytest.approx(margin.run_sd / 8.0)
    claim = next(c for c in planted.claims if (c.model, c.method, c.measure) == ("vit-softmax", margin.method, margin.measure))  # fmt: skip
    assert claim.margin == margin.margin


def test_the_margin_spans_the_design_grid_when_an_end_cell_is_excluded(settings, records):
    """The lowest lr/B cell (lr 0.05, B 128) is excluded: the kept runs span 6 doublings, the margin still divides
    the seed-to-seed SD by the grid's 8 (a shrunken span would raise the bar a slope must clear)."""
    changed = _copy(records)
    for record in changed:
        excluded = "-lr0.05-b128-main" in record["key"]
        record["fit"] = {"outcome": "above_band" if excluded else "in_band"}
        record["status"] = "not_fit" if excluded else record["status"]
    analysis = _analysis(settings, changed)
    assert analysis.v3.excluded["vit"]["above_band"]
    margins = [m for m in analysis.v3.margins if m.source == "spread"]
    assert margins and all(m.doublings == 8.0 and m.margin == pytest.approx(m.run_sd / 8.0) for m in margins)
    kept = {c.n for c in analysis.claims if c.claim == 1}
    assert kept and max(kept) <= 40  # the 5 runs of the excluded cell are out


def _holm(p_values):
    """Holm's step-down adjustment, written out: the i-th smallest p times (m - i), running maximum, capped at 1."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, (len(p_values) - rank) * p_values[i])
        adjusted[i] = min(running, 1.0)
    return adjusted


def test_the_shown_p_is_the_claims_own_test_and_intervals_match_one_sided_tests(planted):
    """Claim 1 shows RISES (SMALL where contradicted), claim 2 SMALL (RISES where contradicted); the interval is the
    two-sided 1 - 2 alpha one, which excludes a bound exactly where the one-sided test at alpha rejects it."""
    for claim in (1, 2):
        for model in ("vit-softmax", "vit-kernel"):
            tests = [c for c in _claims(planted, claim) if c.model == model]
            if not tests or any(c.verdict == "untested" for c in tests):
                continue
            rises = _holm([c.slope.p_above(0.0) for c in tests])
            small = _holm([c.slope.p_below(c.margin) for c in tests])
            for c, r, s in zip(tests, rises, small):
                own, other = (r, s) if claim == 1 else (s, r)
                assert c.p == pytest.approx(other if c.verdict == "contradicted" else own)
                low, high = c.ci
                expected = stats.t.interval(0.90, c.slope.df, loc=c.slope.estimate, scale=c.slope.stderr)
                assert (low, high) == pytest.approx(expected)
                assert (low > 0) == (c.slope.p_above(0.0) < 0.05)
    assert any(c.verdict == "inconclusive" for c in _claims(planted, 2))  # the SMALL p is shown there


def test_a_method_no_run_scored_stays_in_its_holm_family(settings, records):
    changed = _copy(records)
    for record in changed:
        record["robustness"].pop(f"topk|{MAIN}|integrated_gradients|topk_intersection")
    analysis = _analysis(settings, changed)
    tests = [c for c in _claims(analysis, 1) if c.model == "vit-softmax"]
    assert {c.method for c in tests} == {"saliency", "input_x_gradient", "integrated_gradients"}
    missing = next(c for c in tests if c.method == "integrated_gradients")
    assert missing.verdict == "untested" and "no run stored a value" in missing.untested
    assert all("(3 methods)" in c.test for c in tests)
    scored = [c for c in tests if c is not missing]
    # Holm over 3 tests, the untested one counted as p = 1
    rises = _holm([c.slope.p_above(0.0) for c in scored] + [1.0])[:2]
    assert [c.p for c in scored] == pytest.approx(rises)


def test_a_zero_slope_under_a_huge_cell_spread_is_inconclusive(settings, records):
    rng = np.random.default_rng(5)
    cells = sorted({(r["cell"]["learning_rate"], r["cell"]["batch_size"]) for r in records})
    x = np.array([math.log2(lr / b) for lr, b in cells])
    effects = rng.normal(0, 0.3, len(cells))
    # the planted cell effects have no slope of their own: a zero slope, exactly, under a cell SD of about 0.3
    effects -= np.polyval(np.polyfit(x, effects, 1), x)
    changed = _copy(records)
    for record in changed:
        effect = effects[cells.index((record["cell"]["learning_rate"], record["cell"]["batch_size"]))]
        _set(record, "saliency", "topk_intersection", 0.5 + effect + rng.normal(0, 0.01))
    analysis = _analysis(settings, changed)
    chosen = _claims(analysis, 1, method="saliency")
    assert len(chosen) == 2 and {c.verdict for c in chosen} == {"inconclusive"}
    assert all(c.margin < 0.01 < c.ci[1] - c.ci[0] for c in chosen)  # a margin from the seed SD, a wide interval


def test_a_bend_in_lr_b_fails_the_line_and_lr_and_b_are_reported_apart(settings, records):
    rng = np.random.default_rng(6)
    changed = _copy(records)
    for record in changed:  # saliency follows lr alone
        value = 0.5 + 0.03 * math.log2(record["cell"]["learning_rate"]) + rng.normal(0, 0.005)
        _set(record, "saliency", "topk_intersection", value)
    analysis = _analysis(settings, changed)
    rows = [
        r
        for r in analysis.v3.lack_of_fit
        if (r.attention_type, r.method, r.measure) == ("softmax", "saliency", "topk_intersection")
    ]
    (row,) = rows
    assert row.test.rejects(0.05) and row.test.df_lack == 7
    assert row.lr.estimate == pytest.approx(0.03, abs=0.003) and abs(row.batch.estimate) < 0.003
    kept = [r for r in analysis.v3.lack_of_fit if not r.test.rejects(0.05)]
    assert kept and all(r.lr is None and r.batch is None for r in kept)


def test_the_loss_covariate_is_a_regression_of_the_cell_means(settings, records):
    rng = np.random.default_rng(7)
    changed = _copy(records)
    for record in changed:
        x = record["log2_strength"] + 9
        record["training"]["train_loss_at_stop"] = 0.005 * math.exp(0.05 * x + rng.normal(0, 0.05))
    analysis = _analysis(settings, changed)
    covariate = next(
        c
        for c in analysis.v3.covariate
        if (c.attention_type, c.method, c.measure) == ("softmax", "saliency", "topk_intersection")
    )
    runs = [r for r in analysis.runs if r.usable and r.attention_type == "softmax"]  # a complete 9 x 5 grid
    cells = sorted({(r.learning_rate, r.batch_size) for r in runs})
    key = f"topk|{MAIN}|saliency|topk_intersection"
    rows = [[r for r in runs if (r.learning_rate, r.batch_size) == cell] for cell in cells]
    y = np.array([np.mean([r.values[key] for r in group]) for group in rows])
    design = np.column_stack(
        [
            np.ones(len(cells)),
            [group[0].log2_strength for group in rows],
            [np.mean([math.log(r.fit_loss) for r in group]) for group in rows],
        ]
    )
    beta, residual, *_ = np.linalg.lstsq(design, y, rcond=None)
    stderr = math.sqrt(residual[0] / (len(cells) - 3) * np.linalg.inv(design.T @ design)[1, 1])
    assert covariate.adjusted.estimate == pytest.approx(beta[1], rel=1e-9)
    assert covariate.adjusted.stderr == pytest.approx(stderr, rel=1e-9) and covariate.adjusted.df == 6


def test_excluded_runs_are_counted_and_listed_by_outcome(settings, records):
    changed = _copy(records)
    for record in changed:
        record["fit"] = {"outcome": "in_band" if record["status"] == "ok" else "above_band"}
    analysis = _analysis(settings, changed)
    assert analysis.v3.fit_outcomes == {"vit": {"above_band": 1, "in_band": 89}}
    assert analysis.v3.excluded == {"vit": {"above_band": ["vit-kernel-sgd-lr0.2-b8-main-s4"]}}
    assert all(c.n <= 45 for c in analysis.claims if c.claim in (1, 2))
    assert "excluded from vit's claims, above_band (1): `vit-kernel-sgd-lr0.2-b8-main-s4`" in render_report(
        analysis, []
    )


def test_the_fixed_budget_arm_is_set_beside_its_matched_fit_twin(settings, records):
    protocol, grid = settings.arm("vit_budget")
    both = records + [fake_run(spec) for spec in arm_specs(protocol, grid)]
    analysis = _analysis(settings, both)
    assert {c.model for c in analysis.claims if c.claim == 1} == {f"{a}-{t}" for a in ("vit", "vit_budget") for t in ("softmax", "kernel")}  # fmt: skip
    contrasts = analysis.v3.budget_contrasts
    assert {(b.matched_arm, b.budget_arm) for b in contrasts} == {("vit", "vit_budget")}
    one = next(
        b for b in contrasts if (b.attention_type, b.method, b.measure) == ("softmax", "saliency", "kendall_tau")
    )
    assert one.difference == slope_difference(one.budget, one.matched)
    assert "## What changes without matched fit" in render_report(analysis, [])


def test_nan_values_are_dropped_and_a_measure_without_values_is_untested(settings, records):
    changed = _copy(records)
    for index, record in enumerate(changed):
        key = f"topk|{MAIN}|integrated_gradients|kendall_tau"
        record["robustness"][key] = [None] * len(record["robustness"][key])
        if index % 7 == 0:  # a few runs lose their curvature and one measure
            record["diagnostics"]["hessian_trace"]["value"] = float("nan")
            _set(record, "saliency", "topk_intersection", float("nan"))
    analysis = _analysis(settings, changed)
    assert all(check.passed for check in analysis.v3.manipulation_check)
    missing = _claims(analysis, 1, measure="kendall_tau", method="integrated_gradients")
    assert missing and all(c.verdict == "untested" and c.untested.startswith("untested: no estimate") for c in missing)
    saliency = _claims(analysis, 1, method="saliency")
    assert {c.verdict for c in saliency} == {"supported"} and all(c.n < 45 for c in saliency)


def test_no_runs_give_no_verdicts_and_an_empty_report(settings, tmp_path):
    analysis = analyse([], settings, expected_runs=198)
    assert analysis.claims == [] and analysis.v3 == V3Findings()
    path = save_results(analysis, tmp_path / "results.json.gz")
    assert render_report(load_results(path), []) == render_report(analysis, [])
    assert "No usable runs for this claim yet." in render_report(analysis, [])


def test_results_json_holds_the_v3_checks_round_trips_and_re_renders(planted, tmp_path):
    path = save_results(planted, tmp_path / "results.json.gz")
    with gzip.open(path, "rt") as handle:
        payload = json.load(handle)
    assert set(V3_TOP_LEVEL) <= set(payload)
    assert {"manipulation_check", "lack_of_fit", "error_rates"} <= set(payload)
    assert payload["manipulation_check"][0]["passed"] is True
    assert {row["rule"] for row in payload["error_rates"]} == {"claim 1", "claim 2", "claim 3"}
    assert {c["verdict"] for c in payload["claims"]} <= {"supported", "contradicted", "inconclusive", "untested"}
    loaded = load_results(path)
    assert to_jsonable(from_jsonable(V3Findings, to_jsonable(planted.v3))) == to_jsonable(planted.v3)
    assert to_jsonable(loaded) == to_jsonable(planted)
    report = render_report(planted, [])
    assert render_report(loaded, []) == report
    for section in ("## Manipulation check", "## Fit:", "## Margins", "## Positive controls", "## Lack of fit"):
        assert section in report, section
    assert "## Error rates at the spread these runs show" in report and "at this scale" in report


def test_the_error_rates_hold_on_the_planted_spread(planted):
    rates = planted.v3.error_rates
    assert {(e.attention_type, e.rule) for e in rates} == {
        ("softmax", "claim 1"), ("softmax", "claim 2"), ("kernel", "claim 1"), ("kernel", "claim 3"),
    }  # fmt: skip
    for rate in rates:
        assert sum(rate.rates.values()) == pytest.approx(1.0) and rate.seeds == 5
        assert rate.cells == (8 if rate.rule == "claim 2" else 9)  # claim 2 without the degenerate softmax cell
        # 200 draws at a true rate of at most 0.05 (the margin estimated, so not exactly): below 0.05 + 4 SE
        assert rate.error <= 0.05 + 4 * math.sqrt(0.05 * 0.95 / rate.simulations), rate
    # claim 3 at three truths: kernel 0, kernel at the margin, and both at the margin (interaction 0)
    third = [e for e in rates if e.rule == "claim 3"]
    assert [(e.true_slope > 0, e.softmax_slope > 0, e.bounded) for e in third] == [
        (False, False, "supported"), (True, False, "contradicted"), (True, True, "supported"),
    ]  # fmt: skip
    assert third[2].softmax_slope == third[2].true_slope == third[1].true_slope


def test_bad_analysis_settings_are_refused_by_name(settings):
    with pytest.raises(ValueError, match=r"StudySettings.analysis must be one of \['v2', 'v3'\], got 'v4'"):
        StudySettings(scale="x", arms=settings.arms, analysis="v4")
    with pytest.raises(ValueError, match="error_rate_simulations must be >= 1"):
        get_settings("cpu", error_rate_simulations=0)
    assert get_settings("cpu_v2", analysis="v3").analysis == "v3"  # an analysis setting: no run changes


def test_minilm_is_a_matched_fit_arm_its_misses_counted_and_excluded(settings, records):
    """Issue 25.3: MiniLM ends by the two-sided band after one epoch, so its runs count by fit outcome and a run
    below the band (already past it after the first epoch) is excluded and listed; it has no fixed-budget twin."""
    protocol, grid = settings.arm("minilm")
    assert protocol.fit_rule == "band" and budget_pairs(settings) == [("vit", "vit_budget")]
    text = [fake_run(spec) for spec in arm_specs(protocol, grid)]
    below = {r["key"] for r in text if r["cell"]["learning_rate"] == 0.1 and r["cell"]["batch_size"] == 8}
    for record in text:
        record["status"] = "not_fit" if record["key"] in below else "ok"
        record["fit"] = {"rule": "band", "outcome": "below_band" if record["key"] in below else "in_band"}
    analysis = _analysis(settings, _copy(records) + text)
    assert analysis.v3.fit_outcomes["minilm"] == {"below_band": len(below), "in_band": len(text) - len(below)}
    assert analysis.v3.excluded["minilm"] == {"below_band": sorted(below)}
