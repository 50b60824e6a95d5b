"""Light-weight import machinery for ``hf_robattr/__init__.py`` (standard library only).

``import hf_robattr`` must stay cheap (the ``hf-robattr`` command answers ``--help`` without importing torch), yet
keep its two promises: the kernel-attention models are registered with the ``transformers`` Auto classes, and
``evaluate.load("attribution_robustness")`` finds the bundled metric. Both registrations need the heavy libraries,
so they run when those libraries are first imported (at once if they already are): :func:`after_import` runs a
callback right after a module has been imported, the way ``wrapt``'s post-import hooks do.

The same file is installed a second time, as the top-level module ``_hf_robattr_startup`` with the one-line
``hf_robattr-startup.pth`` beside it (see ``hf_robattr/_build.py``): at interpreter start-up Python's ``site`` runs
``_hf_robattr_startup.install_metric_hook()``, which only watches for ``import evaluate``; nothing of hf_robattr is
imported until then. That is what makes a plain ``evaluate.load("attribution_robustness")`` work in a process that
never imports hf_robattr. Set ``HF_ROBATTR_NO_STARTUP_HOOK=1`` to turn the start-up hook off.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import sys
import warnings
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


DISABLE_ENV = "HF_ROBATTR_NO_STARTUP_HOOK"


def _register_packaged_metric() -> None:
    """Serve ``evaluate.load("attribution_robustness")`` from the installed hf_robattr; never breaks ``import
    evaluate`` (a broken or removed hf_robattr is a warning)."""
    try:
        importlib.import_module("hf_robattr.metrics.loading").register_metric()
    except Exception as error:  # a start-up hook must not break the user's import
        warnings.warn(
            f"hf_robattr's start-up hook could not make evaluate.load('attribution_robustness') loadable: "
            f"{type(error).__name__}: {error}. Import hf_robattr yourself, or set {DISABLE_ENV}=1 to silence this.",
            RuntimeWarning,
            stacklevel=2,
        )


def install_metric_hook() -> None:
    """The start-up hook (run by ``hf_robattr-startup.pth``): once ``evaluate`` is imported, register the packaged
    ``attribution_robustness`` metric. Does nothing when ``HF_ROBATTR_NO_STARTUP_HOOK`` is set to a true value."""
    if os.environ.get(DISABLE_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        return
    after_import("evaluate", _register_packaged_metric)
