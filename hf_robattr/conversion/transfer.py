"""Stage 1, attention transfer: teach each kernel-attention layer to attend like its softmax teacher.

Layer-local, as in LoLCATs: the frozen teacher runs once per batch, and every student attention layer is fed the
teacher's own input to that layer, so errors do not pile up through depth and only the attention is computed (no
MLP). The loss is the KL divergence between the teacher's softmax rows and the student's kernel rows, summed over
layers, averaged over heads and real query tokens, then over examples. Only the feature maps (and optional
query/key LoRA adapters) train.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from transformers import PrinterCallback, Trainer

from hf_robattr.models import kernel_attention_weights, record_attention_inputs

from .inputs import ExampleDataset, LengthGroupedSampler
from .losses import attention_kl, relative_squared_error
from .student import attention_modules


__all__ = ["AttentionTransferModel", "AttentionTransferTrainer", "DistillationTrainer", "capture_attention_inputs"]


@contextmanager
def capture_attention_inputs(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Record the ``hidden_states`` that each self-attention module of ``model`` receives, in layer order."""
    captured: list[torch.Tensor] = []

    def hook(module, args, kwargs):
        captured.append(args[0] if args else kwargs["hidden_states"])

    handles = [module.register_forward_pre_hook(hook, with_kwargs=True) for module in attention_modules(model)]
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()


class AttentionTransferModel(nn.Module):
    """The stage 1 objective as a module whose ``forward`` returns ``{"loss", "metrics"}``, so that a ``Trainer``
    (and DDP) can drive it. The ``student`` is a submodule; the frozen ``teacher`` is not (not saved, not wrapped).

    ``shared_projections`` says whether the student's query/key projections are the teacher's (then the queries and
    keys are computed once); None compares the weights. ``cache_teacher_inputs`` keeps each example's per-layer attention inputs (on CPU, real tokens only) after its
    first visit, keyed by the batch's ``example_index``, so later epochs skip the teacher's forward pass.
    """

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        *,
        output_weight: float = 0.0,
        cache_teacher_inputs: bool = False,
        shared_projections: bool | None = None,
    ):
        super().__init__()
        self.student = student
        object.__setattr__(self, "teacher", teacher)
        self.output_weight = output_weight
        self.cache_teacher_inputs = cache_teacher_inputs
        self._cache: dict[int, list[torch.Tensor]] = {}
        self._teacher_attention = attention_modules(teacher)
        self._student_attention = attention_modules(student)
        if shared_projections is None:
            shared_projections = all(map(_same_projections, self._student_attention, self._teacher_attention))
        self.shares_projections = shared_projections

    def _teacher_inputs(
        self, inputs: dict[str, torch.Tensor], example_index: torch.Tensor | None
    ) -> list[torch.Tensor]:
        indices = None if example_index is None else example_index.tolist()
        if self.cache_teacher_inputs and indices is not None and all(i in self._cache for i in indices):
            return self._from_cache(indices, inputs)
        with torch.no_grad(), capture_attention_inputs(self.teacher) as captured:
            self.teacher(**inputs)
        captured = [h.detach() for h in captured]
        if self.cache_teacher_inputs and indices is not None:
            lengths = _lengths(inputs, captured[0].shape[1])
            for row, index in enumerate(indices):
                self._cache[index] = [h[row, : lengths[row]].to("cpu", copy=True) for h in captured]
        return captured

    def _from_cache(self, indices: list[int], inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        device = next(iter(inputs.values())).device
        layers = zip(*(self._cache[i] for i in indices))
        return [nn.utils.rnn.pad_sequence(list(layer), batch_first=True).to(device) for layer in layers]

    def _records(self, inputs: dict[str, torch.Tensor], example_index: torch.Tensor | None, key_mask) -> tuple:
        """Teacher and student queries/keys from the teacher's per-layer attention inputs (cached or fresh)."""
        layer_inputs = self._teacher_inputs(inputs, example_index)
        with torch.no_grad(), record_attention_inputs(self.teacher) as teacher_records:
            for module, hidden in zip(self._teacher_attention, layer_inputs):
                module(hidden, attention_mask=key_mask)
        if self.shares_projections:
            return teacher_records, teacher_records
        with record_attention_inputs(self.student) as student_records:  # query/key adapters: the student projects
            for module, hidden in zip(self._student_attention, layer_inputs):
                module(hidden, attention_mask=key_mask)
        return teacher_records, student_records

    def forward(self, example_index: torch.Tensor | None = None, **inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-layer KL (and optional attention-output error) of the student against the teacher on ``inputs``."""
        self.student.eval()  # distillation: no dropout, no FAVOR+ redraws (the Trainer switches to train mode)
        inputs.pop("labels", None)
        token_mask = inputs.get("attention_mask")
        key_mask = None if token_mask is None else token_mask.bool()[:, None, None, :]
        if self.shares_projections and not self.cache_teacher_inputs:
            # one teacher pass records every layer's queries and keys, which are the student's too
            with torch.no_grad(), record_attention_inputs(self.teacher) as teacher_records:
                self.teacher(**inputs)
            student_records = teacher_records
        else:
            teacher_records, student_records = self._records(inputs, example_index, key_mask)
        kl_terms, output_terms = [], []
        for teacher, student, module in zip(teacher_records, student_records, self._student_attention):
            teacher_weights = teacher.softmax_weights()
            student_weights = kernel_attention_weights(
                module.feature_map, student.query, student.key, teacher.attention_mask, module.kernel_eps
            )
            kl_terms.append(attention_kl(teacher_weights, student_weights, token_mask))
            if self.output_weight:
                value = teacher.value.float()
                output_terms.append(
                    relative_squared_error(
                        _merge_heads(student_weights @ value), _merge_heads(teacher_weights @ value), token_mask
                    )
                )
        layer_kl = torch.stack(kl_terms)  # [layers, batch]
        loss = layer_kl.sum(0)
        if output_terms:
            loss = loss + self.output_weight * torch.stack(output_terms).sum(0)
        return {"loss": loss.mean(), "metrics": layer_kl.detach().mean(1)}

    def metric_names(self) -> list[str]:
        """Names of the entries of ``forward(...)["metrics"]``."""
        return [f"attention_kl/layer_{i}" for i in range(len(self._student_attention))]


def _same_projections(student: nn.Module, teacher: nn.Module) -> bool:
    """Whether two attention modules hold the same projection weights (feature maps aside): then the student's
    queries and keys are the teacher's, and are computed once."""
    ours = {n: p for n, p in student.named_parameters() if not n.startswith("feature_map.")}
    theirs = dict(teacher.named_parameters())
    return ours.keys() == theirs.keys() and all(torch.equal(p, theirs[n]) for n, p in ours.items())


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``[batch, heads, tokens, head_dim]`` -> ``[batch, tokens, heads * head_dim]``."""
    return x.transpose(1, 2).flatten(2)


def _lengths(inputs: dict[str, torch.Tensor], width: int) -> list[int]:
    mask = inputs.get("attention_mask")
    if mask is None:
        return [width] * next(iter(inputs.values())).shape[0]
    return [int(n) for n in mask.sum(-1)]


class DistillationTrainer(Trainer):
    """A ``Trainer`` for a distillation module (``forward`` returns ``{"loss", "metrics"}`` and the module names the
    metrics with ``metric_names()``): logs the metrics' means beside the loss, reduced across processes. Losses are
    per-example means, so ``num_items_in_batch`` is ignored."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.args.disable_tqdm:  # a library call without progress output prints nothing (logs stay in the state)
            self.remove_callback(PrinterCallback)
        self.model_accepts_loss_kwargs = False
        self._metric_sum: torch.Tensor | None = None
        self._metric_count = 0

    def _get_train_sampler(self, train_dataset=None):
        """Length-grouped global batches (:class:`LengthGroupedSampler`), the same for any number of processes."""
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if not isinstance(dataset, ExampleDataset):
            return super()._get_train_sampler(train_dataset)
        global_batch = self.args.train_batch_size * self.args.world_size * self.args.gradient_accumulation_steps
        return LengthGroupedSampler(dataset.lengths(), global_batch, seed=self.args.seed)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The module's loss; the per-layer metric is accumulated for the next log."""
        outputs = model(**inputs)
        if "metrics" in outputs:
            values = outputs["metrics"].float()
            self._metric_sum = values if self._metric_sum is None else self._metric_sum + values
            self._metric_count += 1
        return (outputs["loss"], outputs) if return_outputs else outputs["loss"]

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        """Add the metrics (means since the last log, over all processes) to a loss log."""
        if self._metric_count and "loss" in logs:
            mean = self.accelerator.reduce(self._metric_sum / self._metric_count, reduction="mean")
            names = self.accelerator.unwrap_model(self.model).metric_names()
            logs.update({name: round(float(v), 6) for name, v in zip(names, mean)})
            self._metric_sum, self._metric_count = None, 0
        super().log(logs, *args, **kwargs)


class AttentionTransferTrainer(DistillationTrainer):
    """Stage 1 ``Trainer``: trains ``student``'s feature maps (and any adapters it carries) against ``teacher``.

    ``objective`` holds :class:`AttentionTransferModel`'s keyword options (``output_weight``, ``cache_teacher_inputs``,
    ``shared_projections``; omitted ones keep that class's defaults). The student's trainable parameters are whatever
    has ``requires_grad`` when it is passed in.
    """

    def __init__(self, *, student: nn.Module, teacher: nn.Module, objective: dict | None = None, **kwargs):
        module = AttentionTransferModel(student, teacher, **(objective or {}))
        super().__init__(model=module, **kwargs)
        teacher.to(self.args.device)
