"""Numbers do not move: the scoring core's per-example values on fixed cases equal those in ``reference_scores.json``,
on any CPU.

Why float64, and why these tolerances. In float32 the same case gives different last digits on different CPUs:
``torch.randn`` (model initialisation) and ``exp`` are vectorised differently per ``ATEN_CPU_CAPABILITY``, MKL and
oneDNN pick other kernels (and summation orders) per instruction set, and the thread count changes reductions. The
measures amplify that rounding: a sensitivity ``||a - a'|| / ||a||`` or a centre-of-mass shift of a map that barely
moved is a difference of nearly equal numbers (float32 drift up to 7e-3 relative was measured on a shift of 1e-4
cells, a condition number of ~1e5), and a PGD step takes ``sign(grad)``, so a gradient component within rounding of
zero can flip the whole attack path. So the cases run in float64 on models whose weights are the same bits on every
CPU (:func:`portable_float64`: float64 ``torch.rand`` draws), with the attention computed in float64 throughout
(RobAttr softmax ViT, eager BERT). Then:

- continuous values: float64 unit roundoff 1.1e-16 x condition <= ~1e5 x accumulation over <= ~1e4 terms gives
  <= ~1e-9 relative; :data:`RELATIVE_TOLERANCE` is 1e-8 (measured worst drift over ATEN_CPU_CAPABILITY in {default,
  avx2, avx512} x {1, 2} threads x MKL_CBWR / ONEDNN_MAX_CPU_ISA code paths: 1e-11). :data:`ABSOLUTE_TOLERANCE`
  covers values that are 0 up to rounding (e.g. a sensitivity of an unmoved map).
- discontinuities (a top-k boundary tie, a rank pair, an argmax, a PGD sign) only move a value when two numbers
  agree to ~1e-13 relative, which float64 maps of these cases never do (a tie that exact is structural, the same
  on every CPU): rank measures are pinned at the same tolerance.

A change of 1e-3 in a scoring constant moves values by >= 1e-5 relative, 1000x the tolerance:
:func:`test_a_small_change_in_a_scoring_constant_is_caught` plants such changes and checks that they fail.

Re-record (only when a change is meant to move the numbers; the commit says why) with
``python tests/record_references.py`` (it records the machine and versions beside the numbers).
"""

import json
import math
import sys
from pathlib import Path

import pytest
import torch


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tiny_models import padded_text_batch, portable_float64, tiny_bert, tiny_robattr_vit

import hf_robattr
from hf_robattr.robustness import attacks


REFERENCE = Path(__file__).with_name("reference_scores.json")
RELATIVE_TOLERANCE = 1e-8
ABSOLUTE_TOLERANCE = 1e-12


def _images() -> torch.Tensor:
    return torch.rand(5, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(11))


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


def case_model_and_inputs(name: str) -> tuple[torch.nn.Module, object]:
    """The case's float64 model (same weights on every CPU) and inputs."""
    kind, _ = CASES[name]
    if kind.startswith("vit"):
        activation = "relu" if kind == "vit-relu" else "gelu"
        return portable_float64(tiny_robattr_vit(hidden_act=activation)), _images()
    return portable_float64(tiny_bert(attn_implementation="eager")), _text()


def run_case(name: str, **changes) -> dict[str, list[float | None]]:
    """The case's per-example values (``None`` where an example is left out); ``changes`` replace options."""
    model, inputs = case_model_and_inputs(name)
    options = {**COMMON, **CASES[name][1], **changes}
    per_sample = hf_robattr.evaluate_attribution_robustness(model, inputs, **options)["per_sample"]
    return {key: [None if math.isnan(v) else v for v in values] for key, values in per_sample.items()}


def mismatches(expected: dict, got: dict) -> list[tuple[str, int, float | None, float | None]]:
    """Every ``(key, example, expected, got)`` outside the tolerance (a missing or extra key counts too)."""
    found = [(key, -1, None, None) for key in sorted(set(expected) ^ set(got))]
    for key in sorted(set(expected) & set(got)):
        if len(expected[key]) != len(got[key]):
            found.append((key, -1, len(expected[key]), len(got[key])))
            continue
        for index, (want, have) in enumerate(zip(expected[key], got[key])):
            if want is None or have is None:
                if want is not have:
                    found.append((key, index, want, have))
            elif abs(have - want) > ABSOLUTE_TOLERANCE + RELATIVE_TOLERANCE * abs(want):
                found.append((key, index, want, have))
    return found


def _reference(name: str) -> dict:
    return json.loads(REFERENCE.read_text())["cases"][name]


@pytest.mark.parametrize("name", sorted(CASES))
def test_numbers_do_not_move(name):
    assert mismatches(_reference(name), run_case(name)) == []


def _largest_relative_change(expected: dict, got: dict) -> float:
    return max(
        (abs(b - a) / max(abs(a), 1e-30) for key in expected for a, b in zip(expected[key], got[key]) if a and b),
        default=0.0,
    )


@pytest.mark.parametrize(
    ("name", "constant"),
    [
        pytest.param("vit-topk-gradient-methods", "pgd_step_factor", id="pgd-step-factor"),
        pytest.param("bert-topk-text", "epsilon", id="text-epsilon"),
        pytest.param("vit-random-restarts-attention", "epsilon", id="random-attack-epsilon"),
    ],
)
def test_a_small_change_in_a_scoring_constant_is_caught(name, constant, monkeypatch):
    """A relative change of 1e-3 in a constant of the computation moves the pinned values far outside the tolerance
    (so the tolerances are tight enough to catch real changes)."""
    changes = {}
    if constant == "pgd_step_factor":
        monkeypatch.setattr(attacks, "DEFAULT_STEP_FACTOR", attacks.DEFAULT_STEP_FACTOR * (1 + 1e-3))
    else:
        changes["epsilon"] = CASES[name][1]["epsilon"] * (1 + 1e-3)
    reference = _reference(name)
    changed = run_case(name, **changes)
    assert len(mismatches(reference, changed)) > 0
    assert _largest_relative_change(reference, changed) > 100 * RELATIVE_TOLERANCE


def record() -> dict:
    """Every case's values, as stored in ``reference_scores.json`` (see ``tests/record_references.py``)."""
    return {name: run_case(name) for name in sorted(CASES)}
