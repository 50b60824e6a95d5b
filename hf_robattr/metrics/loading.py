"""Make ``evaluate.load("attribution_robustness")`` resolve to the module shipped inside hf_robattr.

``evaluate`` 0.4.x resolves a bare name in three steps: ``./NAME/NAME.py``, then the Hub Space
``evaluate-metric/NAME`` (three requests, one per module type, each with a 100 s timeout and no regard for
``HF_HUB_OFFLINE``), then its module cache. The metric is not on the Hub, so the first two steps are at best
slow and at worst hang on a network that drops packets, and a fresh cache holds nothing.

:func:`register_metric` wraps ``evaluate.loading.evaluation_module_factory`` so that the bare name
``attribution_robustness`` is served from :func:`metric_path` through evaluate's own ``LocalEvaluationModuleFactory``:
no network, any working directory, any (fresh) module cache. It runs as soon as ``evaluate`` is imported, in three
ways: ``import hf_robattr``; importing this package; and, in a process that imports neither, the start-up hook an
install puts in ``site-packages`` (``hf_robattr-startup.pth``, see ``hf_robattr/_build.py`` and
``hf_robattr/_lazy.py``), so a plain ``evaluate.load("attribution_robustness")`` works after ``pip install``.

Precedence: a local ``./attribution_robustness/attribution_robustness.py`` still wins, as evaluate documents, and
evaluate runs that file, so a bare ``evaluate.load`` in an untrusted directory runs its code; the hook warns when
that happens. Otherwise the packaged file wins, before the Hub and the cache are consulted. Other names,
``ORG/NAME`` Spaces and other module types are never touched. ``evaluate.load(hf_robattr.metric_path())`` (an
absolute path) or ``hf_robattr.AttributionRobustness()`` never look in the working directory.

:func:`install_metric` is for interpreters that skip ``site`` (``python -S``) or environments where hf_robattr's
files are vendored without its ``.pth``: it copies the module into evaluate's cache layout, which evaluate consults
after the Hub lookup fails.
"""

from __future__ import annotations

import functools
import importlib
import os
import shutil
import warnings
from pathlib import Path
from typing import Any


METRIC_NAME = "attribution_robustness"
_HOOK_MARK = "_hf_robattr_metric_hook"


def metric_path() -> str:
    """The path of the metric script, for ``evaluate.load(hf_robattr.metric_path())``."""
    return str(Path(__file__).resolve().parent / METRIC_NAME / f"{METRIC_NAME}.py")


def _claims(path: Any, module_type: str | None) -> bool:
    """Whether the hook serves this ``evaluate.load`` call (the bare name, not shadowed by a local folder)."""
    if path != METRIC_NAME or module_type not in (None, "metric"):
        return False
    return not os.path.isfile(os.path.join(path, f"{METRIC_NAME}.py"))


def _shadowed(path: Any, module_type: str | None) -> bool:
    """Whether a bare ``evaluate.load("attribution_robustness")`` is about to run a local script instead."""
    return path == METRIC_NAME and module_type in (None, "metric") and not _claims(path, module_type)


def register_metric() -> None:
    """Let ``evaluate.load("attribution_robustness")`` load the bundled module offline; safe to call twice."""
    loading = importlib.import_module("evaluate.loading")
    original = loading.evaluation_module_factory
    if getattr(original, _HOOK_MARK, False):
        return

    @functools.wraps(original)
    def evaluation_module_factory(path: str, module_type: str | None = None, *args: Any, **kwargs: Any) -> Any:
        if _shadowed(path, module_type):
            warnings.warn(
                f"evaluate.load({METRIC_NAME!r}) runs ./{METRIC_NAME}/{METRIC_NAME}.py from the working directory "
                f"({os.getcwd()}), not the metric packaged with hf_robattr (evaluate looks there first). If you did "
                "not put it there, do not run it: load the packaged metric with "
                "evaluate.load(hf_robattr.metric_path()) or use hf_robattr.AttributionRobustness().",
                UserWarning,
                stacklevel=3,
            )
        if _claims(path, module_type) and not kwargs.get("force_local_path"):
            return loading.LocalEvaluationModuleFactory(
                metric_path(),
                download_mode=kwargs.get("download_mode"),
                dynamic_modules_path=kwargs.get("dynamic_modules_path"),
            ).get_module()
        return original(path, module_type, *args, **kwargs)

    setattr(evaluation_module_factory, _HOOK_MARK, True)
    loading.evaluation_module_factory = evaluation_module_factory


def install_metric(modules_cache: str | os.PathLike[str] | None = None) -> Path:
    """Copy the metric into evaluate's module cache, for an interpreter that runs without hf_robattr's start-up hook.

    The layout is evaluate's own: ``$HF_MODULES_CACHE/evaluate_modules/metrics/evaluate-metric--NAME/<hash>/NAME.py``
    with ``<hash>`` the 64-hex hash evaluate computes from the file. evaluate reads this cache only after its Hub
    lookup has failed, so after a normal install (the start-up hook) or ``import hf_robattr`` this is not needed.

    Args:
        modules_cache: the modules cache root; defaults to evaluate's ``HF_MODULES_CACHE``.

    Returns:
        The path of the installed script.
    """
    from evaluate import config
    from evaluate.loading import files_to_hash

    root = Path(modules_cache) if modules_cache is not None else Path(config.HF_MODULES_CACHE)
    source = Path(metric_path())
    namespace = root / config.MODULE_NAME_FOR_DYNAMIC_MODULES / "metrics" / f"evaluate-metric--{METRIC_NAME}"
    target_dir = namespace / files_to_hash([str(source)])
    target_dir.mkdir(parents=True, exist_ok=True)
    for package_dir in (root / config.MODULE_NAME_FOR_DYNAMIC_MODULES, namespace.parent, namespace, target_dir):
        (package_dir / "__init__.py").touch(exist_ok=True)
    target = target_dir / f"{METRIC_NAME}.py"
    shutil.copyfile(source, target)
    # evaluate picks the most recently modified hash folder: make this one the newest.
    os.utime(target)
    return target
