"""Build hooks (setuptools commands named in ``pyproject.toml``): install hf_robattr's start-up hook.

Two files go into ``site-packages`` beside the package, in a regular and in an editable (``pip install -e .``)
install alike:

- ``_hf_robattr_startup.py``: a copy of ``hf_robattr/_lazy.py`` (standard library only);
- ``hf_robattr-startup.pth``: one line, ``import _hf_robattr_startup; _hf_robattr_startup.install_metric_hook()``.

Python's ``site`` runs that line at every interpreter start in the environment. It only installs an import hook
that waits for ``import evaluate`` and then registers the packaged ``attribution_robustness`` metric, so that a
bare ``evaluate.load("attribution_robustness")`` works offline, from any directory, in a process that never
imports hf_robattr (see ``docs/metric.md``). The pattern is setuptools' own ``distutils-precedence.pth``. Both files
are listed in the wheel's ``RECORD``, so ``pip uninstall hf_robattr`` removes them.

setuptools loads this file by path at build time, without importing the package: it must stay self-contained
(standard library and setuptools only).
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel


STARTUP_MODULE = "_hf_robattr_startup"
PTH_FILE = "hf_robattr-startup.pth"
PTH_LINE = f"import {STARTUP_MODULE}; {STARTUP_MODULE}.install_metric_hook()\n"
_SOURCE = Path(__file__).resolve().parent / "_lazy.py"


def startup_files() -> dict[str, bytes]:
    """``{file name in site-packages: content}`` of the start-up hook."""
    return {f"{STARTUP_MODULE}.py": _SOURCE.read_bytes(), PTH_FILE: PTH_LINE.encode()}


class BuildPy(build_py):
    """``build_py`` that also writes the start-up hook to the root of ``build_lib`` (so into the wheel)."""

    def run(self) -> None:
        super().run()
        for name, content in startup_files().items():
            target = Path(self.build_lib, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), *(os.path.join(self.build_lib, n) for n in startup_files())]


class EditableWheel(editable_wheel):
    """``editable_wheel`` whose wheel also holds the start-up hook (an editable wheel carries no ``build_lib``
    files, so they are added to the finished wheel, and its ``RECORD`` is rewritten to list them)."""

    def run(self) -> None:
        super().run()
        for wheel in Path(self.dist_dir).glob("*.editable-*.whl"):
            _add_to_wheel(wheel, startup_files())


def _add_to_wheel(wheel: Path, files: dict[str, bytes]) -> None:
    """Rewrite ``wheel`` with ``files`` added at its root; ``RECORD`` gets their hashes (``wheel``'s own writer)."""
    from wheel.wheelfile import WheelFile  # vendored by setuptools; what setuptools writes its wheels with

    with tempfile.TemporaryDirectory() as scratch:
        rewritten = Path(scratch, wheel.name)
        with zipfile.ZipFile(wheel) as source, WheelFile(rewritten, "w") as target:
            names = set(source.namelist())
            for info in source.infolist():
                if not info.filename.endswith(".dist-info/RECORD"):
                    target.writestr(info, source.read(info))
            for name, content in files.items():
                if name not in names:
                    target.writestr(name, content)
        os.replace(rewritten, wheel)
