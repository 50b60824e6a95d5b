"""The demo without a server: loading models (and refusing what is not one), bad inputs and settings, two models
side by side, progress reports."""

import json
import shutil

import numpy as np
import pytest
import torch


pytest.importorskip("gradio")

from PIL import Image
from tiny_models import tiny_robattr_vit

from hf_robattr import RobustnessConfig, evaluate_attribution_robustness
from hf_robattr.data import ImageClassificationTransform
from hf_robattr.demo import DemoInputError, DemoModelError, build_app, explain, load_demo_model
from hf_robattr.demo.explain import page_config


@pytest.fixture(scope="module")
def vit(vit_run):
    return load_demo_model(vit_run)


@pytest.fixture(scope="module")
def kernel_folder(tmp_path_factory):
    """An untrained tiny kernel-attention ViT (8x8, one channel, no image processor, no results.json)."""
    folder = tmp_path_factory.mktemp("kernel_vit")
    tiny_robattr_vit(attention_type="kernel", num_channels=1, num_hidden_layers=1).save_pretrained(folder)
    return folder


def test_run_folder_defaults_and_examples(vit, vit_run, bert_run):
    section = json.loads((vit_run / "results.json").read_text())["robustness_config"]
    section.pop("num_examples", None)
    assert vit.kind == "image" and vit.config == RobustnessConfig.from_dict(section)
    assert len(vit.examples) == 4 and all(Image.open(path).size == (32, 32) for path in vit.examples)
    bert = load_demo_model(bert_run)
    assert bert.kind == "text" and len(bert.examples) == 4 and all(isinstance(s, str) and s for s in bert.examples)


def test_what_is_not_a_model(tmp_path, bert_run):
    with pytest.raises(DemoModelError, match=r"holds no model: missing config\.json and model weights"):
        load_demo_model(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(DemoModelError, match=r"missing model weights"):
        load_demo_model(tmp_path)
    with pytest.raises(DemoModelError, match="is a file"):
        load_demo_model(tmp_path / "config.json")
    with pytest.raises(DemoModelError, match="neither an existing folder nor a Hub model id"):
        load_demo_model("no such thing")
    with pytest.raises(DemoModelError, match="Could not download"):
        load_demo_model("org/not-cached-and-offline")  # HF_HUB_OFFLINE is set for the suite
    no_tokenizer = tmp_path / "bert"
    shutil.copytree(bert_run, no_tokenizer)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        (no_tokenizer / name).unlink(missing_ok=True)
    with pytest.raises(DemoModelError, match="without a tokenizer"):
        load_demo_model(no_tokenizer)


def test_unreadable_results_json_falls_back_to_the_defaults(kernel_folder, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(kernel_folder, folder)
    (folder / "results.json").write_text('{"robustness_config": {"attack": "top_k"}}')
    model = load_demo_model(folder)
    assert model.config == RobustnessConfig().resolved(model.kind)  # the defaults, with the radius made explicit
    assert any("top_k" in note for note in model.notes)


def test_pages_that_cannot_show_a_model_say_why(tmp_path, vit, bert_run):
    def page_text(app):
        return " ".join(str(getattr(block, "value", "")) for block in app.blocks.values())

    assert "holds no model" in page_text(build_app(tmp_path))
    text = page_text(build_app(vit, bert_run))
    assert "take different inputs" in text and "image" in text and "text" in text


def test_cli_demo_refuses_models_of_different_kinds_before_launching(vit_run, bert_run, monkeypatch, capsys):
    import hf_robattr.demo
    from hf_robattr.cli import main

    monkeypatch.setattr(hf_robattr.demo, "launch_demo", lambda *args, **kwargs: pytest.fail("launched"))
    assert main(["demo", str(vit_run), str(bert_run)]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]  # after transformers' weight-loading bars
    assert line.startswith("hf-robattr demo: error: The two models take different inputs")
    assert ": image" in line and ": text" in line


def test_settings_and_inputs_get_messages(vit, tmp_path):
    base = vit.config
    assert page_config(base, method="integrated_gradients", k=5.0, num_steps=3.0).k == 5
    for settings, words in (
        ({"attack": "bogus"}, "attack"),
        ({"k": 0}, "`k`"),
        ({"num_steps": 0}, "num_steps"),
        ({"norm": "l3"}, "norm"),
        ({"method": "magic"}, "methods"),
        ({"epsilon": float("nan")}, "epsilon"),
    ):
        with pytest.raises(DemoInputError, match=words):
            page_config(base, **settings)
    with pytest.raises(DemoInputError, match="No image"):
        explain([vit], None)
    with pytest.raises(DemoInputError, match="is gone"):
        explain([vit], str(tmp_path / "missing.png"))


def test_long_text_is_cut_with_a_note(bert_run):
    bert = load_demo_model(bert_run)
    limit = bert.model.config.max_position_embeddings
    result = explain([bert], "good " * (limit + 10), num_steps=1)
    assert any(f"first {limit} tokens" in note for note in result.scores["notes"])
    assert len(result.scores["models"][0]["tokens"]) == limit


def test_two_models_side_by_side_on_the_same_input_and_attack(vit, kernel_folder, tmp_path):
    kernel = load_demo_model(kernel_folder)
    assert kernel.image_processor is None and kernel.attention_type == "kernel"
    picture = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(picture)
    steps = []
    result = explain([vit, kernel], str(picture), attack="random", epsilon=0.1, progress=lambda f, m: steps.append(f))
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == 1.0
    first, second = result.scores["models"]
    assert (first["name"], second["name"]) == (vit.name, kernel.name)
    assert second["attention_type"] == "kernel" and np.array(second["clean_map"]).shape == (8, 8)
    # the second model's scores are the core's on its own pre-processing of the same file, same settings
    pixels = torch.stack(
        ImageClassificationTransform(image_size=8, num_channels=1)({"image": [Image.open(picture)], "label": [0]})[
            "pixel_values"
        ]
    )
    config = vit.config.replace(attack="random", epsilon=0.1)
    expected = evaluate_attribution_robustness(kernel.model, pixels, config, return_per_sample=True, progress=False)
    assert second["scores"]["kendall_tau"] == pytest.approx(expected["per_sample"]["saliency/kendall_tau"][0])
    assert result.picture.size[1] > 300  # one row per model


def test_cli_demo_loads_both_models_and_launches_with_the_flags(vit_run, kernel_folder, monkeypatch):
    import hf_robattr.demo
    from hf_robattr.cli import main

    launched = {}

    def fake_launch(models, **kwargs):
        launched.update(models=models, **kwargs)

    monkeypatch.setattr(hf_robattr.demo, "launch_demo", fake_launch)
    assert main(["demo", str(vit_run), str(kernel_folder), "--port", "7999", "--share"]) == 0
    assert [m.name for m in launched["models"]] == [vit_run.name, kernel_folder.name]
    assert launched["server_port"] == 7999 and launched["share"] is True and launched["server_name"] == "127.0.0.1"
