"""compute() is a thin wrapper: same numbers as the core, datasets encoded, bad input rejected clearly."""

import inspect
import math

import datasets
import evaluate
import numpy as np
import PIL.Image
import pytest
import torch
from tiny_models import tiny_text_bert

import hf_robattr
from hf_robattr.metrics import compute as compute_module


def same(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    return all(
        (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y)) or x == y
        for x, y in ((a[k], b[k]) for k in a)
    )


def test_results_equal_the_core(image_model, pixel_values, fast_options):
    expected = hf_robattr.evaluate_attribution_robustness(image_model, pixel_values, **fast_options)
    direct = hf_robattr.AttributionRobustness().compute(model=image_model, inputs=pixel_values, **fast_options)
    by_name = evaluate.load("attribution_robustness").compute(model=image_model, inputs=pixel_values, **fast_options)
    assert same(direct, expected)
    assert same(by_name, expected)
    assert expected["num_samples"] == 6
    for method in fast_options["methods"]:
        for measure in ("topk_intersection", "kendall_tau", "spearman", "max_sensitivity", "prediction_change_rate"):
            assert f"{method}/{measure}" in expected


def test_options_passed_as_none_take_the_cores_defaults(image_model, pixel_values, fast_options):
    """The evaluate signature shows every option with a None default: passing None means "the default"."""
    options = {**fast_options, "return_per_sample": None, "progress": None}
    result = hf_robattr.AttributionRobustness().compute(model=image_model, inputs=pixel_values, **options)
    fast_options.pop("progress", None)
    assert same(result, hf_robattr.evaluate_attribution_robustness(image_model, pixel_values, **fast_options))
    assert "per_sample" not in result


def test_every_setting_passed_as_none_takes_its_default(image_model, pixel_values, fast_options):
    """``methods=None``, ``attack=None``, ``num_steps=None``, ``k=None``... each failed validation in the core: a None
    setting is now not passed on, so ``config``'s value (or the core's default) applies."""
    progress = fast_options.pop("progress")
    config = hf_robattr.RobustnessConfig(**fast_options)
    unset = dict.fromkeys(hf_robattr.RobustnessConfig.field_names())
    expected = hf_robattr.evaluate_attribution_robustness(image_model, pixel_values, config, progress=progress)
    metric = hf_robattr.AttributionRobustness()
    result = metric.compute(model=image_model, inputs=pixel_values, config=config, progress=progress, **unset)
    assert same(result, expected)
    direct = hf_robattr.metrics.compute_attribution_robustness(
        image_model, pixel_values, config=config, progress=progress, **unset
    )
    assert same(direct, expected)


@pytest.mark.parametrize(
    "unset",
    [
        pytest.param({"config": None}, id="config"),
        pytest.param({"epsilon": None}, id="epsilon"),
        pytest.param({"methods": None, "seed": None, "k": None}, id="settings"),
    ],
)
def test_none_at_compute_keeps_the_load_time_settings(image_model, pixel_values, fast_options, unset):
    """A None passed to ``compute`` counts as not given: it never replaces what ``evaluate.load`` was given (the
    core's defaults, epsilon 8/255 and one method, would give other numbers)."""
    settings = {key: value for key, value in fast_options.items() if key != "progress"}
    metric = evaluate.load("attribution_robustness", **settings)
    expected = hf_robattr.evaluate_attribution_robustness(image_model, pixel_values, **fast_options)
    result = metric.compute(model=image_model, inputs=pixel_values, progress=False, **unset)
    assert same(result, expected)
    assert result["input_x_gradient/topk_intersection"] == expected["input_x_gradient/topk_intersection"]


def test_every_option_reaches_the_core_unchanged(monkeypatch, image_model, pixel_values):
    seen = {}

    def fake_core(
        model, inputs, config=None, *, methods=("saliency",), attack="topk", epsilon=0.1, seed=0, measures=None
    ):
        seen.update(model=model, inputs=inputs, methods=methods, attack=attack, epsilon=epsilon, seed=seed)
        seen.update(measures=measures, config=config)
        return {"saliency/spearman": 1.0, "num_samples": 6}

    monkeypatch.setattr(compute_module, "_scoring_core", lambda: fake_core)
    options = {"methods": ("saliency", "rollout"), "attack": "random", "epsilon": 0.25, "seed": 7, "measures": ["x"]}
    result = hf_robattr.AttributionRobustness().compute(model=image_model, inputs=pixel_values, **options)
    assert result == {"saliency/spearman": 1.0, "num_samples": 6}
    assert seen.pop("model") is image_model and seen.pop("inputs") is pixel_values
    assert seen.pop("config") == hf_robattr.RobustnessConfig()  # the instance's defaults (none given at load)
    assert seen == options
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['num_stepz'\].*valid options are"):
        hf_robattr.AttributionRobustness().compute(model=image_model, inputs=pixel_values, num_stepz=3)


def test_every_core_argument_is_documented():
    doc = hf_robattr.AttributionRobustness().inputs_description
    parameters = inspect.signature(hf_robattr.evaluate_attribution_robustness).parameters
    names = [name for name, p in parameters.items() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    for name in [*names, *hf_robattr.RobustnessConfig.field_names()]:
        assert f"\n    {name} (" in doc, f"argument {name!r} of the core is not documented in the metric"
    for name in compute_module.ENCODING_OPTIONS:
        assert f"\n    {name} (" in doc, name
    for measure in hf_robattr.robustness.MEASURES:
        assert f'"{{method}}/{measure}"' in doc, f"measure {measure!r} is not documented"


def test_dataset_with_image_processor(image_model, fast_options):
    from transformers import ViTImageProcessor

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8) for _ in range(5)]
    pictures = [PIL.Image.fromarray(image) for image in images]
    features = datasets.Features({"img": datasets.Image(), "label": datasets.Value("int64")})
    dataset = datasets.Dataset.from_dict({"img": pictures, "label": [0, 1, 2, 0, 1]}, features=features)
    processor = ViTImageProcessor(size={"height": 8, "width": 8}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    metric = hf_robattr.AttributionRobustness()
    result = metric.compute(
        model=image_model, inputs=dataset, image_processor=processor, label_column="label", **fast_options
    )
    pixel_values = processor(images=pictures, return_tensors="pt")["pixel_values"]
    expected = hf_robattr.evaluate_attribution_robustness(
        image_model, pixel_values, targets=torch.tensor([0, 1, 2, 0, 1]), **fast_options
    )
    assert same(result, expected)


def test_dataset_of_images_for_a_grayscale_model(fast_options):
    """A one-channel model gets one-channel pixels from an RGB processor (the mean of its channels), as in training."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessorPil

    torch.manual_seed(0)
    config = ViTConfig(image_size=8, patch_size=4, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=32, num_labels=3, num_channels=1)  # fmt: skip
    model = ViTForImageClassification(config).eval()
    rng = np.random.default_rng(0)
    pictures = [PIL.Image.fromarray(rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)) for _ in range(4)]
    dataset = datasets.Dataset.from_dict({"image": pictures}, features=datasets.Features({"image": datasets.Image()}))
    processor = ViTImageProcessorPil(size={"height": 8, "width": 8}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    result = hf_robattr.AttributionRobustness().compute(
        model=model, inputs=dataset, image_processor=processor, **fast_options
    )
    rgb = processor(images=pictures, return_tensors="pt")["pixel_values"]
    expected = hf_robattr.evaluate_attribution_robustness(model, rgb.mean(dim=1, keepdim=True), **fast_options)
    assert same(result, expected)


def test_dataset_of_tensors_goes_to_the_core_as_is(image_model, pixel_values, fast_options):
    dataset = datasets.Dataset.from_dict({"pixel_values": pixel_values.numpy()}).with_format("torch")
    result = hf_robattr.AttributionRobustness().compute(model=image_model, inputs=dataset, **fast_options)
    assert same(result, hf_robattr.evaluate_attribution_robustness(image_model, pixel_values, **fast_options))


def test_dataset_with_tokenizer():
    tokenizer = hf_robattr.build_offline_tokenizer()
    model = tiny_text_bert(tokenizer)
    dataset = datasets.Dataset.from_dict({"sentence": ["good film", "bad bad film here", "great"]})
    options = {"methods": "saliency", "epsilon": 0.1, "num_steps": 2, "k": 2, "num_samples": 2, "progress": False}
    result = hf_robattr.AttributionRobustness().compute(model=model, inputs=dataset, tokenizer=tokenizer, **options)
    # The metric encodes with the special-tokens mask, so its scores rank the word tokens ([CLS]/[SEP] left out).
    encoded = dict(
        tokenizer(
            list(dataset["sentence"]),
            padding=True,
            truncation=True,
            return_tensors="pt",
            return_special_tokens_mask=True,
        )
    )
    assert same(result, hf_robattr.evaluate_attribution_robustness(model, encoded, **options))
    included = hf_robattr.evaluate_attribution_robustness(model, encoded, special_tokens="include", **options)
    assert not same(result, included)
    assert result["num_samples"] == 3


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        pytest.param({"model": None}, ValueError, "`model` is required", id="no-model"),
        pytest.param({"model": "vit"}, TypeError, "`model` must be a torch.nn.Module", id="model-not-module"),
        pytest.param({"inputs": None}, ValueError, "`inputs` is required", id="no-inputs"),
        pytest.param({"tokenizer": object()}, ValueError, "only apply when `inputs` is a datasets.Dataset", id="tok"),
        pytest.param({"epsilon": -1.0}, ValueError, "epsilon", id="negative-epsilon"),
        pytest.param({"methods": ["nope"]}, ValueError, "nope", id="unknown-method"),
        pytest.param({"attack": "nope"}, ValueError, "nope", id="unknown-attack"),
    ],
)
def test_bad_input_gets_a_clear_error(image_model, pixel_values, kwargs, error, match):
    arguments = {"model": image_model, "inputs": pixel_values, "progress": False, **kwargs}
    with pytest.raises(error, match=match):
        hf_robattr.AttributionRobustness().compute(**arguments)


def test_dataset_errors(image_model):
    dataset = datasets.Dataset.from_dict({"pixels": [[0.0]], "label": [0]})
    metric = hf_robattr.AttributionRobustness()
    with pytest.raises(ValueError, match="image_column"):
        metric.compute(model=image_model, inputs=dataset, image_processor=object())
    with pytest.raises(ValueError, match="not both"):
        metric.compute(model=image_model, inputs=dataset, image_processor=object(), tokenizer=object())


def test_add_batch_is_not_supported():
    metric = hf_robattr.AttributionRobustness()
    with pytest.raises(NotImplementedError, match="compute"):
        metric.add_batch(predictions=[0], references=[0])
    with pytest.raises(NotImplementedError, match="compute"):
        metric.add(prediction=0, reference=0)


def test_readme_example_runs():
    from pathlib import Path

    readme = Path(hf_robattr.metric_path()).with_name("README.md").read_text(encoding="utf-8")
    example = readme.split("```python\n", 1)[1].split("```", 1)[0]
    example = example.replace("epsilon=8 / 255,", "epsilon=8 / 255, progress=False,")
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    results = namespace["results"]
    assert results["num_samples"] == 4
    assert 0.0 <= results["saliency/topk_intersection"] <= 1.0


def test_load_options_become_the_instance_defaults(image_model, pixel_values, fast_options):
    settings = {key: value for key, value in fast_options.items() if key != "progress"}
    metric = evaluate.load("attribution_robustness", **settings)
    assert metric.robustness_config == hf_robattr.RobustnessConfig(**settings)
    assert metric.seed == settings["seed"]
    expected = hf_robattr.evaluate_attribution_robustness(image_model, pixel_values, **fast_options)
    assert same(metric.compute(model=image_model, inputs=pixel_values, progress=False), expected)
    # compute's own options win over the load-time defaults
    override = hf_robattr.evaluate_attribution_robustness(
        image_model, pixel_values, **{**fast_options, "epsilon": 0.2}
    )
    assert same(metric.compute(model=image_model, inputs=pixel_values, epsilon=0.2, progress=False), override)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        pytest.param({"epsilom": 0.5}, TypeError, r"unknown load option\(s\) \['epsilom'\].*'epsilon'", id="typo"),
        pytest.param({"epsilon": -1.0}, ValueError, "`epsilon`", id="bad-value"),
        pytest.param({"methods": ["lime"]}, ValueError, "lime", id="bad-method"),
    ],
)
def test_bad_load_options_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        evaluate.load("attribution_robustness", **kwargs)
