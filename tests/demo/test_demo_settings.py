"""The demo without a server: runs scored with ``epsilon="auto"``, converted model folders, unreadable examples, the
page's settings checked in the explain path, [UNK] shown, two models side by side, the table's digits."""

import json
import shutil

import numpy as np
import pytest


pytest.importorskip("gradio")

from PIL import Image
from tiny_models import tiny_robattr_vit

from hf_robattr import RobustnessConfig
from hf_robattr.demo import DemoInputError, build_app, explain, load_demo_model
from hf_robattr.demo.explain import page_config, summary_markdown, token_highlights
from hf_robattr.figures import figure_rows
from hf_robattr.robustness import explain_examples


@pytest.fixture(scope="module")
def vit(vit_run):
    return load_demo_model(vit_run)


@pytest.fixture(scope="module")
def bert(bert_run):
    return load_demo_model(bert_run)


@pytest.fixture
def picture(tmp_path):
    path = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path)
    return str(path)


def _with_results(run, folder, change):
    shutil.copytree(run, folder)
    results = json.loads((folder / "results.json").read_text())
    change(results)
    (folder / "results.json").write_text(json.dumps(results))
    return folder


def _page_text(app) -> str:
    return " ".join(str(getattr(block, "value", "")) for block in app.blocks.values())


def test_auto_epsilon_run_starts_from_the_calibrated_radius(vit_run, tmp_path, picture):
    def auto(results, value=0.0625):
        results["robustness_config"].update(epsilon="auto", epsilon_calibration={"value": value, "target": 0.05})

    model = load_demo_model(_with_results(vit_run, tmp_path / "auto", auto))
    assert model.config.epsilon == 0.0625
    assert any("epsilon='auto'" in note and "0.0625" in note for note in model.notes)
    assert "0.0625" in _page_text(build_app(model))
    result = explain([model], picture, num_steps=1)
    assert result.scores["settings"]["epsilon"] == 0.0625

    uncalibrated = load_demo_model(_with_results(vit_run, tmp_path / "none", lambda r: auto(r, value=None)))
    assert uncalibrated.config.epsilon == RobustnessConfig().resolved("image").epsilon
    assert any("no calibrated radius" in note for note in uncalibrated.notes)


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        pytest.param({"num_steps": 300}, r"`num_steps` must be a whole number from 1 to 100", id="steps-300"),
        pytest.param({"num_steps": 10**6}, "`num_steps`", id="steps-million"),
        pytest.param({"num_steps": 2.5}, "`num_steps`", id="steps-fraction"),
        pytest.param({"num_steps": True}, "`num_steps` must be a number, got the boolean", id="steps-bool"),
        pytest.param({"k": True}, "`k` must be a number, got the boolean", id="k-bool"),
        pytest.param({"k": "abc"}, "`k` must be a number, got 'abc'", id="k-text"),
        pytest.param({"k": 2.5}, "`k` must be a count", id="k-fraction-above-1"),
        pytest.param({"epsilon": "auto"}, "`epsilon` must be a positive number", id="epsilon-auto"),
        pytest.param({"epsilon": 0}, "`epsilon` must be a positive number", id="epsilon-zero"),
        pytest.param({"epsilon": False}, "`epsilon`", id="epsilon-bool"),
    ],
)
def test_numeric_settings_are_checked_in_the_explain_path(vit, picture, settings, words):
    with pytest.raises(DemoInputError, match=words):
        page_config(vit.config, **settings)
    with pytest.raises(DemoInputError, match=words):  # what /explain calls, whatever Gradio checked
        explain([vit], picture, **settings)


def test_page_settings_in_range_still_apply(vit):
    config = page_config(vit.config, k="5", num_steps="100", epsilon="0.2")
    assert (config.k, config.num_steps, config.epsilon) == (5, 100, 0.2)
    assert page_config(vit.config, k=0.25).k == 0.25


def test_non_utf8_example_sentences_become_a_note(bert_run, tmp_path):
    folder = tmp_path / "bert"
    shutil.copytree(bert_run, folder)
    (folder / "examples").mkdir()
    (folder / "examples" / "sentences.txt").write_bytes("une très bonne idée\n".encode("latin-1"))
    model = load_demo_model(folder)
    assert any("sentences.txt" in note and "UTF-8" in note for note in model.notes)
    assert "sentences.txt" in _page_text(build_app(model))


def test_unknown_words_are_scored_and_shown(bert):
    result = explain([bert], "a great movie qwxzv", num_steps=1)
    [record] = result.scores["models"]
    assert record["tokens"] == ["[CLS]", "a", "great", "movie", "[UNK]", "[SEP]"]
    assert record["scored_tokens"] == [False, True, True, True, True, False]
    assert record["special_tokens"] == ["[CLS]", "[SEP]"]
    assert [token for token, _ in token_highlights(record, "clean")] == ["a", "great", "movie", "[UNK]"]
    inputs = bert.tokenizer(["a great movie qwxzv"], return_tensors="pt", return_special_tokens_mask=True)
    explained = explain_examples(bert.model, dict(inputs), bert.config.replace(num_steps=1))
    rows = figure_rows(explained, bert.model, input_ids=inputs["input_ids"], tokenizer=bert.tokenizer)
    assert rows.tokens == [["a", "great", "movie", "[UNK]"]]
    assert rows.clean[0].shape == (4,)


def test_two_columns_never_rename_the_callers_model(vit, bert):
    app = build_app(vit, vit)
    assert vit.name != f"{vit.name} (2)" and not vit.name.endswith("(2)")
    text = _page_text(app)
    assert f"**{vit.name}**" in text and f"**{vit.name} (2)**" in text


def test_models_of_different_kinds_are_refused_by_explain(vit, bert, picture):
    with pytest.raises(DemoInputError, match="take different inputs"):
        explain([vit, bert], picture)


def test_the_table_keeps_three_significant_digits():
    scores = {name: 0.5 for name in ("topk_intersection", "kendall_tau", "spearman", "prediction_change_rate")}
    record = {
        "name": "bert",
        "prediction": "pos",
        "prediction_after_attack": "pos",
        "label_preserving_point_found": True,
        "scores": {**scores, "max_sensitivity": 0.00031234},
    }
    table = summary_markdown({"models": [record]})
    assert "| 0.000312 |" in table and "0.000 |" not in table


def _conversion_results(teacher: str) -> dict:
    return {
        "teacher": {"name_or_path": teacher, "architecture": "RobAttrViTForImageClassification"},
        "student": {"architecture": "RobAttrViTForImageClassification", "attention_type": "kernel"},
        "conversion": {"feature_map": "hedgehog"},
        "data": {"num_examples": 8, "dataset": "synthetic_images"},
        "fidelity": {},
        "stages": {},
    }


def test_a_converted_model_says_what_it_is(vit_run, tmp_path):
    folder = tmp_path / "converted"
    tiny_robattr_vit(attention_type="kernel", num_channels=1, num_hidden_layers=1).save_pretrained(folder)
    (folder / "results.json").write_text(json.dumps(_conversion_results(str(vit_run))))
    model = load_demo_model(folder)
    assert not any("could not be read" in note for note in model.notes)
    assert any("conversion of" in note and "teacher's" in note for note in model.notes)
    assert model.config == load_demo_model(vit_run).config

    (folder / "results.json").write_text(json.dumps(_conversion_results(str(tmp_path / "gone"))))
    model = load_demo_model(folder)
    assert model.config == RobustnessConfig().resolved("image")
    assert any("conversion of" in note and "library defaults" in note for note in model.notes)
    assert not any("could not be read" in note for note in model.notes)
