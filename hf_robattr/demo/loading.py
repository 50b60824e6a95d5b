"""The demo's models: a run folder or a Hub id loaded with its pre-processor, scoring defaults and examples."""

from __future__ import annotations

import hashlib
import logging
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import snapshot_download
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModelForImageClassification,
    AutoModelForSequenceClassification,
    AutoTokenizer,
)

from .. import models  # noqa: F401 - registers the kernel-attention models with the Auto classes
from ..data import EMBEDDED_DATASETS, load_embedded_dataset
from ..hub.card_data import RobAttrModelCardData
from ..model_folders import folder_problem, local_source_problem
from ..results_io import RESULTS_FILE, names_hub_repo, read_json
from ..robustness import RobustnessConfig


logger = logging.getLogger(__name__)

IMAGE, TEXT = "image", "text"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
MAX_EXAMPLES = 4
# What a Hub download fetches: the model, its pre-processor, results.json and example inputs (never pickles).
_HUB_FILES = ["*.json", "*.safetensors", "*.txt", "*.model", "examples/*"]


class DemoModelError(ValueError):
    """A model the demo cannot show: not a folder or a Hub id, no model in the folder, no tokenizer..."""


class DemoInputError(ValueError):
    """An input the demo cannot explain: an empty sentence, an unreadable image file..."""


@dataclass
class DemoModel:
    """A model ready for the demo.

    Attributes:
        name: the name shown on the page (the run folder's name or the Hub id).
        folder: the local folder it was loaded from.
        model: the classifier, in eval mode.
        kind: ``"image"`` or ``"text"``.
        config: the scoring settings the page starts from: ``results.json["robustness_config"]`` when the run
            recorded one, else the defaults of :class:`~hf_robattr.RobustnessConfig`.
        tokenizer: for text models.
        image_processor: for image models, when the folder has one (else the recipes' own transform is used).
        examples: image file paths or sentences to start from.
        notes: things the page should say about the model (e.g. an unreadable ``results.json``).
    """

    name: str
    folder: Path
    model: torch.nn.Module
    kind: str
    config: RobustnessConfig
    tokenizer: Any = None
    image_processor: Any = None
    examples: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def attention_type(self) -> str | None:
        """``softmax`` or ``kernel`` for hf_robattr models (``None`` for others)."""
        return getattr(self.model.config, "attention_type", None)

    def label(self, index: int) -> str:
        """The class name of ``index``."""
        id2label = getattr(self.model.config, "id2label", None) or {}
        name = id2label.get(index, id2label.get(str(index)))
        return str(name) if name is not None else str(index)

    def describe(self) -> str:
        """One line for the page: name, architecture, attention."""
        architecture = (getattr(self.model.config, "architectures", None) or [type(self.model).__name__])[0]
        attention = f", {self.attention_type} attention" if self.attention_type else ""
        return f"**{self.name}** ({architecture}{attention})"


def _folder_of(source: str | Path) -> tuple[Path, str]:
    """The folder holding the model of ``source`` (downloaded for a Hub id) and its name on the page."""
    problem = local_source_problem(source)
    if problem:
        raise DemoModelError(problem)
    path = Path(source).expanduser()
    if path.exists():
        return path, path.resolve().name
    if not names_hub_repo(str(source)):
        raise DemoModelError(f"MODEL={str(source)!r} is neither an existing folder nor a Hub model id ('ORG/NAME').")

    try:
        folder = snapshot_download(str(source), allow_patterns=_HUB_FILES)
    except Exception as error:  # offline, not found, gated: every Hub error means "cannot show this model"
        raise DemoModelError(f"Could not download the model {source!r} from the Hub: {error}") from error
    problem = folder_problem(Path(folder), source)  # a local folder was checked above
    if problem:
        raise DemoModelError(problem)
    return Path(folder), str(source)


def _is_image_config(config: Any) -> bool:
    return hasattr(config, "num_channels") and hasattr(config, "image_size")


def _load(folder: Path, source: str | Path) -> tuple[torch.nn.Module, str, Any, Any]:
    try:  # never trust_remote_code: the demo runs no code from the folder
        config = AutoConfig.from_pretrained(folder)
        kind = IMAGE if _is_image_config(config) else TEXT
        auto = AutoModelForImageClassification if kind == IMAGE else AutoModelForSequenceClassification
        model = auto.from_pretrained(folder, config=config).eval()
    except Exception as error:
        raise DemoModelError(f"Could not load the model in MODEL={str(source)!r}: {error}") from error
    tokenizer = processor = None
    if kind == TEXT:
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder)
        except Exception as error:
            raise DemoModelError(
                f"MODEL={str(source)!r} is a text model without a tokenizer (tokenizer.json); save it with "
                f"`tokenizer.save_pretrained` beside the model. ({error})"
            ) from error
    else:
        try:
            processor = AutoImageProcessor.from_pretrained(folder)
        except Exception:  # no preprocessor_config.json: the recipes' own transform
            processor = None
    return model, kind, tokenizer, processor


def _scoring_defaults(folder: Path) -> tuple[RobustnessConfig, dict[str, Any], list[str]]:
    """The run's robustness settings and dataset section from ``results.json`` (defaults, with a note, if it is
    missing or unreadable; the teacher's settings, with a note, for a conversion folder)."""
    if not (folder / RESULTS_FILE).is_file():
        return RobustnessConfig(), {}, []
    conversion = _conversion_record(folder)
    if conversion is not None:
        return _conversion_defaults(folder, conversion)
    try:
        data = RobAttrModelCardData.from_output_dir(folder)
        config, notes = _calibrated(data.robustness_settings, data.robustness_config)
        return config, data.dataset, notes
    except (ValueError, TypeError) as error:
        note = f"{RESULTS_FILE} could not be read ({error}); the settings start from the library defaults."
        logger.warning(note)
        return RobustnessConfig(), {}, [note]


def _calibrated(config: RobustnessConfig, section: dict[str, Any]) -> tuple[RobustnessConfig, list[str]]:
    """``config`` with ``epsilon="auto"`` replaced by the radius the run calibrated
    (``robustness_config["epsilon_calibration"]["value"]``), or by the modality's default radius when the run
    recorded none; a note for the page either way."""
    if config.epsilon != "auto":
        return config, []
    calibration = section.get("epsilon_calibration")
    value = calibration.get("value") if isinstance(calibration, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
        note = (
            f"The run scored with epsilon='auto'; the page starts from the radius it calibrated, {value:.4g} "
            f"({RESULTS_FILE}: robustness_config.epsilon_calibration.value)."
        )
        return config.replace(epsilon=float(value)), [note]
    note = (
        f"The run scored with epsilon='auto' but {RESULTS_FILE} records no calibrated radius "
        "(robustness_config.epsilon_calibration.value); the page starts from the default radius."
    )
    return config.replace(epsilon=None), [note]


def _conversion_record(folder: Path) -> dict[str, Any] | None:
    """The ``results.json`` of a folder written by ``save_conversion`` (``recipes/convert_to_kernel.py``: its
    ``teacher`` and ``student`` sections, no ``robustness_config``), read as plain JSON (the demo does not import
    the conversion package), or ``None`` when it is a run's (or unreadable: the run reader then says why)."""
    try:
        raw = read_json(folder / RESULTS_FILE)
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict) or "robustness_config" in raw or not {"teacher", "student"} <= raw.keys():
        return None
    return raw


def _section(record: dict[str, Any], name: str) -> dict[str, Any]:
    value = record.get(name)
    return value if isinstance(value, dict) else {}


def _conversion_defaults(folder: Path, record: dict[str, Any]) -> tuple[RobustnessConfig, dict[str, Any], list[str]]:
    """The settings of a converted model: its teacher's scored settings when the teacher is a local run folder with
    a readable ``results.json``, else the library defaults; the dataset the conversion used, for examples."""
    name = _section(record, "data").get("dataset")
    dataset = {"name": name} if isinstance(name, str) and name else {}
    teacher = _section(record, "teacher").get("name_or_path")
    teacher = teacher if isinstance(teacher, str) else None
    about = f"{folder.name} is a kernel-attention conversion of {teacher or 'a softmax model'}"
    teacher_folder = Path(teacher).expanduser() if teacher else None
    teacher_run = teacher_folder is not None and (teacher_folder / RESULTS_FILE).is_file()
    if teacher_run and _conversion_record(teacher_folder) is None:  # the teacher is a run folder, not a conversion
        config, _, teacher_notes = _scoring_defaults(teacher_folder)
        if not any("could not be read" in note for note in teacher_notes):
            note = f"{about}; the settings start from the teacher's ({teacher_folder / RESULTS_FILE})."
            return config, dataset, [note, *teacher_notes]
    note = f"{about}; its {RESULTS_FILE} records the conversion, not scoring settings: the library defaults are used."
    return RobustnessConfig(), dataset, [note]


def _folder_examples(folder: Path, kind: str) -> tuple[list[str], list[str]]:
    """Example inputs from ``examples/`` and notes for the page (an unreadable ``sentences.txt``)."""
    examples = folder / "examples"
    if not examples.is_dir():
        return [], []
    if kind == IMAGE:
        images = sorted(str(p) for p in examples.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        return images[:MAX_EXAMPLES], []
    sentences = examples / "sentences.txt"
    if not sentences.is_file():
        return [], []
    try:
        lines = [line.strip() for line in sentences.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as error:
        note = f"The examples in {sentences} could not be read ({error}); save it as UTF-8 text, one sentence a line."
        logger.warning(note)
        return [], [note]
    return [line for line in lines if line][:MAX_EXAMPLES], []


def _dataset_examples(dataset: dict[str, Any], kind: str) -> list[str]:
    """A few test examples of the run's embedded dataset (offline); images are cached as PNG files, so later
    starts skip building the dataset."""
    name = dataset.get("name")
    if name not in EMBEDDED_DATASETS:
        return []
    cache = Path(tempfile.gettempdir()) / "hf_robattr_demo_examples" / hashlib.sha1(name.encode()).hexdigest()[:12]
    cached = [cache / f"{name}_{index}.{'png' if kind == IMAGE else 'txt'}" for index in range(MAX_EXAMPLES)]
    if not all(path.is_file() for path in cached):
        cache.mkdir(parents=True, exist_ok=True)
        for path, example in zip(cached, _embedded_test_examples(name, kind)):
            if kind == IMAGE:
                example.save(path)
            else:
                path.write_text(example, encoding="utf-8")
    if kind == IMAGE:
        return [str(path) for path in cached if path.is_file()]
    return [path.read_text(encoding="utf-8") for path in cached if path.is_file()]


def _embedded_test_examples(name: str, kind: str) -> list[Any]:
    """The first test examples of an embedded dataset: PIL images or sentences."""
    split = load_embedded_dataset(name)["test"]
    rows = split.select(range(min(MAX_EXAMPLES, len(split))))
    column = "image" if kind == IMAGE else next((c for c in ("sentence", "text") if c in rows.column_names), None)
    return list(rows[column]) if column in rows.column_names else []


def load_demo_model(source: str | Path, *, name: str | None = None) -> DemoModel:
    """Load a model for the demo from a run folder or a Hub model id.

    The model's scoring defaults come from its ``results.json`` (``robustness_config``) and its examples from an
    ``examples/`` folder (images, or ``sentences.txt``) or, for runs on an embedded dataset, from its test split.

    Raises:
        DemoModelError: the source is not a folder or a Hub id, the folder holds no model (no ``config.json`` or
            no weights), the model cannot be loaded, or a text model has no tokenizer.
    """
    folder, default_name = _folder_of(source)
    model, kind, tokenizer, processor = _load(folder, source)
    config, dataset, notes = _scoring_defaults(folder)
    config = config.resolved(kind)  # the page shows the radius it uses
    examples, example_notes = _folder_examples(folder, kind)
    notes += example_notes
    if not examples:
        try:
            examples = _dataset_examples(dataset, kind)
        except Exception as error:  # examples are a convenience; the demo works without them
            logger.warning("No examples for %s: %s", source, error)
    return DemoModel(
        name=name or default_name,
        folder=folder,
        model=model,
        kind=kind,
        config=config,
        tokenizer=tokenizer,
        image_processor=processor,
        examples=examples,
        notes=notes,
    )
