"""The conversion recipe's steps: load the teacher and its processor, load the data, convert, save, push."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, NamedTuple

import torch
from accelerate import PartialState
from datasets import Dataset, DatasetDict, load_dataset
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForImageClassification,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
)

import hf_robattr.models  # noqa: F401  (RobAttr checkpoints load through the Auto classes)
from hf_robattr.data import (
    EMBEDDED_DATASETS,
    IMAGE_COLUMN_CANDIDATES,
    TEXT_COLUMN_CANDIDATES,
    ImageClassificationTransform,
    english_prose,
    load_embedded_dataset,
    prose_fingerprint,
    resolve_column,
)
from hf_robattr.results_io import RESULTS_FILE
from hf_robattr.training import RunRecord

from .api import ConversionResult, convert_to_kernel
from .arguments import ConversionDataArguments, ConversionModelArguments, ConversionOutputArguments
from .config import ConversionConfig
from .inputs import max_text_length, to_examples
from .labels import encode_labels
from .record import ConversionDataRecord, DataSplitsRecord
from .student import model_task
from .summary import conversion_summary


__all__ = [
    "ConversionData",
    "check_conversion_output_dir",
    "load_conversion_data",
    "load_teacher",
    "run_conversion",
    "teacher_run",
]

logger = logging.getLogger(__name__)

PROSE = "english_prose"
_FAMILIES = {"bert": "bert", "robattr-bert": "bert", "vit": "vit", "robattr-vit": "vit"}
_AUTO_CLASSES = {
    ("bert", "base"): AutoModel,
    ("vit", "base"): AutoModel,
    ("bert", "classification"): AutoModelForSequenceClassification,
    ("vit", "classification"): AutoModelForImageClassification,
    ("bert", "masked_lm"): AutoModelForMaskedLM,
}


def _is_checkpoint_folder(output_dir: str, model_name_or_path: str) -> bool:
    """Whether ``output_dir`` is the local folder ``model_name_or_path`` loads from (however either is spelled:
    relative, ``~``, a trailing slash, a symbolic link)."""
    checkpoint, output = Path(model_name_or_path).expanduser(), Path(output_dir).expanduser()
    return checkpoint.is_dir() and output.exists() and os.path.samefile(checkpoint, output)


def check_conversion_output_dir(args: ConversionOutputArguments, model_name_or_path: str | None = None) -> None:
    """Refuse, before anything is loaded or written, an ``--output_dir`` that is the checkpoint folder
    ``model_name_or_path`` (``--model_name_or_path``: saving would overwrite the softmax teacher, so not even
    ``--overwrite_output_dir`` allows it), and a folder that holds a finished conversion unless
    ``--overwrite_output_dir``."""
    if model_name_or_path is not None and _is_checkpoint_folder(args.output_dir, model_name_or_path):
        raise ValueError(
            f"--output_dir {args.output_dir} is the checkpoint folder --model_name_or_path {model_name_or_path}: "
            "saving the converted model there would overwrite the softmax teacher it is converted from "
            "(--overwrite_output_dir does not allow this). Choose another --output_dir."
        )
    if (Path(args.output_dir) / RESULTS_FILE).exists() and not args.overwrite_output_dir:
        raise ValueError(
            f"--output_dir {args.output_dir} already holds a finished run ({RESULTS_FILE}); pass "
            "--overwrite_output_dir to replace it, or choose another folder."
        )


def _task(config: Any, requested: str) -> str:
    if requested != "auto":
        return requested
    architectures = " ".join(getattr(config, "architectures", None) or [])
    if "ForSequenceClassification" in architectures or "ForImageClassification" in architectures:
        return "classification"
    return "masked_lm" if "ForMaskedLM" in architectures else "base"


def load_teacher(args: ConversionModelArguments) -> tuple[PreTrainedModel, Any, str]:
    """The softmax checkpoint (with the head ``--model_task`` names), its tokenizer or image processor (None when
    an image checkpoint has none) and its family (``"bert"`` / ``"vit"``). Fails before loading any weights for a
    model type other than ViT/BERT or a kernel checkpoint."""
    config = AutoConfig.from_pretrained(args.model_name_or_path, cache_dir=args.cache_dir)
    family = _FAMILIES.get(config.model_type)
    if family is None:
        raise ValueError(
            f"--model_name_or_path {args.model_name_or_path} is a {config.model_type!r} model; convert_to_kernel "
            f"converts ViT and BERT checkpoints (model types {sorted(_FAMILIES)})."
        )
    if getattr(config, "attention_type", "softmax") != "softmax":
        raise ValueError(
            f"--model_name_or_path {args.model_name_or_path} already uses attention_type={config.attention_type!r}; "
            "convert its softmax checkpoint instead."
        )
    task = _task(config, args.model_task)
    if (family, task) not in _AUTO_CLASSES:
        raise ValueError(f"--model_task {task!r} is not available for {family.upper()} models.")
    model = _AUTO_CLASSES[family, task].from_pretrained(args.model_name_or_path, cache_dir=args.cache_dir)
    if family == "bert":
        processor = AutoTokenizer.from_pretrained(
            args.tokenizer_name or args.model_name_or_path, cache_dir=args.cache_dir
        )
    else:
        try:
            processor = AutoImageProcessor.from_pretrained(args.model_name_or_path, cache_dir=args.cache_dir)
        except OSError:
            processor = None
    return model, processor, family


def teacher_run(model_name_or_path: str) -> dict[str, Any]:
    """The data settings of the hf_robattr training run that produced a local checkpoint folder (its results.json):
    ``dataset``, ``split_seed`` and ``num_examples`` (of a generated set); empty for any other checkpoint.

    The run's ``dataset`` section records both data settings; a record written before it did falls back to the
    training arguments (``hyperparameters``), then to the run's ``--seed``."""
    try:
        record = RunRecord.read(model_name_or_path)
    except (OSError, ValueError):
        return {}
    dataset, arguments = record.dataset, record.hyperparameters
    split_seed = next(
        (seed for seed in (dataset.split_seed, arguments.get("split_seed"), record.training.seed) if seed is not None),
        None,
    )
    if dataset.name is None or split_seed is None:
        return {}
    num_examples = dataset.dataset_num_examples
    return {
        "dataset": dataset.name,
        "split_seed": split_seed,
        "num_examples": arguments.get("dataset_num_examples") if num_examples is None else num_examples,
    }


def _prose_sources(args: ConversionDataArguments) -> dict[str, tuple[str, ...]]:
    return {"sources": tuple(args.prose_sources)} if args.prose_sources else {}


def _splits(args: ConversionDataArguments, family: str, seed: int, teacher: dict[str, Any]) -> tuple[str, DatasetDict]:
    default = teacher.get("dataset") if family == "vit" else None
    name = args.dataset_name or default or (PROSE if family == "bert" else "synthetic_images")
    if name == PROSE:
        return name, english_prose(seed=seed, **_prose_sources(args))
    if name in EMBEDDED_DATASETS:
        options = {"num_examples": teacher["num_examples"]} if name == default and teacher.get("num_examples") else {}
        return name, load_embedded_dataset(name, seed=seed, **options)
    raw = _load_local_file(name) if Path(name).is_file() else load_dataset(name, args.dataset_config_name)
    return name, raw if isinstance(raw, DatasetDict) else DatasetDict({"train": raw})


# ``datasets`` builders of single local files, by suffix (a folder or a Hub id goes to ``load_dataset`` as is).
_FILE_BUILDERS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".txt": "text",
    ".parquet": "parquet",
}


def _load_local_file(path: str) -> DatasetDict:
    """One local data file as a ``train`` split (a ``.txt`` file: one text per line, column ``text``)."""
    suffix = Path(path).suffix.lower()
    if suffix not in _FILE_BUILDERS:
        raise ValueError(
            f"--dataset_name {path} is a file of an unknown kind; a data file must end with one of "
            f"{sorted(_FILE_BUILDERS)} (or pass a folder, a Hub id, 'english_prose' or an embedded image set)."
        )
    options = {"delimiter": "\t"} if suffix == ".tsv" else {}
    return load_dataset(_FILE_BUILDERS[suffix], data_files={"train": path}, **options)


class ConversionData(NamedTuple):
    """The examples of a conversion: ``train`` (converted on), ``evaluation`` (fidelity is reported on them),
    ``info`` (the description that ``results.json``'s ``data`` section holds: the data set's name and its
    :class:`~hf_robattr.conversion.record.DataSplitsRecord`) and ``validation`` (recovery's stop rule checks them;
    ``None`` when the data has no validation split, then the rule checks ``evaluation``)."""

    train: list[dict[str, torch.Tensor]]
    evaluation: list[dict[str, torch.Tensor]]
    info: ConversionDataRecord
    validation: list[dict[str, torch.Tensor]] | None = None


def _validation(args: ConversionDataArguments, splits: DatasetDict) -> Dataset | None:
    """The split recovery's stop rule checks, if the data has one that is neither the train nor the eval split."""
    name = args.validation_split_name
    if name is None or name not in splits or name in (args.train_split_name, args.eval_split_name):
        return None
    split = splits[name]
    return split.select(range(min(args.max_validation_samples, len(split))))


def _train_and_eval(args: ConversionDataArguments, splits: DatasetDict, seed: int) -> tuple[Dataset, Dataset, str]:
    if args.train_split_name not in splits:
        raise ValueError(
            f"--train_split_name={args.train_split_name!r} is not a split of the data; it has {list(splits)}."
        )
    train = splits[args.train_split_name]
    if args.eval_split_name in splits and args.eval_split_name != args.train_split_name:
        evaluation, eval_name = splits[args.eval_split_name], args.eval_split_name
    else:  # carve a held-out part out of train
        size = min(args.max_eval_samples or 512, max(1, len(train) // 10))
        carved = train.train_test_split(test_size=size, seed=seed)
        train, evaluation, eval_name = carved["train"], carved["test"], f"{args.train_split_name} (held out)"
    if args.max_train_samples is not None:
        train = train.select(range(min(args.max_train_samples, len(train))))
    if args.max_eval_samples is not None:
        evaluation = evaluation.select(range(min(args.max_eval_samples, len(evaluation))))
    return train, evaluation, eval_name


def _label_column(args: ConversionDataArguments, dataset: Dataset) -> str | None:
    if args.label_column is not None:
        return resolve_column(dataset, args.label_column, argument="--label_column", purpose="labels")
    return next((c for c in ("label", "labels") if c in dataset.column_names), None)


def _text_examples(dataset: Dataset, args, tokenizer, max_length: int) -> list[dict[str, torch.Tensor]]:
    column = resolve_column(
        dataset,
        args.text_column,
        argument="--text_column",
        candidates=("text", *TEXT_COLUMN_CANDIDATES),
        purpose="text",
    )
    return to_examples(list(dataset[column]), family="bert", tokenizer=tokenizer, max_length=max_length)


def _image_examples(dataset: Dataset, args, processor, model_config) -> list[dict[str, torch.Tensor]]:
    column = resolve_column(
        dataset, args.image_column, argument="--image_column", candidates=IMAGE_COLUMN_CANDIDATES, purpose="images"
    )
    transform = ImageClassificationTransform(
        image_column=column,
        label_column="__no_label__",  # the labels are encoded apart (_labels)
        image_size=model_config.image_size,
        num_channels=model_config.num_channels,
        image_processor=processor,
    )
    # attach: the image column stays encoded and the tensors are memoised (a later conversion in the process does not
    # decode and transform the same images again)
    batch = transform.attach(dataset.add_column("__no_label__", [0] * len(dataset)))[:]
    return to_examples({"pixel_values": torch.stack(batch["pixel_values"])}, family="vit")


def _labels(dataset: Dataset, args, model_config: Any, split: str) -> list[int | float] | None:
    """A classifier's labels of ``dataset`` as its class ids (None when the data has no label column)."""
    column = _label_column(args, dataset)
    return None if column is None else encode_labels(dataset, column, model_config, split=split)


def load_conversion_data(
    args: ConversionDataArguments,
    *,
    family: str,
    processor: Any,
    model_config: Any,
    seed: int = 0,
    max_length: int = 64,
    train_labels: bool = False,
    teacher: dict[str, Any] | None = None,
    task: str | None = None,
) -> ConversionData:
    """Conversion examples, held-out examples, a description of the data (name, splits, sizes, and the prose
    fingerprint for ``english_prose``) and the validation examples of the stop rule (:class:`ConversionData`).

    Labels are read only for a classifier (``task``, default: read from ``model_config``'s architectures), which
    uses them: on the held-out examples (accuracies) and, with ``train_labels``, on the conversion examples (task
    loss). They become the model's class ids (:func:`~hf_robattr.conversion.labels.encode_labels`: label names
    through its ``label2id``); a label it does not know fails naming ``--label_column``. Other models (base, masked
    LM) get no labels, whatever the data holds.

    ``teacher`` (:func:`teacher_run`) supplies the data set and split seed of the teacher's own training run, unless
    ``args`` names them."""
    teacher = teacher or {}
    max_length = max_text_length(model_config, max_length)
    if args.split_seed is not None:
        seed = args.split_seed
    elif teacher.get("split_seed") is not None:
        seed = teacher["split_seed"]
    name, splits = _splits(args, family, seed, teacher)
    validation = _validation(args, splits)
    train, evaluation, eval_name = _train_and_eval(args, splits, seed)

    classifier = (task or _task(model_config, "auto")) == "classification"

    def examples(split: Dataset, labels: bool, name: str) -> list[dict[str, torch.Tensor]]:
        encoded = _labels(split, args, model_config, name) if labels and classifier else None
        if family == "bert":
            built = _text_examples(split, args, processor, max_length)
        else:
            built = _image_examples(split, args, processor, model_config)
        for example, label in zip(built, encoded or ()):
            example["labels"] = torch.tensor(label)
        return built

    prose = name == PROSE
    described = DataSplitsRecord(
        dataset_config=args.dataset_config_name,
        train_split=args.train_split_name,
        eval_dataset=f"{name} [{eval_name}]",
        split_seed=seed,
        validation_dataset=f"{name} [{args.validation_split_name}]" if validation is not None else None,
        fingerprint=prose_fingerprint(**_prose_sources(args)) if prose else None,
        sources=sorted(set(splits["train"]["source"])) if prose else None,
    )
    return ConversionData(
        examples(train, train_labels, args.train_split_name),
        examples(evaluation, True, eval_name),
        ConversionDataRecord(dataset=name, splits=described),
        examples(validation, False, "validation") if validation is not None else None,
    )


def run_conversion(
    model_args: ConversionModelArguments,
    data_args: ConversionDataArguments,
    config: ConversionConfig,
    output_args: ConversionOutputArguments,
) -> ConversionResult:
    """Load, convert, and (on the main process) save the Hub folder, push it when asked and print a summary; return
    the result."""
    check_conversion_output_dir(output_args, model_args.model_name_or_path)
    model, processor, family = load_teacher(model_args)
    data = load_conversion_data(
        data_args,
        family=family,
        processor=processor,
        model_config=model.config,
        seed=config.seed,
        max_length=config.max_length,
        train_labels=config.task_loss_weight > 0,
        teacher=teacher_run(model_args.model_name_or_path),
        task=model_task(model),
    )
    logger.info("Converting %s on %d examples (%s)", model_args.model_name_or_path, len(data.train), data.info.dataset)
    result = convert_to_kernel(
        model, data.train, eval_inputs=data.evaluation, validation_inputs=data.validation, config=config
    )
    result.teacher_name = model_args.model_name_or_path
    state = PartialState()
    if state.is_main_process:
        result.save_pretrained(
            output_args.output_dir, processor=processor, repo_id=output_args.hub_model_id, data=data.info
        )
        logger.info("Wrote %s", output_args.output_dir)
        if output_args.push_to_hub:
            from hf_robattr.hub import push_to_hub

            push_to_hub(
                output_args.output_dir,
                output_args.hub_model_id,
                token=output_args.hub_token,
                private=output_args.hub_private_repo,
            )
        pushed = output_args.hub_model_id if output_args.push_to_hub else None
        print(conversion_summary(result, output_args.output_dir, pushed_repo=pushed))
    state.wait_for_everyone()
    return result
