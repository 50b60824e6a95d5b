"""The committed study reports re-render byte for byte from their ``results.json.gz`` alone, by the current code and
rules: study v3 (``docs/study-cpu``, v3's analysis) and study v2 (``docs/study-cpu-v2``, v2's rules). A changed
rule or renderer that would alter a committed report fails here instead of silently disagreeing with it."""

import shutil
from pathlib import Path

import pytest

from hf_robattr.study import load_results, save_results
from hf_robattr.study.report_files import RESULTS_NAME, render_from_results


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
