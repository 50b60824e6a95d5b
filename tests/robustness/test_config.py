"""RobustnessConfig: validated on construction, one default per setting, JSON round trip, CLI mirror."""

import dataclasses
import inspect
import json

import numpy as np
import pytest
import torch
from transformers import HfArgumentParser

import hf_robattr
from hf_robattr import RobustnessArguments, RobustnessConfig
from hf_robattr.robustness import sensitivity_family


BAD = [
    pytest.param({"methods": ()}, ValueError, ["`methods`", "empty"], id="no-methods"),
    pytest.param({"methods": ("saliency", "lime")}, ValueError, ["`methods`", "lime", "rollout"], id="unknown-method"),
    pytest.param({"methods": ("saliency", "saliency")}, ValueError, ["`methods`", "once"], id="repeated-method"),
    pytest.param({"methods": 3}, TypeError, ["`methods`", "3"], id="methods-int"),
    pytest.param({"methods": [3]}, TypeError, ["`methods`", "3"], id="methods-of-ints"),
    pytest.param({"measures": "spearmann"}, ValueError, ["`measures`", "spearmann", "spearman"], id="measure"),
    pytest.param({"measures": ()}, ValueError, ["`measures`", "empty"], id="no-measures"),
    pytest.param({"attack": "top_k"}, ValueError, ["`attack`", "top_k", "topk", "mass_center"], id="attack"),
    pytest.param({"attack": None}, TypeError, ["`attack`", "None"], id="attack-none"),
    pytest.param({"epsilon": 0.0}, ValueError, ["`epsilon`", "> 0", "0.0"], id="zero-epsilon"),
    pytest.param({"epsilon": -0.1}, ValueError, ["`epsilon`", "-0.1"], id="negative-epsilon"),
    pytest.param({"epsilon": float("nan")}, ValueError, ["`epsilon`", "nan"], id="nan-epsilon"),
    pytest.param({"epsilon": float("inf")}, ValueError, ["`epsilon`", "inf"], id="inf-epsilon"),
    pytest.param({"epsilon": True}, TypeError, ["`epsilon`", "True", "bool"], id="bool-epsilon"),
    pytest.param({"epsilon": "0.1"}, TypeError, ["`epsilon`", "'0.1'"], id="string-epsilon"),
    pytest.param({"norm": "l1"}, ValueError, ["`norm`", "l1", "linf", "l2"], id="norm"),
    pytest.param({"num_steps": 0}, ValueError, ["`num_steps`", ">= 1", "0"], id="no-steps"),
    pytest.param({"num_steps": 2.5}, TypeError, ["`num_steps`", "integer", "2.5"], id="float-steps"),
    pytest.param({"num_steps": True}, TypeError, ["`num_steps`", "bool"], id="bool-steps"),
    pytest.param({"step_size": -1.0}, ValueError, ["`step_size`", "> 0"], id="negative-step"),
    pytest.param({"restarts": 0}, ValueError, ["`restarts`", ">= 1"], id="no-restarts"),
    pytest.param({"restarts": 1.0}, TypeError, ["`restarts`", "integer"], id="float-restarts"),
    pytest.param({"k": 0}, ValueError, ["`k`", ">= 1"], id="zero-k"),
    pytest.param({"k": 1.5}, ValueError, ["`k`", "count", "fraction", "1.5"], id="fractional-count"),
    pytest.param({"k": -0.2}, ValueError, ["`k`", "-0.2"], id="negative-k"),
    pytest.param({"k": float("nan")}, ValueError, ["`k`", "nan"], id="nan-k"),
    pytest.param({"k": False}, TypeError, ["`k`", "False"], id="bool-k"),
    pytest.param({"k": "5"}, TypeError, ["`k`", "'5'"], id="string-k"),
    pytest.param({"num_samples": 0}, ValueError, ["`num_samples`", ">= 1"], id="no-samples"),
    pytest.param({"num_samples": 3.0}, TypeError, ["`num_samples`", "integer"], id="float-samples"),
    pytest.param({"batch_size": 0}, ValueError, ["`batch_size`", ">= 1"], id="zero-batch"),
    pytest.param({"input_range": (1.0, 0.0)}, ValueError, ["`input_range`", "low < high"], id="reversed-range"),
    pytest.param({"input_range": (0.0,)}, ValueError, ["`input_range`", "pair"], id="short-range"),
    pytest.param({"input_range": (0.0, float("inf"))}, ValueError, ["`input_range`", "finite"], id="inf-range"),
    pytest.param({"input_range": "01"}, ValueError, ["`input_range`", "pair"], id="string-range"),
    pytest.param({"method_kwargs": {"smoothgrad": {}}}, ValueError, ["`method_kwargs`", "smoothgrad"], id="stray"),
    pytest.param({"method_kwargs": [1]}, TypeError, ["`method_kwargs`", "list"], id="kwargs-list"),
    pytest.param(
        {"methods": "integrated_gradients", "method_kwargs": {"integrated_gradients": {"steps": 3}}},
        TypeError,
        ["integrated_gradients", "steps", "n_steps"],
        id="unknown-method-option",
    ),
    pytest.param({"smoothing_beta": 0.0}, ValueError, ["`smoothing_beta`", "> 0"], id="zero-beta"),
    pytest.param({"seed": -1}, ValueError, ["`seed`", ">= 0"], id="negative-seed"),
    pytest.param({"seed": 1.0}, TypeError, ["`seed`", "integer"], id="float-seed"),
]


@pytest.mark.parametrize(("kwargs", "error", "words"), BAD)
def test_bad_settings_are_named(kwargs, error, words):
    with pytest.raises(error) as caught:
        RobustnessConfig(**kwargs)
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))


def test_numpy_scalars_and_single_names_are_accepted():
    config = RobustnessConfig(
        methods="rollout",
        measures="spearman",
        epsilon=np.float32(0.25),
        k=np.int64(5),
        num_steps=np.int32(3),
        step_size=np.float64(0.1),
        input_range=np.array([0.0, 1.0]),
        seed=np.uint8(4),
    )
    assert config.methods == ("rollout",) and config.measures == ("spearman",)
    assert config.epsilon == 0.25 and type(config.epsilon) is float
    assert config.k == 5 and type(config.k) is int
    assert type(config.num_steps) is int and type(config.seed) is int
    assert config.input_range == (0.0, 1.0) and type(config.input_range) is tuple


@pytest.mark.parametrize(("k", "expected"), [(0.1, 0.1), (5, 5), (5.0, 5), (1, 1), (np.float32(0.5), 0.5)])
def test_k_is_a_fraction_below_one_and_a_count_from_one(k, expected):
    value = RobustnessConfig(k=k).k
    assert value == expected and type(value) is type(expected)


# Every kind of field away from its default: tuples, strings, numbers, a range, nested method options.
CUSTOM = RobustnessConfig(
    methods=("saliency", "integrated_gradients"),
    measures=("spearman", "max_sensitivity"),
    attack="mass_center",
    epsilon=0.3,
    norm="l2",
    step_size=0.05,
    k=7,
    input_range=(-1.0, 1.0),
    method_kwargs={"integrated_gradients": {"n_steps": 8}},
    smoothing_beta=2.0,
    seed=9,
)


def test_json_round_trip_keeps_tuples_and_types():
    config = CUSTOM
    text = config.to_json()
    assert json.loads(text)["methods"] == ["saliency", "integrated_gradients"]
    again = RobustnessConfig.from_json(text)
    assert again == config
    assert isinstance(again.methods, tuple) and isinstance(again.measures, tuple)
    assert isinstance(again.input_range, tuple) and type(again.k) is int
    assert RobustnessConfig.from_dict(config.to_dict()) == config
    assert hash(again) == hash(config)


def test_json_refuses_tensors_and_unknown_keys():
    config = RobustnessConfig(methods="smoothgrad", method_kwargs={"smoothgrad": {"noise": torch.zeros(1, 1, 1)}})
    with pytest.raises(ValueError, match="cannot be written as JSON"):
        config.to_json()
    with pytest.raises(TypeError, match=r"unknown robustness setting.*'epsilom'.*'epsilon'"):
        RobustnessConfig.from_dict({"epsilom": 0.1})
    with pytest.raises(TypeError, match="mapping"):
        RobustnessConfig.from_dict([("epsilon", 0.1)])


def test_replace_validates_and_names_unknown_settings():
    config = RobustnessConfig()
    assert config.replace(epsilon=0.5).epsilon == 0.5 and config.epsilon != 0.5
    with pytest.raises(ValueError, match="`num_steps`"):
        config.replace(num_steps=0)
    with pytest.raises(TypeError, match=r"\['num_stepz'\].*'num_steps'"):
        config.replace(num_stepz=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epsilon = 1.0


def test_defaults_live_in_the_config_only():
    """Entry points carry no default of a setting: the config's is the one."""
    settings = set(RobustnessConfig.field_names())
    for function in (hf_robattr.evaluate_attribution_robustness, sensitivity_family):
        parameters = inspect.signature(function).parameters
        assert not settings & set(parameters), function.__name__


def test_keyword_arguments_equal_the_config(linear_model, images):
    options = dict(epsilon=0.05, num_steps=2, num_samples=2, batch_size=4, attack="random", seed=1)
    config = RobustnessConfig(**options)
    by_config = hf_robattr.evaluate_attribution_robustness(linear_model, images, config, progress=False)
    by_keywords = hf_robattr.evaluate_attribution_robustness(linear_model, images, progress=False, **options)
    by_dict = hf_robattr.evaluate_attribution_robustness(linear_model, images, options, progress=False)
    overridden = hf_robattr.evaluate_attribution_robustness(
        linear_model, images, config.replace(seed=5), seed=1, progress=False
    )
    assert by_config == by_keywords == by_dict == overridden
    with pytest.raises(TypeError, match=r"\['epsilom'\]"):
        hf_robattr.evaluate_attribution_robustness(linear_model, images, epsilom=0.1)
    with pytest.raises(TypeError, match="`config` must be a RobustnessConfig"):
        hf_robattr.evaluate_attribution_robustness(linear_model, images, 0.1)


# ---- the command-line mirror -------------------------------------------------------------------------------------


def test_every_setting_has_a_flag_with_the_same_default_and_help():
    flags = {item.name: item for item in dataclasses.fields(RobustnessArguments)}
    defaults = RobustnessArguments().to_config()
    assert defaults == RobustnessConfig()
    for item in dataclasses.fields(RobustnessConfig):
        flag = flags.pop(f"robustness_{item.name}")
        assert flag.metadata["help"] == item.metadata["help"].replace("%", "%%"), item.name  # escaped for argparse
    assert not flags


def test_flags_parse_into_the_config():
    parser = HfArgumentParser(RobustnessArguments)
    (arguments,) = parser.parse_args_into_dataclasses(
        [
            "--robustness_methods", "saliency", "integrated_gradients",
            "--robustness_measures", "spearman", "max_sensitivity",
            "--robustness_attack", "mass_center",
            "--robustness_epsilon", "0.3",
            "--robustness_norm", "l2",
            "--robustness_step_size", "0.05",
            "--robustness_k", "7",
            "--robustness_input_range", "-1", "1",
            "--robustness_method_kwargs", '{"integrated_gradients": {"n_steps": 8}}',
            "--robustness_smoothing_beta", "2",
            "--robustness_seed", "9",
        ]
    )  # fmt: skip
    assert arguments.to_config() == CUSTOM
    assert RobustnessArguments.from_config(CUSTOM).to_config() == CUSTOM
    single = parser.parse_args_into_dataclasses(["--robustness_measures", "spearman"])[0].to_config()
    assert single.measures == ("spearman",)


def test_a_bad_flag_fails_at_parse_time(capsys, tmp_path):
    parser = HfArgumentParser(RobustnessArguments)
    with pytest.raises(SystemExit):
        parser.parse_args_into_dataclasses(["--robustness_attack", "top_k"])
    error = capsys.readouterr().err
    assert "robustness_attack" in error and "top_k" in error and "mass_center" in error
    with pytest.raises(ValueError, match=r"`robustness_epsilon` must be a finite number > 0; got -1.0"):
        parser.parse_args_into_dataclasses(["--robustness_epsilon", "-1"])
    with pytest.raises(ValueError, match=r"`robustness_k`.*2.5"):
        parser.parse_args_into_dataclasses(["--robustness_k", "2.5"])
    with pytest.raises(ValueError, match=r"`robustness_method_kwargs` must be a JSON object"):
        parser.parse_args_into_dataclasses(["--robustness_method_kwargs", "{n_steps: 3}"])
    path = tmp_path / "flags.json"
    path.write_text(json.dumps({"robustness_attack": "top_k"}))
    with pytest.raises(ValueError, match=r"`robustness_attack` 'top_k'.*'topk'"):
        parser.parse_json_file(str(path))


def test_the_docs_table_lists_every_setting_with_its_default():
    import re
    from pathlib import Path

    from hf_robattr.robustness.config import default_value

    page = Path(__file__).resolve().parents[2] / "docs" / "scoring.md"
    rows = re.findall(r"^\| `(\w+)` \| `([^`]+)` \|", page.read_text(encoding="utf-8"), flags=re.M)
    documented = {name: eval(default) for name, default in rows}  # literals written on our own page
    assert documented == {name: default_value(name) for name in RobustnessConfig.field_names()}
