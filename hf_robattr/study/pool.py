"""The evaluation pool: the first examples of a split, the same for every model of an arm, with their ground truth.

Every model of an arm is measured on the same pool; the analysis then keeps the examples that every model of the
comparison classifies correctly (one common evaluation set). The pool carries the evidence annotations of the
generated sets (image masks, text rationales) that the precondition checks need; the pipeline's prepared splits
drop them, so the pool re-applies the data package's transforms to the same raw split (same name, size and split
seed as the pipeline's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers import DataCollatorWithPadding

from hf_robattr.data import (
    IMAGE_COLUMN_CANDIDATES,
    TEXT_COLUMN_CANDIDATES,
    ImageClassificationTransform,
    TextClassificationTransform,
    load_classification_dataset,
    model_inputs,
)

from .protocol import ArmProtocol


__all__ = ["SPLIT_SEED", "EvalPool", "evaluation_pool"]

SPLIT_SEED = 0  # every run of the study shares one train/validation/test split


@dataclass
class EvalPool:
    """The first examples of a split as one batch: model ``inputs``, ``labels``, and the ground-truth evidence
    (``evidence``: pixel masks ``[N, H, W]`` for images, token masks ``[N, T]`` for text; ``None`` without)."""

    inputs: dict[str, torch.Tensor]
    labels: torch.Tensor
    evidence: torch.Tensor | None
    split: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def select(self, count: int) -> EvalPool:
        """The first ``count`` examples."""
        inputs = {k: v[:count] for k, v in self.inputs.items()}
        evidence = None if self.evidence is None else self.evidence[:count]
        return EvalPool(inputs, self.labels[:count], evidence, self.split)


def _raw_split(protocol: ArmProtocol, split: str, size: int, candidates: tuple[str, ...], purpose: str) -> Any:
    splits, column, label = load_classification_dataset(
        protocol.dataset,
        input_candidates=candidates,
        input_purpose=purpose,
        num_examples=protocol.dataset_size,
        seed=SPLIT_SEED,
    )
    part = splits[split]
    return part.select(range(min(size, len(part)))), column, label


def evaluation_pool(protocol: ArmProtocol, processor: Any, split: str = "test", *, num_channels: int = 3) -> EvalPool:
    """The first ``protocol.eval_pool`` examples of ``split`` (``test``, or ``validation`` for the weight sweep),
    transformed as the pipeline transforms them (``processor``: the run's image processor, ``None`` for the
    built-in image transform, or its tokenizer; images in the model's ``num_channels``), with the evidence
    annotations where the dataset has them."""
    if protocol.model == "vit":
        raw, column, label = _raw_split(protocol, split, protocol.eval_pool, IMAGE_COLUMN_CANDIDATES, "images")
        transform = ImageClassificationTransform(
            image_column=column,
            label_column=label,
            image_size=protocol.image_size,
            num_channels=num_channels,
            image_processor=processor,
            mask_column="mask" if "mask" in raw.column_names else None,
        )
        attached = transform.attach(raw)
        rows = [attached[i] for i in range(len(raw))]
        batch = {key: torch.stack([torch.as_tensor(row[key]) for row in rows]) for key in rows[0]}
        return EvalPool(model_inputs(batch), batch["labels"].long(), batch.get("masks"), split)
    raw, column, label = _raw_split(protocol, split, protocol.eval_pool, TEXT_COLUMN_CANDIDATES, "text")
    rationale = "rationale" if "rationale" in raw.column_names else None
    transform = TextClassificationTransform(
        processor,
        text_column=column,
        label_column=label,
        max_seq_length=protocol.max_seq_length,
        rationale_column=rationale,
    )
    encoded = raw.map(transform, batched=True, remove_columns=raw.column_names)
    rows = [dict(encoded[i]) for i in range(len(encoded))]
    masks = [row.pop("rationale_mask", None) for row in rows]
    batch = DataCollatorWithPadding(processor)(rows)
    evidence = None
    if rationale is not None:
        width = batch["input_ids"].shape[1]
        evidence = torch.tensor([mask + [0] * (width - len(mask)) for mask in masks])
    return EvalPool(model_inputs(batch), batch["labels"].long(), evidence, split)
