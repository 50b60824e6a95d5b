"""Argument dataclasses of ``recipes/convert_to_kernel.py`` (``HfArgumentParser``: CLI flags or one JSON file).

The conversion settings themselves are :class:`~hf_robattr.conversion.ConversionConfig`'s fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hf_robattr.data.prose import PROSE_SOURCES
from hf_robattr.results_io import check_hub_model_id


__all__ = ["MODEL_TASKS", "ConversionDataArguments", "ConversionModelArguments", "ConversionOutputArguments"]

MODEL_TASKS = ("auto", "base", "classification", "masked_lm")


@dataclass
class ConversionModelArguments:
    """Which softmax checkpoint to convert."""

    model_name_or_path: str = field(
        metadata={"help": "The softmax ViT/BERT checkpoint to convert: a local folder or a Hub id."}
    )
    model_task: str = field(
        default="auto",
        metadata={
            "help": f"Head to load, one of {list(MODEL_TASKS)}; auto reads the checkpoint's architectures "
            "(*ForSequenceClassification / *ForImageClassification -> classification, *ForMaskedLM -> masked_lm, "
            "else base)."
        },
    )
    tokenizer_name: str | None = field(default=None, metadata={"help": "Tokenizer (text); default: the checkpoint's."})
    cache_dir: str | None = field(default=None, metadata={"help": "Where downloaded models and datasets are kept."})

    def __post_init__(self) -> None:
        if self.model_task not in MODEL_TASKS:
            raise ValueError(f"--model_task must be one of {list(MODEL_TASKS)}, got {self.model_task!r}.")


@dataclass
class ConversionDataArguments:
    """The conversion data and the held-out data on which fidelity is measured."""

    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "Conversion data: 'english_prose' (offline English text, the default for BERT), an embedded image "
            "set ('synthetic_images' or 'digits'), a local folder, a local data file (.csv, .tsv, .json, .jsonl, .txt: one text "
            "per line, .parquet) or a Hub dataset id. ViT default: the data set "
            "of the teacher's hf_robattr training run (its results.json), else 'synthetic_images'."
        },
    )
    prose_sources: list[str] | None = field(
        default=None,
        metadata={
            "help": "Sources of --dataset_name english_prose (default: all of them; see hf_robattr.data.PROSE_SOURCES)."
        },
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "The dataset's configuration name."})
    text_column: str | None = field(
        default=None, metadata={"help": "Text column (default: the first of text, sentence, content, ...)."}
    )
    image_column: str | None = field(default=None, metadata={"help": "Image column (default: image, img, ...)."})
    label_column: str | None = field(
        default=None,
        metadata={
            "help": "Label column of a classifier's data (default: label/labels): the accuracies of the fidelity "
            "report and --task_loss_weight use it. Label names map to class ids through the model's label2id. Base "
            "models and masked LMs ignore labels."
        },
    )
    train_split_name: str = field(default="train", metadata={"help": "Split that the conversion trains on."})
    eval_split_name: str | None = field(
        default="test",
        metadata={"help": "Held-out split on which fidelity is measured (carved out of train if missing)."},
    )
    split_seed: int | None = field(
        default=None,
        metadata={
            "help": "Seed that generates the embedded image sets and carves splits. Default: the teacher's own when its "
            "folder holds an hf_robattr training run (results.json), so that the conversion trains on the teacher's "
            "training split and measures on its test split; else --seed."
        },
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Use at most this many conversion examples."}
    )
    max_eval_samples: int | None = field(default=512, metadata={"help": "Measure fidelity on at most this many."})
    validation_split_name: str | None = field(
        default="validation",
        metadata={
            "help": "Held-out split that recovery's stop rule checks (default 'validation'; when the data has none, "
            "the rule checks the eval split)."
        },
    )
    max_validation_samples: int = field(default=256, metadata={"help": "The stop rule checks at most this many."})

    def __post_init__(self) -> None:
        unknown = [source for source in self.prose_sources or () if source not in PROSE_SOURCES]
        if unknown:
            raise ValueError(f"--prose_sources must name sources among {list(PROSE_SOURCES)}, got {unknown}.")
        if self.split_seed is not None and (not isinstance(self.split_seed, int) or self.split_seed < 0):
            raise ValueError(f"--split_seed must be an int >= 0 (or unset), got {self.split_seed!r}.")
        for name in ("max_train_samples", "max_eval_samples", "max_validation_samples"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"--{name} must be a positive int (or unset), got {value!r}.")


@dataclass
class ConversionOutputArguments:
    """Where the converted model goes."""

    output_dir: str = field(metadata={"help": "Folder of the converted model (Hub layout)."})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Replace a finished conversion (a folder holding results.json)."}
    )
    push_to_hub: bool = field(default=False, metadata={"help": "Upload the folder to --hub_model_id."})
    hub_model_id: str | None = field(
        default=None,
        metadata={"help": "The Hub repo to push to: ORG/NAME, or NAME in the namespace of the token's user."},
    )
    hub_token: str | None = field(default=None, metadata={"help": "Hub token (default: HF_TOKEN or the login)."})
    hub_private_repo: bool | None = field(default=None, metadata={"help": "Create the Hub repo private."})

    def __post_init__(self) -> None:
        if self.push_to_hub and not self.hub_model_id:
            raise ValueError(
                "--push_to_hub needs --hub_model_id NAME (in your namespace) or --hub_model_id ORG/NAME: the Hub repo "
                "to create and upload to."
            )
        if self.hub_model_id is not None:
            check_hub_model_id(self.hub_model_id, "--hub_model_id")
