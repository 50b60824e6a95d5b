"""hf_robattr.hub: model cards with robustness results and pictures, and pushing a run folder to the Hub.

The names load on first use, each from its own module: ``hf-robattr push`` imports the upload code alone, not the
card renderer and Trainer callback (torch, transformers), so its answer, an error included, comes in about a
second.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any


_HOMES = {
    "HubPushError": "push",
    "RobAttrModelCardCallback": "callback",
    "RobAttrModelCardData": "card_data",
    "build_model_card": "card",
    "check_output_dir": "push",
    "publish_run": "publish",
    "publish_run_result": "publish",
    "push_to_hub": "push",
    "run_summary": "publish",
    "save_model_card": "card",
    "template_path": "card",
}
__all__ = [  # spelt out: the API reference reads it from the source
    "HubPushError",
    "RobAttrModelCardCallback",
    "RobAttrModelCardData",
    "build_model_card",
    "check_output_dir",
    "publish_run",
    "publish_run_result",
    "push_to_hub",
    "run_summary",
    "save_model_card",
    "template_path",
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    elif not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f".{name}", __name__)  # a module of the package: hf_robattr.hub.space
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})


if TYPE_CHECKING:
    from .callback import RobAttrModelCardCallback
    from .card import build_model_card, save_model_card, template_path
    from .card_data import RobAttrModelCardData
    from .publish import publish_run, publish_run_result, run_summary
    from .push import HubPushError, check_output_dir, push_to_hub
