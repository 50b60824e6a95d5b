"""The typed run record: results.json files written by main before the record existed load and round-trip exactly;
older files (sections missing, fields unknown) load; a malformed file is refused naming the section."""

import json
from pathlib import Path

import pytest
from record_checks import check_round_trip

from hf_robattr.robustness import RobustnessConfig
from hf_robattr.training import RunRecord, ScoringRecord, TrainingRecord
from hf_robattr.training.record import MatchedFitRecord


FIXTURES = Path(__file__).with_name("fixtures")
# Written by `recipes/train_*.py` at main c4f9072 with tests/recipes/recipe_helpers.QUICK; the ViT run with
# `--robustness_epsilon auto --target_train_loss 5.0 --diagnostics_at_end true` (a calibration record, the matched-fit
# keys, diagnostics), the BERT run with `--attention_type kernel --robustness_epsilon 1e-7` (saturated measures).
# results_vit_band_a224fa2.json: the same QUICK ViT run at main a224fa2, before the callbacks filled the typed record,
# with `--target_train_loss 5.0 --target_loss_band 0.5 --target_check_every_examples 8 --target_loss_examples 16`
# (the two-sided matched fit's band keys).
WRITTEN_BY_MAIN = sorted(FIXTURES.glob("results_*.json"))


@pytest.mark.parametrize("path", WRITTEN_BY_MAIN, ids=lambda path: path.stem)
def test_a_file_written_by_main_round_trips_exactly(path, tmp_path):
    record = check_round_trip(RunRecord, path, tmp_path)
    assert RobustnessConfig.from_dict(record.robustness_config.settings).methods == ("saliency",)


def test_the_sections_are_typed():
    vit, bert = (RunRecord.from_json(json.loads((FIXTURES / f"results_{name}_c4f9072.json").read_text()))
                 for name in ("vit", "bert"))  # fmt: skip
    assert vit.model.architecture == "RobAttrViTForImageClassification" and vit.training.global_step == 4
    assert vit.training.matched_fit.target_loss_examples == 1024 and vit.diagnostics["hessian_trace"]
    assert vit.robustness_config.epsilon_calibration["rule"] and vit.dataset.name == "synthetic_images"
    assert bert.training.matched_fit is None and bert.model.attention_type == "kernel"
    assert "saliency/topk_intersection" in bert.robustness_saturated and bert.robustness_baselines
    assert bert.hub is None and not bert.push_requested and bert.diagnostics is None


def test_the_two_sided_fit_is_typed():
    record = RunRecord.from_json(json.loads((FIXTURES / "results_vit_band_a224fa2.json").read_text()))
    fit = record.training.matched_fit
    assert fit.target_loss_examples == 16 and fit.band.target_loss_band == 0.5 and fit.band.fit_outcome == "below_band"
    assert fit.band.fit_checks[0] == [0, pytest.approx(1.322, abs=1e-3)] and record.training.extra == {}


def test_an_older_file_loads_and_keeps_what_it_does_not_know():
    old = {
        "model": {"architecture": "RobAttrViTForImageClassification", "attention_type": "softmax"},
        "training": {"optimizer": "sgd", "learning_rate": 0.3, "a_future_field": 1},
        "eval": {"accuracy": 0.5},
        "robustness": {"saliency/kendall_tau": 0.4},
        "robustness_config": {"methods": ["saliency"], "epsilon": 0.1, "num_examples": 8},
        "log_history": [{"loss": 1.0, "step": 1}],
        "notes": "kept",
    }
    record = RunRecord.from_json(old)
    assert record.robustness_saturated == {} and record.robustness_baselines == {} and record.dataset.name is None
    assert record.robustness_config == ScoringRecord({"methods": ["saliency"], "epsilon": 0.1}, None, 8)
    assert record.training == TrainingRecord(optimizer="sgd", learning_rate=0.3, extra={"a_future_field": 1})
    written = record.to_json()
    assert written["notes"] == "kept" and written["training"]["a_future_field"] == 1
    assert written["robustness_config"]["num_examples"] == 8


def test_a_matched_fit_read_from_some_of_its_keys_writes_back_those():
    """An older file with only some of the matched fit's keys is written as it was read, not with the others null;
    a part built in code writes all its keys."""
    old = {"target_train_loss": 0.5, "train_loss_at_stop_step": 4, "fit_outcome": "in_band"}
    training = TrainingRecord.from_json(old)
    assert training.matched_fit.train_loss_at_stop_step == 4 and training.matched_fit.band.fit_outcome == "in_band"
    written = training.to_json()
    fit_keys = [key for key in written if key in MatchedFitRecord.json_keys()]
    assert fit_keys == ["train_loss_at_stop_step", "fit_outcome"]
    built = TrainingRecord(matched_fit=MatchedFitRecord(train_loss_at_stop_step=4)).to_json()
    assert built["target_loss_examples"] is None and "fit_outcome" not in built


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2], "must hold a JSON object"),
        ({"model": [1, 2]}, "section 'model' must be a JSON object"),
        ({"hub": "yes"}, "section 'hub' must be a JSON object"),
        ({"log_history": {"loss": 1}}, "'log_history' must be a list of JSON objects"),
    ],
)
def test_a_malformed_record_is_refused(data, message):
    with pytest.raises(ValueError, match=message):
        RunRecord.from_json(data)


def test_read_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"No results\.json"):
        RunRecord.read(tmp_path)
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        RunRecord.read(tmp_path)
    (tmp_path / "results.json").write_text('{"eval": 3}')
    with pytest.raises(ValueError, match=r"results.json: section 'eval'"):
        RunRecord.read(tmp_path)
