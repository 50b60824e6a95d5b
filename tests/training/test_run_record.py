"""results.json: atomic writes, strict JSON (NaN -> null), and the record sections the card reads."""

import json
import math

import numpy as np
import pytest
import torch
from transformers import TrainerState, TrainingArguments

from hf_robattr import results_io
from hf_robattr.results_io import RESULTS_FILE, json_safe, write_results
from hf_robattr.training import model_record, non_default_arguments, training_record


def strict_load(path):
    def refuse(constant):
        raise AssertionError(f"non-standard JSON constant {constant}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_nan_and_infinity_are_written_as_null(tmp_path):
    results = {"robustness": {"saliency/kendall_tau": math.nan, "saliency/cosine": 0.5}, "eval": {"loss": math.inf}}
    results["log_history"] = [{"loss": float("-inf"), "step": 1}]
    path = write_results(tmp_path, results)
    assert path == tmp_path / RESULTS_FILE
    loaded = strict_load(path)
    assert loaded["robustness"] == {"saliency/kendall_tau": None, "saliency/cosine": 0.5}
    assert loaded["eval"]["loss"] is None and loaded["log_history"] == [{"loss": None, "step": 1}]


def test_a_crash_mid_write_leaves_the_old_file_intact(tmp_path, monkeypatch):
    old = {"old": "results"}
    write_results(tmp_path, old)

    def crash_before_it_is_on_disk(descriptor):  # the new file is written, not yet flushed, when the process dies
        raise KeyboardInterrupt

    monkeypatch.setattr(results_io.os, "fsync", crash_before_it_is_on_disk)
    with pytest.raises(KeyboardInterrupt):
        write_results(tmp_path, {"new": "results"})
    assert strict_load(tmp_path / RESULTS_FILE) == old
    assert sorted(path.name for path in tmp_path.iterdir()) == [RESULTS_FILE]  # no temporary file left behind


def test_written_file_is_readable_by_others(tmp_path):
    path = write_results(tmp_path, {"a": 1})
    assert path.stat().st_mode & 0o044 == 0o044


def test_json_safe_converts_scalars_and_tuples():
    value = {"a": (np.float32(1.5), torch.tensor(2.0)), 3: np.int64(4), "b": [np.float64("nan")]}
    assert json_safe(value) == {"a": [1.5, 2.0], "3": 4, "b": [None]}


def test_training_record_reads_a_plain_training_arguments(tmp_path):
    """The Hub's card callback builds the same section from a plain ``TrainingArguments``."""
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, gradient_accumulation_steps=2)
    state = TrainerState(global_step=3, epoch=1.5)
    state.log_history = [{"loss": 0.9, "step": 1}, {"loss": 0.7, "data_loss": 0.6, "step": 2}, {"eval_loss": 1.0}]
    record = training_record(args, state, train_runtime=1.23456)
    assert record.optimizer == args.optim.value  # no regime field: the Trainer's own optimizer name
    assert (record.regularizer, record.regularizer_weight, record.momentum) == ("none", 0.0, 0.0)
    assert record.total_train_batch_size == 8 and record.num_train_examples_seen == 24
    assert record.final_train_loss == 0.6  # the data loss of the last training log
    assert record.target_reached is None and record.diverged is None and record.matched_fit is None
    assert record.train_runtime_s == 1.235


def test_model_record_and_hyperparameters(tmp_path, vit):
    assert model_record(vit, "ckpt").to_json() == {
        "architecture": "RobAttrViTForImageClassification",
        "attention_type": "softmax",
        "kernel_feature_map": "elu",
        "model_name_or_path": "ckpt",
    }
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=0.25, seed=7, logging_steps=3)
    changed = non_default_arguments(args)
    assert changed["learning_rate"] == 0.25 and changed["seed"] == 7
    assert "output_dir" not in changed and "logging_steps" not in changed  # bookkeeping is left out
