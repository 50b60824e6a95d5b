"""run_pipeline in-process, as the study drives it: no files with save_model=False, the same weights for the same
arguments, extra callbacks, prepared data reused, final diagnostics."""

import math

import pytest
import torch
from transformers import TrainerCallback

from hf_robattr.data import build_offline_tokenizer
from hf_robattr.training import (
    ImageDataArguments,
    RobAttrTrainingArguments,
    TextDataArguments,
    TextModelArguments,
    VisionModelArguments,
    prepare_text_data,
    run_pipeline,
)


SIZE = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}


def arguments(tmp_path, **overrides):
    options = {
        "output_dir": str(tmp_path / "out"),
        "max_steps": 2,
        "per_device_train_batch_size": 8,
        "robustness_num_examples": 0,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "use_cpu": True,
        "seed": 11,
    }
    return RobAttrTrainingArguments(**{**options, **overrides})


def image_run(tmp_path, **overrides):
    model_args = VisionModelArguments(image_size=8, patch_size=4, **SIZE)
    data_args = ImageDataArguments(dataset_num_examples=80, max_eval_samples=8, split_seed=0)
    return model_args, data_args, arguments(tmp_path, **overrides)


class CountSteps(TrainerCallback):
    def __init__(self):
        self.steps = 0

    def on_step_end(self, args, state, control, **kwargs):
        self.steps += 1


def test_in_process_run_writes_nothing_and_returns_the_model(tmp_path):
    counter = CountSteps()
    overrides = {"diagnostics_at_end": True, "diagnostics": ["sharpness", "attention_entropy"]}
    overrides |= {"diagnostics_batch_size": 4, "diagnostics_num_iterations": 2}
    result = run_pipeline(*image_run(tmp_path, **overrides), callbacks=[counter], save_model=False)
    assert counter.steps == 2 and result.training["global_step"] == 2
    assert result.training["num_train_examples_seen"] == 16 and result.training["epochs"] > 0
    assert not result.model.training and result.results_path is None
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.*"))
    assert len(result.data.train) == 64 and len(result.data.test) == 8  # 80 generated: 80/10/10 % split
    assert result.data.test[0]["masks"].shape == (8, 8)  # the evidence masks ride along (not model inputs)
    entropy = result.results["diagnostics"]["attention_entropy"]
    assert len(entropy["per_layer"]) == 1 and 0 <= entropy["value"] <= math.log(5)  # 4 patches + [CLS]
    assert set(result.results["diagnostics"]) == {"hessian_trace", "hessian_top_eigenvalue", "attention_entropy"}
    assert result.results["robustness"] == {} and result.results["dataset"]["num_robustness_examples"] == 0


def test_same_arguments_same_weights_and_prepared_data_reused(tmp_path):
    first = run_pipeline(*image_run(tmp_path / "a"), save_model=False)
    second = run_pipeline(*image_run(tmp_path / "b"), save_model=False, data=first.data)
    for (name, a), b in zip(first.model.state_dict().items(), second.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    other = run_pipeline(*image_run(tmp_path / "c", seed=12), save_model=False, data=first.data)
    assert not torch.equal(first.model.classifier.weight, other.model.classifier.weight)


def test_modalities_must_match(tmp_path):
    with pytest.raises(TypeError, match="one modality"):
        run_pipeline(VisionModelArguments(), TextDataArguments(), arguments(tmp_path))
    with pytest.raises(TypeError, match="RobAttrTrainingArguments"):
        run_pipeline(TextModelArguments(), TextDataArguments(), object())


def test_prepared_text_carries_the_rationales():
    data_args = TextDataArguments(dataset_num_examples=40, max_eval_samples=4)
    data = prepare_text_data(data_args, tokenizer=build_offline_tokenizer(), seed=0)
    batch = data.collator([data.test[i] for i in range(4)])
    assert batch["rationale_mask"].shape == batch["input_ids"].shape
    assert int(batch["rationale_mask"].sum()) > 0 and not (batch["rationale_mask"] > batch["attention_mask"]).any()


@pytest.mark.parametrize(
    ("flags", "attention", "feature_map"),
    [
        pytest.param({}, "kernel", "relu", id="checkpoint-own"),
        pytest.param({"attention_type": "softmax"}, "softmax", "relu", id="swapped"),
        pytest.param({"kernel_feature_map": "elu"}, "kernel", "elu", id="feature-map-swapped"),
    ],
)
def test_warm_start_keeps_the_checkpoints_attention_unless_asked(tmp_path, flags, attention, feature_map):
    """A folder written by a kernel run warm-starts as kernel without repeating --attention_type."""
    from hf_robattr.models import RobAttrViTConfig, RobAttrViTForImageClassification
    from hf_robattr.training import build_classifier

    config = RobAttrViTConfig(image_size=8, patch_size=4, num_labels=2, attention_type="kernel",
                              kernel_feature_map="relu", **SIZE)  # fmt: skip
    RobAttrViTForImageClassification(config).save_pretrained(tmp_path / "warm")
    args = VisionModelArguments(model_name_or_path=str(tmp_path / "warm"), **flags)
    model = build_classifier(args, label_names=["a", "b"], processor=None)
    assert (model.config.attention_type, model.config.kernel_feature_map) == (attention, feature_map)
