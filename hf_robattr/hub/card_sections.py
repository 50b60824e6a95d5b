"""The text of a model card, section by section: every string the template shows is built here, in Python, from
the card data (:class:`~hf_robattr.hub.card_data.RobAttrModelCardData`) and its typed run record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..paper import PAPER_URL
from ..results_io import names_hub_repo
from ..training import TrainingRecord
from .attribution_picture import ATTRIBUTION_PICTURE, TRAINING_PICTURE
from .card_data import METRIC_ID, RobAttrModelCardData
from .space import source_requirement
from .summary import saturation_note


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _table(rows: list[tuple[str, Any]], header: tuple[str, str] = ("", "")) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| {name} | {_fmt(value)} |" for name, value in rows]
    return "\n".join(lines)


def _dataset_link(name: str | None) -> str:
    if not name:
        return "not recorded"
    return f"[{name}](https://huggingface.co/datasets/{name})" if names_hub_repo(name) else f"`{name}`"


def summary_section(data: RobAttrModelCardData) -> str:
    """One paragraph: what the model is, how it was trained, and its headline numbers."""
    record = data.record
    model, training = record.model, record.training
    attention = model.attention_type
    what = f"a `{data.architecture or 'transformers'}` {data.resolved_task.replace('-', ' ')} model"
    if attention:
        what += f" with **{attention}** attention"
        if attention == "kernel" and model.kernel_feature_map:
            what += f" (feature map `{model.kernel_feature_map}`)"
    sentence = f"This is {what}, trained with hf_robattr"
    if training.optimizer:
        sentence += f" using `{training.optimizer}`"
    if training.regularizer and training.regularizer != "none":
        sentence += f" with the `{training.regularizer}` regularizer"
    sentence += " "
    sentence += (
        f"to study whether training makes gradient attributions robust to adversarial input perturbations "
        f"([Mehrpanah et al., ICML 2026]({PAPER_URL}))."
    )
    headline = []
    if isinstance(record.eval.accuracy, (int, float)):
        headline.append(f"accuracy {_fmt(float(record.eval.accuracy))}")
    scores = data.robustness_scores
    for key in scores:
        if key.endswith("/topk_intersection"):
            headline.append(f"`{key}` {_fmt(scores[key])}")
            break
    if headline:
        split = record.dataset.eval_split or "evaluation"
        sentence += f" On the {split} split: " + ", ".join(headline) + "."
    return sentence


def model_section(data: RobAttrModelCardData) -> str:
    """The architecture, attention type and feature map."""
    model = data.record.model
    rows: list[tuple[str, Any]] = [("Architecture", model.architecture), ("Attention", model.attention_type)]
    if model.attention_type == "kernel":
        rows.append(("Kernel feature map", model.kernel_feature_map))
    source = model.model_name_or_path
    rows.append(
        (
            "Initialised from",
            f"[{source}](https://huggingface.co/{source})" if data.base_model else source or "scratch",
        )
    )
    text = _table(rows, ("Model", ""))
    text += (
        "\n\nThe modeling code is in this repository (`auto_map` in `config.json`), so the model loads with "
        "`trust_remote_code=True` and needs neither hf_robattr nor a custom transformers."
    )
    return text


def training_rows(training: TrainingRecord) -> list[tuple[str, Any]]:
    """The training table's rows, in order, those recorded (not ``None``). Read as attributes of the record, so a
    renamed field fails here (and in a type checker) instead of leaving its row out."""
    no_weight = training.regularizer in (None, "none")  # a weight without a regularizer says nothing
    rows = [
        ("Optimizer", training.optimizer),
        ("Learning rate", training.learning_rate),
        ("Batch size per device", training.per_device_train_batch_size),
        ("Total batch size", training.total_train_batch_size),
        ("Momentum", training.momentum),
        ("Regularizer", training.regularizer),
        ("Regularizer weight", None if no_weight else training.regularizer_weight),
        ("Epochs", training.num_train_epochs),
        ("Max steps", training.max_steps),
        ("Steps trained", training.global_step),
        ("Epochs trained", training.epochs),
        ("Seed", training.seed),
        ("Target training loss", training.target_train_loss),
        ("Target reached", training.target_reached),
        ("Target reached at step", training.target_reached_at_step),
        ("Final training loss", training.final_train_loss),
        ("Diverged", training.diverged),
        ("Training time (s)", training.train_runtime_s),
    ]
    return [(label, value) for label, value in rows if value is not None]


def training_section(data: RobAttrModelCardData) -> str:
    """The training regime, plus every non-default training argument when the callback recorded them."""
    training = data.record.training
    rows = training_rows(training)
    lr, batch = training.learning_rate, training.total_train_batch_size
    if isinstance(lr, (int, float)) and isinstance(batch, (int, float)) and batch:
        rows.insert(4, ("Learning rate / total batch size", lr / batch))
    if not rows:
        return "Not recorded."
    text = _table(rows, ("Hyperparameter", "Value"))
    if training.optimizer and str(training.optimizer).lower().startswith("sgd"):
        text += (
            "\n\nPlain SGD regularises implicitly: gradient descent with step h follows L + (h/4)·‖∇θL‖², and "
            "mini-batch noise adds a term of strength about learning rate / batch size."
        )
    if data.hyperparameters:
        items = "\n".join(f"- `{key}`: `{_fmt(value)}`" for key, value in sorted(data.hyperparameters.items()))
        text += f"\n\n<details><summary>All non-default training arguments</summary>\n\n{items}\n\n</details>"
    return text


def data_section(data: RobAttrModelCardData) -> str:
    """The dataset and the evaluation split."""
    dataset = data.record.dataset
    rows = [
        ("Dataset", _dataset_link(dataset.name)),
        ("Configuration", dataset.config),
        ("Evaluation split", dataset.eval_split),
        ("Evaluation examples", dataset.num_eval_samples),
    ]
    return _table([row for row in rows if row[1] is not None], ("Data", ""))


def results_section(data: RobAttrModelCardData) -> str:
    """Accuracy, then the robustness numbers as a methods x measures table, then how they were scored."""
    parts = []
    task_rows = [
        (name, value)
        for name, value in (("Accuracy", data.record.eval.accuracy), ("Loss", data.record.eval.loss))
        if value is not None
    ]
    if task_rows:
        parts.append(_table(task_rows, ("Metric", "Value")))
    scores = data.robustness_scores
    if scores:
        methods = list(dict.fromkeys(key.split("/", 1)[0] for key in scores))
        measures = list(dict.fromkeys(key.split("/", 1)[1] for key in scores))
        spreads = data.robustness_spreads
        # One row per measure, one column per method: stays readable with a dozen measures.
        lines = ["| Measure | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
        for measure in measures:
            cells = []
            for method in methods:
                key = f"{method}/{measure}"
                cell = _fmt(scores.get(key))
                cell = f"{cell} ± {_fmt(spreads[key])}" if key in spreads and key in scores else cell
                cells.append(f"{cell} (saturated)" if key in data.robustness_saturated else cell)
            lines.append(f"| {measure} | " + " | ".join(cells) + " |")
        how = ", ".join(f"{key}={_fmt(value)}" for key, value in data.shown_settings().items())
        count, skipped = data.num_examples, data.num_skipped
        parts.append(
            'Attribution robustness (`evaluate.load("attribution_robustness")`'
            + (f"; {how}" if how else "")
            + (f"; {_fmt(count)} examples" if count is not None else "")
            + "). "
            + (
                f"{skipped} of these examples are left out of every measure (they cannot be perturbed, or their "
                "clean map is all zeros). "
                if skipped
                else ""
            )
            + ("Mean ± standard deviation over examples. " if spreads else "Means over examples. ")
            + "Similarities (top-k intersection, rank correlations) are higher-is-more-robust; "
            "sensitivities and the prediction-change rate are lower-is-more-robust.\n\n" + "\n".join(lines)
        )
        calibration = data.record.robustness_config.epsilon_calibration
        if isinstance(calibration, dict) and calibration.get("value") is not None:
            parts.append(
                f"The radius was calibrated (`epsilon='auto'`) to {_fmt(calibration['value'])}: "
                f"{calibration.get('rule', 'see hf_robattr.robustness.calibration')}."
            )
        if data.robustness_saturated:
            parts.append("**Saturated measures** (marked in the table): " + saturation_note(data.robustness_saturated))
    if not parts:
        return "No evaluation results were recorded."
    parts.append(f"Every number is also in this card's `model-index` metadata (metric type `{METRIC_ID}`).")
    return "\n\n".join(parts)


def usage_section(data: RobAttrModelCardData, folder: str | None = None) -> str:
    """Loading with ``trust_remote_code=True`` (the repo id when known, else the run ``folder``), the packages that
    need, and scoring with the evaluate metric."""
    repo = data.model_id or folder or "ORG/NAME"
    text_model = data.resolved_task == "text-classification"
    if text_model:
        loading = (
            "from transformers import AutoModelForSequenceClassification, AutoTokenizer\n\n"
            f'model = AutoModelForSequenceClassification.from_pretrained("{repo}", trust_remote_code=True)\n'
            f'tokenizer = AutoTokenizer.from_pretrained("{repo}", trust_remote_code=True)\n'
            'inputs = tokenizer(["a great film", "a dull film"], padding=True, return_tensors="pt")\n'
            "predictions = model(**inputs).logits.argmax(-1)\n"
        )
        task, packages, example = "text-classification", 'torch "transformers>=5"', '"a great film"'
    else:
        loading = (
            "import torch\n"
            "from transformers import AutoModelForImageClassification\n\n"
            f'model = AutoModelForImageClassification.from_pretrained("{repo}", trust_remote_code=True)\n'
            "size = model.config.image_size\n"
            "inputs = torch.rand(4, model.config.num_channels, size, size)  # your preprocessed pixel values\n"
            "predictions = model(pixel_values=inputs).logits.argmax(-1)\n"
        )
        task, packages, example = "image-classification", 'torch "transformers>=5" pillow', '"photo.png"'
    settings = data.shown_settings() or {"methods": ["saliency"]}
    options = "".join(f", {key}={value!r}" for key, value in settings.items())
    source = source_requirement()
    install = (
        f'`pip install "{source}"`'
        if source
        else "hf_robattr is not on PyPI: install it from its source (`pip install -e .` in a clone of its repository)"
    )
    return (
        f"Needs `pip install {packages}` (no hf_robattr: the modeling code ships with the model).\n\n"
        f"```python\n{loading}```\n\n"
        f'A pipeline takes raw inputs: `pipeline("{task}", model="{repo}", trust_remote_code=True)({example})`'
        + (" (images need `pillow`)." if not text_model else ".")
        + "\n\n"
        f"Score the robustness of its attributions with the `attribution_robustness` metric ({install}):\n\n"
        "```python\n"
        "import evaluate\n\n"
        'metric = evaluate.load("attribution_robustness")  # the metric installed with hf_robattr, offline\n'
        f"results = metric.compute(model=model, inputs=inputs{options})\n"
        "```"
    )


def pictures(data: RobAttrModelCardData, output_dir: Path) -> list[dict[str, str]]:
    """The pictures present in ``output_dir``, with their captions."""
    found = []
    if (output_dir / ATTRIBUTION_PICTURE).is_file():
        settings = data.shown_settings()
        attack = f"the `{settings['attack']}` attack" if "attack" in settings else "the scored attack"
        radius = data.calibrated_epsilon
        if radius is not None:
            attack += f" (epsilon={_fmt(radius)}, the radius calibrated by `epsilon='auto'`)"
        elif "epsilon" in settings:
            attack += f" (epsilon={_fmt(settings['epsilon'])})"
        found.append(
            {
                "title": "Attribution maps, clean and attacked",
                "caption": f"Attribution maps of a few test samples on the clean input and under {attack}, with "
                "the predictions before and after and each sample's scores. A robust model keeps the same "
                "important regions.",
                "file": ATTRIBUTION_PICTURE,
            }
        )
    if (output_dir / TRAINING_PICTURE).is_file():
        found.append(
            {
                "title": "Robustness and sharpness during training",
                "caption": "Attribution robustness and parameter-space sharpness as logged while training.",
                "file": TRAINING_PICTURE,
            }
        )
    return found
