"""What ``recipes/reproduce_paper.py`` says to do next: after ``--estimate_only`` (which runs nothing), rerunning the
same command would never start a run, so the last line says to drop that flag. Runs on the ci scale's fast path
(``--estimate_only`` trains nothing)."""

import contextlib
import io

import pytest
from script_modules import load_script

from hf_robattr.study.reproduce import study_summary


DROP_THE_FLAG = "run the same command without --estimate_only (keep the other flags) to {} the runs"
RERUN = "Next: rerun the same command to continue (finished runs are kept)."


@pytest.fixture(scope="module")
def estimated(tmp_path_factory):
    """A new output folder after ``--estimate_only true`` on the ci scale, and what the recipe printed and returned."""
    recipe = load_script("recipes/reproduce_paper.py", "reproduce_paper_estimate")
    directory = tmp_path_factory.mktemp("estimate") / "new"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        outcome = recipe.main(["--scale", "ci", "--output_dir", str(directory), "--estimate_only", "true"])
    return directory, printed.getvalue(), outcome


def _summary(estimated, stored: int, errors: list[str], estimate_only: bool) -> str:
    directory, _, outcome = estimated
    return study_summary(
        directory, outcome.report, stored, outcome.expected_runs, outcome.estimate, errors, estimate_only=estimate_only
    )


def test_an_estimate_in_a_new_folder_says_to_drop_the_flag_to_start(estimated):
    directory, printed, outcome = estimated
    assert outcome.counts == {} and not list((directory / "runs").glob("*.json"))  # nothing ran
    assert outcome.expected_runs > 0
    assert printed.splitlines()[-1] == "Next: " + DROP_THE_FLAG.format("start") + " (finished runs are kept)."
    assert "rerun the same command" not in printed


@pytest.mark.parametrize(
    ("stored", "errors", "estimate_only", "next_line"),
    [
        pytest.param(3, [], True, "Next: " + DROP_THE_FLAG.format("continue"), id="estimate-partial"),
        pytest.param("all", ["vit-x"], True, "Next: " + DROP_THE_FLAG.format("continue"), id="estimate-errors"),
        pytest.param(0, [], True, "Next: " + DROP_THE_FLAG.format("start"), id="estimate-empty"),
        pytest.param(3, [], False, RERUN, id="run-partial"),
        pytest.param("all", ["vit-x"], False, RERUN, id="run-errors"),
        pytest.param("all", [], True, "Next: read ", id="estimate-complete"),
        pytest.param("all", [], False, "Next: read ", id="run-complete"),
    ],
)
def test_the_next_step_fits_what_the_command_did(estimated, stored, errors, estimate_only, next_line):
    stored = estimated[2].expected_runs if stored == "all" else stored
    last = _summary(estimated, stored, errors, estimate_only).splitlines()[-1]
    assert last.startswith(next_line), last
    assert ("--estimate_only" in last) == (estimate_only and next_line != "Next: read ")
