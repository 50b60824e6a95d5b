"""hf_robattr: robust attributions for Hugging Face ViT and BERT models.

``import hf_robattr`` is light: the public names (``hf_robattr.RobAttrViTConfig``, ...) load on first use, so the
``hf-robattr`` command starts in well under a second. The package still registers the kernel-attention models with
the ``transformers`` Auto classes and makes the ``attribution_robustness`` metric loadable by name with
``evaluate.load``: each registration runs as soon as ``transformers`` / ``evaluate`` is imported (at once if it
already is).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ._lazy import after_import


__version__ = "0.1.0"

# Subpackages whose ``__all__`` make up the package's public names, in this order.
_PUBLIC_SUBPACKAGES = (
    "models",
    "data",
    "attribution",
    "robustness",
    "figures",
    "training",
    "hub",
    "metrics",
    "conversion",
)
# Subpackages reachable as attributes but not re-exported name by name.
_OTHER_SUBPACKAGES = ("study", "demo", "cli")
_exports: dict[str, ModuleType] | None = None


def _public_names() -> dict[str, ModuleType]:
    """``{public name: the subpackage that defines it}``; imports every public subpackage once."""
    global _exports
    if _exports is None:
        table: dict[str, ModuleType] = {}
        for name in _PUBLIC_SUBPACKAGES:
            module = importlib.import_module(f".{name}", __name__)
            table.update(dict.fromkeys(module.__all__, module))
        _exports = table
    return _exports


def __getattr__(name: str) -> Any:
    if name in _PUBLIC_SUBPACKAGES or name in _OTHER_SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    if name == "__all__":
        return ["__version__", *_public_names()]
    exports = _public_names()
    if name not in exports:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(exports[name], name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC_SUBPACKAGES, *_OTHER_SUBPACKAGES, *_public_names()})


def _register_models() -> None:
    importlib.import_module(".models", __name__)  # registers with the Auto classes on import


def _register_metric() -> None:
    importlib.import_module(".metrics.loading", __name__).register_metric()


after_import("transformers", _register_models)
after_import("evaluate", _register_metric)

if TYPE_CHECKING:
    from .attribution import *  # noqa: F403
    from .conversion import *  # noqa: F403
    from .data import *  # noqa: F403
    from .figures import *  # noqa: F403
    from .hub import *  # noqa: F403
    from .metrics import *  # noqa: F403
    from .models import *  # noqa: F403
    from .robustness import *  # noqa: F403
    from .training import *  # noqa: F403
