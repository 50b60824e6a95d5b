"""The run store (atomic, resumable, bound to one protocol) and the executor (spawn workers, errors recorded)."""

import json

import pytest
from study_helpers import failing_run, fake_run

from hf_robattr.study import RunStore, build_grid, get_settings, pending_runs, run_study


@pytest.fixture
def settings():
    return get_settings("ci")


def test_store_saves_atomically_and_retries_errors(tmp_path, settings):
    store = RunStore(tmp_path, settings)
    store.save({"key": "a", "status": "ok", "x": float("nan")})
    store.save({"key": "b", "status": "error", "error": "boom"})
    assert store.is_finished("a") and not store.is_finished("b") and not store.is_finished("c")
    assert [r["key"] for r in store.records()] == ["a", "b"]
    assert [r["key"] for r in store.records(["b", "zz", "a"])] == ["b", "a"]
    assert not list(tmp_path.glob("runs/.*"))  # no temporary files left behind
    assert json.loads((tmp_path / "study.json").read_text())["scale"] == "ci"
    RunStore(tmp_path, settings)  # same protocol: reopens


def test_store_refuses_other_settings(tmp_path, settings):
    RunStore(tmp_path, settings)
    with pytest.raises(ValueError, match="--output_dir"):
        RunStore(tmp_path, get_settings("ci", eval_examples=3))


@pytest.mark.slow
def test_run_study_in_spawn_workers_resumes_without_recomputing(tmp_path, settings):
    specs = build_grid("ci", settings)
    store = RunStore(tmp_path, settings)
    first = run_study(specs[:5], store, num_workers=2, run_function=fake_run, progress=False)
    assert sum(v for k, v in first.items() if k != "elapsed_seconds") == 5
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*.json")}
    assert len(pending_runs(specs, store)) == len(specs) - 5
    run_study(specs, store, num_workers=0, run_function=fake_run, progress=False)
    assert pending_runs(specs, store) == []
    assert all((tmp_path / "runs" / name).stat().st_mtime_ns == stamp for name, stamp in stamps.items())


def test_run_study_records_run_errors(tmp_path, settings):
    specs = build_grid("ci", settings)[:2]
    store = RunStore(tmp_path, settings)
    counts = run_study(specs, store, num_workers=0, run_function=failing_run, progress=False)
    assert counts["error"] == 2
    record = store.load(specs[0].key)
    assert record["status"] == "error" and "boom" in record["error"] and record["cell"]["model"] == "vit"
    assert len(pending_runs(specs, store)) == 2  # errors are retried on resume
