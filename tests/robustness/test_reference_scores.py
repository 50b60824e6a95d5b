"""Numbers do not move: the scoring core's per-example values on fixed cases equal those recorded in
``reference_scores.json``.

The reference was first recorded by running this module as a script (``python tests/robustness/test_reference_scores.py``)
on the code before the RobustnessConfig refactor (026d7e4); it is regenerated only when a change is meant to move the
numbers, and the commit that does so says why (``git log -- tests/robustness/reference_scores.json``).
"""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tiny_models import padded_text_batch, tiny_bert, tiny_vit

import hf_robattr


REFERENCE = Path(__file__).with_name("reference_scores.json")


def _images() -> torch.Tensor:
    return torch.rand(5, 3, 8, 8, generator=torch.Generator().manual_seed(11))


def _text() -> dict[str, torch.Tensor]:
    return padded_text_batch((7, 5, 7, 4), seed=12)


COMMON = dict(num_steps=3, num_samples=3, batch_size=2, progress=False, return_per_sample=True)

# name -> (model kind, options); every case runs on a freshly seeded tiny model ("vit-relu": ReLU MLPs, so that
# ``smoothing_beta`` has something to smooth).
CASES: dict[str, tuple[str, dict]] = {
    "vit-topk-gradient-methods": (
        "vit",
        dict(
            methods=("saliency", "input_x_gradient", "integrated_gradients", "smoothgrad"),
            attack="topk",
            epsilon=0.05,
            k=0.2,
            seed=3,
            method_kwargs={"integrated_gradients": {"n_steps": 4}, "smoothgrad": {"n_samples": 3}},
        ),
    ),
    "vit-random-restarts-attention": (
        "vit",
        dict(methods=("rollout", "grad_attention"), attack="random", restarts=3, epsilon=0.1, seed=5),
    ),
    "vit-mass-center-l2-range": (
        "vit",
        dict(
            methods=("saliency",),
            attack="mass_center",
            norm="l2",
            epsilon=0.3,
            step_size=0.2,
            input_range=(0.0, 1.0),
            seed=7,
        ),
    ),
    "vit-targeted-int-k-smoothing": (
        "vit-relu",
        dict(methods=("saliency",), attack="targeted", epsilon=0.05, k=5, smoothing_beta=3.0, restarts=2, seed=1),
    ),
    "bert-topk-text": (
        "bert",
        dict(methods=("saliency", "raw_attention"), attack="topk", epsilon=0.05, k=0.3, seed=2),
    ),
    "bert-random-text-l2": (
        "bert",
        dict(methods=("input_x_gradient",), attack="random", norm="l2", epsilon=0.1, restarts=2, seed=4),
    ),
}


def run_case(name: str) -> dict:
    kind, options = CASES[name]
    if kind.startswith("vit"):
        activation = "relu" if kind == "vit-relu" else "gelu"
        model, inputs = tiny_vit(seed=0, attn_implementation="eager", hidden_act=activation), _images()
    else:
        model, inputs = tiny_bert(seed=0, attn_implementation="eager"), _text()
    return hf_robattr.evaluate_attribution_robustness(model, inputs, **{**COMMON, **options})


def _assert_values_equal(expected: list, got: list, key: str) -> None:
    assert len(expected) == len(got), key
    for index, (want, have) in enumerate(zip(expected, got)):
        if want is None:
            assert have is None or math.isnan(have), (key, index, have)
        else:
            assert have == pytest.approx(want, rel=1e-6, abs=1e-6), (key, index, want, have)


@pytest.mark.parametrize("name", sorted(CASES))
def test_numbers_do_not_move(name):
    reference = json.loads(REFERENCE.read_text())["cases"][name]
    result = run_case(name)
    per_sample = result["per_sample"]
    assert sorted(per_sample) == sorted(reference), name
    for key, values in reference.items():
        _assert_values_equal(values, [None if math.isnan(v) else v for v in per_sample[key]], f"{name}:{key}")


def _record() -> None:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    recorded_with = f"{commit.stdout.strip()} plus the working tree; the commit adding this version says why"
    cases = {}
    for name in sorted(CASES):
        per_sample = run_case(name)["per_sample"]
        cases[name] = {key: [None if math.isnan(v) else v for v in values] for key, values in per_sample.items()}
    REFERENCE.write_text(json.dumps({"recorded_with": recorded_with, "cases": cases}, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    _record()
