"""The runs archive (``--runs_archive``): a study continued on a fresh machine from the archived records recomputes
nothing; the store and the archive mirror each other and nothing archived is lost (replaced versions set aside, an
error never replacing a finished run); another scale's archive is refused; a record is not rewritten for another
gzip header; damaged files are named and skipped; a failing archive does not stop the study."""

import gzip
import json

import pytest
from study_helpers import fake_run

import hf_robattr.study.archive as archive_module
from hf_robattr.study import RunArchive, RunStore, StudyArguments, arm_specs, get_settings, run_jobs
from hf_robattr.study.archive import ARCHIVE_MANIFEST


@pytest.fixture
def specs():
    protocol, grid = get_settings("ci").arm("vit")
    return arm_specs(protocol, grid)


def _dump(record):  # NaN-safe equality of records: their JSON text
    return json.dumps(record)


def _error(spec):
    return {"key": spec.key, "fingerprint": spec.fingerprint, "status": "error", "error": "RuntimeError: boom"}


def test_a_fresh_machine_resumes_from_the_archive_and_recomputes_nothing(tmp_path, specs):
    archive = RunArchive(tmp_path / "archive", "ci")
    first = RunStore(tmp_path / "machine-1", "ci", archive)
    run_jobs([(s, None) for s in specs[:4]], first, run_function=fake_run, progress=False)
    assert archive.stored_keys() == sorted(s.key for s in specs[:4])

    second = RunStore(tmp_path / "machine-2", "ci", RunArchive(tmp_path / "archive", "ci"))
    assert second.synced == (4, 0)  # all four copied in, nothing new to archive
    assert [s.key for s in specs if not second.is_finished(s.key, s.fingerprint)] == [s.key for s in specs[4:]]
    for spec in specs[:4]:
        assert _dump(second.load(spec.key)) == _dump(first.load(spec.key))  # NaN and key order kept

    # the second machine goes on; its new runs reach the archive, and the first machine picks them up
    run_jobs([(s, None) for s in specs[4:6]], second, run_function=fake_run, progress=False)
    assert RunStore(tmp_path / "machine-1", "ci", archive).synced == (2, 0)


def test_runs_stored_before_the_archive_are_archived_and_a_replaced_version_is_set_aside(tmp_path, specs):
    plain = RunStore(tmp_path / "out", "ci")
    run_jobs([(s, None) for s in specs[:3]], plain, run_function=fake_run, progress=False)
    archive = RunArchive(tmp_path / "archive", "ci")
    assert RunStore(tmp_path / "out", "ci", archive).synced == (0, 3)
    assert RunStore(tmp_path / "out", "ci", archive).synced == (0, 0)  # the same records are not written again
    original = archive.load(specs[0].key)
    assert _dump(original) == _dump(plain.load(specs[0].key))
    # a run stored again under a new protocol replaces its archived version, which is kept in set_aside/
    plain.save({**original, "fingerprint": "new"})
    assert RunStore(tmp_path / "out", "ci", archive).synced == (0, 1)
    assert archive.load(specs[0].key)["fingerprint"] == "new"
    (kept,) = (tmp_path / "archive" / "set_aside").iterdir()
    assert kept.name.startswith(f"{specs[0].key}.json.gz.")
    assert json.loads(gzip.decompress(kept.read_bytes()))["fingerprint"] == specs[0].fingerprint


def test_an_error_never_replaces_a_finished_run_and_is_itself_replaced_from_the_archive(tmp_path, specs):
    archive = RunArchive(tmp_path / "archive", "ci")
    run_jobs([(specs[0], None)], RunStore(tmp_path / "good", "ci", archive), run_function=fake_run, progress=False)
    finished = archive.load(specs[0].key)

    elsewhere = RunStore(tmp_path / "failed", "ci")
    elsewhere.save(_error(specs[0]))  # the same run failed on another machine
    reopened = RunStore(tmp_path / "failed", "ci", archive)
    assert reopened.synced == (1, 0)  # the error made way for the finished run, and was not archived
    assert _dump(reopened.load(specs[0].key)) == _dump(finished) == _dump(archive.load(specs[0].key))
    assert [p.name.split(".json.")[0] for p in (tmp_path / "failed" / "runs" / "set_aside").iterdir()] == [
        specs[0].key
    ]
    assert archive.save(_error(specs[0])) is None and _dump(archive.load(specs[0].key)) == _dump(finished)


def test_a_malformed_local_file_is_set_aside_and_the_archived_run_copied_in(tmp_path, specs):
    archive = RunArchive(tmp_path / "archive", "ci")
    run_jobs([(specs[0], None)], RunStore(tmp_path / "a", "ci", archive), run_function=fake_run, progress=False)
    store = RunStore(tmp_path / "b", "ci")
    store.path(specs[0].key).write_text('{"key": "trunc')
    assert RunStore(tmp_path / "b", "ci", archive).synced == (1, 0)
    assert store.is_finished(specs[0].key, specs[0].fingerprint)


def test_only_the_content_decides_whether_a_record_is_archived_again(tmp_path, specs):
    """Another Python or zlib writes another gzip header (OS byte, timestamp) or deflate stream for the same JSON."""
    record = {**fake_run(specs[0]), "x": float("nan")}
    archive = RunArchive(tmp_path, "ci")
    path = archive.save(record)
    text = gzip.decompress(path.read_bytes())
    assert json.loads(text)["key"] == specs[0].key and b"NaN" in text  # the store's JSON, NaN kept
    other_machine = gzip.compress(text, compresslevel=1, mtime=1_700_000_000)
    path.write_bytes(other_machine)
    assert archive.save(record) is None and path.read_bytes() == other_machine
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


@pytest.mark.parametrize(
    "content",
    [b"", b"not gzip", gzip.compress(b'{"key": "trunc'), gzip.compress(b"[]"), gzip.compress(b'{"key": "other"}')],
    ids=["empty", "not-gzip", "truncated-json", "list", "wrong-key"],
)
def test_a_damaged_archived_file_is_named_skipped_recomputed_and_kept(tmp_path, specs, content, caplog):
    archive = RunArchive(tmp_path / "archive", "ci")
    archive.path(specs[0].key).write_bytes(content)
    with caplog.at_level("WARNING"):
        store = RunStore(tmp_path / "out", "ci", archive)
    assert specs[0].key in caplog.text and "Skipped archived run" in caplog.text
    assert not store.is_finished(specs[0].key, specs[0].fingerprint)
    run_jobs([(specs[0], None)], store, run_function=fake_run, progress=False)
    assert archive.load(specs[0].key)["status"] == "ok"  # the recomputed run is archived
    assert [p.read_bytes() for p in (tmp_path / "archive" / "set_aside").iterdir()] == [content]  # and kept


def test_an_archive_of_another_scale_is_refused(tmp_path):
    RunArchive(tmp_path, "ci")
    assert json.loads((tmp_path / ARCHIVE_MANIFEST).read_text()) == {"scale": "ci"}
    with pytest.raises(ValueError, match=r"--runs_archive .* of scale 'ci', not 'cpu'"):
        RunArchive(tmp_path, "cpu")
    (tmp_path / ARCHIVE_MANIFEST).write_text("[]")
    with pytest.raises(ValueError, match="--runs_archive"):
        RunArchive(tmp_path, "ci")


def test_a_path_that_cannot_be_an_archive_is_refused(tmp_path):
    (tmp_path / "runs.tar").write_text("")
    with pytest.raises(ValueError, match=r"--runs_archive .*runs\.tar is a file"):
        RunArchive(tmp_path / "runs.tar", "ci")
    with pytest.raises(ValueError, match=r"--runs_archive .*runs\.tar/inside cannot be created"):
        RunArchive(tmp_path / "runs.tar" / "inside", "ci")


def test_a_failing_archive_warns_and_the_study_goes_on(tmp_path, specs, monkeypatch, caplog):
    archive = RunArchive(tmp_path / "archive", "ci")
    store = RunStore(tmp_path / "out", "ci", archive)

    def full(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(archive_module, "write_bytes_atomic", full)
    with caplog.at_level("WARNING"):
        run_jobs([(s, None) for s in specs[:2]], store, run_function=fake_run, progress=False)
    assert "disk full" in caplog.text and all(store.is_finished(s.key, s.fingerprint) for s in specs[:2])
    monkeypatch.undo()
    assert RunStore(tmp_path / "out", "ci", archive).synced == (0, 2)  # archived at the next opening


def test_without_export_the_store_copies_in_and_archives_nothing(tmp_path, specs):
    archive = RunArchive(tmp_path / "archive", "ci")
    run_jobs([(specs[0], None)], RunStore(tmp_path / "a", "ci", archive), run_function=fake_run, progress=False)
    local = RunStore(tmp_path / "b", "ci")
    run_jobs([(specs[1], None)], local, run_function=fake_run, progress=False)
    reader = RunStore(tmp_path / "b", "ci", archive, export=False)
    assert reader.synced == (1, 0) and archive.stored_keys() == [specs[0].key]
    reader.save(_error(specs[2]))
    assert archive.stored_keys() == [specs[0].key]


@pytest.mark.parametrize("archive", ["out", "out/runs", "out/runs/"])
def test_the_archive_cannot_be_the_output_folder_or_its_runs(archive):
    with pytest.raises(ValueError, match="--runs_archive"):
        StudyArguments(output_dir="out", runs_archive=archive)


@pytest.mark.parametrize("inside", ["", "runs"])
def test_the_archive_cannot_be_another_studys_folder_or_its_runs(tmp_path, inside):
    """An archive inside another study's folder would write archive.json among that study's runs."""
    RunStore(tmp_path / "other", "ci")
    with pytest.raises(ValueError, match=r"--runs_archive .* is inside the study folder .*other \(it holds study"):
        StudyArguments(output_dir=str(tmp_path / "out"), runs_archive=str(tmp_path / "other" / inside))
    assert sorted(p.name for p in (tmp_path / "other" / "runs").iterdir()) == []


def test_an_arm_named_twice_is_run_once():
    args = StudyArguments(output_dir="out", scale="ci", arms=["minilm", "vit", "minilm"])
    assert args.arms == ["minilm", "vit"]


def test_the_flag_reaches_the_parser():
    from transformers import HfArgumentParser

    (args,) = HfArgumentParser(StudyArguments).parse_args_into_dataclasses(
        ["--output_dir", "x", "--runs_archive", "docs/study-cpu/records"]
    )
    assert args.runs_archive == "docs/study-cpu/records"
