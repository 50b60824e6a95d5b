"""A ViT teacher trained by the pipeline with its own --split_seed / --dataset_num_examples is converted on its own
splits: the conversion's held-out fidelity data is exactly the teacher's test split, never its training images.
Records written before the data settings were recorded still load, falling back to what they hold."""

import json

import pytest
import torch

from hf_robattr.conversion.arguments import ConversionDataArguments, ConversionModelArguments
from hf_robattr.conversion.run import load_conversion_data, load_teacher, teacher_run
from hf_robattr.training import ImageDataArguments, RobAttrTrainingArguments, VisionModelArguments, run_pipeline


TRAINING_SEED, SPLIT_SEED = 11, 5


def train_teacher(folder, dataset_name, num_examples):
    """A one-step pipeline run (the recipes' code path) whose data seed differs from its training seed."""
    model_args = VisionModelArguments(
        image_size=8, patch_size=4, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    data_args = ImageDataArguments(dataset_name=dataset_name, dataset_num_examples=num_examples, split_seed=SPLIT_SEED)
    args = RobAttrTrainingArguments(
        output_dir=str(folder), max_steps=1, per_device_train_batch_size=8, robustness_num_examples=0,
        save_strategy="no", report_to="none", disable_tqdm=True, use_cpu=True, seed=TRAINING_SEED,
    )  # fmt: skip
    return run_pipeline(model_args, data_args, args)


def pixels(examples) -> torch.Tensor:
    return torch.stack([example["pixel_values"] for example in examples])


@pytest.mark.parametrize(
    ("dataset_name", "num_examples"),
    [
        pytest.param("digits", None, id="digits-split-seed"),  # real data: the seed alone decides the carve
        pytest.param("synthetic_images", 60, id="generated-size-and-seed"),
    ],
)
def test_fidelity_is_measured_on_the_teachers_test_split(tmp_path, dataset_name, num_examples):
    run = train_teacher(tmp_path / "teacher", dataset_name, num_examples)
    teacher = teacher_run(str(tmp_path / "teacher"))
    assert teacher == {"dataset": dataset_name, "split_seed": SPLIT_SEED, "num_examples": num_examples}

    model, processor, family = load_teacher(ConversionModelArguments(model_name_or_path=str(tmp_path / "teacher")))
    data = load_conversion_data(
        ConversionDataArguments(max_eval_samples=None),
        family=family,
        processor=processor,
        model_config=model.config,
        teacher=teacher,
    )
    assert data.info.dataset == dataset_name and data.info.splits.split_seed == SPLIT_SEED
    held_out = pixels(run.data.test[i] for i in range(len(run.data.test)))
    torch.testing.assert_close(pixels(data.evaluation), held_out, rtol=0, atol=0)


def test_a_record_without_the_data_settings_falls_back(tmp_path):
    """Records written before ``dataset.split_seed`` existed: the old lookup in the training arguments, then
    ``--seed``."""
    train_teacher(tmp_path / "teacher", "synthetic_images", 60)
    path = tmp_path / "teacher" / "results.json"
    record = json.loads(path.read_text())
    assert (record["dataset"]["split_seed"], record["dataset"]["dataset_num_examples"]) == (SPLIT_SEED, 60)
    del record["dataset"]["split_seed"], record["dataset"]["dataset_num_examples"]
    path.write_text(json.dumps(record))
    folder = str(tmp_path / "teacher")
    assert teacher_run(folder) == {"dataset": "synthetic_images", "split_seed": TRAINING_SEED, "num_examples": None}
    record["hyperparameters"].update(split_seed=3, dataset_num_examples=40)
    path.write_text(json.dumps(record))
    assert teacher_run(folder) == {"dataset": "synthetic_images", "split_seed": 3, "num_examples": 40}


def test_no_training_run_no_teacher_data(tmp_path):
    assert teacher_run(str(tmp_path)) == {}
    (tmp_path / "results.json").write_text(json.dumps({"teacher": {}, "student": {}, "conversion": {}}))
    assert teacher_run(str(tmp_path)) == {}  # a converted folder is no training run
