"""The model card of a converted model: Hub metadata (``model-index`` with every fidelity number) and Markdown text
that names the teacher, the conversion data, the settings and the fidelity of each stage."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from hf_robattr.results_io import names_hub_repo

from .record import ConversionDataRecord, ConversionRecord, StageRecord


__all__ = ["build_conversion_card"]

_TASK_TYPES = {
    ("bert", "base"): "feature-extraction",
    ("vit", "base"): "image-feature-extraction",
    ("bert", "classification"): "text-classification",
    ("vit", "classification"): "image-classification",
    ("bert", "masked_lm"): "fill-mask",
}
_STAGE_TITLES = {
    "plain_swap": "plain swap (no transfer)",
    "attention_transfer": "+ attention transfer",
    "recovery": "+ recovery",
}
_HEADLINES = (
    ("embedding_cosine_mean", "embedding cosine (mean)"),
    ("embedding_cosine_min", "embedding cosine (min)"),
    ("pairwise_similarity_correlation", "pairwise-similarity correlation"),
    ("top1_agreement", "top-1 agreement"),
    ("teacher_accuracy", "teacher accuracy"),
    ("student_accuracy", "student accuracy"),
    ("logit_kl", "logit KL"),
)
CITATIONS = """```bibtex
@inproceedings{zhang2024hedgehog,
  title     = {The Hedgehog \\& the Porcupine: Expressive Linear Attentions with Softmax Mimicry},
  author    = {Zhang, Michael and Bhatia, Kush and Kumbong, Hermann and R{\\'e}, Christopher},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2024}
}
@article{zhang2024lolcats,
  title   = {{LoLCATs}: On Low-Rank Linearizing of Large Language Models},
  author  = {Zhang, Michael and Arora, Simran and Chalamala, Rahul and Wu, Alan and Spector, Benjamin and
             Singhal, Aaryan and Ramesh, Krithik and R{\\'e}, Christopher},
  journal = {arXiv preprint arXiv:2410.10254},
  year    = {2024}
}
```"""


def _format(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _mean(values: list[float] | None) -> float | None:
    return sum(values) / len(values) if values else None


def _fidelity_table(fidelity: dict[str, dict[str, Any]], stages: dict[str, StageRecord]) -> str:
    columns = [(key, title) for key, title in _HEADLINES if any(key in f for f in fidelity.values())]
    header = ["stage", *(title for _, title in columns), "attention KL (mean over layers)", "last hidden-state cosine"]
    header.append("stage time (wall / CPU s)")
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for stage, numbers in fidelity.items():
        record = stages.get(stage)
        time_cell = f"{record.wall_time_s:.0f} / {record.cpu_time_s:.0f}" if record else "-"
        cells = [_STAGE_TITLES.get(stage, stage), *(_format(numbers.get(key)) for key, _ in columns)]
        cells += [
            _format(_mean(numbers.get("attention_kl"))),
            _format((numbers.get("hidden_state_cosine") or [None])[-1]),
        ]
        rows.append("| " + " | ".join([*cells, time_cell]) + " |")
    return "\n".join(rows)


def _layer_table(fidelity: dict[str, dict[str, Any]]) -> str:
    stages = [stage for stage, numbers in fidelity.items() if numbers.get("attention_kl")]
    if not stages:
        return ""
    num_layers = len(fidelity[stages[0]]["attention_kl"])
    rows = [
        "| layer | " + " | ".join(_STAGE_TITLES.get(s, s) for s in stages) + " |",
        "|" + "---|" * (len(stages) + 1),
    ]
    for layer in range(num_layers):
        cells = [_format(fidelity[s]["attention_kl"][layer]) for s in stages]
        rows.append(f"| {layer} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _stage_line(what: str, planned: int, record: StageRecord | None) -> str:
    """A card line on one stage: ``what`` it trains, the steps it ran of ``planned``, and its stop rule's decision."""
    if not planned:
        return "not run"
    rule = record.stop_rule if record else None
    if not rule:
        return f"{what}, {record.steps if record else planned} steps"
    if rule["decision"].startswith("skipped"):
        return f"{what}; {rule['decision']}. Rule: {rule['rule']}"
    return f"{what}, {record.steps} of {planned} steps; {rule['decision']}. Rule: {rule['rule']}"


def _rules_data(stages: dict[str, StageRecord]) -> set[str]:
    """The arguments whose examples the stages' stop rules checked (``eval_inputs`` / ``validation_inputs``; their
    ``data`` reads ``"N examples of <argument>"``)."""
    return {
        rule["data"].rsplit(" ", 1)[-1]
        for record in stages.values()
        if (rule := record.stop_rule) and rule.get("data")
    }


def _fidelity_data(data: ConversionDataRecord, stages: dict[str, StageRecord]) -> tuple[str, bool]:
    """The card's line on the fidelity data, and whether it is held out from the conversion examples.

    Held out: no fidelity example equals a conversion example (``num_eval_examples_in_training == 0``), or, in a
    record written before that count, a recipe run (whose fidelity data is a held-out split). The line says whether
    the stop rules were decided on these examples."""
    count = data.num_eval_examples or 0
    if not count:
        return "none (no eval_inputs were given)", False
    name = (data.splits and data.splits.eval_dataset) or "the eval_inputs passed to convert_to_kernel"
    shared = data.num_eval_examples_in_training
    held_out = shared == 0 or (shared is None and data.splits is not None and data.splits.eval_dataset is not None)
    checked = _rules_data(stages)
    if "eval_inputs" in checked:
        rules = (
            "the stop rules were decided on them (no validation_inputs), so they are not independent of when the "
            "stages stopped"
        )
    elif checked:
        rules = "the stop rules were decided on other data (validation_inputs)"
    else:
        rules = "no stop rule checked them"
    if held_out and "eval_inputs" not in checked:
        return f"{name}, {count} examples that the conversion never saw", True
    if held_out:
        return f"{name}, {count} held-out examples; {rules}", True
    if shared is None:
        return f"{name}, {count} examples, not checked against the conversion examples; {rules}", False
    return f"{name}, {count} examples, {shared} of them also conversion examples (not held-out data); {rules}", False


def _eval_results(record: ConversionRecord, task_type: str, dataset_name: str) -> list[EvalResult]:
    evals = []
    for stage, numbers in record.fidelity.items():
        for key, value in numbers.items():
            values = value if isinstance(value, list) else [value]
            for index, item in enumerate(values):
                if key == "num_examples" or not isinstance(item, (int, float)) or isinstance(item, bool):
                    continue
                name = f"{stage}/{key}" + (f"/layer_{index}" if isinstance(value, list) else "")
                evals.append(
                    EvalResult(
                        task_type=task_type,
                        dataset_type=dataset_name,
                        dataset_name=dataset_name,
                        metric_type=name,
                        metric_name=name,
                        metric_value=float(item),
                    )
                )
    return evals


def build_conversion_card(
    results: ConversionRecord | Mapping[str, Any],
    *,
    family: str,
    task: str,
    repo_id: str | None = None,
    model_name: str | None = None,
    folder: str | None = None,
) -> ModelCard:
    """A :class:`huggingface_hub.ModelCard` for a conversion's ``results`` (its
    :class:`~hf_robattr.conversion.record.ConversionRecord`, or the ``results.json`` object).

    ``model_name`` titles the card (default: the repo name, else ``<teacher>-kernel-<feature map>``). The usage
    snippet loads ``repo_id`` when it names its namespace (``ORG/NAME``), else ``folder`` (where the model was
    saved)."""
    record = results if isinstance(results, ConversionRecord) else ConversionRecord.from_json(dict(results))
    teacher = record.teacher.name_or_path or "a softmax checkpoint"
    student, data = record.student, record.data
    splits = data.splits
    feature_map = student.kernel_feature_map
    eval_name = (splits and splits.eval_dataset) or "eval_inputs"
    task_type = _TASK_TYPES[(family, task)]
    if model_name is None:
        model_name = repo_id.split("/")[-1] if repo_id else f"{Path(str(teacher)).name}-kernel-{feature_map}"
    card_data = ModelCardData(
        model_name=model_name,
        base_model=teacher if names_hub_repo(teacher) else None,
        library_name="transformers",
        license="apache-2.0",
        tags=["hf_robattr", "kernel-attention", "linear-attention", "attention-transfer", feature_map],
        eval_results=_eval_results(record, task_type, eval_name) or None,
        pipeline_tag=task_type,
    )
    # A bare NAME is pushed to the token user's namespace, unknown until the push (which rewrites the snippet).
    usage_id = (repo_id if repo_id and "/" in repo_id else None) or folder or "PATH_TO_THIS_FOLDER"
    auto_class = {
        "base": "AutoModel",
        "classification": "AutoModelForSequenceClassification"
        if family == "bert"
        else "AutoModelForImageClassification",
        "masked_lm": "AutoModelForMaskedLM",
    }[task]
    settings = record.config
    conversion_data = data.dataset or "the inputs passed to convert_to_kernel"
    fingerprint = f" (text fingerprint `{splits.fingerprint}`)" if splits and splits.fingerprint else ""
    stages = record.stages
    transfer = f"learning rate {settings.transfer_learning_rate}, global batch {settings.batch_size}"
    stage_1 = _stage_line(transfer, settings.transfer_steps, stages.get("attention_transfer"))
    recovery_steps = settings.recovery_steps if settings.recovery != "none" else 0
    stage_2 = _stage_line(settings.recovery, recovery_steps, stages.get("recovery"))
    fidelity_data, held_out = _fidelity_data(data, stages)
    measured_on = f"{data.num_eval_examples} {'held-out ' if held_out else ''}examples"
    text = f"""# {model_name}

`{teacher}` converted from softmax attention to **kernel (linear) attention** with the `{feature_map}` feature map by
hf_robattr's attention transfer: stage 1 trains the feature maps so that
every layer attends like the softmax teacher (Hedgehog), stage 2 recovers the outputs with
{"LoRA adapters (merged into the weights)" if settings.recovery == "lora" else settings.recovery + " fine-tuning"}
(LoLCATs). Attention costs O(N) in the sequence length.

## Usage

```python
from transformers import {auto_class}

model = {auto_class}.from_pretrained("{usage_id}", trust_remote_code=True)
```

Needs `pip install torch "transformers>=5"`{" pillow" if family == "vit" else ""}; no hf_robattr or peft: the modeling
code ships in this folder.

## Conversion

- **Teacher:** `{teacher}` ({record.teacher.architecture}, softmax attention).
- **Student:** {student.architecture}, `attention_type="kernel"`, `kernel_feature_map="{feature_map}"`.
- **Conversion data:** {conversion_data}{fingerprint}, {data.num_examples} examples.
- **Fidelity data:** {fidelity_data}.
- **Stage 1:** {stage_1}.
- **Stage 2:** {stage_2}.
- **Seed:** {settings.seed}. All settings are in `results.json` (`conversion`).

## Fidelity to the teacher

Measured on the fidelity data; both models run end to end on their own hidden states.

{_fidelity_table(record.fidelity, stages) if record.fidelity else "Not measured (no held-out data was given)."}

Attention KL per layer (teacher row || student row, nats, mean over heads and tokens):

{_layer_table(record.fidelity)}

## Limitations

Fidelity is measured on the {measured_on} above; inputs far from the conversion
data may be reproduced less faithfully. Kernel attention weights are not softmax weights: attention-based attributions
of this model differ from the teacher's.

## Citation

{CITATIONS}
"""
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n{text}")
