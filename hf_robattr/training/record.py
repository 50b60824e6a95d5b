"""The typed run record: what a run produced, one dataclass per section of ``results.json``.

:class:`RunRecord` is what :func:`~hf_robattr.training.run_pipeline` returns (``RunResult.record``) and writes, and
what the model card and the ``hf-robattr card`` command read. Every key of the file is spelled here once, as a field
name; :meth:`RunRecord.to_json` gives the dict written to disk and :meth:`RunRecord.from_json` reads it back,
checking each section's JSON type. The file stays what it was: a record of today's recipes round-trips exactly, and
an older one (sections or fields missing, fields this version does not know) loads; unknown fields are kept in each
section's ``extra`` and written back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from hf_robattr.results_io import RESULTS_FILE, JsonRecord, JsonSection, describe_value, json_section


__all__ = [
    "DatasetRecord",
    "EvalRecord",
    "FitBandRecord",
    "HubRecord",
    "MatchedFitRecord",
    "ModelRecord",
    "RunRecord",
    "ScoringRecord",
    "TrainingRecord",
]


@dataclass
class ModelRecord(JsonSection):
    """``"model"``: what was trained."""

    architecture: str | None = None
    attention_type: str | None = None
    kernel_feature_map: str | None = None
    model_name_or_path: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class FitBandRecord(JsonSection):
    """The two-sided matched fit's band and outcome in ``"training"``: present when the run had a
    ``--target_loss_band`` (see :class:`~hf_robattr.training.MatchedFitCallback`).

    ``fit_outcome`` is one of ``FIT_OUTCOMES`` (``in_band``, ``above_band``, ``below_band``); ``fit_checks`` every
    measured ``[examples, loss]``, in order of examples.
    """

    target_loss_band: float | None = None
    fit_band_low: float | None = None
    fit_band_high: float | None = None
    fit_outcome: str | None = None
    rolled_back: bool | None = None
    train_examples_at_stop: int | None = None
    target_min_examples: int | None = None
    fit_checks: list[list[float]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class MatchedFitRecord(JsonSection):
    """The matched-fit stop's settings in ``"training"``: present when the run stopped on a target loss; ``band``
    when the fit was two-sided."""

    train_loss_at_stop_step: int | None = None
    target_loss_examples: int | None = None
    target_check_every_examples: int | None = None
    band: FitBandRecord | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    _FLATTENED: ClassVar[dict[str, type[JsonSection]]] = {"band": FitBandRecord}


@dataclass
class TrainingRecord(JsonSection):
    """``"training"``: the regime, the budget and how the run ended (see
    :func:`~hf_robattr.training.training_record`). ``None``: not recorded."""

    optimizer: str | None = None
    momentum: float | None = None
    learning_rate: float | None = None
    per_device_train_batch_size: int | None = None
    total_train_batch_size: int | None = None
    regularizer: str | None = None
    regularizer_weight: float | None = None
    num_train_epochs: float | None = None
    max_steps: int | None = None
    seed: int | None = None
    target_train_loss: float | None = None
    target_reached: bool | None = None
    target_reached_at_step: int | None = None
    target_reached_at_examples: int | None = None
    train_loss_at_stop: float | None = None
    divergence_loss: float | None = None
    diverged: bool | None = None
    diverged_at_step: int | None = None
    train_runtime_s: float | None = None
    global_step: int | None = None
    epochs: float | None = None
    num_train_examples_seen: int | None = None
    final_train_loss: float | None = None
    matched_fit: MatchedFitRecord | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    # the matched-fit keys, when present, form ``matched_fit`` (written after the others, as the pipeline writes them)
    _FLATTENED: ClassVar[dict[str, type[JsonSection]]] = {"matched_fit": MatchedFitRecord}


@dataclass
class DatasetRecord(JsonSection):
    """``"dataset"``: the data set, how it was generated and split, the evaluated split and how many examples the
    scores rest on.

    ``split_seed`` is the seed that generated the embedded sets and carved the missing splits (``--split_seed``, else
    ``--seed``) and ``dataset_num_examples`` the size of a generated set (``--dataset_num_examples``; absent: the
    set's own default): with ``name`` they rebuild the run's exact splits (the conversion recipe reads them to measure
    fidelity on the teacher's test split). Records written before they were recorded lack both.
    ``num_robustness_skipped`` is ``{"any": n, method: n}``: examples left out because they cannot be perturbed or
    their clean map is all zeros.
    """

    name: str | None = None
    config: str | None = None
    split_seed: int | None = None
    dataset_num_examples: int | None = None
    eval_split: str | None = None
    num_eval_samples: int | None = None
    num_robustness_examples: int | None = None
    num_robustness_skipped: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    _OPTIONAL: ClassVar[tuple[str, ...]] = ("split_seed", "dataset_num_examples")


@dataclass
class EvalRecord(JsonSection):
    """``"eval"``: test accuracy and loss."""

    accuracy: float | None = None
    loss: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ScoringRecord:
    """``"robustness_config"``: the :class:`~hf_robattr.RobustnessConfig` the scores were computed with
    (``settings``, its ``to_dict()``), the calibration's record when the radius was ``"auto"``, and
    ``num_examples`` where an older recipe run kept its example count here (now ``dataset``)."""

    settings: dict[str, Any] = field(default_factory=dict)
    epsilon_calibration: dict[str, Any] | None = None
    num_examples: int | None = None

    _BOOKKEEPING: ClassVar[tuple[str, ...]] = ("num_examples", "epsilon_calibration")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScoringRecord:
        """The section from its JSON object: the config's settings beside the bookkeeping entries."""
        settings = {key: value for key, value in data.items() if key not in cls._BOOKKEEPING}
        return cls(settings, data.get("epsilon_calibration"), data.get("num_examples"))

    def to_json(self) -> dict[str, Any]:
        """The section's JSON object (the bookkeeping entries only when set)."""
        bookkeeping = {"num_examples": self.num_examples, "epsilon_calibration": self.epsilon_calibration}
        return {**self.settings, **{key: value for key, value in bookkeeping.items() if value is not None}}


@dataclass
class HubRecord(JsonSection):
    """``"hub"``: written when ``--push_to_hub`` asked for the finished folder to be published to ``repo_id``
    (the pipeline takes the push over from the ``Trainer``; :func:`~hf_robattr.hub.publish_run_result` does it)."""

    push_requested: bool = False
    repo_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# section name -> its type; mappings of plain values are typed ``dict``.
_SECTIONS: dict[str, Any] = {
    "model": ModelRecord,
    "training": TrainingRecord,
    "dataset": DatasetRecord,
    "eval": EvalRecord,
    "robustness": dict,
    "robustness_saturated": dict,
    "robustness_baselines": dict,
    "robustness_config": ScoringRecord,
    "hyperparameters": dict,
}
_OPTIONAL_SECTIONS: dict[str, Any] = {"diagnostics": dict, "hub": HubRecord}
# The sections of a conversion's results.json (hf_robattr.conversion.ConversionRecord) that no training run writes.
_CONVERSION_SECTIONS = ("teacher", "student", "conversion")


@dataclass
class RunRecord(JsonRecord):
    """A run's ``results.json``, section by section (:meth:`read` from a run folder, :meth:`write` to it).

    Attributes:
        robustness: the ``"{method}/{measure}"`` means and their ``_std`` spreads.
        robustness_saturated: the measures that cannot rank models on these inputs, with why.
        robustness_baselines: each measure's chance and noise means.
        hyperparameters: the training arguments that differ from their defaults.
        log_history: the ``Trainer``'s log rows.
        diagnostics: curvature and robustness diagnostics at the end of training (``--diagnostics_at_end``).
        hub: set when a push to the Hub was asked for.
        extra: top-level entries this version does not know (kept and written back).
    """

    model: ModelRecord = field(default_factory=ModelRecord)
    training: TrainingRecord = field(default_factory=TrainingRecord)
    dataset: DatasetRecord = field(default_factory=DatasetRecord)
    eval: EvalRecord = field(default_factory=EvalRecord)
    robustness: dict[str, Any] = field(default_factory=dict)
    robustness_saturated: dict[str, Any] = field(default_factory=dict)
    robustness_baselines: dict[str, Any] = field(default_factory=dict)
    robustness_config: ScoringRecord = field(default_factory=ScoringRecord)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    log_history: list[dict[str, Any]] = field(default_factory=list)
    diagnostics: dict[str, Any] | None = None
    hub: HubRecord | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    _EXPECTED: ClassVar[str] = "the folder of a finished `recipes/train_*.py` run"

    @property
    def push_requested(self) -> bool:
        """Whether the run asked for its folder to be pushed to the Hub."""
        return self.hub is not None and self.hub.push_requested

    @classmethod
    def from_json(cls, data: Any) -> RunRecord:
        """The record from a ``results.json`` object.

        Raises:
            ValueError: ``data`` is not a JSON object, a section is not an object (or absent), ``log_history`` is
                not a list of objects, or ``data`` is a conversion's record; the message names the section and what
                was expected.
        """
        if not isinstance(data, dict):
            raise ValueError(
                f"{RESULTS_FILE} must hold a JSON object with the sections {list(_SECTIONS)}, got "
                f"{describe_value(data)}."
            )
        conversion = [name for name in _CONVERSION_SECTIONS if name in data]
        if conversion and "model" not in data:
            raise ValueError(
                f"{RESULTS_FILE} is the record of an attention-transfer conversion (sections {conversion}), not of a "
                "training run: read it with hf_robattr.conversion.ConversionRecord. Its model card is the README.md "
                "that the conversion wrote (rerun recipes/convert_to_kernel.py to write it again)."
            )
        sections: dict[str, Any] = {}
        for name, kind in {**_SECTIONS, **_OPTIONAL_SECTIONS}.items():
            value = json_section(data, name)
            if value is not None or name in _SECTIONS:
                sections[name] = dict(value or {}) if kind is dict else kind.from_json(value or {})
        history = data.get("log_history")
        if history is not None and (
            not isinstance(history, list) or not all(isinstance(row, dict) for row in history)
        ):
            raise ValueError(
                f"{RESULTS_FILE}: 'log_history' must be a list of JSON objects (trainer.state.log_history), got "
                f"{describe_value(history)}."
            )
        known = {*_SECTIONS, *_OPTIONAL_SECTIONS, "log_history"}
        extra = {key: value for key, value in data.items() if key not in known}
        return cls(**sections, log_history=list(history or []), extra=extra)

    def to_json(self) -> dict[str, Any]:
        """The ``results.json`` object: the sections in the pipeline's order, then the optional ones."""
        out: dict[str, Any] = {}
        for name in _SECTIONS:
            value = getattr(self, name)
            out[name] = dict(value) if isinstance(value, dict) else value.to_json()
        out["log_history"] = self.log_history
        if self.diagnostics is not None:
            out["diagnostics"] = dict(self.diagnostics)
        if self.hub is not None:
            out["hub"] = self.hub.to_json()
        return {**out, **self.extra}
