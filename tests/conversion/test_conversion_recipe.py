"""recipes/convert_to_kernel.py end to end: in-process on tiny checkpoints with the offline default data, fail-fast
arguments, a finished folder kept, and a 2-process accelerate launch equal to one process with the global batch."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from conversion_helpers import save_tiny_checkpoint
from forked_launch import accelerate_launch
from safetensors.torch import load_file
from transformers import AutoModelForImageClassification, BertModel, ViTForImageClassification, ViTModel

from hf_robattr.data import IMAGE_TENSOR_CACHE


ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "convert_to_kernel.py"
QUICK_FLAGS = ["--batch_size", "8", "--transfer_steps", "6", "--recovery_steps", "4", "--logging_steps", "2",
               "--max_train_samples", "48", "--max_eval_samples", "12", "--progress", "false", "--use_cpu",
               "--prose_sources", "pydoc_topics", "sklearn_descriptions"]  # fmt: skip


@pytest.fixture(scope="module")
def recipe():
    spec = importlib.util.spec_from_file_location("recipe_convert_to_kernel", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bert_checkpoint(tmp_path_factory):
    return save_tiny_checkpoint(BertModel, tmp_path_factory.mktemp("bert"))


def test_bert_on_offline_english_prose(recipe, bert_checkpoint, tmp_path):
    out = tmp_path / "out"
    results = recipe.main(["--model_name_or_path", str(bert_checkpoint), "--output_dir", str(out), *QUICK_FLAGS])
    saved = json.loads((out / "results.json").read_text())
    assert saved["data"]["dataset"] == "english_prose" and len(saved["data"]["fingerprint"]) == 16
    assert saved["data"]["num_examples"] == 48 and saved["data"]["num_eval_examples"] == 12
    assert saved["teacher"]["name_or_path"] == str(bert_checkpoint) and results["fidelity"] == saved["fidelity"]
    assert (out / "tokenizer.json").exists() and (out / "modeling_robattr_bert.py").exists()
    card = (out / "README.md").read_text()
    assert str(bert_checkpoint) in card and "english_prose" in card and "# out" in card
    # a finished folder is kept unless --overwrite_output_dir
    with pytest.raises(ValueError, match="already holds a finished run"):
        recipe.main(["--model_name_or_path", str(bert_checkpoint), "--output_dir", str(out), *QUICK_FLAGS])


@pytest.mark.parametrize("kind", ["folder", "txt"])
def test_bert_on_your_own_text(recipe, bert_checkpoint, tmp_path, kind):
    """--dataset_name takes a local folder (any column name that reads as text) or a single data file; the held-out
    part is carved out of train when the data has no test split."""
    texts = [f"the sea is {word} and it is on the {word}" for word in ("a", "of", "to", "in", "that") * 16]
    if kind == "folder":
        data = tmp_path / "texts"
        data.mkdir()
        (data / "train.jsonl").write_text("".join(json.dumps({"sentence": t}) + "\n" for t in texts))
    else:
        data = tmp_path / "texts.txt"
        data.write_text("\n".join(texts))
    out = tmp_path / "out"
    recipe.main(["--model_name_or_path", str(bert_checkpoint), "--output_dir", str(out), "--dataset_name", str(data),
                 *QUICK_FLAGS])  # fmt: skip
    saved = json.loads((out / "results.json").read_text())
    assert saved["data"]["dataset"] == str(data) and saved["data"]["eval_dataset"] == f"{data} [train (held out)]"
    assert saved["data"]["num_examples"] == 48 and saved["data"]["num_eval_examples"] == 8
    assert str(data) in (out / "README.md").read_text()


def test_vit_classifier_on_synthetic_images(recipe, tmp_path, capsys):
    checkpoint = save_tiny_checkpoint(ViTForImageClassification, tmp_path / "vit", num_labels=4)  # the set's 4 classes
    out = tmp_path / "out"
    recipe.main(["--model_name_or_path", str(checkpoint), "--output_dir", str(out), *QUICK_FLAGS])
    results = json.loads((out / "results.json").read_text())
    assert results["data"]["dataset"] == "synthetic_images"
    assert {"teacher_accuracy", "student_accuracy", "top1_agreement"} <= set(results["fidelity"]["recovery"])
    model = AutoModelForImageClassification.from_pretrained(out)
    assert model.config.attention_type == "kernel" and model.config.kernel_feature_map == "hedgehog"
    # the recipe ends with where the files are, the fidelity, each stage's steps and decision, and what next
    summary = capsys.readouterr().out.split(f"Done. Everything is in {out}/:")[-1]
    for line in (
        f"results  {out / 'results.json'}",
        f"card     {out / 'README.md'}",
        "Fidelity to the teacher after recovery, on ",
        "top-1 agreement ",
        "Attention transfer: ",
        "Recovery: ",
        f"hf-robattr push {out} ORG/NAME",
        f"hf-robattr demo {out}",
    ):
        assert line in summary, line
    assert results["stages"]["recovery"]["stop_rule"]["data"].endswith("examples of validation_inputs")


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--feature_map", "gaussian"], "feature_map must be one of"),
        (["--model_task", "qa"], "--model_task must be one of"),
        (["--transfer_learning_rate", "-1"], "transfer_learning_rate must be a finite number > 0"),
        (["--max_train_samples", "0"], "--max_train_samples must be a positive int"),
        (["--push_to_hub", "true"], "--push_to_hub needs --hub_model_id"),
        (["--text_column", "body"], "--text_column='body' is not a column"),
        (["--dataset_name", "__FILE__.xlsx"], r"is a file of an unknown kind; a data file must end with one of"),
    ],
)
def test_bad_flags_fail_before_any_training(recipe, bert_checkpoint, tmp_path, monkeypatch, flags, message):
    monkeypatch.setattr("transformers.Trainer.train", lambda *a, **k: pytest.fail("training started"))
    if "__FILE__.xlsx" in flags:
        (tmp_path / "texts.xlsx").write_bytes(b"not a spreadsheet")
        flags = [str(tmp_path / "texts.xlsx") if flag == "__FILE__.xlsx" else flag for flag in flags]
    with pytest.raises(ValueError, match=message):
        recipe.main(
            ["--model_name_or_path", str(bert_checkpoint), "--output_dir", str(tmp_path), *QUICK_FLAGS, *flags]
        )
    assert not (tmp_path / "model.safetensors").exists()


@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "overwrite"])
@pytest.mark.parametrize("spelling", ["as-given", "relative-slash", "symlink"])
def test_the_output_folder_may_not_be_the_checkpoint_folder(recipe, tmp_path, monkeypatch, spelling, overwrite):
    """Saving there would overwrite the softmax teacher (a plain checkpoint has no results.json to protect it): refused
    before anything is loaded or written, even with --overwrite_output_dir, however the folder is spelled."""
    checkpoint = save_tiny_checkpoint(ViTModel, tmp_path / "teacher")
    (tmp_path / "link").symlink_to(checkpoint, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    output = {"as-given": str(checkpoint), "relative-slash": "./teacher/", "symlink": "link"}[spelling]
    before = {path.name: path.read_bytes() for path in checkpoint.iterdir()}
    monkeypatch.setattr("hf_robattr.conversion.run.load_teacher", lambda *a, **k: pytest.fail("the teacher loaded"))
    flags = ["--model_name_or_path", str(checkpoint), "--output_dir", output, *QUICK_FLAGS]
    with pytest.raises(ValueError, match=r"^--output_dir \S+ is the checkpoint folder --model_name_or_path \S+: .*"
                                         r"\(--overwrite_output_dir does not allow this\)"):  # fmt: skip
        recipe.main(flags + (["--overwrite_output_dir"] if overwrite else []))
    assert {path.name: path.read_bytes() for path in checkpoint.iterdir()} == before


@pytest.mark.slow
def test_two_process_launch_equals_one_process_with_the_global_batch(recipe, bert_checkpoint, tmp_path):
    """2 ranks x 4 examples per step = 1 process x 8: the same converted weights (both stages, padded text)."""
    common = ["--model_name_or_path", str(bert_checkpoint), *QUICK_FLAGS, "--feature_map", "elu"]  # q/k LoRA + LoRA
    env = {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    launch = accelerate_launch(RECIPE, ["--output_dir", str(tmp_path / "ddp"), *common], env=env, cwd=ROOT)
    assert launch.returncode == 0, launch.stdout[-3000:] + launch.stderr[-5000:]
    recipe.main(["--output_dir", str(tmp_path / "single"), *common])

    ddp, single = (json.loads((tmp_path / run / "results.json").read_text()) for run in ("ddp", "single"))
    for stage in ("attention_transfer", "recovery"):
        losses = [
            [row["loss"] for row in run["stages"][stage]["log_history"] if "loss" in row] for run in (ddp, single)
        ]
        assert len(losses[0]) == {"attention_transfer": 3, "recovery": 2}[stage], stage
        assert losses[0] == pytest.approx(losses[1], rel=1e-4), stage
    weights = {run: load_file(str(tmp_path / run / "model.safetensors")) for run in ("ddp", "single")}
    assert weights["ddp"].keys() == weights["single"].keys()
    for name, value in weights["single"].items():
        torch.testing.assert_close(weights["ddp"][name], value, rtol=1e-4, atol=1e-6, msg=name)
    changed = [
        n
        for n, v in weights["single"].items()
        if "query" in n and not torch.equal(v, _teacher_weight(bert_checkpoint, n))
    ]
    assert changed, "the conversion changed no query weight (LoRA adapters were not merged?)"


def _teacher_weight(folder, name: str) -> torch.Tensor:
    return load_file(str(Path(folder) / "model.safetensors"))[name]


def test_vit_data_defaults_to_the_teachers_training_run(tmp_path):
    """A teacher folder from recipes/train_vit.py (its results.json) fixes the data set and its split seed, so that
    the conversion trains on the teacher's training split and measures on its test split."""
    from hf_robattr.conversion.arguments import ConversionDataArguments
    from hf_robattr.conversion.run import load_conversion_data, teacher_run

    checkpoint = save_tiny_checkpoint(ViTForImageClassification, tmp_path / "vit", num_labels=10)  # digits: 0-9
    record = {"dataset": {"name": "digits"}, "training": {"seed": 7}, "hyperparameters": {}}
    (checkpoint / "results.json").write_text(json.dumps(record))
    teacher = teacher_run(str(checkpoint))
    assert teacher == {"dataset": "digits", "split_seed": 7, "num_examples": None}
    model = ViTForImageClassification.from_pretrained(checkpoint)
    args = ConversionDataArguments(max_train_samples=5, max_eval_samples=3, max_validation_samples=4)
    train, held_out, info, validation = load_conversion_data(args, family="vit", processor=None,
                                                             model_config=model.config, teacher=teacher)  # fmt: skip
    assert info.dataset == "digits" and info.splits.split_seed == 7 and (len(train), len(held_out)) == (5, 3)
    assert train[0]["pixel_values"].shape == (3, 8, 8) and "labels" in held_out[0]
    # the stop rule's own held-out split (digits' validation), never the eval split
    assert info.splits.validation_dataset == "digits [validation]" and len(validation) == 4
    # the images are memoised: the same conversion data again decodes and transforms none of them anew
    hits = IMAGE_TENSOR_CACHE.hits
    again, _, _, _ = load_conversion_data(args, family="vit", processor=None, model_config=model.config,
                                          teacher=teacher)  # fmt: skip
    assert IMAGE_TENSOR_CACHE.hits - hits >= len(train) + len(held_out) + len(validation)
    assert all(torch.equal(a["pixel_values"], b["pixel_values"]) for a, b in zip(again, train, strict=True))
    _, _, chosen, _ = load_conversion_data(ConversionDataArguments(dataset_name="synthetic_images", split_seed=3,
                                        max_train_samples=5, max_eval_samples=3), family="vit", processor=None,
                                        model_config=model.config, teacher=teacher)  # fmt: skip
    assert chosen.dataset == "synthetic_images" and chosen.splits.split_seed == 3
