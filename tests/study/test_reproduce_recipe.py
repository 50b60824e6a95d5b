"""``recipes/reproduce_paper.py`` end to end on real training: a cut-down ci study through the same code path."""

import json

import pytest
from study_helpers import load_reproduce_recipe


def test_ci_study_end_to_end_and_resume(tmp_path):
    recipe = load_reproduce_recipe()
    argv = ["--scale", "ci", "--output_dir", str(tmp_path), "--models", "vit", "--seeds", "1", "--max_runs", "3",
            "--num_workers", "0", "--threads_per_worker", "1", "--progress", "false"]  # fmt: skip
    summary = recipe.main(argv)
    runs = sorted((tmp_path / "runs").glob("*.json"))
    assert len(runs) == 3
    for path in runs:
        record = json.loads(path.read_text())
        assert record["status"] in ("ok", "not_fit", "diverged"), record.get("error")
        if record["status"] != "diverged":
            assert 0 <= record["accuracy"] <= 1
            assert "saliency/topk_intersection" in record["robustness"]
            assert record["diagnostics"]["hessian_trace"]["num_probes"] >= 2
    for name in ("report.md", "results.json", "training_cost.png", "robustness_vs_strength_vit.png"):
        assert (tmp_path / name).exists(), name
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["runs_stored"] == 3 and results["runs_expected"] == 11 and not results["complete"]
    assert summary["estimate"]["after"]["runs"] == 8
    stamps = [p.stat().st_mtime_ns for p in runs]
    recipe.main([*argv[:-6], "--estimate_only", "true", "--progress", "false"])  # resumes: nothing recomputed
    assert [p.stat().st_mtime_ns for p in runs] == stamps
    assert "Runs stored: 3 of 11" in (tmp_path / "report.md").read_text()


@pytest.mark.slow
def test_whole_ci_grid_completes_with_two_workers(tmp_path):
    """The README's smoke command as CI runs it: every run of the ci grid, both models, two spawned workers."""
    recipe = load_reproduce_recipe()
    recipe.main(["--scale", "ci", "--output_dir", str(tmp_path), "--num_workers", "2", "--progress", "false"])
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["complete"] and results["runs_stored"] == results["runs_expected"] == 21
    records = [json.loads(path.read_text()) for path in (tmp_path / "runs").glob("*.json")]
    assert {record["cell"]["model"] for record in records} == {"vit", "bert"}
    assert all(record["status"] in ("ok", "not_fit", "diverged") for record in records)
    report = (tmp_path / "report.md").read_text()
    for claim in ("Claim 1", "Claim 2", "Claim 3"):
        assert claim in report
