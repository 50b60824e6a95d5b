"""The typed record of a conversion: ``results.json`` in a converted model's folder, one dataclass per section.

:class:`ConversionRecord` is what :meth:`ConversionResult.record <hf_robattr.conversion.ConversionResult.record>`
gives, what :func:`~hf_robattr.conversion.save_conversion` writes (through :mod:`hf_robattr.results_io`) and what the
conversion's model card reads. Every key of the file is spelled here once, as a field name (the settings are
:class:`~hf_robattr.conversion.ConversionConfig`'s fields, the fidelity numbers
:func:`~hf_robattr.conversion.measure_fidelity`'s keys). A record of today's code round-trips exactly; an older one
(keys missing, keys this version does not know) loads, the unknown keys kept in each section's ``extra``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hf_robattr.results_io import RESULTS_FILE, JsonRecord, JsonSection, describe_value, json_section

from .config import ConversionConfig


__all__ = [
    "ConversionDataRecord",
    "ConversionRecord",
    "DataSplitsRecord",
    "StageRecord",
    "StudentRecord",
    "TeacherRecord",
]


@dataclass
class TeacherRecord(JsonSection):
    """``"teacher"``: the softmax checkpoint converted."""

    name_or_path: str | None = None
    architecture: str | None = None
    attention_type: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class StudentRecord(JsonSection):
    """``"student"``: the kernel-attention model it became."""

    architecture: str | None = None
    attention_type: str | None = None
    kernel_feature_map: str | None = None
    kernel_num_features: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataSplitsRecord(JsonSection):
    """How the conversion recipe drew its examples (in ``"data"``, present for a recipe run): the data set's
    configuration, the splits, the split seed; the stop rule's own split when the data has one, and for the offline
    English prose its fingerprint and sources."""

    dataset_config: str | None = None
    train_split: str | None = None
    eval_dataset: str | None = None
    split_seed: int | None = None
    validation_dataset: str | None = None
    fingerprint: str | None = None
    sources: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    _OPTIONAL: ClassVar[tuple[str, ...]] = ("validation_dataset", "fingerprint", "sources")


@dataclass
class ConversionDataRecord(JsonSection):
    """``"data"``: how many examples the conversion trained on and measured fidelity on, how many of the latter equal
    a training example (``num_eval_examples_in_training``: 0 when the fidelity data is held out; ``None`` when not
    counted, e.g. without fidelity data or in an older record), the data set's name when known, the recipe's
    :class:`DataSplitsRecord`, and what a caller of ``save_pretrained(data=...)`` added (``extra``). Fields left
    ``None`` are not written (a description of the data, before the conversion counted its examples, has no
    sizes)."""

    num_examples: int | None = None
    num_eval_examples: int | None = None
    num_eval_examples_in_training: int | None = None
    dataset: str | None = None
    splits: DataSplitsRecord | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    _OPTIONAL: ClassVar[tuple[str, ...]] = (
        "num_examples",
        "num_eval_examples",
        "num_eval_examples_in_training",
        "dataset",
    )
    _FLATTENED: ClassVar[dict[str, type[JsonSection]]] = {"splits": DataSplitsRecord}

    def merged(self, data: ConversionDataRecord | Mapping[str, Any]) -> ConversionDataRecord:
        """This description with ``data``'s keys added, replacing its own: a record's JSON keys, or a mapping's keys
        (those it does not know kept in ``extra``). Where this description has no splits, only the split keys given are
        written; splits built in code are written whole."""
        given = data.to_json() if isinstance(data, ConversionDataRecord) else dict(data)
        return ConversionDataRecord.from_json({**self.to_json(), **given})


@dataclass
class StageRecord(JsonSection):
    """What one stage did: steps, trainable parameters, times (wall and this process's CPU), its log, and its stop
    rule with its checks and decision (``None`` when no rule ran)."""

    steps: int = 0
    trainable_parameters: int = 0
    wall_time_s: float = 0.0
    cpu_time_s: float = 0.0
    log_history: list[dict[str, Any]] = field(default_factory=list)
    stop_rule: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_SECTIONS = ("teacher", "student", "conversion", "data", "fidelity", "stages")


def _objects(section: dict[str, Any] | None, name: str) -> dict[str, dict[str, Any]]:
    """A section whose entries are per-stage JSON objects (``fidelity``, ``stages``), checked."""
    for stage, value in (section or {}).items():
        if not isinstance(value, dict):
            raise ValueError(
                f"{RESULTS_FILE}: {name}[{stage!r}] must be a JSON object (one per stage), got {describe_value(value)}."
            )
    return dict(section or {})


@dataclass
class ConversionRecord(JsonRecord):
    """A conversion's ``results.json``, section by section (:meth:`read` from a converted model's folder,
    :meth:`write` to it).

    Attributes:
        teacher: the softmax checkpoint.
        student: the kernel model.
        conversion: the settings (``ConversionConfig.to_dict()``; read them as a config with :attr:`config`).
        data: the conversion and fidelity data.
        fidelity: per stage reached, the :func:`~hf_robattr.conversion.measure_fidelity` numbers.
        stages: per stage run, its :class:`StageRecord`.
        extra: top-level entries this version does not know (kept and written back).
    """

    teacher: TeacherRecord = field(default_factory=TeacherRecord)
    student: StudentRecord = field(default_factory=StudentRecord)
    conversion: dict[str, Any] = field(default_factory=dict)
    data: ConversionDataRecord = field(default_factory=ConversionDataRecord)
    fidelity: dict[str, dict[str, Any]] = field(default_factory=dict)
    stages: dict[str, StageRecord] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    _EXPECTED: ClassVar[str] = (
        "the folder of a finished conversion (`recipes/convert_to_kernel.py` or `save_pretrained`)"
    )

    @property
    def config(self) -> ConversionConfig:
        """The settings as a :class:`~hf_robattr.conversion.ConversionConfig` (validated)."""
        return ConversionConfig.from_dict(self.conversion)

    @classmethod
    def from_json(cls, data: Any) -> ConversionRecord:
        """The record from a conversion's ``results.json`` object.

        Raises:
            ValueError: ``data`` is not a JSON object, a section is not an object (or absent), or an entry of
                ``fidelity`` / ``stages`` is not an object; the message names the section and what was expected.
        """
        if not isinstance(data, dict):
            raise ValueError(
                f"{RESULTS_FILE} of a conversion must hold a JSON object with the sections {list(_SECTIONS)}, got "
                f"{describe_value(data)}."
            )
        sections = {name: json_section(data, name) or {} for name in _SECTIONS}
        return cls(
            teacher=TeacherRecord.from_json(sections["teacher"]),
            student=StudentRecord.from_json(sections["student"]),
            conversion=dict(sections["conversion"]),
            data=ConversionDataRecord.from_json(sections["data"]),
            fidelity=_objects(sections["fidelity"], "fidelity"),
            stages={
                stage: StageRecord.from_json(value) for stage, value in _objects(sections["stages"], "stages").items()
            },
            extra={key: value for key, value in data.items() if key not in _SECTIONS},
        )

    def to_json(self) -> dict[str, Any]:
        """The ``results.json`` object, its sections in the order above."""
        return {
            "teacher": self.teacher.to_json(),
            "student": self.student.to_json(),
            "conversion": dict(self.conversion),
            "data": self.data.to_json(),
            "fidelity": {stage: dict(numbers) for stage, numbers in self.fidelity.items()},
            "stages": {stage: record.to_json() for stage, record in self.stages.items()},
            **self.extra,
        }
