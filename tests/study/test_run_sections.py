"""A study run's record keeps its bytes: the sections its training fills (``training``, ``status``, ``fit``,
``seconds``) and the warm-up's record, built from the pipeline's typed record, are what the string-key code wrote, so
a grid of stored runs stays valid and resumable."""

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

import hf_robattr.study.run as study_run
from hf_robattr.study.prepare import WarmStartRecord
from hf_robattr.study.protocol import ArmProtocol, WarmStart
from hf_robattr.study.record_reader import StudyRecord
from hf_robattr.training.record import FitBandRecord, MatchedFitRecord, RunRecord, TrainingRecord
from hf_robattr.training.run import RunResult


# Written by the string-key code of main b9d0d6c (study/run.py's `_with_loss_at_stop`, `_training_summary`,
# `_status`, `fit_summary` and `training.get("train_runtime_s")`, in `run_one`'s order) from the CASES below, with
# `json.dumps(sections, indent=1)` as the run store writes records (NaN and infinity as Python's literals).
PINNED = Path(__file__).with_name("fixtures") / "run_sections_b9d0d6c.json"
BASE = {"arm": "vit", "model": "vit", "dataset": "marked_objects"}
PROTOCOLS = {
    "target": ArmProtocol(**BASE, fit_rule="target", target_loss=0.02, fit_tolerance=0.2),
    "band": ArmProtocol(**BASE, fit_rule="band", target_loss=0.02, fit_tolerance=0.2, snapshot_every_examples=64),
    "budget": ArmProtocol(**BASE, fit_rule="budget", budget_examples=256),
}
HISTORY = [{"loss": 2.5, "step": 10}, {"train_loss": 1.5, "step": 20}, {"eval_loss": 0.3, "step": 20}]
TRUE_LOSS = {"budget": 0.0123, "budget-nan": math.nan}  # a fixed budget's loss at the stop, measured by the study


def _training(**values) -> TrainingRecord:
    common = dict(optimizer="sgd", momentum=0.0, learning_rate=0.1, per_device_train_batch_size=8,
                  total_train_batch_size=8, regularizer="none", regularizer_weight=0.0, num_train_epochs=30.0,
                  max_steps=-1, seed=0, divergence_loss=20.0, diverged=False, train_runtime_s=12.5, global_step=40,
                  epochs=1.6, num_train_examples_seen=320, final_train_loss=0.4)  # fmt: skip
    return TrainingRecord(**{**common, **values})


def _stop(step, band=None) -> MatchedFitRecord:
    return MatchedFitRecord(
        train_loss_at_stop_step=step, target_loss_examples=1024, target_check_every_examples=64, band=band
    )


def _band(outcome, rolled_back, examples) -> FitBandRecord:
    return FitBandRecord(target_loss_band=0.2, fit_band_low=0.016, fit_band_high=0.024, fit_outcome=outcome,
                         rolled_back=rolled_back, train_examples_at_stop=examples, target_min_examples=0,
                         fit_checks=[[256, 0.05], [320, 0.019]])  # fmt: skip


REACHED = {"target_train_loss": 0.02, "target_reached": True, "target_reached_at_step": 40}
CASES = {
    "target-in": ("target", _training(**REACHED, target_reached_at_examples=320, train_loss_at_stop=0.019,
                                      matched_fit=_stop(40))),
    "target-above": ("target", _training(target_train_loss=0.02, target_reached=False, train_loss_at_stop=0.5,
                                         matched_fit=_stop(40))),
    "target-none": ("target", _training(target_train_loss=0.02, target_reached=False, train_loss_at_stop=None,
                                        global_step=None, matched_fit=_stop(None))),
    "target-no-stop-record": ("target", _training(target_train_loss=0.02, train_loss_at_stop=0.021, global_step=12)),
    "band-in-rolled-back": ("band", _training(**REACHED, target_reached_at_examples=320, train_loss_at_stop=0.019,
                                              matched_fit=_stop(32, _band("in_band", True, 256)))),
    "band-below": ("band", _training(target_train_loss=0.02, target_reached=True, train_loss_at_stop=0.01,
                                     matched_fit=_stop(40, _band("below_band", False, None)))),
    "band-none": ("band", _training(target_train_loss=0.02, train_loss_at_stop=None,
                                    matched_fit=_stop(40, _band(None, None, None)))),
    "budget": ("budget", _training(max_steps=32, num_train_epochs=3.0, global_step=32)),
    "budget-nan": ("budget", _training(max_steps=32, global_step=32)),
    "budget-diverged": ("budget", _training(max_steps=32, diverged=True, diverged_at_step=7, global_step=7,
                                            final_train_loss=math.inf, train_runtime_s=None)),
}  # fmt: skip


def _result(training: TrainingRecord) -> RunResult:
    data = SimpleNamespace(train=None, collator=None)
    trainer = SimpleNamespace(state=SimpleNamespace(log_history=HISTORY))
    return RunResult(RunRecord(training=training), model=None, data=data, trainer=trainer)


def _sections(name: str, monkeypatch) -> dict:
    rule, training = CASES[name]
    monkeypatch.setattr(study_run, "true_training_loss", lambda *args: TRUE_LOSS[name])
    result = _result(training)
    return study_run.training_sections(PROTOCOLS[rule], result, result.data)


def test_the_training_sections_are_byte_identical_to_the_string_key_code(monkeypatch):
    written = {name: _sections(name, monkeypatch) for name in CASES}
    assert json.dumps(written, indent=1) + "\n" == PINNED.read_text()


@pytest.mark.parametrize("name", list(CASES))
def test_the_training_section_reads_back_as_the_typed_record(name, monkeypatch):
    """Its keys are TrainingRecord's field names (only the loss curve is the study's own), so the analysis reads
    what was written."""
    sections = _sections(name, monkeypatch)
    record = StudyRecord.from_json(
        {"key": name, "arm": "vit", "regime": "sgd", "seed": 0, "status": sections["status"], "log2_strength": 0.0,
         "cell": dict.fromkeys(("attention_type", "optimizer", "learning_rate", "batch_size", "regularizer",
                                "regularizer_weight"), 0),
         **sections}
    )  # fmt: skip
    assert set(record.training.extra) == {"loss_curve"}
    assert record.training.train_loss_at_stop is sections["training"]["train_loss_at_stop"]


def test_the_budget_loss_at_stop_does_not_change_the_pipelines_record(monkeypatch):
    _rule, training = CASES["budget"]
    _sections("budget", monkeypatch)
    assert training.train_loss_at_stop is None and training.matched_fit is None


# The records main b9d0d6c's prepare._warm_start built from `result.training` with string keys (fingerprint aside).
WARM_STARTS = {
    "target-in": {"arm": "vit", "attention_type": "kernel", "fingerprint": None, "optimizer": "adamw",
                  "learning_rate": 0.001, "batch_size": 32, "target_loss": 0.7, "target_reached": True,
                  "train_loss_at_stop": 0.019, "global_step": 40, "num_train_examples_seen": 320, "seconds": 3.5},
    "target-none": {"arm": "vit", "attention_type": "kernel", "fingerprint": None, "optimizer": "adamw",
                    "learning_rate": 0.001, "batch_size": 32, "target_loss": 0.7, "target_reached": False,
                    "train_loss_at_stop": None, "global_step": None, "num_train_examples_seen": 320, "seconds": 3.5},
}  # fmt: skip


@pytest.mark.parametrize("name", list(WARM_STARTS))
def test_the_warm_start_record_is_byte_identical_to_the_string_key_code(name):
    protocol = ArmProtocol(**BASE, warm_start=WarmStart())
    record = WarmStartRecord.from_training(protocol, "kernel", CASES[name][1], seconds=3.5)
    old = {**WARM_STARTS[name], "fingerprint": protocol.fingerprint("kernel")}
    assert json.dumps(record.to_json(), indent=1) == json.dumps(old, indent=1)
    assert WarmStartRecord.from_json(json.loads(json.dumps(old))) == record
