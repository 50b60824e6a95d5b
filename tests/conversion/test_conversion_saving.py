"""A converted model's folder is a complete Hub repo: it loads with ``trust_remote_code=True`` in a process where
hf_robattr and peft cannot be imported and gives the same outputs; results.json and the card hold every number."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from conversion_helpers import QUICK
from huggingface_hub import ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results

from hf_robattr.conversion import ConversionConfig, ConversionRecord, build_conversion_card, convert_to_kernel
from hf_robattr.conversion.record import ConversionDataRecord, StageRecord, StudentRecord


_CHILD = textwrap.dedent(
    """
    import importlib.util, json, sys

    # As if neither were installed: a None entry makes `import` fail and `find_spec` return None.
    sys.modules["hf_robattr"] = sys.modules["peft"] = None
    import torch
    import transformers

    for blocked in ("hf_robattr", "peft"):
        try:
            __import__(blocked)
            sys.exit(f"{blocked} was importable")
        except ImportError:
            assert importlib.util.find_spec(blocked) is None
    results = {}
    for name, case in json.load(open(sys.argv[1])).items():
        model = getattr(transformers, case["auto_class"]).from_pretrained(case["folder"], trust_remote_code=True)
        assert "hf_robattr" not in type(model).__module__, type(model).__module__
        with torch.no_grad():
            outputs = model.eval()(**torch.load(case["inputs"]))
        value = outputs.logits if hasattr(outputs, "logits") else outputs.last_hidden_state
        results[name] = {"class": type(model).__name__, "attention_type": model.config.attention_type,
                         "output": value.tolist()}
    assert sys.modules["hf_robattr"] is None and sys.modules["peft"] is None
    json.dump(results, open(sys.argv[2], "w"))
    """
)


CASES = {"vit_classifier": "AutoModelForImageClassification", "bert": "AutoModel", "bert_mlm": "AutoModelForMaskedLM"}


def test_saved_folders_load_without_hf_robattr_or_peft(teachers, text_ids, images, tmp_path):
    cases, expected, saved = {}, {}, {}
    for name, auto_class in CASES.items():
        train, held_out = images if name.startswith("vit") else text_ids
        settings = {**QUICK, "transfer_steps": 5, "recovery_steps": 5}
        result = convert_to_kernel(teachers[name], train, eval_inputs=held_out, **settings)
        folder = result.save_pretrained(tmp_path / name, data={"dataset": "random tensors"})
        inputs = {"pixel_values": held_out[:4]} if name.startswith("vit") else {k: v[:4] for k, v in held_out.items()}
        torch.save(inputs, tmp_path / f"{name}.pt")
        with torch.no_grad():
            outputs = result.model(**inputs)
        expected[name] = outputs.logits if hasattr(outputs, "logits") else outputs.last_hidden_state
        cases[name] = {"folder": str(folder), "auto_class": auto_class, "inputs": str(tmp_path / f"{name}.pt")}
        saved[name] = (result, folder)
    (tmp_path / "cases.json").write_text(json.dumps(cases))

    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    (tmp_path / "cwd").mkdir()
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path / "cases.json"), str(tmp_path / "out.json")],
        cwd=tmp_path / "cwd", env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert child.returncode == 0, child.stderr[-3000:]
    loaded = json.loads((tmp_path / "out.json").read_text())
    for name, (result, folder) in saved.items():
        assert loaded[name]["class"] == type(result.model).__name__ and loaded[name]["attention_type"] == "kernel"
        torch.testing.assert_close(torch.tensor(loaded[name]["output"]), expected[name], rtol=1e-5, atol=1e-5)
        _check_results_and_card(folder, headline="embedding_cosine_mean" if name == "bert" else "top1_agreement")


def _check_results_and_card(folder, headline: str) -> None:
    results = json.loads((folder / "results.json").read_text())  # strict JSON: no NaN literal
    assert set(results) == {"teacher", "student", "conversion", "data", "fidelity", "stages"}
    assert results["student"]["kernel_feature_map"] == "hedgehog" and results["data"]["dataset"] == "random tensors"
    assert set(results["fidelity"]) == {"plain_swap", "attention_transfer", "recovery"}
    assert results["stages"]["recovery"]["steps"] == 5

    card = ModelCard.load(folder / "README.md")
    assert "random tensors" in card.text and "trust_remote_code=True" in card.text
    _, evals = model_index_to_eval_results(card.data.to_dict()["model-index"])
    reported = {e.metric_name: e.metric_value for e in evals}
    assert reported[f"recovery/{headline}"] == pytest.approx(results["fidelity"]["recovery"][headline])
    assert reported["attention_transfer/attention_kl/layer_1"] == pytest.approx(
        results["fidelity"]["attention_transfer"]["attention_kl"][1]
    )


def test_save_pretrained_writes_only_the_data_keys_given(teachers, images, tmp_path):
    """A caller that names some split keys gets those, not the others as null; the card still renders."""
    result = convert_to_kernel(teachers["vit"], images[0], transfer_steps=0, recovery_steps=0, progress=False)
    folder = result.save_pretrained(tmp_path / "vit", data={"train_split": "train", "split_seed": 3})
    data = json.loads((folder / "results.json").read_text())["data"]
    assert data == {"num_examples": 64, "num_eval_examples": 0, "train_split": "train", "split_seed": 3}
    assert (folder / "README.md").is_file()


def _fidelity_line(card: str) -> str:
    return next(line for line in card.splitlines() if line.startswith("- **Fidelity data:**"))


def test_the_card_calls_eval_inputs_held_out_only_when_no_conversion_example_is_among_them(
    teachers, text_ids, tmp_path
):
    """The reviewer's case (the docstring example passed eval_inputs=ids[:4], a subset of inputs): the card said "4
    examples that the conversion never saw" without checking."""
    train, _ = text_ids
    subset = {key: value[:4] for key, value in train.items()}
    settings = {
        **QUICK,
        "transfer_steps": 2,
        "recovery_steps": 2,
        "transfer_check_steps": 1,
        "recovery_check_steps": 1,
    }
    result = convert_to_kernel(teachers["bert_classifier"], train, eval_inputs=subset, **settings)
    folder = result.save_pretrained(tmp_path / "subset")
    assert json.loads((folder / "results.json").read_text())["data"]["num_eval_examples_in_training"] == 4
    card = (folder / "README.md").read_text()
    assert _fidelity_line(card) == (
        "- **Fidelity data:** the eval_inputs passed to convert_to_kernel, 4 examples, 4 of them also conversion "
        "examples (not held-out data); the stop rules were decided on them (no validation_inputs), so they are not "
        "independent of when the stages stopped."
    )
    assert "never saw" not in card and "the 4 held-out examples" not in card


_RULE = {"rule": "a rule", "decision": "ran all 2 steps: the measures still improved"}


@pytest.mark.parametrize(
    ("num_eval", "shared", "rules_on", "line"),
    [
        pytest.param(4, 0, "validation_inputs", "the eval_inputs passed to convert_to_kernel, 4 examples that the "
                     "conversion never saw", id="held-out"),
        pytest.param(4, 0, "eval_inputs", "the eval_inputs passed to convert_to_kernel, 4 held-out examples; the stop "
                     "rules were decided on them (no validation_inputs), so they are not independent of when the "
                     "stages stopped", id="held-out-but-the-rules-decided-on-them"),
        pytest.param(4, 2, "validation_inputs", "the eval_inputs passed to convert_to_kernel, 4 examples, 2 of them "
                     "also conversion examples (not held-out data); the stop rules were decided on other data "
                     "(validation_inputs)", id="overlapping"),
        pytest.param(4, None, None, "the eval_inputs passed to convert_to_kernel, 4 examples, not checked against the "
                     "conversion examples; no stop rule checked them", id="an-older-record-of-a-library-call"),
        pytest.param(0, None, None, "none (no eval_inputs were given)", id="no-eval-inputs"),
    ],
)  # fmt: skip
def test_the_card_says_what_the_fidelity_data_is(num_eval, shared, rules_on, line):
    stages = {"recovery": StageRecord(steps=2, stop_rule={**_RULE, "data": f"4 examples of {rules_on}"})}
    record = ConversionRecord(
        student=StudentRecord(architecture="RobAttrBertModel", kernel_feature_map="hedgehog"),
        conversion=ConversionConfig().to_dict(),
        data=ConversionDataRecord(num_examples=16, num_eval_examples=num_eval, num_eval_examples_in_training=shared),
        stages=stages if rules_on else {},
    )
    card = str(build_conversion_card(record, family="bert", task="base"))
    assert _fidelity_line(card) == f"- **Fidelity data:** {line}."
    assert ("held-out examples above" in card) == (shared == 0)
