"""Trainer callbacks: stop at a target training loss; log curvature and robustness diagnostics while training."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_callback import ExportableState

from .regularizers import second_derivative_context


__all__ = ["DiagnosticsCallback", "TargetLossCallback"]


class TargetLossCallback(TrainerCallback, ExportableState):
    """Stop training once the logged training loss is ``<= target`` and record whether (and when) it happened.

    It watches ``data_loss`` when a regularizer is active (so regimes are compared at matched fit, not matched
    objective) and ``loss`` otherwise; both are averaged over the logging window and across processes, so every
    process stops at the same step. Its state is saved in checkpoints, so a resumed run remembers it.
    """

    def __init__(self, target: float, reached: bool = False, reached_at_step: int | None = None) -> None:
        if target <= 0:
            raise ValueError(f"target_train_loss must be > 0, got {target}.")
        self.target = float(target)
        self.reached = reached
        self.reached_at_step = reached_at_step

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: Mapping[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        value = None if logs is None else logs.get("data_loss", logs.get("loss"))
        if value is not None and value <= self.target and not self.reached:
            self.reached, self.reached_at_step = True, state.global_step
        if self.reached:
            control.should_training_stop = True

    def state(self) -> dict[str, Any]:
        return {
            "args": {"target": self.target},
            "attributes": {"reached": self.reached, "reached_at_step": self.reached_at_step},
        }


def _estimate_logs(key: str, estimate: Any) -> dict[str, float]:
    """``{key: value}`` plus ``{key}_stderr`` when the estimate has one."""
    logs = {key: float(getattr(estimate, "value", estimate))}
    stderr = getattr(estimate, "stderr", None)
    if stderr is not None:
        logs[f"{key}_stderr"] = float(stderr)
    return logs


class DiagnosticsCallback(TrainerCallback):
    """Every ``diagnostics_steps`` steps, compute diagnostics on one fixed training batch and log them.

    Values go through ``Trainer.log``, so they reach every ``report_to`` integration and ``state.log_history``,
    under the keys ``diagnostics/hessian_trace``, ``diagnostics/hessian_top_eigenvalue``,
    ``diagnostics/input_curvature``, ``diagnostics/attention_entropy`` (mean over layers) and
    ``diagnostics/robustness/{method}/{measure}``. The batch is the first ``diagnostics_batch_size`` training
    examples; probes use ``args.seed``, so successive values differ only through the model. The model is put in
    eval mode (no dropout) and attention runs the MATH kernel, which allows double backward.

    Every process computes the same numbers on the same batch (no collective), so logs agree under DDP.
    Needs ``hf_robattr.robustness`` (imported when first used).
    """

    def __init__(self) -> None:
        self.trainer: Any = None
        self.batch: dict[str, torch.Tensor] | None = None

    def bind_trainer(self, trainer: Any) -> None:
        """Remember the trainer, to read its model/data and log through it."""
        self.trainer = trainer

    def _fixed_batch(self, args: Any) -> dict[str, torch.Tensor]:
        if self.batch is None:
            dataset = self.trainer.train_dataset
            size = min(args.diagnostics_batch_size, len(dataset))
            features = [dataset[i] for i in range(size)]
            batch = self.trainer.data_collator(features)
            self.batch = {k: v.to(args.device) for k, v in batch.items() if torch.is_tensor(v)}
        return self.batch

    def compute(self, model: torch.nn.Module, args: Any) -> dict[str, float]:
        """All requested diagnostics on the fixed batch, as a flat ``{key: float}`` dict."""
        from hf_robattr import robustness

        batch = {k: v for k, v in self._fixed_batch(args).items() if k not in ("masks", "rationale_mask")}
        logs: dict[str, float] = {}
        wanted = set(args.diagnostics)
        was_training = model.training
        model.eval()
        try:
            with second_derivative_context():
                if "sharpness" in wanted:
                    trace = robustness.hessian_trace(
                        model, batch, num_probes=args.diagnostics_num_probes, seed=args.seed
                    )
                    top = robustness.hessian_top_eigenvalue(
                        model, batch, num_iterations=args.diagnostics_num_iterations, seed=args.seed
                    )
                    logs.update(_estimate_logs("diagnostics/hessian_trace", trace))
                    logs.update(_estimate_logs("diagnostics/hessian_top_eigenvalue", top))
                if "input_curvature" in wanted:
                    curvature = robustness.input_curvature(
                        model, batch, num_probes=args.diagnostics_num_probes, seed=args.seed
                    )
                    logs.update(_estimate_logs("diagnostics/input_curvature", curvature))
                if "attention_entropy" in wanted:
                    entropies = [float(e) for e in robustness.attention_entropy(model, batch)]
                    if entropies:
                        logs["diagnostics/attention_entropy"] = sum(entropies) / len(entropies)
                if "attribution_robustness" in wanted:
                    scores = robustness.evaluate_attribution_robustness(
                        model,
                        {k: v for k, v in batch.items() if k != "labels"},
                        targets=batch["labels"],
                        batch_size=args.robustness_batch_size,
                        seed=args.seed,
                        device=args.device,
                        progress=False,
                        **robustness_options(args),
                    )
                    logs.update(
                        {f"diagnostics/robustness/{k}": float(v) for k, v in scores.items() if k != "num_samples"}
                    )
        finally:
            model.train(was_training)
        return logs

    def _maybe_log(self, args: Any, state: TrainerState, control: TrainerControl) -> None:
        if self.trainer is None or not args.diagnostics_steps:
            return
        if state.global_step % args.diagnostics_steps:
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


def _is_reported(key: str) -> bool:
    return key != "num_samples" and not key.endswith("_std")


def robustness_options(args: Any) -> dict[str, Any]:
    """Keyword arguments for ``evaluate_attribution_robustness`` from ``RobAttrTrainingArguments``."""
    return {
        "methods": tuple(args.robustness_methods),
        "attack": args.robustness_attack,
        "epsilon": args.robustness_epsilon,
        "norm": args.robustness_norm,
        "num_steps": args.robustness_num_steps,
        "k": args.robustness_k,
        "num_samples": args.robustness_num_samples,
    }
