"""Analysis and report on planted effects (fake runs of the whole grid of study v2, scale ``cpu_v2``): the claim
tests find what was planted, the common evaluation set is an intersection, degenerate cells and unfitted runs are
kept out, and the report re-renders byte for byte from ``results.json.gz``."""

import gzip
import json

import numpy as np
import pytest
from study_helpers import POOL, fake_run

from hf_robattr.study import arm_specs, get_settings
from hf_robattr.study.grid import baseline_specs, sweep_specs
from hf_robattr.study.measure import value_key
from hf_robattr.study.prepare import StartPoint
from hf_robattr.study.report_files import render_from_results, write_report
from hf_robattr.study.report_tables import column_table, number
from hf_robattr.study.results import load_results
from hf_robattr.study.stats import Difference
from hf_robattr.study.sweep import choose_weights


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    settings = get_settings("cpu_v2")
    records = []
    for protocol, grid in settings.arms:
        records += [fake_run(s) for s in arm_specs(protocol, grid) + sweep_specs(protocol, grid)]
    chosen = {(c.attention_type, c.regularizer): c.chosen for c in choose_weights(records, settings)}
    for protocol, grid in settings.arms:
        records += [fake_run(s) for s in baseline_specs(protocol, grid, chosen)]
    directory = tmp_path_factory.mktemp("report")
    points = {
        "vit/softmax": StartPoint(
            "vit",
            "softmax",
            "x",
            "warm_start",
            {"global_step": 80, "num_train_examples_seen": 2560, "train_loss_at_stop": 0.66},
        )
    }
    write_report(records, settings, directory, expected_runs=len(records) + 1, start_points=points, title_note="TEST")
    return settings, records, directory, load_results(directory / "results.json.gz")


def _claims(analysis, claim, model):
    return {c.method: c for c in analysis.claims if c.claim == claim and c.model == model}


def test_claims_find_the_planted_effects(study):
    settings, _, _, analysis = study
    for arm in settings.arm_names:
        for attention in ("softmax", "kernel"):
            tests = _claims(analysis, 1, f"{arm}-{attention}")
            assert set(tests) == set(settings.protocol(arm).gradient_methods)
            assert all(
                t.verdict == "supported" and t.estimate == pytest.approx(0.03, abs=0.01) for t in tests.values()
            )
        softmax = _claims(analysis, 2, f"{arm}-softmax")
        assert all(t.verdict == "supported" and abs(t.estimate) < 0.01 for t in softmax.values())
        kernel = _claims(analysis, 3, arm)
        assert all(t.verdict == "supported" and t.estimate == pytest.approx(0.04, abs=0.01) for t in kernel.values())
    assert {i.family for i in analysis.interactions} == set(settings.arm_names)


def test_degenerate_cells_and_unfitted_runs_are_kept_out(study):
    _, _, directory, analysis = study
    (degenerate,) = [c for c in analysis.cells if c.degenerate]
    assert (degenerate.arm, degenerate.attention_type, degenerate.learning_rate, degenerate.batch_size) == (
        "vit",
        "softmax",
        0.05,
        128,
    )
    assert _claims(analysis, 2, "vit-softmax")["raw_attention"].n == 15  # 4 cells x 5 seeds, the degenerate one out
    assert _claims(analysis, 1, "vit-softmax")["saliency"].n == 20  # claim 1 keeps it
    assert _claims(analysis, 1, "vit-kernel")["saliency"].n == 19  # one run missed the fit
    report = (directory / "report.md").read_text()
    assert "`vit-kernel-sgd-lr0.2-b8-main-s4`: not_fit" in report
    assert "degenerate attention: vit softmax `sgd lr=0.05 B=128`" in report


def test_common_evaluation_set_is_the_intersection(study):
    _, records, _, analysis = study
    (vit,) = [e for e in analysis.eval_sets if e.arm == "vit"]
    assert (vit.pool_size, vit.size) == (POOL, POOL - 2)  # example 3 (kernel models), example 5 (seed 1)
    record = next(r for r in records if r["key"] == "vit-softmax-sgd-lr0.2-b8-main-s2")
    key = value_key("topk", 0.05, "saliency", "topk_intersection")
    keep = np.ones(POOL, dtype=bool)
    keep[[3, 5]] = False
    expected = np.nanmean(np.asarray(record["robustness"][key], dtype=float)[keep])
    run = next(r for r in analysis.runs if r.key == record["key"])
    assert run.values[key] == pytest.approx(expected)


def test_results_json_has_the_issue_schema(study):
    _, records, directory, _ = study
    with gzip.open(directory / "results.json.gz", "rt") as handle:
        results = json.load(handle)  # strict JSON: no NaN literal
    assert {"claims", "interaction", "preconditions", "eval_set", "grid"} <= set(results)
    claim = results["claims"][0]
    assert {"claim", "model", "verdict", "test", "estimate", "ci", "p", "untested"} <= set(claim)
    assert all(isinstance(c["untested"], str) for c in results["claims"])
    assert claim["verdict"] in ("supported", "contradicted", "inconclusive") and len(claim["ci"]) == 2
    assert {"family", "estimate", "ci", "p"} <= set(results["interaction"][0])
    pre = results["preconditions"]["vit-softmax-sgd-lr0.2-b8-main-s0"]
    assert {"cls_entropy_ratio", "cls_cv", "evidence_recall"} <= set(pre)
    assert results["eval_set"]["size"] == POOL - 2 and "rule" in results["eval_set"]
    assert all({"lr", "batch_size"} <= set(cell) for cell in results["grid"])
    assert sum(sum(cell["status_counts"].values()) for cell in results["grid"]) == len(records)


def test_report_re_renders_byte_for_byte_from_results(study, tmp_path):
    _, _, directory, _ = study
    (tmp_path / "results.json.gz").write_bytes((directory / "results.json.gz").read_bytes())
    assert render_from_results(tmp_path)
    assert (tmp_path / "report.md").read_bytes() == (directory / "report.md").read_bytes()
    for png in directory.glob("*.png"):
        assert (tmp_path / png.name).read_bytes() == png.read_bytes(), png.name
    assert not render_from_results(tmp_path / "empty")


def test_re_rendering_re_decides_stored_verdicts(study, tmp_path):
    """A results file whose stored verdicts the current rules do not give (older code) renders the current ones."""
    _, _, directory, _ = study
    with gzip.open(directory / "results.json.gz", "rt") as handle:
        payload = json.load(handle)
    for claim in payload["analysis"]["claims"]:
        claim["verdict"] = "planted-stale-verdict"
    with gzip.open(tmp_path / "results.json.gz", "wt") as handle:
        json.dump(payload, handle)
    assert render_from_results(tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert "planted-stale-verdict" not in report
    assert report == (directory / "report.md").read_text()


def test_report_states_verdicts_rules_and_signs(study):
    _, _, directory, _ = study
    report = (directory / "report.md").read_text()
    assert "(TEST)" in report and "partial study" in report
    for text in (
        "**Claim 1, vit-softmax**: supported for saliency",
        "Pre-registered protocol",
        "TOST",
        "higher = less robust",
        "label-flip rate",
        "lr and B separated",
        "Attack saturation",
        "Hessian",
        "warm start, 80 AdamW steps",
        "![preconditions.png](preconditions.png)",
    ):
        assert text in report, text


def test_column_table_puts_each_cell_under_its_header():
    columns = (("name", lambda item: item[0]), ("double", lambda item: str(2 * item[1])))
    assert column_table(columns, [("a", 1), ("b", 4)]) == [
        "| name | double |",
        "|---|---|",
        "| a | 2 |",
        "| b | 8 |",
        "",
    ]
    assert column_table(columns, []) == ["_(no rows)_", ""]
    assert column_table(columns, iter([("c", 0)]))[2] == "| c | 0 |"  # any iterable of items


@pytest.mark.parametrize(
    "value, shown",
    [(-1e-17, "+0.0000"), (1e-17, "+0.0000"), (-0.0, "+0.0000"), (-3e-5, "-0.0000"), (0.01234, "+0.0123"),
     (float("nan"), "n/a"), (None, "n/a")],
)  # fmt: skip
def test_an_exact_cancellation_prints_without_a_sign_that_depends_on_the_cpu(value, shown):
    """A slope minus its mirror image leaves +-1e-17 whose sign differs between CPUs (it flipped a committed report's
    byte-for-byte re-render on an AMD EPYC); a genuinely negative bound keeps its sign."""
    assert number(value, 4, sign=True) == shown
    if value is not None and value == value:  # the comparisons table's differences print the same way
        assert Difference(value, value, value, 1.0, 3, 3).format(4) == f"{shown} [{shown}, {shown}], p = 1"
