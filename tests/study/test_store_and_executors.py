"""The run store (atomic, resumable, malformed files set aside and recomputed) and the local executor."""

import json

import pytest
from study_helpers import failing_run, fake_run, pid_run

from hf_robattr.study import RunStore, arm_specs, get_settings, run_jobs
from hf_robattr.study.executors import RUNS_PER_PROCESS
from hf_robattr.study.store import StudyDirectoryError


@pytest.fixture
def specs():
    protocol, grid = get_settings("ci").arm("vit")
    return arm_specs(protocol, grid)


def _finished(store, specs):
    return [s.key for s in specs if store.is_finished(s.key, s.fingerprint)]


def test_store_saves_atomically_and_retries_errors(tmp_path, specs):
    store = RunStore(tmp_path, "ci")
    store.save({**fake_run(specs[0]), "x": float("nan")})
    store.save({"key": specs[1].key, "fingerprint": specs[1].fingerprint, "status": "error", "error": "boom"})
    assert _finished(store, specs[:3]) == [specs[0].key]
    assert [r["key"] for r in store.records()] == sorted([specs[0].key, specs[1].key])
    assert not list(tmp_path.glob("runs/.*"))  # no temporary files left behind
    assert json.loads((tmp_path / "study.json").read_text())["scale"] == "ci"
    RunStore(tmp_path, "ci")  # same scale: reopens
    with pytest.raises(ValueError, match="--output_dir"):
        RunStore(tmp_path, "cpu")


@pytest.mark.parametrize(
    "content", ['{"key": "trunc', "[]", '{"status": "ok"}', ""], ids=["truncated", "list", "no-key", "empty"]
)
def test_malformed_run_files_are_named_set_aside_and_recomputed(tmp_path, specs, content, caplog):
    store = RunStore(tmp_path, "ci")
    path = store.path(specs[0].key)
    path.write_text(content)
    with caplog.at_level("WARNING"):
        assert not store.is_finished(specs[0].key, specs[0].fingerprint)
    assert specs[0].key in caplog.text and "set aside" in caplog.text.lower()
    assert not path.exists() and len(list((tmp_path / "runs" / "set_aside").iterdir())) == 1
    run_jobs([(specs[0], None)], store, run_function=fake_run, progress=False)
    assert store.is_finished(specs[0].key, specs[0].fingerprint)


@pytest.mark.parametrize(
    "content, described",
    [
        pytest.param("[]", "the JSON []", id="list"),
        pytest.param('{"scale": "ci", "form', "not valid JSON: truncated?", id="truncated"),
        pytest.param("", "an empty file", id="empty"),
        pytest.param('{"format": 2}', "a JSON object without a 'scale'", id="no-scale"),
    ],
)
def test_a_damaged_manifest_is_refused_with_how_to_recover(tmp_path, content, described):
    (tmp_path / "study.json").write_text(content)
    with pytest.raises(StudyDirectoryError) as refused:
        RunStore(tmp_path, "ci")
    message = str(refused.value)
    assert f"study.json is not a study manifest ({described})" in message
    assert '{"scale": "ci", "format": 2}' in message and "its finished runs are kept" in message
    assert (tmp_path / "study.json").read_text() == content  # nothing touched


def test_estimate_only_does_not_re_render_another_scales_report(tmp_path):
    """A folder of a ci study with no runs left but its results.json.gz: --scale cpu --estimate_only refuses it
    instead of re-rendering the ci report as if it were the cpu one."""
    import shutil
    from pathlib import Path

    from hf_robattr.study import StudyArguments, reproduce

    RunStore(tmp_path, "ci")
    committed = Path(__file__).resolve().parents[2] / "docs" / "study-cpu" / "results.json.gz"
    shutil.copy(committed, tmp_path / "results.json.gz")
    with pytest.raises(StudyDirectoryError, match=r"holds a study of scale 'ci', not 'cpu'"):
        reproduce(StudyArguments(output_dir=str(tmp_path), scale="cpu", estimate_only=True, progress=False))
    assert not (tmp_path / "report.md").exists()


def test_a_manifest_of_an_older_format_is_set_aside_and_rewritten(tmp_path, caplog):
    (tmp_path / "study.json").write_text('{"scale": "ci", "format": 1}')
    with caplog.at_level("WARNING"):
        RunStore(tmp_path, "ci")
    assert "study.json" in caplog.text and "format 1" in caplog.text
    assert json.loads((tmp_path / "study.json").read_text()) == {"scale": "ci", "format": 2}
    assert len(list((tmp_path / "runs" / "set_aside").iterdir())) == 1


def test_record_of_another_protocol_is_recomputed_and_kept(tmp_path, specs):
    store = RunStore(tmp_path, "ci")
    store.save({**fake_run(specs[0]), "fingerprint": "old"})
    assert not store.is_finished(specs[0].key, specs[0].fingerprint)
    run_jobs([(specs[0], None)], store, run_function=fake_run, progress=False)
    assert store.load(specs[0].key)["fingerprint"] == specs[0].fingerprint
    (aside,) = (tmp_path / "runs" / "set_aside").iterdir()
    assert json.loads(aside.read_text())["fingerprint"] == "old"


def test_run_jobs_records_errors_and_goes_on(tmp_path, specs):
    store = RunStore(tmp_path, "ci")
    counts = run_jobs([(s, None) for s in specs[:2]], store, run_function=failing_run, progress=False)
    assert counts["error"] == 2
    record = store.load(specs[0].key)
    assert record["status"] == "error" and "boom" in record["error"] and record["cell"]["arm"] == "vit"
    assert _finished(store, specs[:2]) == []  # errors are retried on resume
    with pytest.raises(ValueError, match="--executor"):
        run_jobs([], store, executor="slurm")


@pytest.mark.slow
def test_spawned_workers_resume_without_recomputing(tmp_path, specs):
    store = RunStore(tmp_path, "ci")
    first = run_jobs([(s, None) for s in specs[:3]], store, num_workers=2, run_function=fake_run, progress=False)
    assert first["ok"] == 3
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*.json")}
    pending = [s for s in specs if not store.is_finished(s.key, s.fingerprint)]
    run_jobs([(s, None) for s in pending], store, num_workers=0, run_function=fake_run, progress=False)
    assert _finished(store, specs) == [s.key for s in specs]
    assert all((tmp_path / "runs" / name).stat().st_mtime_ns == stamp for name, stamp in stamps.items())


@pytest.mark.slow
def test_worker_processes_are_replaced_after_a_few_runs(tmp_path, specs, monkeypatch):
    store = RunStore(tmp_path, "ci")
    jobs = [(s, None) for s in specs[: 2 * RUNS_PER_PROCESS + 1]]
    run_jobs(jobs[:1], RunStore(tmp_path / "first", "ci"), num_workers=2, run_function=pid_run, progress=False)
    # the workers see the environment of this process as it is now, not as it was when their forkserver started
    monkeypatch.setenv("HF_ROBATTR_PROBE", str(tmp_path))
    run_jobs(jobs, store, num_workers=2, run_function=pid_run, progress=False)
    assert {store.load(spec.key)["probe"] for spec, _ in jobs} == {str(tmp_path)}
    pids = [store.load(spec.key)["pid"] for spec, _ in jobs]
    assert max(pids.count(pid) for pid in set(pids)) <= RUNS_PER_PROCESS and len(set(pids)) >= 3
    # each worker froze torch's and transformers' objects out of the garbage collections before its first run
    assert min(store.load(spec.key)["frozen"] for spec, _ in jobs) > 100_000


@pytest.mark.parametrize(("platform", "method"), [("linux", "forkserver"), ("darwin", "spawn"), ("win32", "spawn")])
def test_workers_are_forked_from_a_forkserver_on_linux_only(monkeypatch, platform, method):
    from hf_robattr.study import executors

    monkeypatch.setattr(executors.sys, "platform", platform)
    assert executors._worker_context("study_helpers").get_start_method() == method
