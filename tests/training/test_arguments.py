"""Argument dataclasses: CLI and JSON parsing, regime defaults, and bad values failing fast with the argument named."""

import json

import pytest
from transformers import HfArgumentParser

from hf_robattr.training import (
    ImageDataArguments,
    NoRegularizer,
    RobAttrTrainingArguments,
    SAMRegularizer,
    TextDataArguments,
    TextModelArguments,
    VisionModelArguments,
    get_regularizer,
    parse_arguments,
)


def parser():
    return HfArgumentParser((VisionModelArguments, ImageDataArguments, RobAttrTrainingArguments))


@pytest.mark.parametrize(
    ("optimizer", "optim", "optim_args", "lr"),
    [
        pytest.param("sgd", "sgd", "momentum=0", 0.3, id="sgd"),
        pytest.param("momentum_sgd", "sgd", "momentum=0.9", 0.03, id="momentum"),
        pytest.param("adamw", "adamw_torch", None, 1e-3, id="adamw"),
    ],
)
def test_optimizer_regime_sets_optim_and_default_learning_rate(tmp_path, optimizer, optim, optim_args, lr):
    args = RobAttrTrainingArguments(output_dir=str(tmp_path), optimizer=optimizer)
    assert (args.optim, args.optim_args, args.learning_rate) == (optim, optim_args, lr)


def test_cli_and_json_parse_the_same(tmp_path):
    flags = {
        "output_dir": str(tmp_path),
        "regularizer": "ig_norm",
        "regularizer_weight": 0.5,
        "ig_steps": 50,
        "ig_chunk_size": 10,
        "attention_type": "kernel",
        "kernel_feature_map": "relu",
        "dataset_name": "digits",
        "diagnostics": ["sharpness", "attention_entropy"],
        "target_train_loss": 0.1,
    }
    argv = []
    for key, value in flags.items():
        argv += [f"--{key}", *(value if isinstance(value, list) else [str(value)])]
    from_cli = parse_arguments(parser(), argv)
    path = tmp_path / "args.json"
    path.write_text(json.dumps(flags))
    from_json = parse_arguments(parser(), [str(path)])
    for cli, js in zip(from_cli, from_json):
        assert cli.to_dict() == js.to_dict() if hasattr(cli, "to_dict") else cli == js
    model_args, data_args, training_args = from_cli
    assert (model_args.attention_type, model_args.kernel_feature_map) == ("kernel", "relu")
    assert data_args.dataset_name == "digits"
    assert training_args.diagnostics == ["sharpness", "attention_entropy"]
    assert training_args.regularizer == "ig_norm" and training_args.ig_steps == 50


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        pytest.param(["--regularizer", "l2"], r"--regularizer 'l2'", id="regularizer"),
        pytest.param(["--optimizer", "lion"], r"--optimizer 'lion'", id="optimizer"),
        pytest.param(["--attention_type", "sparse"], r"--attention_type 'sparse'", id="attention-type"),
        pytest.param(["--kernel_feature_map", "cos"], r"--kernel_feature_map 'cos'", id="feature-map"),
        pytest.param(["--diagnostics", "loss"], r"--diagnostics entry 'loss'", id="diagnostics"),
        pytest.param(["--regularizer_weight", "-1"], r"--regularizer_weight must be >= 0", id="weight"),
        pytest.param(["--target_train_loss", "0"], r"--target_train_loss must be > 0", id="target"),
        pytest.param(["--diagnostics_num_probes", "1"], r"--diagnostics_num_probes must be >= 2", id="probes"),
        pytest.param(["--hidden_size", "30", "--num_attention_heads", "4"], r"--hidden_size \(30\)", id="heads"),
        pytest.param(["--optim", "adafactor"], r"--optim adafactor .*set by --optimizer", id="optim"),
        pytest.param(
            ["--optim_args", "momentum=0.5"], r"--optim_args momentum=0.5 .*set by --optimizer", id="optim-args"
        ),
    ],
)
def test_bad_arguments_fail_fast_naming_the_argument(tmp_path, argv, match):
    with pytest.raises(ValueError, match=match):
        parse_arguments(parser(), ["--output_dir", str(tmp_path), *argv])


def test_text_model_arguments_share_the_checks():
    with pytest.raises(ValueError, match="--attention_type"):
        TextModelArguments(attention_type="linear")


def text_parser():
    return HfArgumentParser((TextModelArguments, TextDataArguments, RobAttrTrainingArguments))


def test_recipe_defaults_apply_to_flags_and_json_files(tmp_path):
    """A recipe's own defaults (BERT: adamw, 3 epochs) hold for a JSON file as for flags; given values win."""
    defaults = {"optimizer": "adamw", "num_train_epochs": 3}
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"output_dir": str(tmp_path)}))
    for argv in (["--output_dir", str(tmp_path)], [str(path)]):
        *_, training_args = parse_arguments(text_parser(), argv, defaults=defaults)
        assert (training_args.optimizer, training_args.num_train_epochs, training_args.learning_rate) == (
            "adamw",
            3,
            1e-3,
        )
    path.write_text(json.dumps({"output_dir": str(tmp_path), "optimizer": "sgd"}))
    *_, training_args = parse_arguments(text_parser(), [str(path)], defaults=defaults)
    assert training_args.optimizer == "sgd"


def test_json_file_must_hold_an_object(tmp_path):
    path = tmp_path / "args.json"
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="must hold a JSON object"):
        parse_arguments(parser(), [str(path)])


def test_attention_defaults_to_the_checkpoints_own():
    args = VisionModelArguments()
    assert args.attention_type is None and args.kernel_feature_map is None


def test_get_regularizer_returns_the_class():
    assert get_regularizer("sam") is SAMRegularizer and get_regularizer("none") is NoRegularizer


@pytest.mark.parametrize(
    ("argv", "named", "closest"),
    [
        pytest.param(["--learnign_rate", "0.1"], "--learnign_rate 0.1", "--learning_rate", id="misspelt"),
        pytest.param(["--outptu_dir", "x"], "--outptu_dir x", "--output_dir", id="misspelt-required-flag"),
        pytest.param(["--no_such_flag_at_all"], "--no_such_flag_at_all", None, id="unknown"),
    ],
)
def test_an_unknown_flag_exits_with_status_2_naming_it(tmp_path, capsys, argv, named, closest):
    """As argparse does: the usage, then one error line naming the flag (and the closest valid one), status 2."""
    output_dir = [] if "--outptu_dir" in argv else ["--output_dir", str(tmp_path)]
    with pytest.raises(SystemExit) as exit_:
        parse_arguments(parser(), [*output_dir, *argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage:") and f"error: unrecognized arguments: {named}" in err
    assert (f"did you mean {closest}?" in err) if closest else "did you mean" not in err
    assert "Traceback" not in err and "HfArgumentParser" not in err


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        pytest.param(["--regularizer_weight", "-1"], "--regularizer_weight must be >= 0", id="flag"),
        pytest.param(["--optimizer", "lion"], "--optimizer 'lion'", id="choice"),
    ],
)
def test_a_bad_value_on_the_command_line_exits_2_without_a_traceback(tmp_path, capsys, monkeypatch, argv, named):
    """Read from ``sys.argv`` (a shell), a value the dataclasses refuse is a usage error; from Python it raises."""
    monkeypatch.setattr("sys.argv", ["train_vit.py", "--output_dir", str(tmp_path), *argv])
    with pytest.raises(SystemExit) as exit_:
        parse_arguments(parser())
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage:") and named in err and "Traceback" not in err
    with pytest.raises(ValueError, match=named):
        parse_arguments(parser(), ["--output_dir", str(tmp_path), *argv])


def test_a_bad_json_value_on_the_command_line_exits_2(tmp_path, capsys, monkeypatch):
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"output_dir": str(tmp_path), "max_steps": "four"}))
    monkeypatch.setattr("sys.argv", ["train_vit.py", str(path)])
    with pytest.raises(SystemExit) as exit_:
        parse_arguments(parser())
    assert exit_.value.code == 2
    assert "--max_steps must be an int, got 'four'" in capsys.readouterr().err


def test_a_recipe_exits_with_status_2_on_an_unknown_flag(tmp_path, capsys):
    from script_modules import load_script

    recipe = load_script("recipes/train_vit.py", "recipe_train_vit_unknown_flag")
    with pytest.raises(SystemExit) as exit_:
        recipe.main(["--output_dir", str(tmp_path), "--regularizer_wieght", "0.1"])
    assert exit_.value.code == 2
    assert "--regularizer_wieght: did you mean --regularizer_weight?" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing was loaded or written


def test_a_feature_map_without_kernel_attention_is_refused_from_scratch():
    with pytest.raises(ValueError, match=r"--kernel_feature_map 'favor' needs --attention_type kernel.*softmax"):
        VisionModelArguments(kernel_feature_map="favor")
    with pytest.raises(ValueError, match=r"--kernel_feature_map 'relu' needs --attention_type kernel"):
        parse_arguments(text_parser(), ["--output_dir", "unused", "--kernel_feature_map", "relu"])
    assert VisionModelArguments(attention_type="kernel", kernel_feature_map="favor").kernel_feature_map == "favor"
    # an explicit softmax keeps the map in the config only (a later swap to kernel uses it); the study relies on it
    assert TextModelArguments(attention_type="softmax", kernel_feature_map="elu").attention_type == "softmax"


@pytest.mark.parametrize(
    ("attention", "refused"),
    [pytest.param("softmax", True, id="softmax-checkpoint"), pytest.param("kernel", False, id="kernel-checkpoint")],
)
def test_a_feature_map_alone_on_a_checkpoint_follows_its_attention(tmp_path, attention, refused):
    """Without --attention_type the checkpoint's own attention is trained: a softmax one ignores the feature map,
    so the run is refused before anything is loaded; a kernel one swaps its feature map."""
    from hf_robattr.models import RobAttrViTConfig, RobAttrViTForImageClassification
    from hf_robattr.training import check_run_arguments

    config = RobAttrViTConfig(image_size=8, patch_size=4, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                              intermediate_size=16, attention_type=attention)  # fmt: skip
    RobAttrViTForImageClassification(config).save_pretrained(tmp_path / "checkpoint")
    model_args = VisionModelArguments(model_name_or_path=str(tmp_path / "checkpoint"), kernel_feature_map="favor")
    training_args = RobAttrTrainingArguments(output_dir=str(tmp_path / "out"))
    if refused:
        with pytest.raises(ValueError, match=r"--kernel_feature_map 'favor' needs --attention_type kernel.*softmax"):
            check_run_arguments(model_args, ImageDataArguments(), training_args)
    else:
        check_run_arguments(model_args, ImageDataArguments(), training_args)
    assert not (tmp_path / "out").exists()


def test_optim_flags_that_agree_with_the_regime_are_accepted(tmp_path):
    """--optimizer decides optim/optim_args; passing the same values again (e.g. a saved training_args.json) is fine."""
    *_, args = parse_arguments(
        parser(), ["--output_dir", str(tmp_path), "--optim", "sgd", "--optim_args", "momentum=0"]
    )
    assert (args.optim, args.optim_args) == ("sgd", "momentum=0")
