"""Curvature, attention and robustness diagnostics of a model on one fixed training batch: computed while training
(:class:`DiagnosticsCallback`) and once on the trained model (:func:`compute_diagnostics`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from transformers import TrainerCallback, TrainerControl, TrainerState

from hf_robattr.attribution import twice_differentiable_attention
from hf_robattr.data import model_inputs
from hf_robattr.robustness import (
    RobustnessConfig,
    attention_entropy,
    evaluate_attribution_robustness,
    hessian_top_eigenvalue,
    hessian_trace,
    input_curvature,
)

from .training_arguments import DIAGNOSTICS


__all__ = ["DiagnosticsCallback", "compute_diagnostics", "diagnose", "diagnostics_batch", "flatten_diagnostics"]


def _estimate(estimate: Any) -> dict[str, float]:
    return {"value": float(estimate.value), "stderr": float(estimate.stderr), "num_probes": int(estimate.num_probes)}


def diagnostics_batch(dataset: Any, collator: Any, size: int, device: torch.device | str) -> dict[str, torch.Tensor]:
    """The fixed batch the diagnostics use: the first ``size`` examples of ``dataset``, collated, with ``labels``
    (annotation columns dropped), on ``device``."""
    features = [dataset[i] for i in range(min(size, len(dataset)))]
    return {key: value.to(device) for key, value in model_inputs(collator(features), labels=True).items()}


def compute_diagnostics(
    model: torch.nn.Module,
    batch: Mapping[str, torch.Tensor],
    *,
    diagnostics: Sequence[str] = DIAGNOSTICS,
    num_probes: int = 2,
    max_probes: int | None = None,
    num_iterations: int = 5,
    seed: int = 0,
    robustness: RobustnessConfig | None = None,
    device: torch.device | str | None = None,
) -> dict[str, Any]:
    """The ``diagnostics`` of ``model`` on ``batch`` (with ``labels``), model in eval mode, attention on the MATH
    kernel (double backward), training mode restored after.

    Returns a dict with, as asked: ``hessian_trace``, ``hessian_top_eigenvalue`` and ``input_curvature`` (each
    ``{"value", "stderr", "num_probes"}``; probes past ``num_probes``, up to ``max_probes``, while the relative
    standard error is above 10%), ``attention_entropy`` (``{"value": mean over layers, "per_layer": [...]}``) and
    ``attribution_robustness`` (the scores of :func:`~hf_robattr.evaluate_attribution_robustness` under
    ``robustness``, the batch's labels as targets). Every random draw uses ``seed``.
    """
    unknown = sorted(set(diagnostics) - set(DIAGNOSTICS))
    if unknown:
        raise ValueError(f"Unknown diagnostics {unknown}; expected names from {list(DIAGNOSTICS)}.")
    probes = {"num_probes": num_probes, "max_probes": max_probes, "seed": seed}
    result: dict[str, Any] = {}
    was_training = model.training
    model.eval()
    try:
        with twice_differentiable_attention():
            if "sharpness" in diagnostics:
                result["hessian_trace"] = _estimate(hessian_trace(model, batch, **probes))
                top = hessian_top_eigenvalue(model, batch, num_iterations=num_iterations, seed=seed)
                result["hessian_top_eigenvalue"] = _estimate(top)
            if "input_curvature" in diagnostics:
                result["input_curvature"] = _estimate(input_curvature(model, batch, **probes))
            if "attention_entropy" in diagnostics:
                entropies = [float(value) for value in attention_entropy(model, batch)]
                if entropies:
                    result["attention_entropy"] = {"value": sum(entropies) / len(entropies), "per_layer": entropies}
            if "attribution_robustness" in diagnostics:
                scores = evaluate_attribution_robustness(
                    model,
                    model_inputs(dict(batch)),
                    robustness,
                    targets=batch["labels"],
                    device=device,
                    progress=False,
                )
                result["attribution_robustness"] = {
                    key: float(value) for key, value in scores.items() if not isinstance(value, dict)
                }
    finally:
        model.train(was_training)
    return result


def diagnose(
    model: torch.nn.Module, batch: Mapping[str, torch.Tensor], args: Any, robustness: RobustnessConfig | None = None
) -> dict[str, Any]:
    """:func:`compute_diagnostics` with the settings of a :class:`~hf_robattr.training.RobAttrTrainingArguments`
    (``--diagnostics``, ``--diagnostics_num_probes``, ``--diagnostics_max_probes``, ``--diagnostics_num_iterations``,
    ``--seed``, ``--device``)."""
    return compute_diagnostics(
        model,
        batch,
        diagnostics=args.diagnostics,
        num_probes=args.diagnostics_num_probes,
        max_probes=args.diagnostics_max_probes,
        num_iterations=args.diagnostics_num_iterations,
        seed=args.seed,
        robustness=robustness,
        device=args.device,
    )


def flatten_diagnostics(diagnostics: Mapping[str, Any]) -> dict[str, float]:
    """``compute_diagnostics``' result as flat log keys: ``diagnostics/{name}`` (+ ``_stderr``),
    ``diagnostics/attention_entropy`` (mean over layers) and ``diagnostics/robustness/{method}/{measure}``."""
    logs: dict[str, float] = {}
    for name, value in diagnostics.items():
        if name == "attribution_robustness":
            logs.update({f"diagnostics/robustness/{k}": v for k, v in value.items() if k != "num_samples"})
            continue
        logs[f"diagnostics/{name}"] = value["value"]
        if "stderr" in value:
            logs[f"diagnostics/{name}_stderr"] = value["stderr"]
    return logs


class DiagnosticsCallback(TrainerCallback):
    """Every ``diagnostics_steps`` steps (and at step 0), compute the diagnostics on one fixed training batch and
    log them through ``Trainer.log``, so they reach every ``report_to`` integration and ``state.log_history`` under
    the keys of :func:`flatten_diagnostics`.

    The batch is the first ``diagnostics_batch_size`` training examples; probes use ``args.seed``, so successive
    values differ only through the model. ``robustness`` is the scoring configuration of the
    ``attribution_robustness`` diagnostic (default: :class:`~hf_robattr.RobustnessConfig`'s defaults). Every process
    computes the same numbers on the same batch (the robustness scoring shards the batch across processes and
    gathers the result), so logs agree under DDP.
    """

    def __init__(self, robustness: RobustnessConfig | None = None) -> None:
        self.robustness = robustness if robustness is not None else RobustnessConfig()
        self.trainer: Any = None
        self.batch: dict[str, torch.Tensor] | None = None

    def bind_trainer(self, trainer: Any) -> None:
        """Remember the trainer, to read its model/data and log through it."""
        self.trainer = trainer

    def compute(self, model: torch.nn.Module, args: Any) -> dict[str, float]:
        """All requested diagnostics on the fixed batch, as a flat ``{key: float}`` dict."""
        if self.batch is None:
            dataset, collator = self.trainer.train_dataset, self.trainer.data_collator
            self.batch = diagnostics_batch(dataset, collator, args.diagnostics_batch_size, args.device)
        return flatten_diagnostics(diagnose(model, self.batch, args, self.robustness))

    def _maybe_log(self, args: Any, state: TrainerState, control: TrainerControl) -> None:
        if self.trainer is None or not args.diagnostics_steps or state.global_step % args.diagnostics_steps:
            return
        model = self.trainer.accelerator.unwrap_model(self.trainer.model)
        # Trainer.log resets control.should_log (CallbackHandler.on_log); keep the step's own loss log.
        should_log = control.should_log
        self.trainer.log(self.compute(model, args))
        control.should_log = should_log

    def on_train_begin(self, args: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        self._maybe_log(args, state, control)

    def on_step_end(self, args: Any, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        self._maybe_log(args, state, control)
