"""An opt-in pytest plugin that writes one line per test: worker, start (epoch s), wall s, the worker's CPU s (all its
threads), its waited-for children's CPU s, node id; tab-separated, to ``$TIMELINE_LOG``. It shows where the suite's
time goes and whether both workers stay busy (``docs/development.md``, "How long the suite takes")::

    HOME=$(mktemp -d) PYTHONPATH=tests TIMELINE_LOG=/tmp/timeline.tsv pytest -p timeline

Children that are not waited for (a forkserver's, Ray's workers) are not counted.
"""

import os
import time

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    start, cpu, times = time.time(), time.process_time(), os.times()
    yield
    path = os.environ.get("TIMELINE_LOG")
    if path:
        after = os.times()
        children = after.children_user + after.children_system - times.children_user - times.children_system
        worker = os.environ.get("PYTEST_XDIST_WORKER", "-")
        line = f"{worker}\t{start:.2f}\t{time.time() - start:.2f}\t{time.process_time() - cpu:.2f}\t{children:.2f}"
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"{line}\t{item.nodeid}\n")
