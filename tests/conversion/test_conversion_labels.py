"""Labels reach a conversion only where the task uses them: the recipe reads a classifier's label column (names mapped
to its class ids, an unknown label refused naming --label_column) and ignores it for base models and masked LMs;
measure_fidelity refuses labels that are not one per prediction."""

import csv
import importlib.util
import json
from pathlib import Path

import pytest
import torch
from conversion_helpers import TINY_BERT, save_tiny_checkpoint
from datasets import Dataset
from transformers import BertConfig, BertForMaskedLM

from hf_robattr.conversion import measure_fidelity
from hf_robattr.conversion.arguments import ConversionDataArguments
from hf_robattr.conversion.inputs import to_examples
from hf_robattr.conversion.labels import encode_labels
from hf_robattr.conversion.run import load_conversion_data
from hf_robattr.data import build_offline_tokenizer


RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "convert_to_kernel.py"
WORDS = ["the", "a", "cat", "dog", "is", "on", "mat", "sat"]
NAMED = {0: "neg", 1: "pos", 2: "neutral"}


def _csv(path: Path, labels: list) -> str:
    """A text file with a ``label`` column (40 rows, the labels repeated)."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for row in range(40):
            writer.writerow([f"the cat sat on the mat {row}", labels[row % len(labels)]])
    return str(path)


def _config(**overrides) -> BertConfig:
    settings = {key: value for key, value in TINY_BERT.items() if key != "num_labels"}
    return BertConfig(**{**settings, **overrides})


def _load(data_file: str, task: str, config: BertConfig, **arguments):
    args = ConversionDataArguments(dataset_name=data_file, max_eval_samples=4, **arguments)
    return load_conversion_data(
        args,
        family="bert",
        processor=build_offline_tokenizer(WORDS),
        model_config=config,
        task=task,
        train_labels=True,
    )


@pytest.mark.parametrize("task", ["base", "masked_lm"])
def test_models_that_use_no_labels_get_none(tmp_path, task):
    """The reviewer's repros: string labels crashed (TypeError in torch.tensor); class labels reached a masked LM."""
    for labels in (["pos", "neg"], [0, 1]):
        data = _load(_csv(tmp_path / "texts.csv", labels), task, _config(id2label=NAMED))
        assert all("labels" not in example for example in (*data.train, *data.evaluation))


def test_a_classifiers_label_names_become_its_class_ids(tmp_path):
    data = _load(_csv(tmp_path / "texts.csv", ["pos", "neutral", "neg"]), "classification", _config(id2label=NAMED))
    labels = {int(example["labels"]) for example in (*data.train, *data.evaluation)}
    assert labels == {0, 1, 2} and data.evaluation[0]["labels"].dtype == torch.int64


@pytest.mark.parametrize(
    ("labels", "config", "message"),
    [
        pytest.param(
            ["pos", "great"], {"id2label": NAMED}, r"example \d+ of the .* data has the label 'great', which the model "
            r"does not know: its labels \(the config's label2id\) are \['neg', 'neutral', 'pos'\]", id="unknown-name",
        ),
        pytest.param(
            ["pos", "neg"], {"num_labels": 2}, r"example \d+ of the .* data has the label '(pos|neg)', which the "
            r"model does not know: its labels \(the config's label2id\) are \['LABEL_0', 'LABEL_1'\]",
            id="names-for-an-unnamed-model",
        ),
        pytest.param([0, 3], {"num_labels": 3}, r"example \d+ of the .* data has the class id 3, but the model has 3 "
                     r"labels: expected 0 to 2", id="id-out-of-range"),
    ],
)  # fmt: skip
def test_a_label_the_classifier_cannot_take_is_refused_naming_the_flag(tmp_path, labels, config, message):
    with pytest.raises(ValueError, match=rf"^--label_column 'label': {message}"):
        _load(_csv(tmp_path / "texts.csv", labels), "classification", _config(**config))


def test_class_label_ids_follow_the_models_label_names():
    """A ClassLabel column numbers its names its own way (sorted here); the model's label2id decides the ids."""
    dataset = Dataset.from_dict({"label": ["pos", "neg", "neutral", "pos"]}).class_encode_column("label")
    assert dataset.features["label"].names == ["neg", "neutral", "pos"]
    assert encode_labels(dataset, "label", _config(id2label=NAMED), split="test") == [1, 0, 2, 1]
    assert encode_labels(dataset, "label", _config(num_labels=3), split="test") == [2, 0, 1, 2]  # placeholder names


def test_the_recipe_converts_a_masked_lm_on_data_with_class_labels(tmp_path):
    """The reviewer's r1: the eval split's class labels reached measure_fidelity and crashed on the masked LM."""
    spec = importlib.util.spec_from_file_location("recipe_convert_to_kernel_labels", RECIPE)
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    checkpoint = save_tiny_checkpoint(BertForMaskedLM, tmp_path / "mlm")
    out = tmp_path / "out"
    recipe.main(["--model_name_or_path", str(checkpoint), "--dataset_name", _csv(tmp_path / "texts.csv", [0, 1]),
                 "--output_dir", str(out), "--batch_size", "8", "--transfer_steps", "2", "--recovery_steps", "2",
                 "--max_eval_samples", "4", "--progress", "false", "--use_cpu"])  # fmt: skip
    fidelity = json.loads((out / "results.json").read_text())["fidelity"]
    assert "top1_agreement" in fidelity["plain_swap"] and "teacher_accuracy" not in fidelity["plain_swap"]


@pytest.mark.parametrize(
    ("teacher", "labels", "message"),
    [
        pytest.param("bert_mlm", lambda ids: torch.ones(len(ids), dtype=torch.long), r"labels of shape \(\), but a "
                     r"masked_lm model's predictions for it have shape \(12,\)", id="class-labels-for-a-masked-lm"),
        pytest.param("bert_classifier", lambda ids: torch.ones_like(ids), r"labels of shape \(12,\), but a "
                     r"classification model's predictions for it have shape \(\)", id="token-labels-for-a-classifier"),
    ],
)  # fmt: skip
def test_measure_fidelity_refuses_labels_that_are_not_one_per_prediction(teachers, teacher, labels, message):
    ids = torch.randint(1, 40, (4, 12))
    examples = to_examples({"input_ids": ids, "labels": labels(ids)}, family="bert")
    task = "masked_lm" if teacher == "bert_mlm" else "classification"
    model = teachers[teacher]
    with pytest.raises(ValueError, match=rf"^measure_fidelity: examples\[0\] has {message}"):
        measure_fidelity(model, model, examples, family="bert", task=task)
