"""Analysis and report on planted effects (fake runs), checked against scipy on the stored per-run values."""

import json

import pytest
from scipy import stats
from study_helpers import fake_run

from hf_robattr.study import build_grid, get_settings, run_values, write_report


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    settings = get_settings("cpu")
    specs = build_grid("cpu", settings)
    records = [fake_run(spec) for spec in specs]
    directory = tmp_path_factory.mktemp("report")
    analysis = write_report(records, settings, directory, expected_runs=len(specs) + 1, title_note="TEST")
    return settings, records, directory, analysis


def test_outputs_exist(study):
    _, records, directory, _ = study
    for name in ("report.md", "results.json", "robustness_vs_strength_vit.png", "robustness_vs_strength_bert.png",
                 "sharpness_vs_robustness_vit.png", "training_cost.png"):  # fmt: skip
        assert (directory / name).stat().st_size > 0, name
    results = json.loads((directory / "results.json").read_text())
    assert results["runs_stored"] == len(records) and results["complete"] is False
    report = (directory / "report.md").read_text()
    assert "(TEST)" in report and "partial study" in report
    assert "![robustness_vs_strength_vit.png](robustness_vs_strength_vit.png)" in report


def test_claims_find_the_planted_effects(study):
    _, _, _, analysis = study
    claims = analysis["claims"]
    assert claims["claim_1"]["verdict"] == "supported"
    # planted: no effect; 24-29 noisy runs cannot exclude a moderate rise, and the verdict must say so
    assert claims["claim_2"]["verdict"].startswith(("supported: a rise", "inconclusive: no rise detected"))
    assert claims["claim_3"]["verdict"] == "supported"
    assert "ig_norm 10.0x" in claims["claim_1"]["sentence"]
    for claim in claims.values():
        assert "rho = " in claim["sentence"] and "p = " in claim["sentence"]


def test_trend_matches_scipy_on_stored_runs(study):
    settings, _, directory, _ = study
    results = json.loads((directory / "results.json").read_text())
    runs = [
        r for r in results["runs"]
        if r["status"] == "ok" and r["budget"] == "matched" and r["regime"] == "sgd"
        and r["cell"]["model"] == "vit" and r["cell"]["attention_type"] == "softmax"
    ]  # fmt: skip
    x = [r["strength"] for r in runs]
    y = [run_values(r, settings)["gradient/topk_intersection"] for r in runs]
    reference = stats.spearmanr(x, y)
    (row,) = [
        t for t in results["analysis"]["strength_trends"]["matched"]
        if t["model"] == "vit" and t["attention_type"] == "softmax" and t["target"] == "gradient"
        and t["measure"] == "topk_intersection"
    ]  # fmt: skip
    assert row["n"] == len(runs) == 24  # 5 cells x 5 seeds, one not_fit run left out
    assert row["rho"] == pytest.approx(reference.statistic) and row["p_value"] == pytest.approx(reference.pvalue)


def test_failed_cells_are_reported_not_dropped(study):
    _, _, directory, analysis = study
    report = (directory / "report.md").read_text()
    assert "matched vit softmax `sgd lr=0.1 B=64`: 1 not_fit of 5" in report
    assert "matched vit kernel `adamw lr=0.001 B=32`: 1 diverged of 5" in report
    (adamw,) = [
        c for c in analysis["cells"]
        if c["budget"] == "matched" and c["model"] == "vit" and c["attention_type"] == "kernel" and c["regime"] == "adamw"
    ]  # fmt: skip
    assert adamw["status_counts"] == {"ok": 4, "not_fit": 0, "diverged": 1, "error": 0}
    assert adamw["values"]["accuracy"]["n"] == 4
