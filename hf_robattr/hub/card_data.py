"""The data behind a model card: ``RobAttrModelCardData``, a ``ModelCardData`` filled from a run.

It is built from ``results.json`` (what the recipes write) with :meth:`RobAttrModelCardData.from_output_dir`, or
filled during training by :class:`~hf_robattr.hub.callback.RobAttrModelCardCallback`. Its YAML holds only Hub
metadata, with accuracy and every robustness number as ``model-index`` results (``EvalResult``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCardData

from ..results_io import RESULTS_FILE, check_repo_id, names_hub_repo
from ..robustness import RobustnessConfig
from ..training import RunRecord, ScoringRecord


METRIC_ID = "attribution_robustness"
_TASKS = {"image-classification", "text-classification"}
_SECTIONS = (
    "model",
    "training",
    "dataset",
    "eval",
    "robustness",
    "robustness_saturated",
    "robustness_config",
    "hyperparameters",
)


# Shown in the card even at their defaults: they say what "robust" was measured against.
_MAIN_SETTINGS = ("methods", "attack", "epsilon", "norm", "num_steps", "k")


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class RobAttrModelCardData(ModelCardData):
    """Card data of an hf_robattr run: Hub metadata you set, plus fields filled from the run.

    Args:
        model_id: the Hub repo id (``ORG/NAME``) the card describes; used in the usage snippet.
        space_id: the demo Space (``ORG/NAME``) that shows this model; the card links to it.
        model_name: the card title and ``model-index`` name; default derived from the run.
        language: ISO code(s), for text models.
        license: the model's license.
        tags: extra tags; hf_robattr adds its own.
        task: ``"image-classification"`` or ``"text-classification"``; default derived from the architecture.
        model: ``architecture``, ``attention_type``, ``kernel_feature_map``, ``model_name_or_path``.
        training: the training regime (``optimizer``, ``learning_rate``, ``per_device_train_batch_size``,
            ``total_train_batch_size``, ``regularizer``, ``regularizer_weight``, ...), as in ``results.json``.
        dataset: ``name``, ``config``, ``eval_split``, ``num_eval_samples``.
        eval: ``accuracy``, ``loss``.
        robustness: flat ``"{method}/{measure}"`` floats from the scoring core (``num_samples`` included).
        robustness_saturated: the measures that cannot rank models on these inputs (``"{method}/{measure}"`` ->
            the scorer's saturation record: ``kind``, ``examples``, ``judged``, ``scored``, ``why``); the card marks
            them.
        robustness_config: the settings the robustness was scored with, as ``RobustnessConfig.to_dict()`` (plus
            the recipes' ``num_examples``); read them as a config with :attr:`robustness_settings`.
        hyperparameters: the non-default training arguments.
        log_history: ``trainer.state.log_history``.
    """

    model_id: str | None = None
    space_id: str | None = None
    model_name: str | None = None
    language: str | list[str] | None = None
    license: str | None = "apache-2.0"
    tags: list[str] = field(default_factory=list)
    task: str | None = None
    model: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    eval: dict[str, Any] = field(default_factory=dict)
    robustness: dict[str, Any] = field(default_factory=dict)
    robustness_saturated: dict[str, Any] = field(default_factory=dict)
    robustness_config: dict[str, Any] = field(default_factory=dict)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    log_history: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.model_id is not None:
            check_repo_id(self.model_id, "model_id", "a Hub repo id")
        if self.space_id is not None:
            check_repo_id(self.space_id, "space_id", "a Hub Space id")
        if self.task is not None and self.task not in _TASKS:
            raise ValueError(f"`task` must be one of {sorted(_TASKS)}, got {self.task!r}.")
        if isinstance(self.language, str):
            self.language = [self.language]
        for name in _SECTIONS:
            if not isinstance(getattr(self, name), dict):
                raise TypeError(f"`{name}` must be a dict, got {type(getattr(self, name)).__name__}.")

    # ----------------------------------------------------------------------------------------------- building
    @classmethod
    def from_record(cls, record: RunRecord, **overrides: Any) -> RobAttrModelCardData:
        """Card data from a run's :class:`~hf_robattr.training.RunRecord`; ``overrides`` set the user fields
        (``model_id``, ``tags``...).

        Raises:
            ValueError: ``robustness_config`` is not a valid :class:`~hf_robattr.RobustnessConfig`.
        """
        results = record.to_json()
        kwargs: dict[str, Any] = {name: dict(results[name]) for name in _SECTIONS}
        kwargs["log_history"] = list(record.log_history)
        data = cls(**{**kwargs, **overrides})
        data.robustness_settings  # noqa: B018 - validate the scoring settings now, with the file's name
        return data

    @classmethod
    def from_results(cls, results: dict[str, Any], **overrides: Any) -> RobAttrModelCardData:
        """Card data from a ``results.json`` dict (read through :meth:`RunRecord.from_json
        <hf_robattr.training.RunRecord.from_json>`); ``overrides`` set the user fields (``model_id``, ``tags``...).

        Raises:
            ValueError: a section has the wrong JSON type (e.g. ``"model": [1, 2]``), ``log_history`` is not a list
                of objects, or ``robustness_config`` is not a valid :class:`~hf_robattr.RobustnessConfig`; the
                message names the section and what was expected.
        """
        return cls.from_record(RunRecord.from_json(results), **overrides)

    @classmethod
    def from_output_dir(cls, output_dir: str | Path, **overrides: Any) -> RobAttrModelCardData:
        """Card data from ``OUTPUT_DIR/results.json``, as written by the recipes."""
        record = RunRecord.read(output_dir)
        try:
            return cls.from_record(record, **overrides)
        except ValueError as error:
            path = Path(output_dir) / RESULTS_FILE
            raise ValueError(f"{path}: {str(error).removeprefix(RESULTS_FILE + ': ')}") from error

    # ----------------------------------------------------------------------------------------------- derived
    @property
    def record(self) -> RunRecord:
        """The card's sections as the typed :class:`~hf_robattr.training.RunRecord` (what the card text reads)."""
        return RunRecord.from_json(
            {**{name: getattr(self, name) for name in _SECTIONS}, "log_history": self.log_history}
        )

    @property
    def robustness_settings(self) -> RobustnessConfig:
        """The scoring settings of ``robustness_config`` as a validated :class:`~hf_robattr.RobustnessConfig`
        (settings that were not recorded take the config's defaults)."""
        settings = ScoringRecord.from_json(self.robustness_config).settings  # without the calibration's record
        try:
            return RobustnessConfig.from_dict(settings)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"{RESULTS_FILE}: 'robustness_config' is not a valid RobustnessConfig: {error}"
            ) from error

    @property
    def calibrated_epsilon(self) -> float | None:
        """The radius the run calibrated when it was scored with ``epsilon="auto"``
        (``robustness_config["epsilon_calibration"]["value"]``); ``None`` when it was not calibrated."""
        if self.robustness_config.get("epsilon") != "auto":
            return None
        calibration = self.record.robustness_config.epsilon_calibration
        value = calibration.get("value") if isinstance(calibration, dict) else None
        return float(value) if _finite_number(value) and value > 0 else None

    @property
    def scored_settings(self) -> RobustnessConfig:
        """:attr:`robustness_settings` with a numeric radius, to score or draw new inputs as the run did:
        ``epsilon="auto"`` is replaced by the radius the run calibrated (:attr:`calibrated_epsilon`).

        Raises:
            ValueError: the run scored with ``epsilon="auto"`` but recorded no calibrated radius.
        """
        settings = self.robustness_settings
        if settings.epsilon != "auto":
            return settings
        radius = self.calibrated_epsilon
        if radius is None:
            raise ValueError(
                f"{RESULTS_FILE}: 'robustness_config' has epsilon='auto' but no calibrated radius; expected a "
                "positive number at robustness_config['epsilon_calibration']['value']."
            )
        return settings.replace(epsilon=radius)

    def shown_settings(self) -> dict[str, Any]:
        """The scoring settings the card shows: the main ones, then any other that is not at its default (empty
        when the run recorded none)."""
        if not self.robustness_config:
            return {}
        values, defaults = self.robustness_settings.to_dict(), RobustnessConfig().to_dict()
        return {
            name: value
            for name, value in values.items()
            if name in _MAIN_SETTINGS or (value != defaults[name] and name != "batch_size")
        }

    @property
    def architecture(self) -> str | None:
        """The model class name (``config.architectures[0]``)."""
        return self.record.model.architecture

    @property
    def resolved_task(self) -> str:
        """The pipeline task: ``task`` when set, otherwise guessed from the architecture (images by default)."""
        if self.task:
            return self.task
        architecture = (self.architecture or "").lower()
        if any(word in architecture for word in ("bert", "sequenceclassification", "text")):
            return "text-classification"
        return "image-classification"

    @property
    def base_model(self) -> str | None:
        """The Hub checkpoint the run started from, when it started from one."""
        source = self.record.model.model_name_or_path
        return source if names_hub_repo(source) else None

    @property
    def title(self) -> str:
        """The card title and ``model-index`` name."""
        if self.model_name:
            return self.model_name
        if self.model_id:
            return self.model_id.split("/")[-1]
        record = self.record
        parts = [record.model.architecture or "hf_robattr model"]
        if record.model.attention_type:
            parts.append(f"{record.model.attention_type} attention")
        if record.dataset.name:
            parts.append(f"on {record.dataset.name}")
        return " ".join(parts)

    @property
    def robustness_scores(self) -> dict[str, float]:
        """The ``"{method}/{measure}"`` means (no ``_std`` spreads, no ``num_samples``, no non-finite values)."""
        return {
            key: float(value)
            for key, value in self.robustness.items()
            if "/" in key and _finite_number(value) and not key.endswith("_std")
        }

    @property
    def robustness_spreads(self) -> dict[str, float]:
        """The standard deviations over examples, keyed like :attr:`robustness_scores`."""
        return {
            key.removesuffix("_std"): float(value)
            for key, value in self.robustness.items()
            if "/" in key and key.endswith("_std") and _finite_number(value)
        }

    @property
    def num_examples(self) -> int | None:
        """How many examples the robustness was scored on."""
        record = self.record
        counts = (
            self.robustness.get("num_samples"),  # the scorer's own count, where the callback logged one
            record.dataset.num_robustness_examples,
            record.robustness_config.num_examples,  # older recipe runs
        )
        count = next((count for count in counts if count is not None), None)
        return int(count) if _finite_number(count) else None

    @property
    def num_skipped(self) -> int | None:
        """How many scored examples every measure left out (``dataset.num_robustness_skipped["any"]``)."""
        skipped = self.record.dataset.num_robustness_skipped
        count = skipped.get("any") if isinstance(skipped, dict) else skipped
        return int(count) if _finite_number(count) else None

    def hub_tags(self) -> list[str]:
        """hf_robattr's tags, then the user's."""
        tags = ["hf_robattr", "attribution-robustness", "explainability", self.resolved_task]
        attention = self.record.model.attention_type
        if attention:
            tags.append(f"{attention}-attention")
        if attention == "kernel":
            tags.append("linear-attention")
        architecture = (self.architecture or "").lower()
        tags.extend(name for name in ("vit", "bert") if name in architecture)
        return list(dict.fromkeys([*tags, *self.tags]))

    @property
    def eval_results(self) -> list[EvalResult]:  # type: ignore[override]
        """Accuracy and every robustness number, as ``EvalResult`` entries for ``model-index``."""
        record = self.record
        dataset, accuracy = record.dataset, record.eval.accuracy
        name = dataset.name or "unknown"
        common: dict[str, Any] = {
            "task_type": self.resolved_task,
            "dataset_type": name,
            "dataset_name": name if not dataset.config else f"{name} ({dataset.config})",
            "dataset_config": dataset.config,
            "dataset_split": dataset.eval_split,
        }
        results = []
        if _finite_number(accuracy):
            results.append(EvalResult(metric_type="accuracy", metric_name="Accuracy", metric_value=accuracy, **common))
        # The method is in each result's name; the other options say how it was scored.
        args = {k: v for k, v in self.robustness_config.items() if v not in (None, {}, []) and k != "methods"}
        if self.num_examples is not None:
            args["num_examples"] = self.num_examples
        for key, value in self.robustness_scores.items():
            results.append(
                EvalResult(
                    metric_type=METRIC_ID, metric_name=key, metric_value=value, metric_args=args or None, **common
                )
            )
        return results

    def to_hub_card_data(self) -> ModelCardData:
        """The plain ``ModelCardData`` that goes into the card's YAML header."""
        dataset_name = self.record.dataset.name
        return ModelCardData(
            model_name=self.title,
            base_model=self.base_model,
            datasets=[dataset_name] if names_hub_repo(dataset_name) else None,
            eval_results=self.eval_results or None,
            language=self.language,
            library_name="transformers",
            license=self.license,
            metrics=["accuracy", METRIC_ID],
            pipeline_tag=self.resolved_task,
            tags=self.hub_tags(),
        )

    def to_dict(self) -> dict[str, Any]:
        """The YAML metadata: Hub fields only, with results as ``model-index`` (the run details go in the text)."""
        return self.to_hub_card_data().to_dict()
