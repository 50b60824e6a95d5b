"""The grid of each scale: what the issue asks of the cpu scale, unique keys, and argument errors."""

import pytest

from hf_robattr.study import SCALES, StudyArguments, build_grid, get_settings
from hf_robattr.study.grid import Cell, RunSpec


def test_cpu_scale_meets_the_protocol():
    settings = get_settings("cpu")
    specs = build_grid("cpu", settings)
    vit = [s for s in specs if s.cell.model == "vit" and s.budget == "matched"]
    sgd_batches = {s.cell.batch_size for s in vit if s.cell.regime == "sgd"}
    assert min(sgd_batches) == 8 and max(sgd_batches) == 128
    assert {s.cell.regime for s in vit} >= {"sgd", "adamw", "input_grad_norm", "ig_norm", "sam"}
    assert {s.cell.attention_type for s in vit} == {"softmax", "kernel"}
    seeds_per_cell = {}
    for spec in specs:
        seeds_per_cell.setdefault((spec.cell, spec.budget), set()).add(spec.seed)
    assert min(len(v) for (cell, budget), v in seeds_per_cell.items() if budget == "matched") >= 5
    assert (settings.image_size // settings.patch_size) ** 2 >= 64
    assert settings.eval_examples >= 300
    assert {s.cell.attention_type for s in specs if s.cell.model == "bert"} == {"softmax", "kernel"}
    assert any(s.budget == "fixed" for s in specs)
    assert set(settings.gradient_methods) == {"saliency", "input_x_gradient", "integrated_gradients"}
    assert set(settings.attention_methods) == {"raw_attention", "rollout", "grad_attention"}


@pytest.mark.parametrize("scale", list(SCALES))
def test_keys_are_unique_and_order_is_seed_major(scale):
    specs = build_grid(scale)
    assert len({s.key for s in specs}) == len(specs)
    assert [s.seed for s in specs] == sorted(s.seed for s in specs)


def test_settings_fingerprint_tracks_changes():
    assert get_settings("cpu").fingerprint() == get_settings("cpu").fingerprint()
    assert get_settings("cpu", eval_examples=10).fingerprint() != get_settings("cpu").fingerprint()


@pytest.mark.parametrize(
    ("call", "match"),
    [
        pytest.param(lambda: get_settings("tpu"), "--scale", id="scale"),
        pytest.param(lambda: get_settings("ci", bogus=1), "bogus", id="setting"),
        pytest.param(lambda: build_grid("ci", models=("gpt",)), "gpt", id="model"),
        pytest.param(lambda: Cell("resnet", "softmax", "sgd", 0.1, 8), "Cell.model", id="cell-model"),
        pytest.param(lambda: Cell("vit", "softmax", "sgd", -0.1, 8), "learning_rate", id="cell-lr"),
        pytest.param(
            lambda: RunSpec(Cell("vit", "softmax", "sgd", 0.1, 8), 0, "weekly", get_settings("ci")),
            "budget",
            id="budget",
        ),
        pytest.param(lambda: StudyArguments(output_dir="x", scale="huge"), "--scale", id="args-scale"),
        pytest.param(lambda: StudyArguments(output_dir="x", num_workers=-1), "--num_workers", id="args-workers"),
        pytest.param(lambda: StudyArguments(output_dir="x", models=["gpt"]), "--models", id="args-models"),
        pytest.param(lambda: StudyArguments(output_dir="x", seeds=0), "--seeds", id="args-seeds"),
    ],
)
def test_bad_arguments_fail_with_their_name(call, match):
    with pytest.raises(ValueError, match=match):
        call()
