"""The runs archive (``--runs_archive``): a study continued on a fresh machine from the archived records recomputes
nothing; the store and the archive mirror each other; archived files are reproducible bytes; damaged files are named
and skipped."""

import gzip
import json

import pytest
from study_helpers import fake_run

from hf_robattr.study import RunArchive, RunStore, StudyArguments, arm_specs, get_settings, run_jobs
from hf_robattr.study.run import comparable


@pytest.fixture
def specs():
    protocol, grid = get_settings("ci").arm("vit")
    return arm_specs(protocol, grid)


def test_a_fresh_machine_resumes_from_the_archive_and_recomputes_nothing(tmp_path, specs):
    archive = RunArchive(tmp_path / "archive")
    first = RunStore(tmp_path / "machine-1", "ci", archive)
    run_jobs([(s, None) for s in specs[:4]], first, run_function=fake_run, progress=False)
    assert archive.stored_keys() == sorted(s.key for s in specs[:4])

    second = RunStore(tmp_path / "machine-2", "ci", RunArchive(tmp_path / "archive"))
    assert second.synced == (4, 0)  # all four copied in, nothing new to archive
    assert all(second.is_finished(s.key, s.fingerprint) for s in specs[:4])
    for spec in specs[:4]:
        assert json.dumps(second.load(spec.key)) == json.dumps(first.load(spec.key))  # NaN and key order kept

    # the second machine goes on; its new runs reach the archive, and the first machine picks them up
    run_jobs([(s, None) for s in specs[4:6]], second, run_function=fake_run, progress=False)
    assert RunStore(tmp_path / "machine-1", "ci", archive).synced == (2, 0)


def test_runs_stored_before_the_archive_existed_are_archived_when_the_store_opens(tmp_path, specs):
    plain = RunStore(tmp_path / "out", "ci")
    run_jobs([(s, None) for s in specs[:3]], plain, run_function=fake_run, progress=False)
    archive = RunArchive(tmp_path / "archive")
    assert RunStore(tmp_path / "out", "ci", archive).synced == (0, 3)
    assert RunStore(tmp_path / "out", "ci", archive).synced == (0, 0)  # the same bytes are not written again
    for spec in specs[:3]:
        assert comparable(archive.load(spec.key)) == comparable(plain.load(spec.key))
    # a stored record that changed (here: rerun under a new protocol) replaces its archived version
    changed = {**plain.load(specs[0].key), "fingerprint": "other"}
    plain.save(changed)
    assert RunStore(tmp_path / "out", "ci", archive).synced == (0, 1)
    assert archive.load(specs[0].key)["fingerprint"] == "other"


def test_archived_files_are_reproducible_gzipped_store_json(tmp_path, specs):
    record = {**fake_run(specs[0]), "x": float("nan")}
    archive = RunArchive(tmp_path)
    path = archive.save(record)
    data = path.read_bytes()
    assert archive.save(record) is None and path.read_bytes() == data  # same record, same bytes, no write
    assert RunArchive(tmp_path / "again").save(record).read_bytes() == data  # no timestamp or name inside
    text = gzip.decompress(data).decode()
    assert text == json.dumps(record, indent=1)  # the store's own JSON (NaN kept as NaN)
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


@pytest.mark.parametrize(
    "content",
    [b"", b"not gzip", gzip.compress(b'{"key": "trunc'), gzip.compress(b"[]"), gzip.compress(b'{"key": "other"}')],
    ids=["empty", "not-gzip", "truncated-json", "list", "wrong-key"],
)
def test_a_damaged_archived_file_is_named_skipped_and_recomputed(tmp_path, specs, content, caplog):
    archive = RunArchive(tmp_path / "archive")
    (tmp_path / "archive").mkdir()
    archive.path(specs[0].key).write_bytes(content)
    with caplog.at_level("WARNING"):
        store = RunStore(tmp_path / "out", "ci", archive)
    assert specs[0].key in caplog.text and "Skipped archived run" in caplog.text
    assert not store.is_finished(specs[0].key, specs[0].fingerprint)
    run_jobs([(specs[0], None)], store, run_function=fake_run, progress=False)
    assert archive.load(specs[0].key)["status"] == "ok"  # the recomputed run replaces the damaged file


def test_an_archive_path_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "runs.tar").write_text("")
    with pytest.raises(NotADirectoryError, match=r"--runs_archive .*runs\.tar is a file"):
        RunArchive(tmp_path / "runs.tar")


def test_the_flag_reaches_the_parser():
    from transformers import HfArgumentParser

    (args,) = HfArgumentParser(StudyArguments).parse_args_into_dataclasses(
        ["--output_dir", "x", "--runs_archive", "docs/study-cpu/runs"]
    )
    assert args.runs_archive == "docs/study-cpu/runs"
