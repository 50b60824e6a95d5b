"""The study's time estimate: each pending run takes the mean time of the stored runs most like it, the workers
share the work, runs timed from another kind of run are counted, and nothing measured gives no estimate."""

import math

import pytest

from hf_robattr.study import arm_specs, get_settings
from hf_robattr.study.estimate import describe_duration, describe_estimate, estimate_seconds, format_duration


@pytest.fixture(scope="module")
def specs():
    protocol, grid = get_settings("ci").arm("vit")
    return arm_specs(protocol, grid)


def record(spec, seconds, status="ok"):
    cell = {"arm": spec.cell.arm, "attention_type": spec.cell.attention_type, "batch_size": spec.cell.batch_size}
    extra = {"curvature": {"x": 1} if spec.curvature else None, "saturation": {"x": 1} if spec.saturation else None}
    return {"cell": cell, "regime": spec.cell.regime, **extra, "status": status, "total_seconds": seconds}


def test_a_run_of_the_same_kind_takes_their_mean_and_workers_share_the_work(specs):
    softmax = [s for s in specs if s.cell.attention_type == "softmax" and s.cell.regime == "sgd"]
    done, pending = softmax[:2], softmax[2:4]
    like = [s for s in done if (s.curvature, s.saturation, s.cell.batch_size) == (pending[0].curvature,
            pending[0].saturation, pending[0].cell.batch_size)]  # fmt: skip
    assert like, "the ci grid should hold two softmax SGD runs of one kind"
    records = [record(s, 10.0 * (i + 1)) for i, s in enumerate(done)]
    estimate = estimate_seconds(pending[:1], records, num_workers=1)
    expected = sum(10.0 * (i + 1) for i, s in enumerate(done) if s in like) / len(like)
    assert estimate == {"seconds": expected, "runs": 1, "measured_runs": 2, "unmatched": 0}
    assert estimate_seconds(pending[:1], records, num_workers=2)["seconds"] == expected / 2
    assert describe_estimate(estimate, 1) == f"estimated {format_duration(expected)} on 1 worker(s)"


def test_runs_of_another_kind_are_a_counted_guess_and_errors_are_not_timed(specs):
    softmax = next(s for s in specs if s.cell.attention_type == "softmax")
    kernel = [s for s in specs if s.cell.attention_type == "kernel" and s.cell.regime != softmax.cell.regime]
    records = [record(softmax, 30.0), record(kernel[0], 999.0, status="error")]
    assert len(kernel) == 2  # the ci grid's two kernel AdamW runs, timed from the one softmax SGD run
    estimate = estimate_seconds(kernel, records, num_workers=1)
    assert estimate == {"seconds": 60.0, "runs": 2, "measured_runs": 1, "unmatched": 2}
    assert (
        describe_estimate(estimate, 1)
        == "estimated 1 min on 1 worker(s) (2 of them timed from runs of another kind: a rough guess)"
    )
    # the line the study ends with says so too (it once printed a bare "left: 118 h" with ViT timed from MiniLM)
    assert describe_duration(estimate) == "1 min (2 of them timed from runs of another kind: a rough guess)"


def test_nothing_measured_gives_no_estimate(specs):
    estimate = estimate_seconds(specs[:2], [], num_workers=2)
    assert math.isnan(estimate["seconds"]) and estimate["unmatched"] == 2
    assert describe_estimate(estimate, 2) == "estimated n/a on 2 worker(s)"  # no guess to qualify


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0 min"), (89, "1 min"), (3599, "1 h 00 min"), (3900, "1 h 05 min")]
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text
