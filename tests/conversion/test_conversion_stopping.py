"""The stages stop when they are done: attention transfer once the fidelity targets are met; recovery is skipped when
transfer already meets them, runs only while it improves the measures users read, and keeps its best checked
weights. Each rule and its decision are recorded."""

import json

import pytest
import torch
from conversion_helpers import QUICK
from torch import nn
from transformers import TrainerControl, TrainerState

from hf_robattr.conversion import ConversionConfig, convert_to_kernel, stopping
from hf_robattr.conversion.stopping import StopCallback, StopRule


def _rule(**overrides) -> StopRule:
    settings = dict(stage="recovery", measures=("top1_agreement",), targets={"top1_agreement": 0.98}, check_steps=1,
                    min_gain=1e-4, patience=2, data="16 examples of validation_inputs")  # fmt: skip
    return StopRule(**{**settings, **overrides})


class _ScriptedCheck:
    """Returns the scripted agreement values, one per call."""

    def __init__(self, values):
        self.values = list(values)

    def __call__(self, student):
        return {"top1_agreement": self.values.pop(0)}


def _drive(callback, student, max_steps):
    """Step a callback as a Trainer would: each step nudges the weights to the step number; returns the last step."""
    state, control = TrainerState(max_steps=max_steps), TrainerControl()
    for step in range(1, max_steps + 1):
        with torch.no_grad():
            student.weight.fill_(float(step))
        state.global_step = step
        callback.on_step_end(None, state, control)
        if control.should_training_stop:
            break
    callback.on_train_end(None, state, control)
    return state.global_step


def test_recovery_stops_once_it_stops_improving_and_keeps_the_best_checked_weights():
    student = nn.Linear(2, 2)
    rule = _rule()
    callback = StopCallback(rule, _ScriptedCheck([0.90, 0.95, 0.94, 0.9499, 0.97]), student, {"top1_agreement": 0.85})
    assert _drive(callback, student, max_steps=10) == 4  # gains at steps 1 and 2, none at 3 and 4
    assert rule.kept_step == 2 and torch.all(student.weight == 2.0)  # the weights of step 2, not those of step 4
    assert [check["step"] for check in rule.checks] == [0, 1, 2, 3, 4]
    assert rule.decision == "stopped at step 4 of 10: 2 checks in a row without a gain above 0.0001"


def test_recovery_stops_when_the_targets_are_met_and_runs_on_while_it_improves():
    student = nn.Linear(2, 2)
    met = _rule()
    assert _drive(StopCallback(met, _ScriptedCheck([0.9, 0.99]), student, {"top1_agreement": 0.5}), student, 10) == 2
    assert met.decision == "stopped at step 2 of 10: the targets are met" and met.kept_step == 2
    rising = _rule(targets={}, check_steps=2)
    callback = StopCallback(rising, _ScriptedCheck([0.6, 0.7, 0.8]), student, {"top1_agreement": 0.5})
    assert _drive(callback, student, max_steps=6) == 6
    assert rising.decision == "ran all 6 steps: the measures still improved" and rising.kept_step == 6


def test_no_check_ever_beats_the_transfer_so_its_weights_are_kept():
    student = nn.Linear(2, 2)
    with torch.no_grad():
        student.weight.fill_(-1.0)
    rule = _rule(targets={})
    _drive(StopCallback(rule, _ScriptedCheck([0.8, 0.7]), student, {"top1_agreement": 0.9}), student, 10)
    assert rule.kept_step == 0 and torch.all(student.weight == -1.0)


def test_attention_transfer_stops_once_the_targets_are_met_and_keeps_its_last_weights():
    student = nn.Linear(2, 2)
    rule = _rule(stage="attention transfer", patience=None, check_steps=5)
    callback = StopCallback(rule, _ScriptedCheck([0.7, 0.985]), student, {"top1_agreement": 0.2})
    assert _drive(callback, student, max_steps=50) == 10
    assert rule.decision == "stopped at step 10 of 50: the targets are met" and torch.all(student.weight == 10.0)
    never = _rule(stage="attention transfer", patience=None, check_steps=2)
    callback = StopCallback(never, _ScriptedCheck([0.7, 0.6]), student, {"top1_agreement": 0.2})
    assert _drive(callback, student, max_steps=4) == 4  # no plateau stop in stage 1, and no restore
    assert never.decision == "ran all 4 steps: the targets were not met" and torch.all(student.weight == 4.0)
    assert never.describe() == (
        "attention transfer stops once top1_agreement >= 0.98 on 16 examples of validation_inputs, checked every 2 steps"
    )


def test_the_rule_describes_itself_in_one_sentence():
    text = _rule().describe()
    assert text.startswith("recovery is skipped when attention transfer already reaches top1_agreement >= 0.98;")
    assert "checked every 1 steps on 16 examples of validation_inputs" in text and "best checked weights" in text
    base = _rule(measures=("embedding_cosine_mean", "pairwise_similarity_correlation"), targets={}).describe()
    assert "skipped" not in base and "embedding_cosine_mean, pairwise_similarity_correlation" in base


def test_recovery_is_skipped_when_transfer_already_meets_the_targets(teachers, images, monkeypatch, tmp_path):
    monkeypatch.setitem(stopping.TARGETS, "classification", {"top1_agreement": 0.0})  # always met
    train, held_out = images
    result = convert_to_kernel(
        teachers["vit_classifier"], train, eval_inputs=held_out, validation_inputs=train[:8], **QUICK
    )
    transfer = result.stages["attention_transfer"]
    assert transfer.steps == 0 and transfer.stop_rule["decision"].startswith("skipped: the plain swap already meets")
    record = result.stages["recovery"]
    assert record.steps == 0 and set(result.fidelity) == {"plain_swap"}
    assert record.stop_rule["decision"].startswith("skipped: attention transfer already meets the targets")
    assert record.stop_rule["data"] == "8 examples of validation_inputs"
    assert not any("lora" in name for name, _ in result.model.named_parameters())
    result.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["stages"]["recovery"]["stop_rule"]["rule"].startswith("recovery is skipped when")
    card = (tmp_path / "README.md").read_text()
    assert "skipped: attention transfer already meets the targets" in card


def test_recovery_checks_on_the_eval_data_when_no_validation_data_is_given(teachers, text_ids):
    train, held_out = text_ids
    settings = {**QUICK, "recovery_steps": 12, "recovery_check_steps": 4}
    result = convert_to_kernel(teachers["bert"], train, eval_inputs=held_out, **settings)
    rule = result.stages["recovery"].stop_rule
    assert rule["data"] == "16 examples of eval_inputs" and rule["targets"] == {}  # base models: no skip target
    assert [check["step"] for check in rule["checks"]][:2] == [0, 4]
    assert {"embedding_cosine_mean", "pairwise_similarity_correlation"} <= set(rule["checks"][0])
    assert rule["kept_step"] in [check["step"] for check in rule["checks"]]
    without_data = convert_to_kernel(teachers["bert"], train, **settings).stages["recovery"]
    assert without_data.stop_rule is None and without_data.steps == 12  # nothing held out: every step runs


@pytest.mark.parametrize(
    "field, value, words",
    [
        pytest.param("recovery_check_steps", -1, "recovery_check_steps must be an int >= 0, got -1", id="check-steps"),
        pytest.param("recovery_patience", 0, "recovery_patience must be an int >= 1, got 0", id="patience"),
        pytest.param("recovery_min_gain", -0.1, "recovery_min_gain must be a finite number >= 0", id="min-gain"),
    ],
)
def test_bad_stop_rule_settings_are_refused(field, value, words):
    with pytest.raises(ValueError, match=words):
        ConversionConfig(**{field: value})


NAN = float("nan")


def test_recovery_treats_a_diverged_check_as_no_gain_and_restores_its_best_weights():
    student = nn.Linear(2, 2)
    rule = _rule(targets={})
    callback = StopCallback(rule, _ScriptedCheck([0.90, NAN, NAN, 0.99]), student, {"top1_agreement": 0.85})
    assert _drive(callback, student, max_steps=10) == 3  # two checks in a row without a gain: the plateau stop
    assert rule.kept_step == 1 and torch.all(student.weight == 1.0)  # not the NaN check's weights of step 3
    assert rule.decision == "stopped at step 3 of 10: 2 checks in a row without a gain above 0.0001"
    assert rule.score({"top1_agreement": NAN}) == float("-inf")


def test_recovery_that_diverges_at_once_keeps_the_transfers_weights():
    student = nn.Linear(2, 2)
    with torch.no_grad():
        student.weight.fill_(-1.0)
    rule = _rule(targets={}, patience=3)
    _drive(StopCallback(rule, _ScriptedCheck([NAN, NAN]), student, {"top1_agreement": 0.9}), student, 2)
    assert rule.kept_step == 0 and torch.all(student.weight == -1.0)


def test_attention_transfer_stops_at_a_diverged_check_and_keeps_its_last_finite_weights():
    student = nn.Linear(2, 2)
    rule = _rule(stage="attention transfer", patience=None, check_steps=2)
    callback = StopCallback(rule, _ScriptedCheck([0.7, NAN, 0.99]), student, {"top1_agreement": 0.2})
    assert _drive(callback, student, max_steps=10) == 4
    assert rule.decision == "stopped at step 4 of 10: the check is not finite (the student diverged)"
    assert rule.kept_step == 2 and torch.all(student.weight == 2.0)


def test_a_classifier_with_non_finite_logits_checks_as_nan(teachers, text_ids):
    """The argmax of NaN logits is a valid class, so top-1 agreement alone would hide a diverged classifier."""
    from hf_robattr.conversion.inputs import to_examples

    teacher = teachers["bert_classifier"]
    check = stopping.FidelityCheck(
        teacher, to_examples(text_ids[1], family="bert"), family="bert", task="classification", batch_size=8
    )
    assert check(teacher) == {"top1_agreement": 1.0}
    diverged = teachers["bert_classifier"]
    with torch.no_grad():
        diverged.classifier.weight.fill_(NAN)
    values = check(diverged)
    assert list(values) == ["top1_agreement"] and values["top1_agreement"] != values["top1_agreement"]  # NaN


def test_a_diverged_recovery_ends_with_the_transfers_finite_weights(teachers, text_ids):
    train, held_out = text_ids
    settings = {**QUICK, "transfer_steps": 4, "recovery_steps": 6, "recovery_check_steps": 2}
    result = convert_to_kernel(teachers["bert"], train, eval_inputs=held_out, recovery="full",
                               recovery_learning_rate=1e30, **settings)  # fmt: skip
    rule = result.stages["recovery"].stop_rule
    assert rule["checks"][-1]["embedding_cosine_mean"] != rule["checks"][-1]["embedding_cosine_mean"]  # diverged
    assert rule["kept_step"] == 0
    assert all(bool(torch.isfinite(p).all()) for p in result.model.parameters())
    recovered, transferred = result.fidelity["recovery"], result.fidelity["attention_transfer"]
    assert recovered["embedding_cosine_mean"] == pytest.approx(transferred["embedding_cosine_mean"])
