"""The typed reader of stored study runs (``hf_robattr.study.record_reader``): a record of today's runs reads into its
sections, an older or partial one takes the defaults, values that are not numbers read as NaN, and the run summaries
built from it are the ones the analysis has always made."""

import math

import pytest
from study_helpers import fake_run

from hf_robattr.study import arm_specs, get_settings
from hf_robattr.study.record_reader import Estimate, FitSection, PoolSection, StudyRecord, number
from hf_robattr.study.summaries import run_summaries


@pytest.fixture(scope="module")
def record():
    protocol, grid = get_settings("cpu").arm("vit")
    spec = next(s for s in arm_specs(protocol, grid) if s.curvature)
    record = fake_run(spec)
    record["fit"] = {"rule": "band", "outcome": "below_band", "loss_at_stop": 0.0043}
    record["saturated"] = {"topk|0.0313725|rollout|topk_intersection": {"kind": "floor"}, "a": {}}
    return record


def test_a_record_reads_into_its_sections(record):
    typed = StudyRecord.from_json(record)
    assert (typed.key, typed.arm, typed.seed, typed.role) == (record["key"], "vit", record["seed"], "main")
    assert typed.cell.learning_rate == record["cell"]["learning_rate"] and typed.cell.attention_type == "softmax"
    assert typed.fit == FitSection("band", "below_band", 0.0043)
    assert typed.fit_loss == record["training"]["train_loss_at_stop"]  # the training record's, as every rule writes
    assert typed.training.global_step == 100
    trace = record["diagnostics"]["hessian_trace"]
    assert typed.diagnostics.hessian_trace == Estimate(trace["value"], trace["stderr"], trace["num_probes"])
    assert typed.pool.mask.dtype == bool and typed.pool.mask.size == record["pool"]["size"]
    assert typed.preconditions.cls_cv == record["preconditions"]["cls_cv"]
    assert typed.saturated == ("a", "topk|0.0313725|rollout|topk_intersection")
    assert typed.usable and typed.robustness is not record["robustness"]


def test_missing_sections_and_non_numbers_take_the_defaults():
    bare = {
        "key": "k", "arm": "vit", "regime": "sgd", "seed": 0, "status": "not_fit", "log2_strength": -3.0,
        "cell": {"attention_type": "kernel", "optimizer": "sgd", "learning_rate": 0.1, "batch_size": 8,
                 "regularizer": "none", "regularizer_weight": 0.0},
        "accuracy": None, "training": None, "diagnostics": {"hessian_trace": {"value": True}}, "preconditions": {},
    }  # fmt: skip
    typed = StudyRecord.from_json(bare)
    assert math.isnan(typed.accuracy) and math.isnan(typed.fit_loss) and typed.training.global_step is None
    assert math.isnan(typed.diagnostics.hessian_trace.value) and typed.diagnostics.hessian_trace.num_probes == 0
    assert typed.preconditions is None and typed.fit == FitSection() and typed.pool == PoolSection()
    assert not typed.usable and typed.robustness == {} and typed.saturated == () and not typed.saturation
    assert math.isnan(number("0.1")) and number(3) == 3.0
    with pytest.raises(KeyError, match="cell"):
        StudyRecord.from_json({k: v for k, v in bare.items() if k != "cell"})


def test_the_summaries_read_the_typed_record(record):
    settings = get_settings("cpu")
    (summary,), _ = run_summaries([record], settings)
    assert summary.fit_outcome == "below_band" and summary.saturated == StudyRecord.from_json(record).saturated
    assert summary.hessian_probes == record["diagnostics"]["hessian_trace"]["num_probes"]
    assert summary.values["topk|0.0313725|saliency|topk_intersection"] == pytest.approx(
        sum(v for v in record["robustness"]["topk|0.0313725|saliency|topk_intersection"][1:]) / 39
    )  # example 0 could not be scored (NaN) and is left out
