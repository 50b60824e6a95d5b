"""The card's attribution picture reads the run's RobustnessConfig and draws through the shared renderer."""

import json

import pytest
import torch

import hf_robattr.figures.explained as figure_rows
import hf_robattr.hub.attribution_picture as attribution_picture
from hf_robattr import RobustnessConfig
from hf_robattr.hub import RobAttrModelCardData, save_model_card


def test_card_picture_uses_the_runs_config_and_the_renderer(run_dir, results, monkeypatch):
    from transformers import AutoModelForImageClassification

    results["robustness_config"] = {"methods": ["saliency"], "attack": "random", "epsilon": 0.2, "k": 5, "seed": 3}
    (run_dir / "results.json").write_text(json.dumps(results))
    seen = {}
    real_explain, real_figure = attribution_picture.explain_examples, figure_rows.attribution_figure

    def spy_explain(model, inputs, config, **kwargs):
        seen["config"] = config
        return real_explain(model, inputs, config, **kwargs)

    def spy_figure(*args, **kwargs):
        seen["rendered"] = True
        return real_figure(*args, **kwargs)

    monkeypatch.setattr(attribution_picture, "explain_examples", spy_explain)
    monkeypatch.setattr(figure_rows, "attribution_figure", spy_figure)
    model = AutoModelForImageClassification.from_pretrained(run_dir)
    save_model_card(run_dir, model=model, inputs=torch.rand(2, 1, 8, 8))
    # every setting the run recorded, the library's defaults for the rest (no hub-side defaults)
    assert seen["config"] == RobustnessConfig(methods=("saliency",), attack="random", epsilon=0.2, k=5, seed=3)
    assert seen["rendered"] and (run_dir / "attribution_maps.png").is_file()


def test_card_settings_text(run_dir, results):
    results["robustness_config"] = {**results["robustness_config"], "restarts": 3}
    results["robustness_config"].pop("num_examples")
    results["dataset"].update(num_robustness_examples=12, num_robustness_skipped={"any": 2, "saliency": 2})
    data = RobAttrModelCardData.from_results(results)
    assert data.robustness_settings.restarts == 3 and data.num_examples == 12 and data.num_skipped == 2
    text = (save_model_card(run_dir, card_data=data)).read_text()
    assert "restarts=3" in text and "12 examples" in text and "2 of these examples are left out" in text
    assert "batch_size" not in text  # a default that says nothing about robustness


def test_card_picture_of_an_auto_epsilon_run_uses_the_calibrated_radius(run_dir, results, monkeypatch):
    """A run scored with ``epsilon="auto"`` is drawn at the radius it calibrated, and the caption says so."""
    from huggingface_hub import ModelCard
    from transformers import AutoModelForImageClassification

    results["robustness_config"] = {
        "methods": ["saliency"],
        "attack": "random",
        "epsilon": "auto",
        "epsilon_calibration": {"value": 0.0984, "rule": "the smallest radius"},
    }
    (run_dir / "results.json").write_text(json.dumps(results))
    seen = {}
    real_explain = attribution_picture.explain_examples

    def spy_explain(model, inputs, config, **kwargs):
        seen["config"] = config
        return real_explain(model, inputs, config, **kwargs)

    monkeypatch.setattr(attribution_picture, "explain_examples", spy_explain)
    model = AutoModelForImageClassification.from_pretrained(run_dir)
    text = ModelCard.load(save_model_card(run_dir, model=model, inputs=torch.rand(2, 1, 8, 8))).text
    assert seen["config"].epsilon == 0.0984 and (run_dir / "attribution_maps.png").is_file()
    assert "attribution_maps.png" in text and "(epsilon=0.0984, the radius calibrated by `epsilon='auto'`)" in text
    data = RobAttrModelCardData.from_results(results)
    assert data.robustness_settings.epsilon == "auto" and data.scored_settings.epsilon == 0.0984


def test_an_auto_epsilon_run_without_its_calibration_names_the_missing_radius(results):
    results["robustness_config"] = {"methods": ["saliency"], "epsilon": "auto"}
    data = RobAttrModelCardData.from_results(results)
    assert data.calibrated_epsilon is None
    with pytest.raises(ValueError, match=r"epsilon='auto'.*epsilon_calibration'\]\['value'\]"):
        data.scored_settings  # noqa: B018
