"""Light-weight import machinery for ``hf_robattr/__init__.py`` (standard library only).

``import hf_robattr`` must stay cheap (the ``hf-robattr`` command answers ``--help`` without importing torch), yet
keep its two promises: the kernel-attention models are registered with the ``transformers`` Auto classes, and
``evaluate.load("attribution_robustness")`` finds the bundled metric. Both registrations need the heavy libraries,
so they run when those libraries are first imported (at once if they already are): :func:`after_import` runs a
callback right after a module has been imported, the way ``wrapt``'s post-import hooks do.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable


class _AfterImportFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself; wraps the loader of the watched modules so their callbacks run after execution."""

    def __init__(self) -> None:
        self.callbacks: dict[str, list[Callable[[], None]]] = {}

    def find_spec(self, fullname: str, path, target=None):
        if fullname not in self.callbacks:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        callbacks = self.callbacks.pop(fullname)
        execute = spec.loader.exec_module

        def exec_module(module) -> None:
            execute(module)
            for callback in callbacks:
                callback()

        spec.loader.exec_module = exec_module
        return spec


_FINDER = _AfterImportFinder()


def after_import(module_name: str, callback: Callable[[], None]) -> None:
    """Call ``callback()`` once ``module_name`` has been imported: now if it already is, else right after."""
    if module_name in sys.modules:
        callback()
        return
    _FINDER.callbacks.setdefault(module_name, []).append(callback)
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
