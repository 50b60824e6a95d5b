"""The checkpoints every cell of an arm starts from, made once per study before its runs.

- Arms with a :class:`~hf_robattr.study.protocol.WarmStart`: one AdamW warm-up per attention type, trained from
  scratch with the run pipeline (seed 0) until the true training loss is <= its target, saved under
  ``<output_dir>/checkpoints/<arm>-<attention>-<fingerprint>/`` with a ``warm_start.json`` record. A folder whose
  record exists is reused (resumable); a half-written one is trained again.
- Pretrained arms: softmax cells start from the pretrained checkpoint; kernel cells from it converted to kernel
  attention once by :func:`hf_robattr.convert_to_kernel` (attention transfer on the library's offline English
  prose, options from the protocol's ``conversion``), saved under ``<output_dir>/checkpoints/`` and reused. With
  ``pretrained_layers`` set, "the pretrained checkpoint" is a copy of it truncated to its first N encoder layers
  (model, config and processor), written once under ``<output_dir>/checkpoints/<arm>-softmax-<fingerprint>/`` with a
  ``truncation_record.json`` (written last: a half-written copy is made again).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import transformers
from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoTokenizer, BertModel, ViTModel

from hf_robattr.conversion import convert_to_kernel, english_prose
from hf_robattr.data import PROSE_SOURCES
from hf_robattr.training import run_pipeline
from hf_robattr.training.record import TrainingRecord

from .grid import Cell, RunSpec
from .pool import evaluation_pool
from .protocol import ArmProtocol
from .run import data_arguments, model_arguments, resolve_checkpoint, training_arguments
from .scales import StudySettings


__all__ = ["CheckpointStartRecord", "StartPoint", "WarmStartRecord", "prepare_start_points", "start_key"]

logger = logging.getLogger(__name__)
RECORD = "warm_start.json"
CONVERSION_RECORD = "conversion_record.json"
TRUNCATION_RECORD = "truncation_record.json"


@dataclass(frozen=True)
class StartPoint:
    """Where the cells of one arm and attention type start: ``checkpoint`` (a folder or Hub id; ``None``:
    unavailable, the cells are left out, ``reason`` says why) and the record of its making."""

    arm: str
    attention_type: str
    checkpoint: str | None
    kind: str
    record: dict[str, Any]
    reason: str = ""

    @property
    def available(self) -> bool:
        """Whether the cells of this start point can run (now, or once a pending warm-up is trained)."""
        return self.kind != "unavailable"


@dataclass(frozen=True)
class WarmStartRecord:
    """``warm_start.json``: the warm-up's settings and where its training stopped (the pipeline's
    :class:`~hf_robattr.training.record.TrainingRecord` fields of the same names); ``seconds`` its wall time."""

    arm: str
    attention_type: str
    fingerprint: str
    optimizer: str
    learning_rate: float
    batch_size: int
    target_loss: float
    target_reached: bool | None = None
    train_loss_at_stop: float | None = None
    global_step: int | None = None
    num_train_examples_seen: int | None = None
    seconds: float | None = None

    @classmethod
    def from_training(
        cls, protocol: ArmProtocol, attention_type: str, training: TrainingRecord, seconds: float
    ) -> WarmStartRecord:
        """The record of ``protocol``'s warm-up of ``attention_type`` that trained to ``training``."""
        warm = protocol.warm_start
        if warm is None:
            raise ValueError(f"Arm {protocol.arm!r} has no warm start (ArmProtocol.warm_start is None).")
        return cls(
            protocol.arm,
            attention_type,
            protocol.fingerprint(attention_type),
            "adamw",
            warm.learning_rate,
            warm.batch_size,
            warm.target_loss,
            training.target_reached,
            training.train_loss_at_stop,
            training.global_step,
            training.num_train_examples_seen,
            seconds,
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WarmStartRecord:
        """The record from its JSON object (a missing key reads as ``None``)."""
        return cls(**{spec.name: data.get(spec.name) for spec in fields(cls)})

    def to_json(self) -> dict[str, Any]:
        """The JSON object, its keys in field order."""
        return asdict(self)


@dataclass(frozen=True)
class CheckpointStartRecord:
    """The record of a start point made from a pretrained checkpoint: its Hub id or folder, and, for a kernel start
    point, the conversion (``conversion_record.json``): its options, how many examples trained it, the
    :func:`~hf_robattr.conversion.measure_fidelity` numbers per stage and its wall time. ``pretrained_layers``: the
    checkpoint was truncated to its first N encoder layers (``truncation_record.json``; left out of the JSON while
    ``None``, so older records are written as they were)."""

    checkpoint: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    num_texts: int | None = None
    fidelity: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float | None = None
    pretrained_layers: int | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CheckpointStartRecord:
        """The record from its JSON object (a missing key reads as its default)."""
        return cls(**{spec.name: data[spec.name] for spec in fields(cls) if spec.name in data})

    def to_json(self) -> dict[str, Any]:
        """The JSON object, its keys in field order (``pretrained_layers`` only where set)."""
        data = asdict(self)
        if self.pretrained_layers is None:
            del data["pretrained_layers"]
        return data

    @property
    def embedding_cosine(self) -> float | None:
        """The converted model's held-out embedding cosine to the softmax model, from its last stage measured."""
        stage = self.fidelity.get("recovery") or self.fidelity.get("attention_transfer") or {}
        cosine = stage.get("embedding_cosine_mean") if isinstance(stage, Mapping) else None
        return cosine if isinstance(cosine, float) else None


def start_key(arm: str, attention_type: str) -> str:
    """The key of a start point in the mapping :func:`prepare_start_points` returns."""
    return f"{arm}/{attention_type}"


def _stored(
    folder: Path, record: str, arm: str, attention: str, kind: str, train: bool, missing: str
) -> StartPoint | None:
    """The start point ``folder`` holds when its ``record`` (written last) marks it done; a ``pending`` one when it
    is not and ``train`` is false (``missing`` says why); else ``None``, the folder of an interrupted attempt removed,
    for the caller to make it now."""
    done = folder / record
    if done.is_file():
        return StartPoint(arm, attention, str(folder), kind, json.loads(done.read_text()))
    if not train:
        return StartPoint(arm, attention, None, "pending", {}, missing)
    if folder.exists():
        shutil.rmtree(folder)
    return None


def _converted(protocol: ArmProtocol, directory: Path, train: bool) -> StartPoint:
    """The arm's pretrained checkpoint (truncated first where ``pretrained_layers`` is set: the softmax cells'
    start point is the teacher) converted to kernel attention (once; ``conversion_record.json``, written last, marks
    the folder done). Text models convert on the library's offline English prose, image models on the
    arm's training images. ``conversion`` options ``num_texts`` / ``num_eval_texts`` choose how many examples train
    / measure it and ``prose_sources`` which prose (default: all of :data:`~hf_robattr.data.PROSE_SOURCES`, whose
    first harvest on a machine takes a minute or more); the others go to :func:`hf_robattr.convert_to_kernel`."""
    folder = directory / "checkpoints" / f"{protocol.arm}-kernel-{protocol.fingerprint('kernel')}"
    missing = "the conversion has not run yet"
    stored = _stored(folder, CONVERSION_RECORD, protocol.arm, "kernel", "converted", train, missing)
    if stored is not None:
        return stored
    options = dict(protocol.conversion)
    num_texts = options.pop("num_texts", None)
    num_eval_texts = options.pop("num_eval_texts", 64)
    sources = tuple(options.pop("prose_sources", PROSE_SOURCES))
    teacher_path = _pretrained_start(protocol, directory, train).checkpoint
    teacher, processor, inputs, held_out = _conversion_data(protocol, teacher_path, num_texts, num_eval_texts, sources)
    logger.info("Converting %s to kernel attention (%d examples, %s)", protocol.pretrained, len(inputs), options)
    start = time.perf_counter()
    tokenizer = processor if protocol.model == "bert" else None
    with contextlib.redirect_stdout(io.StringIO()):
        result = convert_to_kernel(
            teacher, inputs, tokenizer=tokenizer, eval_inputs=held_out, progress=False, **options
        )
        result.save_pretrained(folder, processor=processor)
    record = CheckpointStartRecord(
        protocol.pretrained,
        json.loads(json.dumps(dict(protocol.conversion))),  # as it reads back (tuples are lists)
        len(inputs),
        result.fidelity,
        time.perf_counter() - start,
        protocol.pretrained_layers,
    ).to_json()
    (folder / CONVERSION_RECORD).write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
    return StartPoint(protocol.arm, "kernel", str(folder), "converted", record)


def _warm_start(protocol: ArmProtocol, attention: str, directory: Path, train: bool) -> StartPoint:
    warm = protocol.warm_start
    folder = directory / "checkpoints" / f"{protocol.arm}-{attention}-{protocol.fingerprint(attention)}"
    missing = "the warm-up has not been trained yet"
    stored = _stored(folder, RECORD, protocol.arm, attention, "warm_start", train, missing)
    if stored is not None:
        return stored
    logger.info("Warm start of %s/%s: AdamW to a training loss of %g", protocol.arm, attention, warm.target_loss)
    spec = RunSpec(Cell(protocol.arm, attention, "adamw", warm.learning_rate, warm.batch_size), 0, protocol)
    args = training_arguments(
        spec,
        str(folder),
        target_train_loss=warm.target_loss,
        target_check_every_examples=warm.check_every_examples,
        num_train_epochs=warm.max_epochs,
        diagnostics_at_end=False,
        divergence_loss=None,
    )
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the Trainer prints its metrics
        result = run_pipeline(model_arguments(protocol, attention, None), data_arguments(protocol), args)
    seconds = time.perf_counter() - start
    record = WarmStartRecord.from_training(protocol, attention, result.record.training, seconds).to_json()
    (folder / RECORD).write_text(json.dumps(record, indent=1), encoding="utf-8")  # written last: marks the folder done
    return StartPoint(protocol.arm, attention, str(folder), "warm_start", record)


@contextlib.contextmanager
def _quiet_loading():
    """Transformers' warnings off: a truncated load reports the layers it leaves out as unexpected weights."""
    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(level)


def _pretrained_start(protocol: ArmProtocol, directory: Path, train: bool) -> StartPoint:
    """The softmax cells' start point of a pretrained arm: the checkpoint itself, or, with ``pretrained_layers``, a
    copy of it truncated to its first N encoder layers (written once; ``truncation_record.json``, written last,
    marks the folder done). Also the teacher of the kernel cells' conversion."""
    layers = protocol.pretrained_layers
    path = resolve_checkpoint(protocol.pretrained)
    if layers is None:
        return StartPoint(
            protocol.arm, "softmax", path, "pretrained", CheckpointStartRecord(protocol.pretrained).to_json()
        )
    folder = directory / "checkpoints" / f"{protocol.arm}-softmax-{protocol.fingerprint('softmax')}"
    missing = "the truncated checkpoint is not written yet"
    stored = _stored(folder, TRUNCATION_RECORD, protocol.arm, "softmax", "pretrained", train, missing)
    if stored is not None:
        return stored
    config = AutoConfig.from_pretrained(path)
    if layers > getattr(config, "num_hidden_layers", layers):  # more would start new layers at random, silently
        raise ValueError(
            f"ArmProtocol.pretrained_layers {layers} exceeds the {config.num_hidden_layers} encoder layers of "
            f"{protocol.pretrained!r}."
        )
    logger.info("Truncating %s to its first %d encoder layers", protocol.pretrained, layers)
    architectures = config.architectures or []
    model_class = getattr(transformers, architectures[0], AutoModel) if architectures else AutoModel
    with _quiet_loading():
        model_class.from_pretrained(path, num_hidden_layers=layers).save_pretrained(folder)
    processor = AutoTokenizer if protocol.model == "bert" else AutoImageProcessor
    processor.from_pretrained(path).save_pretrained(folder)
    record = CheckpointStartRecord(protocol.pretrained, pretrained_layers=layers).to_json()
    (folder / TRUNCATION_RECORD).write_text(json.dumps(record, indent=1), encoding="utf-8")
    return StartPoint(protocol.arm, "softmax", str(folder), "pretrained", record)


def _conversion_data(
    protocol: ArmProtocol, path: str | None, size: int | None, eval_size: int, sources: tuple[str, ...]
) -> tuple[Any, Any, Any, Any]:
    """The softmax teacher (from ``path``), its processor, and the conversion's training and held-out inputs (text:
    the English prose of ``sources``)."""
    if protocol.model == "bert":
        prose = english_prose(sources=sources)
        texts = list(prose["train"]["text"])[:size]
        return (
            BertModel.from_pretrained(path),
            AutoTokenizer.from_pretrained(path),
            texts,
            list(prose["test"]["text"])[:eval_size],
        )
    processor, model = AutoImageProcessor.from_pretrained(path), ViTModel.from_pretrained(path)
    channels = int(model.config.num_channels)
    train = evaluation_pool(replace(protocol, eval_pool=size or 1024), processor, "train", num_channels=channels)
    held_out = evaluation_pool(replace(protocol, eval_pool=eval_size), processor, "validation", num_channels=channels)
    return model, processor, train.inputs["pixel_values"], held_out.inputs["pixel_values"]


def prepare_start_points(
    settings: StudySettings,
    arms: tuple[str, ...],
    directory: str | Path,
    *,
    train: bool = True,
    attention_types: tuple[str, ...] | None = None,
) -> dict[str, StartPoint]:
    """The start point of every arm in ``arms`` and attention type of its grid (or of ``attention_types``),
    warm-ups and conversions made as needed; ``train=False``: missing ones are reported as ``pending`` instead."""
    directory = Path(directory)
    points: dict[str, StartPoint] = {}
    for name in arms:
        protocol, grid = settings.arm(name)
        for attention in grid.attention_types:
            if attention_types is not None and attention not in attention_types:
                continue
            if protocol.warm_start is not None:
                point = _warm_start(protocol, attention, directory, train)
            elif protocol.pretrained is None:
                point = StartPoint(name, attention, None, "scratch", {}, "")
            elif attention == "softmax":
                point = _pretrained_start(protocol, directory, train)
            else:
                point = _converted(protocol, directory, train)
            points[start_key(name, attention)] = point
    return points
