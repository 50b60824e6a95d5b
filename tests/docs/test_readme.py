"""The README stays a landing page: short, with CI's exact test command, the results markers, and a link to every
guide."""

import re
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_is_a_landing_page():
    size = len(README.encode("utf-8"))
    assert size <= 10_000, f"README.md is {size} bytes; move detail into docs/ (the landing page holds at most 10 KB)"


def test_readme_test_command_is_the_one_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [line for line in ci.splitlines() if line.startswith("python3 -m venv .venv") and "pytest" in line]
    assert len(commands) == 1, ".ci/run should run exactly one install-and-pytest line"
    assert commands[0] in README.splitlines(), f"README.md does not show CI's test command: {commands[0]}"


def test_readme_keeps_the_results_markers():
    start, end = README.find("<!-- results:start -->"), README.find("<!-- results:end -->")
    assert 0 <= start < end, "README.md needs <!-- results:start --> before <!-- results:end -->"
    assert README.count("<!-- results:start -->") == README.count("<!-- results:end -->") == 1


def test_readme_links_every_guide():
    linked = set(re.findall(r"\]\((docs/[^)#\s]+)", README))
    for target in linked:
        assert (ROOT / target).exists(), f"README.md links to a missing file: {target}"
    guides = {f"docs/{page.name}" for page in (ROOT / "docs").glob("*.md") if page.name != "index.md"}
    missing = sorted(guides - linked)
    assert missing == [], f"README.md does not link these docs pages: {missing}"


def test_readme_has_the_metric_security_note():
    assert "./attribution_robustness/attribution_robustness.py" in README
    assert "evaluate.load(hf_robattr.metric_path())" in README


def test_ci_ends_with_the_test_command():
    """``set -e`` does not stop at a failing command inside an ``&&`` list unless it is the last one: the test command
    must be the script's last command, so that a failed install or test run is the script's exit status."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    lines = [line for line in ci.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert lines[-1].startswith("python3 -m venv .venv") and lines[-1].endswith("pytest"), lines[-1]
    assert "set -euo pipefail" in lines
