"""The suite fails when a test module cannot be collected: a module skipped as a whole (a missing extra) turns a
passing run into a failing one (``tests/collection_guard.py``), and a module that raises fails as pytest does."""

import os
import subprocess
import sys
from pathlib import Path

import pytest


TESTS = Path(__file__).resolve().parent


def _run(folder: Path, **env: str) -> subprocess.CompletedProcess:
    (folder / "pytest.ini").write_text("[pytest]\n")  # not the project's options (no xdist workers here)
    command = [sys.executable, "-m", "pytest", "-p", "collection_guard", "-p", "no:cacheprovider", "-q", str(folder)]
    environment = {**os.environ, "PYTHONPATH": str(TESTS), **env}
    environment.pop("PYTEST_XDIST_WORKER_COUNT", None)
    return subprocess.run(command, cwd=folder, env=environment, capture_output=True, text=True, timeout=120)


def _module_that_needs(folder: Path, module: str) -> None:
    (folder / "test_ok.py").write_text("def test_ok():\n    assert 1 + 1 == 2\n")
    (folder / "test_extra.py").write_text(
        f"import pytest\n\npytest.importorskip({module!r})\n\n\ndef test_x():\n    pass\n"
    )


def test_a_skipped_module_fails_the_run(tmp_path):
    _module_that_needs(tmp_path, "no_such_module_for_this_test")
    result = _run(tmp_path)
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout
    assert "test_extra.py" in result.stdout and "skipped as a whole" in result.stdout


def test_the_guard_can_be_relaxed_for_a_partial_install(tmp_path):
    _module_that_needs(tmp_path, "no_such_module_for_this_test")
    assert _run(tmp_path, HF_ROBATTR_ALLOW_MODULE_SKIPS="1").returncode == pytest.ExitCode.OK


def test_a_module_that_is_present_passes(tmp_path):
    _module_that_needs(tmp_path, "json")
    assert _run(tmp_path).returncode == pytest.ExitCode.OK


def test_a_module_that_raises_fails_the_run(tmp_path):
    (tmp_path / "test_broken.py").write_text("import no_such_module_for_this_test\n")
    assert _run(tmp_path).returncode == pytest.ExitCode.INTERRUPTED
