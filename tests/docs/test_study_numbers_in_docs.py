"""The study numbers that the README and ``docs/index.md`` state match the committed v3 analysis
(``docs/study-cpu/results.json.gz``). A re-rendered report once left both pages quoting the numbers of runs that no
longer existed; each check below reads a phrase the pages use and recomputes its number from the analysis."""

import re
from pathlib import Path

import pytest

from hf_robattr.study import load_results


ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "study-cpu" / "results.json.gz"
WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}


def _section(path: Path) -> str:
    """The v3 part of a page's Results section, with line breaks folded."""
    text = path.read_text()
    start = text.index("## Results")
    ends = [i for i in (text.find("<!-- results:end -->", start), text.find("Study v2", start)) if i > 0]
    return " ".join(text[start : min(ends)].split())


PAGES = [ROOT / "README.md", ROOT / "docs" / "index.md"]


@pytest.fixture(scope="module")
def analysis():
    return load_results(RESULTS)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_stored_run_count_and_partial_flag_match(page, analysis):
    text = _section(page)
    stored = re.search(r"(\d+) of (\d+) runs (?:are )?stored", text)
    assert stored, f"{page.name} no longer says how many runs are stored"
    assert (int(stored[1]), int(stored[2])) == (len(analysis.runs), analysis.runs_expected)
    assert ("PARTIAL" in text) == (not analysis.complete)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_excluded_run_counts_match(page, analysis):
    text = _section(page)
    main = re.search(r"main ViT arm \((\d+) runs, (\d+) outside the \+-10% fit band", text)
    assert main, f"{page.name} no longer states the main arm's exclusions"
    outcomes = analysis.v3.fit_outcomes["vit"]
    assert int(main[1]) == sum(outcomes.values())
    assert int(main[2]) == sum(n for status, n in outcomes.items() if status.endswith("_band") and status != "in_band")
    assert analysis.status_counts["not_fit"] == sum(
        n for arm in analysis.v3.fit_outcomes.values() for s, n in arm.items() if s in ("above_band", "below_band")
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_lack_of_fit_count_matches(page, analysis):
    found = re.search(r"rejected in (\d+) of (\d+) series", _section(page))
    assert found, f"{page.name} no longer states the lack-of-fit count"
    tested = [row for row in analysis.v3.lack_of_fit if row.test is not None]
    rejected = sum(row.test.p < analysis.settings.alpha for row in tested)
    assert (int(found[1]), int(found[2])) == (rejected, len(tested))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_error_rate_range_matches(page, analysis):
    found = re.search(r"simulated error rate is (0\.\d+)-(0\.\d+)", _section(page))
    assert found, f"{page.name} no longer states the rules' error rates"
    errors = [e.error for e in analysis.v3.error_rates]
    assert (float(found[1]), float(found[2])) == (round(min(errors), 3), round(max(errors), 3))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_manipulation_check_numbers_match(page, analysis):
    text = _section(page)
    found = re.search(r"manipulation check passes for all (\w+) (?:\w+ )?models(.*?)\. Limits", text)
    assert found, f"{page.name} no longer states the manipulation check"
    checks = analysis.v3.manipulation_check
    assert WORDS[found[1]] == len(checks) and all(c.passed for c in checks)
    # Every number quoted is a check's trace slope (per doubling, 2 decimals) or its one-sided p (3 decimals).
    allowed = {round(abs(c.trace.estimate), 2) for c in checks} | {round(c.p, 3) for c in checks}
    quoted = {float(x) for x in re.findall(r"\d+\.\d+", found[2])}
    assert quoted and quoted <= allowed, sorted(quoted - allowed)
    slopes = {round(abs(c.trace.estimate), 2) for c in checks}
    assert slopes <= quoted, f"{page.name} leaves out a model's trace slope: {sorted(slopes - quoted)}"
