"""Every bad flag fails before training starts, with the flag named, and leaves nothing on disk."""

import json
import runpy
import sys

import pytest
import transformers  # noqa: F401 (imported at collection: its log handler then binds to no test's captured stream)
from recipe_helpers import QUICK, RECIPES


BAD_FLAGS = [
    # (recipe, flags, exception, words of the message)
    ("train_vit", ["--num_attention_heads", "0"], ValueError, "--num_attention_heads must be >= 1, got 0"),
    ("train_vit", ["--hidden_size", "0"], ValueError, "--hidden_size must be >= 1, got 0"),
    ("train_vit", ["--hidden_size", "30"], ValueError, r"--hidden_size \(30\) must be divisible"),
    ("train_vit", ["--patch_size", "0"], ValueError, "--patch_size must be >= 1, got 0"),
    ("train_vit", ["--patch_size", "5"], ValueError, r"--patch_size \(5\) must divide --image_size \(32\)"),
    ("train_vit", ["--initializer_range", "0"], ValueError, "--initializer_range must be > 0"),
    ("train_vit", ["--max_train_samples", "0"], ValueError, "--max_train_samples must be >= 1, got 0"),
    ("train_vit", ["--max_eval_samples", "-3"], ValueError, "--max_eval_samples must be >= 1, got -3"),
    ("train_vit", ["--dataset_num_examples", "5"], ValueError, "--dataset_num_examples must be >= 20, got 5"),
    ("train_vit", ["--dataset_name", "digits", "--dataset_num_examples", "100"], ValueError, "has a fixed size"),
    ("train_vit", ["--momentum", "1.5"], ValueError, "--momentum must be >= 0 and < 1, got 1.5"),
    ("train_vit", ["--learning_rate", "-0.1"], ValueError, "--learning_rate must be > 0, got -0.1"),
    ("train_vit", ["--max_steps", "0"], ValueError, r"--max_steps must be >= 1 \(or -1"),
    ("train_vit", ["--num_train_epochs", "0"], ValueError, "--num_train_epochs must be > 0"),
    ("train_vit", ["--per_device_train_batch_size", "0"], ValueError, "--per_device_train_batch_size must be >= 1"),
    ("train_vit", ["--target_train_loss", "-1"], ValueError, "--target_train_loss must be > 0"),
    ("train_vit", ["--target_loss_examples", "0"], ValueError, "--target_loss_examples must be >= 1"),
    ("train_vit", ["--divergence_loss", "nan"], ValueError, "--divergence_loss must be > 0, got nan"),
    ("train_vit", ["--regularizer", "l2"], ValueError, r"--regularizer 'l2'.*input_grad_norm"),
    ("train_vit", ["--optimizer", "lion"], ValueError, r"--optimizer 'lion'.*adamw"),
    ("train_vit", ["--attention_type", "kernal"], ValueError, r"--attention_type 'kernal'.*kernel"),
    ("train_vit", ["--robustness_epsilon", "-1"], ValueError, "robustness_epsilon"),
    ("train_vit", ["--robustness_k", "2.5"], ValueError, "robustness_k"),
    ("train_vit", ["--robustness_num_examples", "-1"], ValueError, "--robustness_num_examples must be >= 0"),
    # a top-k count no map can hold: the 32x32 image's 1024 pixels (saliency), its 64 patches (attention maps)
    ("train_vit", ["--robustness_k", "5000"], ValueError, r"_k 5000 .* saliency ranks 1024 .*count <= 1024"),
    ("train_vit", ["--robustness_k", "99", "--robustness_methods", "rollout"], ValueError, r"rollout ranks 64 \("),
    # the attribution_robustness diagnostic scores with the same k, also when the recipe's own scoring is off
    (
        "train_vit",
        ["--robustness_k", "5000", "--robustness_num_examples", "0", "--diagnostics_at_end"],
        ValueError,
        r"_k 5000 .* saliency ranks 1024",
    ),
    ("train_bert", ["--max_seq_length", "0"], ValueError, "--max_seq_length must be >= 1, got 0"),
    ("train_bert", ["--max_seq_length", "2"], ValueError, r"--max_seq_length \(2\) must be > 2"),
    ("train_bert", ["--max_position_embeddings", "4"], ValueError, r"--max_position_embeddings \(4\) must be >= "),
    ("train_bert", ["--max_position_embeddings", "0"], ValueError, "--max_position_embeddings must be >= 1"),
    ("train_bert", ["--robustness_measures", "center_of_mass_shift"], ValueError, r"measures.*images only"),
    ("train_bert", ["--robustness_k", "100"], ValueError, r"\(--max_seq_length 64 leaves at most 62 word tokens\)"),
]


@pytest.mark.parametrize(
    ("recipe", "flags", "error", "match"),
    [pytest.param(*row, id=f"{row[0][6:]}{'-'.join(row[1])}") for row in BAD_FLAGS],
)
def test_bad_flag_fails_before_anything_is_written(recipes, tmp_path, recipe, flags, error, match):
    output_dir = tmp_path / "out"
    with pytest.raises(error, match=match):
        recipes[recipe].main(["--output_dir", str(output_dir), *QUICK, *flags])
    assert not output_dir.exists()


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        pytest.param(["--robustness_attack", "top_k"], ["top_k", "topk", "mass_center"], id="attack"),
        pytest.param(["--robustness_methods", "salency"], ["salency", "saliency"], id="method"),
        pytest.param(["--max_steps", "four"], ["--max_steps", "four"], id="not-an-int"),
        pytest.param(["--no_such_flag", "1"], ["unrecognized arguments", "--no_such_flag"], id="unknown-flag"),
        pytest.param(["--learnign_rate", "0.1"], ["--learnign_rate", "did you mean --learning_rate"], id="typo"),
    ],
)
def test_unreadable_flag_exits_2_with_the_usage(recipes, tmp_path, capsys, flags, words):
    with pytest.raises(SystemExit) as raised:
        recipes["train_vit"].main(["--output_dir", str(tmp_path / "out"), *flags])
    assert raised.value.code == 2
    error = capsys.readouterr().err
    assert all(word in error for word in words), error
    assert not (tmp_path / "out").exists()


def test_no_output_dir_is_an_error(recipes, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the Trainer's default would be ./trainer_output
    with pytest.raises(ValueError, match="--output_dir is required"):
        recipes["train_vit"].main(QUICK)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("values", "error", "match"),
    [
        pytest.param({"max_steps": "four"}, TypeError, r"--max_steps must be an int, got 'four' \(str\)", id="str"),
        pytest.param({"use_cpu": "yes"}, TypeError, "--use_cpu must be a bool", id="bool"),
        pytest.param({"learning_rate": [0.1]}, TypeError, "--learning_rate must be a float or null", id="list"),
        pytest.param(
            {"hidden_sise": 64},
            ValueError,
            r"unknown keys \['hidden_sise'\] \(hidden_sise: did you mean hidden_size",
            id="unknown-key",
        ),
    ],
)
def test_json_arguments_are_checked_too(recipes, tmp_path, values, error, match):
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"output_dir": str(tmp_path / "out"), **values}))
    with pytest.raises(error, match=match):
        recipes["train_vit"].main([str(path)])
    assert not (tmp_path / "out").exists()


def test_command_line_typo_exits_nonzero_naming_the_valid_attacks(tmp_path, monkeypatch, capsys):
    """The issue's reproduction, as a user runs it (the script's ``__main__`` block, in this process): no training,
    no checkpoint, the valid names in the message."""
    script = RECIPES / "train_vit.py"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(script), "--output_dir", "o", "--robustness_attack", "top_k"])
    with pytest.raises(SystemExit) as stopped:
        runpy.run_path(str(script), run_name="__main__")
    assert stopped.value.code not in (0, None)
    stderr = capsys.readouterr().err
    assert "top_k" in stderr and "topk" in stderr and "random" in stderr
    assert list(tmp_path.iterdir()) == []  # no output folder, no checkpoint


def test_a_topk_count_is_checked_against_a_checkpoints_own_image_and_patch_size(recipes, tmp_path):
    from tiny_models import tiny_robattr_vit

    checkpoint = tmp_path / "checkpoint"
    tiny_robattr_vit(patch_size=4).save_pretrained(checkpoint)  # 8x8 images in 4x4 patches: 4 patches, 64 pixels
    argv = ["--output_dir", str(tmp_path / "out"), *QUICK, "--model_name_or_path", str(checkpoint)]
    with pytest.raises(ValueError, match=r"rollout ranks 4 \(a 8x8 image has 64 pixels and 4 patches of 4x4"):
        recipes["train_vit"].main([*argv, "--robustness_k", "5", "--robustness_methods", "rollout"])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        pytest.param(
            '{"output_dir": "x",\n}', r"args.json is not valid JSON: Expecting property name", id="malformed"
        ),
        pytest.param(None, r"args.json: no such file", id="missing"),
    ],
)
def test_an_unreadable_json_file_is_named(recipes, tmp_path, text, match):
    path = tmp_path / "args.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ValueError, match=match):
        recipes["train_vit"].main([str(path)])


def test_json_true_resumes_the_last_checkpoint_as_the_flag_does(tmp_path):
    from transformers import HfArgumentParser

    from hf_robattr.training import RobAttrTrainingArguments, parse_arguments

    path = tmp_path / "args.json"
    for value, expected in ((True, "last"), (False, None)):
        path.write_text(json.dumps({"output_dir": str(tmp_path / "out"), "resume_from_checkpoint": value}))
        (args,) = parse_arguments(HfArgumentParser(RobAttrTrainingArguments), [str(path)])
        assert args.resume_from_checkpoint == expected
