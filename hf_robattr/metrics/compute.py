"""The logic behind the ``attribution_robustness`` evaluate module: checks, dataset encoding, distributed runs.

It lives here, not in the evaluate script, so that it is importable and tested without ``evaluate``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch

from hf_robattr.attribution import unwrap_model
from hf_robattr.robustness import RobustnessConfig, evaluate_attribution_robustness

from .inputs import dataset_to_inputs


# Options of ``compute`` that this wrapper consumes (everything else goes to the scoring core unchanged).
ENCODING_OPTIONS = ("image_processor", "tokenizer", "image_column", "text_column", "label_column", "max_length")


def _scoring_core() -> Callable[..., dict[str, Any]]:
    """The scoring core (a function, so that tests can stand in for it)."""
    return evaluate_attribution_robustness


def _check_options(core: Callable[..., Any], options: dict[str, Any]) -> None:
    parameters = inspect.signature(core).parameters
    valid = [name for name, p in parameters.items() if name not in ("model", "inputs") and p.kind != p.VAR_KEYWORD]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        valid += list(RobustnessConfig.field_names())
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise TypeError(
            f"attribution_robustness got unknown option(s) {unknown}; valid options are "
            f"{sorted(valid + list(ENCODING_OPTIONS))}."
        )


def _is_dataset(inputs: Any) -> bool:
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a dependency
        return False
    return isinstance(inputs, datasets.Dataset)


def compute_attribution_robustness(model: torch.nn.Module, inputs: Any, **options: Any) -> dict[str, float]:
    """Score how well a model's attributions survive input perturbations; the body of the evaluate metric.

    Every option except the dataset-encoding ones (``image_processor``, ``tokenizer``, ``image_column``,
    ``text_column``, ``label_column``, ``max_length``; see :func:`dataset_to_inputs`) goes unchanged to
    ``hf_robattr.evaluate_attribution_robustness``, so the same arguments give the same numbers.

    Under ``torch.distributed`` (``accelerate launch``, ``torchrun``) every rank scores its own shard of the examples
    and every rank returns the same dict, equal to a single-process run. Pass the same inputs on every rank.

    Args:
        model: an image or text classifier (``torch.nn.Module``; DDP wrappers are unwrapped).
        inputs: a pixel-values tensor, a tokenized batch, or a ``datasets.Dataset`` (with ``image_processor`` or
            ``tokenizer``; without either, the dataset goes to the core as is).
        **options: the core's options (``methods``, ``attack``, ``epsilon``, ...) and the encoding options.

    Returns:
        The core's dict: ``"{method}/{measure}"`` floats, ``"num_samples"``, ``"num_skipped"``, and the nested
        ``"saturated"``, ``"baselines"`` (and ``"epsilon_calibration"`` with ``epsilon="auto"``).

    An option passed as ``None`` counts as not given (the evaluate signature shows every option with a ``None``
    default): it takes ``config``'s value, else the core's default. A dataset encoded with ``tokenizer`` is truncated
    to the tokens ``model`` can embed (see :func:`dataset_to_inputs`).
    """
    if model is None:
        raise ValueError("`model` is required: pass the classifier to score, e.g. `compute(model=model, inputs=...)`.")
    if not isinstance(model, torch.nn.Module):
        raise TypeError(
            f"`model` must be a torch.nn.Module (an image or text classifier), got {type(model).__name__}."
        )
    if inputs is None:
        raise ValueError(
            "`inputs` is required: a pixel-values tensor, a tokenized batch, or a datasets.Dataset with an "
            "`image_processor` or `tokenizer`."
        )
    model = unwrap_model(model)
    encoding = {name: options.pop(name) for name in ENCODING_OPTIONS if name in options}
    if _is_dataset(inputs) and (encoding.get("image_processor") is not None or encoding.get("tokenizer") is not None):
        inputs, targets = dataset_to_inputs(inputs, model=model, **encoding)
        if targets is not None:
            if options.get("targets") is not None:
                raise ValueError("Pass either `targets` or `label_column`, not both.")
            options["targets"] = targets
    elif any(value is not None for value in encoding.values()):
        raise ValueError(
            f"{sorted(k for k, v in encoding.items() if v is not None)} only apply when `inputs` is a "
            "datasets.Dataset encoded with an `image_processor` or a `tokenizer`."
        )

    core = _scoring_core()
    _check_options(core, options)
    # ``None`` means "not given", for the core's own parameters and for the settings alike: passed on, a None setting
    # would replace ``config``'s value (or fail validation, e.g. ``methods=None``).
    options = {name: value for name, value in options.items() if value is not None}
    return core(model, inputs, **options)
