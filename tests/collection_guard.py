"""A pytest plugin that fails a run which passed for the wrong reasons. ``tests/conftest.py`` imports these hooks.

- A test module skipped as a whole (e.g. by ``pytest.importorskip`` of a missing extra). The README's test command
  installs every extra, so such a skip means a broken install or import, not an optional feature;
  ``HF_ROBATTR_ALLOW_MODULE_SKIPS=1`` relaxes it for a partial install. (A module that raises while being collected
  already fails the run: pytest exits with status 2.)
- An xdist group (a module, see ``tests/conftest.py``) whose tests ran on more than one worker: its module fixtures
  were then built twice. pytest 9 with xdist 3.8 did this silently (``--dist loadgroup`` grouped nothing), and the
  suite took twice as long.
"""

import os
from collections import defaultdict
from collections.abc import Iterable

import pytest


_skipped_modules: list[str] = []
_workers_of_group: dict[str, set[str]] = defaultdict(set)


def split_groups(reports: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """The xdist groups that ran on more than one worker, with those workers, from ``(nodeid, worker id)`` pairs.
    Under ``--dist loadgroup`` a nodeid ends with ``@<group>``; a nodeid without one (pytest 9 drops the suffix on
    the controller) counts as its module's."""
    workers = defaultdict(set)
    for nodeid, worker in reports:
        workers[nodeid.rpartition("@")[2] if "@" in nodeid else nodeid.split("::", 1)[0]].add(worker)
    return {group: sorted(names) for group, names in sorted(workers.items()) if len(names) > 1}


def pytest_runtest_logreport(report):
    """On the xdist controller: remember which worker ran each test's group (the worker's report carries
    ``node``)."""
    node = getattr(report, "node", None)
    if node is not None and report.when == "call":
        worker = getattr(node, "workerinput", {}).get("workerid") or str(getattr(node, "gateway", node))
        _workers_of_group[report.nodeid].add(worker)


def pytest_collectreport(report):
    """Remember a test module skipped as a whole (with xdist, the workers' skip reports reach the controller)."""
    if report.skipped and report.nodeid.endswith(".py"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skipped_modules.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session, exitstatus):
    """Turn a passing run with a skipped module, or with a group split across workers, into a failing one, naming
    them."""
    if hasattr(session.config, "workerinput"):  # an xdist worker: the controller decides
        return
    split = split_groups((nodeid, worker) for nodeid, workers in _workers_of_group.items() for worker in workers)
    if split and exitstatus == 0 and getattr(session.config.option, "dist", "no") == "loadgroup":
        lines = "\n  ".join(f"{group}: workers {', '.join(names)}" for group, names in split.items())
        writer = session.config.get_terminal_writer()
        writer.line(
            f"\nthese xdist groups ran on more than one worker (--dist loadgroup ignored?):\n  {lines}", red=True
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if _skipped_modules and exitstatus == 0 and os.environ.get("HF_ROBATTR_ALLOW_MODULE_SKIPS") != "1":
        lines = "\n  ".join(sorted(set(_skipped_modules)))
        writer = session.config.get_terminal_writer()
        writer.line(f"\nthese test modules were skipped as a whole (a broken install?):\n  {lines}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
