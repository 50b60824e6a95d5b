"""Make ``evaluate.load("attribution_robustness")`` resolve to the module shipped inside hf_robattr.

``evaluate`` 0.4.x resolves a bare name in three steps: ``./NAME/NAME.py``, then the Hub Space
``evaluate-metric/NAME`` (three requests, one per module type, each with a 100 s timeout and no regard for
``HF_HUB_OFFLINE``), then its module cache. The metric is not on the Hub, so the first two steps are at best
slow and at worst hang on a network that drops packets.

:func:`register_metric` (run on ``import hf_robattr``) wraps ``evaluate.loading.evaluation_module_factory`` so
that the bare name ``attribution_robustness`` is served from :func:`metric_path` through evaluate's own
``LocalEvaluationModuleFactory``: no network, any working directory, any (fresh) module cache. A local
``./attribution_robustness/attribution_robustness.py`` still takes precedence, as evaluate documents: evaluate runs
that file, so a bare ``evaluate.load`` in an untrusted directory runs its code. The hook warns when that happens;
``evaluate.load(hf_robattr.metric_path())`` (an absolute path) or ``hf_robattr.AttributionRobustness()`` never
look in the working directory.

:func:`install_metric` is the optional one-time step for processes that never import hf_robattr: it copies the
module into evaluate's cache layout, which evaluate consults after the Hub lookup fails.
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
    """Copy the metric into evaluate's module cache, so that a process that never imports hf_robattr finds it.

    The layout is evaluate's own: ``$HF_MODULES_CACHE/evaluate_modules/metrics/evaluate-metric--NAME/<hash>/NAME.py``
    with ``<hash>`` the 64-hex hash evaluate computes from the file. evaluate reads this cache only after its Hub
    lookup has failed, so prefer ``import hf_robattr`` where you can.

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
