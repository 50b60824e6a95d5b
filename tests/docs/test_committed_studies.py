"""The committed study reports re-render byte for byte from their ``results.json.gz`` alone, by the current code and
rules: study v3 (``docs/study-cpu``, v3's analysis) and study v2 (``docs/study-cpu-v2``, v2's rules). A changed
rule or renderer that would alter a committed report fails here instead of silently disagreeing with it. The runs
archived with v3's report belong to the current cpu grid and protocol."""

import json
import shutil
from pathlib import Path

import pytest

from hf_robattr.study import RunArchive, StudyArguments, get_settings, load_results, reproduce, save_results
from hf_robattr.study.archive import ARCHIVE_MANIFEST
from hf_robattr.study.prepare import prepare_start_points
from hf_robattr.study.report_files import RESULTS_NAME
from hf_robattr.study.reproduce import study_specs


DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize("folder, scale, analysis", [("study-cpu", "cpu", "v3"), ("study-cpu-v2", "cpu_v2", "v2")])
def test_committed_report_re_renders_from_its_results(tmp_path, folder, scale, analysis):
    """Through the documented command (``--output_dir docs/study-cpu --estimate_only true``) on a copy of the whole
    folder, its runs archive included: the report is rendered again from ``results.json.gz``, which is left as it
    is (a folder with an archive once made the command write an empty report over both)."""
    committed, copy = DOCS / folder, tmp_path / folder
    shutil.copytree(committed, copy)
    assert load_results(copy / RESULTS_NAME).settings.analysis == analysis
    reproduce(StudyArguments(output_dir=str(copy), scale=scale, estimate_only=True, progress=False))
    assert (copy / RESULTS_NAME).read_bytes() == (committed / RESULTS_NAME).read_bytes()
    assert (copy / "report.md").read_text() == (committed / "report.md").read_text()
    assert not (copy / "runs").exists() and not (copy / "study.json").exists()  # no study was opened there
    figures = sorted(p.name for p in committed.glob("*.png"))
    assert figures and figures == sorted(p.name for p in copy.glob("*.png"))


def test_the_current_study_results_round_trip_byte_for_byte(tmp_path):
    """v3's results.json.gz, read and written again by the current code, is the committed file (v2's predates fields
    the current records add, and is only re-rendered)."""
    committed = DOCS / "study-cpu" / RESULTS_NAME
    again = save_results(load_results(committed), tmp_path / RESULTS_NAME)
    assert again.read_bytes() == committed.read_bytes()


def test_the_committed_runs_archive_holds_runs_of_the_current_cpu_protocol(tmp_path):
    """Every run archived with the v3 report (``docs/study-cpu/records``, the ``--runs_archive`` of the cpu study) is a
    run of the cpu grid under its current protocol, so a continued study reuses it: a change that would silently
    void committed runs (a new fingerprint) fails here."""
    folder = DOCS / "study-cpu" / "records"
    if not folder.is_dir():
        pytest.skip("no run is archived in docs/study-cpu/records yet")
    assert json.loads((folder / ARCHIVE_MANIFEST).read_text()) == {"scale": "cpu"}  # so opening it writes nothing
    archive = RunArchive(folder, "cpu")
    records = [archive.load(key) for key in archive.stored_keys()]
    assert records
    assert all(record is not None for record in records)  # every file is a readable record of its key
    args = StudyArguments(output_dir=str(tmp_path), scale="cpu")
    settings = get_settings("cpu")
    points = prepare_start_points(settings, settings.arm_names, tmp_path, train=False)
    specs, _ = study_specs(args, settings, points, records)
    fingerprints = {spec.key: spec.fingerprint for spec in specs}
    stale = [r["key"] for r in records if fingerprints.get(r["key"]) != r["fingerprint"]]
    assert not stale, f"archived runs outside the current cpu grid or protocol: {stale[:5]}"
