"""The committed study reports re-render byte for byte from their ``results.json.gz`` alone, by the current code and
rules: study v3 (``docs/study-cpu``, v3's analysis) and study v2 (``docs/study-cpu-v2``, v2's rules). A changed
rule or renderer that would alter a committed report fails here instead of silently disagreeing with it. The runs
archived with v3's report belong to the current cpu grid and protocol."""

import shutil
from pathlib import Path

import pytest

from hf_robattr.study import RunArchive, StudyArguments, get_settings, load_results, save_results
from hf_robattr.study.prepare import prepare_start_points
from hf_robattr.study.report_files import RESULTS_NAME, render_from_results
from hf_robattr.study.reproduce import study_specs


DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize("folder, analysis", [("study-cpu", "v3"), ("study-cpu-v2", "v2")])
def test_committed_report_re_renders_from_its_results(tmp_path, folder, analysis):
    committed = DOCS / folder
    shutil.copy(committed / RESULTS_NAME, tmp_path / RESULTS_NAME)
    assert load_results(tmp_path / RESULTS_NAME).settings.analysis == analysis
    assert render_from_results(tmp_path)
    assert (tmp_path / "report.md").read_text() == (committed / "report.md").read_text()
    figures = sorted(p.name for p in committed.glob("*.png"))
    assert figures and figures == sorted(p.name for p in tmp_path.glob("*.png"))


def test_the_current_study_results_round_trip_byte_for_byte(tmp_path):
    """v3's results.json.gz, read and written again by the current code, is the committed file (v2's predates fields
    the current records add, and is only re-rendered)."""
    committed = DOCS / "study-cpu" / RESULTS_NAME
    again = save_results(load_results(committed), tmp_path / RESULTS_NAME)
    assert again.read_bytes() == committed.read_bytes()


def test_the_committed_runs_archive_holds_runs_of_the_current_cpu_protocol(tmp_path):
    """Every run archived with the v3 report (``docs/study-cpu/runs``, the ``--runs_archive`` of the cpu study) is a
    run of the cpu grid under its current protocol, so a continued study reuses it: a change that would silently
    void committed runs (a new fingerprint) fails here."""
    archive = RunArchive(DOCS / "study-cpu" / "runs")
    records = [archive.load(key) for key in archive.stored_keys()]
    if not records:
        pytest.skip("no run is archived in docs/study-cpu/runs yet")
    assert all(record is not None for record in records)  # every file is a readable record of its key
    args = StudyArguments(output_dir=str(tmp_path), scale="cpu")
    settings = get_settings("cpu")
    points = prepare_start_points(settings, settings.arm_names, tmp_path, train=False)
    specs, _ = study_specs(args, settings, points, records)
    fingerprints = {spec.key: spec.fingerprint for spec in specs}
    stale = [r["key"] for r in records if fingerprints.get(r["key"]) != r["fingerprint"]]
    assert not stale, f"archived runs outside the current cpu grid or protocol: {stale[:5]}"
