"""A pytest plugin: a test module skipped as a whole (e.g. by ``pytest.importorskip`` of a missing extra) fails the
run. The README's test command installs every extra, so such a skip means a broken install or import, not an
optional feature; ``HF_ROBATTR_ALLOW_MODULE_SKIPS=1`` relaxes it for a partial install. (A module that raises while
being collected already fails the run: pytest exits with status 2.) ``tests/conftest.py`` imports these hooks."""

import os

import pytest


_skipped_modules: list[str] = []


def pytest_collectreport(report):
    """Remember a test module skipped as a whole (with xdist, the workers' skip reports reach the controller)."""
    if report.skipped and report.nodeid.endswith(".py"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skipped_modules.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session, exitstatus):
    """Turn a passing run with a skipped module into a failing one, naming the modules."""
    if hasattr(session.config, "workerinput"):  # an xdist worker: the controller decides
        return
    if _skipped_modules and exitstatus == 0 and os.environ.get("HF_ROBATTR_ALLOW_MODULE_SKIPS") != "1":
        lines = "\n  ".join(sorted(set(_skipped_modules)))
        writer = session.config.get_terminal_writer()
        writer.line(f"\nthese test modules were skipped as a whole (a broken install?):\n  {lines}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
