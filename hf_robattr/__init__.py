"""hf_robattr: robust attributions for Hugging Face ViT and BERT models.

``import hf_robattr`` is light: the public names (``hf_robattr.RobAttrViTConfig``, ...) load on first use, so the
``hf-robattr`` command starts in well under a second. The package still registers the kernel-attention models with
the ``transformers`` Auto classes and makes the ``attribution_robustness`` metric loadable by name with
``evaluate.load``: each registration runs as soon as ``transformers`` / ``evaluate`` is imported (at once if it
already is).

The top-level API is curated (``hf_robattr.__all__``, about 60 names: the models, scoring, training, cards, the
metric and the conversion a user starts from); every other public name is imported from its subpackage.
"""

# ruff: noqa: F401 - the TYPE_CHECKING imports name the lazy API for type checkers; __all__ is built from _API.

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ._lazy import after_import


__version__ = "0.1.0"

# The top-level API: what a user imports, by the subpackage (or leaf module) it lives in. Every other public name
# stays in its subpackage (``hf_robattr.training.RunRecord``, ``hf_robattr.models.HedgehogFeatureMap``, ...).
_API: dict[str, tuple[str, ...]] = {
    "models": (
        "FEATURE_MAPS",
        "RobAttrBertConfig",
        "RobAttrBertForSequenceClassification",
        "RobAttrBertModel",
        "RobAttrViTConfig",
        "RobAttrViTForImageClassification",
        "RobAttrViTModel",
    ),
    "data": ("EMBEDDED_DATASETS", "build_offline_tokenizer", "english_prose", "load_classification_dataset",
             "load_embedded_dataset"),
    "attribution": ("ATTRIBUTION_METHODS", "attribute", "prepare_inputs"),
    "robustness": (
        "ATTACKS",
        "MEASURES",
        "ExplainedExamples",
        "RobustnessArguments",
        "RobustnessConfig",
        "RobustnessScorer",
        "attention_entropy",
        "evaluate_attribution_robustness",
        "explain_examples",
        "hessian_top_eigenvalue",
        "hessian_trace",
        "input_curvature",
        "sensitivity_family",
    ),
    "results_io": ("RESULTS_FILE", "json_safe"),
    "figures": ("attribution_figure", "plot_attribution_maps"),
    "training": (
        "REGULARIZERS",
        "ImageDataArguments",
        "RobAttrTrainer",
        "RobAttrTrainingArguments",
        "RunRecord",
        "RunResult",
        "TextDataArguments",
        "TextModelArguments",
        "VisionModelArguments",
        "run_pipeline",
    ),
    "hub": (
        "HubPushError",
        "RobAttrModelCardCallback",
        "RobAttrModelCardData",
        "check_output_dir",
        "publish_run",
        "push_to_hub",
        "save_model_card",
    ),
    "metrics": ("AttributionRobustness", "install_metric", "metric_path", "push_metric_space", "write_metric_space"),
    "conversion": ("ConversionConfig", "ConversionResult", "convert_to_kernel"),
}  # fmt: skip
_HOMES = {name: home for home, names in _API.items() for name in names}
# Subpackages reachable as attributes (``hf_robattr.training``); their names are imported from them.
_SUBPACKAGES = ("models", "data", "attribution", "robustness", "figures", "training", "hub", "metrics", "conversion",
                "study", "demo", "cli", "results_io", "hub_upload", "paper")  # fmt: skip
__all__ = ["__version__", *_HOMES]


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    if name not in _HOMES:
        raise AttributeError(
            f"module {__name__!r} has no attribute {name!r}"
            + (f"; import it from its subpackage, e.g. hf_robattr.{_home_of(name)}" if _home_of(name) else "")
        )
    value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    globals()[name] = value
    return value


def _home_of(name: str) -> str | None:
    """The public subpackage that exports ``name`` (for the error message), or ``None``."""
    if name.startswith("_"):
        return None
    for package in _API:
        module = importlib.import_module(f".{package}", __name__)
        if name in getattr(module, "__all__", ()):
            return f"{package}.{name}"
    return None


def __dir__() -> list[str]:
    return sorted({*globals(), *_SUBPACKAGES, *_HOMES})


def _register_models() -> None:
    importlib.import_module(".models", __name__)  # registers with the Auto classes on import


def _register_metric() -> None:
    importlib.import_module(".metrics.loading", __name__).register_metric()


after_import("transformers", _register_models)
after_import("evaluate", _register_metric)

if TYPE_CHECKING:
    from .attribution import ATTRIBUTION_METHODS, attribute, prepare_inputs
    from .conversion import ConversionConfig, ConversionResult, convert_to_kernel
    from .data import (
        EMBEDDED_DATASETS,
        build_offline_tokenizer,
        english_prose,
        load_classification_dataset,
        load_embedded_dataset,
    )
    from .figures import attribution_figure, plot_attribution_maps
    from .hub import (
        HubPushError,
        RobAttrModelCardCallback,
        RobAttrModelCardData,
        check_output_dir,
        publish_run,
        push_to_hub,
        save_model_card,
    )
    from .metrics import AttributionRobustness, install_metric, metric_path, push_metric_space, write_metric_space
    from .models import (
        FEATURE_MAPS,
        RobAttrBertConfig,
        RobAttrBertForSequenceClassification,
        RobAttrBertModel,
        RobAttrViTConfig,
        RobAttrViTForImageClassification,
        RobAttrViTModel,
    )
    from .results_io import RESULTS_FILE, json_safe
    from .robustness import (
        ATTACKS,
        MEASURES,
        ExplainedExamples,
        RobustnessArguments,
        RobustnessConfig,
        RobustnessScorer,
        attention_entropy,
        evaluate_attribution_robustness,
        explain_examples,
        hessian_top_eigenvalue,
        hessian_trace,
        input_curvature,
        sensitivity_family,
    )
    from .training import (
        REGULARIZERS,
        ImageDataArguments,
        RobAttrTrainer,
        RobAttrTrainingArguments,
        RunRecord,
        RunResult,
        TextDataArguments,
        TextModelArguments,
        VisionModelArguments,
        run_pipeline,
    )
