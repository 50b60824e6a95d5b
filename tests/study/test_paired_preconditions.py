"""Study v3 judges a run's attention by the paired rule (the trained model against the same-seed model it started
from), which an untrained model fails; v2's absolute rule, which many untrained models pass, stays for v2 and for
records stored without the starting model's checks. Planted on fake runs (``study_helpers.fake_run``): every run's
starting model passes the absolute rule, and one cell's trained models are no different from where they started."""

import dataclasses
import gzip
import json
import math

import pytest
from PIL import Image
from study_helpers import DEGENERATE_CELL, fake_run

from hf_robattr.study import arm_specs, get_settings
from hf_robattr.study.analysis import analyse
from hf_robattr.study.measure import attention_preconditions_met
from hf_robattr.study.plots import write_plots
from hf_robattr.study.report import render_report
from hf_robattr.study.results import load_results, save_results


# Passes v2's absolute rule (coefficient of variation 0.1 >= 0.02, recall 0.2 >= chance 0.06 + 0.05): the kind of
# untrained model v2 could not tell from a trained one.
UNTRAINED = {"cls_entropy_ratio": 0.99, "cls_cv": 0.1, "evidence_recall": 0.2, "evidence_chance": 0.06}
UNMOVED_CELL = ("kernel", 0.8, 8)  # planted: trained models whose attention checks equal their starting model's


def _cell(record) -> tuple:
    cell = record["cell"]
    return cell["attention_type"], cell["learning_rate"], cell["batch_size"]


@pytest.fixture(scope="module")
def settings():
    return get_settings("cpu", error_rate_simulations=50)


@pytest.fixture(scope="module")
def records(settings):
    protocol, grid = settings.arm("vit")
    records = [fake_run(spec) for spec in arm_specs(protocol, grid)]
    for record in records:
        record["preconditions_untrained"] = dict(UNTRAINED)
        if _cell(record) == UNMOVED_CELL:
            record["preconditions"] = dict(UNTRAINED)
    return records


def _degenerate_cells(analysis) -> set[tuple]:
    return {(c.attention_type, c.learning_rate, c.batch_size) for c in analysis.cells if c.degenerate}


def test_the_untrained_reference_passes_the_absolute_rule_and_fails_the_paired_one(settings):
    assert UNTRAINED["cls_cv"] >= settings.min_cls_cv
    assert UNTRAINED["evidence_recall"] >= UNTRAINED["evidence_chance"] + settings.min_recall_gain
    rule = {"min_entropy_drop": settings.min_entropy_drop, "min_recall_gain": settings.min_recall_gain}
    assert not attention_preconditions_met(UNTRAINED, UNTRAINED, **rule)


def test_v3_uses_the_paired_rule_and_v2_the_absolute_one(settings, records):
    v3 = analyse(records, settings, expected_runs=len(records))
    assert _degenerate_cells(v3) == {UNMOVED_CELL, DEGENERATE_CELL}
    v2 = analyse(records, dataclasses.replace(settings, analysis="v2"), expected_runs=len(records))
    assert _degenerate_cells(v2) == {DEGENERATE_CELL}  # the unmoved cell passes the absolute rule


def test_the_paired_differences_are_the_trained_minus_the_untrained_checks(settings, records):
    analysis = analyse(records, settings, expected_runs=len(records))
    by_key = {r["key"]: r for r in records}
    for run in analysis.runs:
        trained = by_key[run.key]["preconditions"]
        assert run.preconditions.entropy_drop == pytest.approx(0.99 - trained["cls_entropy_ratio"])
        assert run.preconditions.recall_gain == pytest.approx(trained["evidence_recall"] - 0.2)


def test_a_degenerate_cell_leaves_claims_2_and_3_but_not_claim_1(settings, records):
    analysis = analyse(records, settings, expected_runs=len(records))
    kernel_runs = sum(r.usable and r.attention_type == "kernel" and r.regime == "sgd" for r in analysis.runs)
    unmoved_runs = sum(
        r.usable and (r.attention_type, r.learning_rate, r.batch_size) == UNMOVED_CELL for r in analysis.runs
    )
    claim_1 = [c for c in analysis.claims if c.claim == 1 and c.model.endswith("kernel")]
    assert claim_1 and {c.n for c in claim_1 if c.n} == {kernel_runs}
    raw = [c for c in analysis.claims if c.claim == 3 and c.method == "raw_attention" and c.slope is not None]
    assert raw and unmoved_runs and all(c.slope.n == kernel_runs - unmoved_runs for c in raw)


def test_the_report_states_the_paired_rule_and_results_json_keeps_the_differences(settings, records, tmp_path):
    analysis = analyse(records, settings, expected_runs=len(records))
    report = render_report(analysis, [])
    assert (
        "judged against the same-seed untrained model (paired)" in report and "an untrained model fails it" in report
    )
    path = save_results(analysis, tmp_path / "results.json.gz")
    with gzip.open(path, "rt") as handle:
        stored = json.load(handle)["preconditions"]
    assert all({"entropy_drop", "recall_gain"} <= set(v) for v in stored.values())
    assert render_report(load_results(path), []) == report


def test_a_pretrained_arm_keeps_the_absolute_rule(settings):
    """MiniLM starts from a pretrained checkpoint: a fine-tuned model no different from its start is not degenerate
    (its attention was trained before the run), and a near-uniform one still is."""
    protocol, grid = settings.arm("minilm")
    assert protocol.pretrained is not None
    records = [fake_run(spec) for spec in arm_specs(protocol, grid)][:12]
    for record in records:
        record["preconditions_untrained"] = dict(record["preconditions"])  # unmoved: the paired rule would fail it
    flat = records[0]["preconditions"] = {**records[0]["preconditions"], "cls_cv": 0.001}
    analysis = analyse(records, settings, expected_runs=len(records))
    judged = {run.key: run.preconditions for run in analysis.runs}
    assert judged[records[0]["key"]].degenerate and flat["cls_cv"] < settings.min_cls_cv
    assert not any(judged[r["key"]].degenerate for r in records[1:])
    assert all(p.entropy_drop is None for p in judged.values())


def test_records_without_the_starting_model_fall_back_to_the_absolute_rule(settings, records, tmp_path):
    bare = json.loads(json.dumps(records))
    for record in bare:
        del record["preconditions_untrained"]
    analysis = analyse(bare, settings, expected_runs=len(bare))
    assert _degenerate_cells(analysis) == {DEGENERATE_CELL}
    assert all(r.preconditions.entropy_drop is None for r in analysis.runs)
    with gzip.open(save_results(analysis, tmp_path / "results.json.gz"), "rt") as handle:
        stored = json.load(handle)["preconditions"]
    assert not any({"entropy_drop", "recall_gain"} & set(v) for v in stored.values())  # v2's files keep their bytes


def test_the_figure_draws_each_run_on_the_axes_of_its_rule(settings, records, tmp_path):
    protocol, grid = settings.arm("minilm")
    pretrained = [fake_run(spec) for spec in arm_specs(protocol, grid)][:12]
    sizes = {}
    for name, chosen in (("paired", records), ("both", records + pretrained)):
        analysis = analyse(chosen, settings, expected_runs=len(chosen))
        assert write_plots(analysis, tmp_path / name, only=["preconditions.png"]) == ["preconditions.png"]
        assert [path.name for path in (tmp_path / name).iterdir()] == ["preconditions.png"]
        sizes[name] = Image.open(tmp_path / name / "preconditions.png").size
    assert sizes["both"][0] == 2 * sizes["paired"][0]  # a second panel for the absolute rule
    with pytest.raises(ValueError, match=r"`only` names no figure of this study: \['preconditon.png'\]"):
        write_plots(analysis, tmp_path / "typo", only=["preconditon.png"])
    with pytest.raises(TypeError, match="collection of figure names"):
        write_plots(analysis, tmp_path / "typo", only="preconditions.png")
    assert not (tmp_path / "typo").exists()


def test_a_missing_check_is_nan_and_survives_a_reload(settings, records, tmp_path):
    """Without evidence masks the recall gain is NaN (the run is still judged paired, on entropy alone); results.json
    writes it as null and reads it back as NaN, so a second save is byte for byte the first."""
    unmasked = json.loads(json.dumps(records))
    for record in unmasked:
        for section in ("preconditions", "preconditions_untrained"):
            record[section]["evidence_recall"] = None
    analysis = analyse(unmasked, settings, expected_runs=len(unmasked))
    first = save_results(analysis, tmp_path / "first.json.gz")
    reloaded = load_results(first)
    gains = [r.preconditions.recall_gain for r in reloaded.runs if r.preconditions is not None]
    assert gains and all(math.isnan(g) for g in gains)
    assert all(r.preconditions.entropy_drop is not None for r in reloaded.runs if r.preconditions is not None)
    second = save_results(reloaded, tmp_path / "second.json.gz")
    assert first.read_bytes() == second.read_bytes()
