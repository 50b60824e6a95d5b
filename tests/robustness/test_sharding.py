"""Sharded scoring: 2 gloo processes give the numbers of 1 process, for every kind of input; an error on one rank
reaches every rank; and the batch size does not change the numbers (every draw comes from a per-example stream).

The equality tests run the tiny models in float64, so that they test the algorithm (shards, streams, gathering)
at 1e-6 and not float32 rounding: in float32 a different batch composition or thread count changes a map by ~1e-7
relative, which the difference-based measures carry through as ~1e-6 to 1e-5, and relative input stability, which
divides by map entries near 0, as ~1e-4 (see ``test_float32_agreement``).
"""

import datasets
import pytest
import torch
import torch.distributed as dist
from forked_launch import start_ranks
from result_helpers import flat_numbers
from tiny_models import tiny_bert, tiny_vit

import hf_robattr


IMAGE_OPTIONS = dict(
    methods=("saliency", "smoothgrad"),
    method_kwargs={"smoothgrad": {"n_samples": 2}},
    attack="topk",
    epsilon=0.1,
    num_steps=2,
    restarts=2,
    num_samples=3,
    k=0.2,
    seed=4,
)
TEXT_OPTIONS = dict(methods=("saliency", "raw_attention"), attack="random", epsilon=0.1, num_samples=3, seed=2)


def _images() -> torch.Tensor:
    return torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(5), dtype=torch.float64)


def _token_rows() -> list[list[int]]:
    generator = torch.Generator().manual_seed(6)
    lengths = [7, 3, 5, 6, 2, 7, 4]
    return [torch.randint(1, 40, (length,), generator=generator).tolist() for length in lengths]


def _padded(rows: list[list[int]]) -> dict[str, torch.Tensor]:
    width = max(map(len, rows))
    return {
        "input_ids": torch.tensor([row + [0] * (width - len(row)) for row in rows]),
        "attention_mask": torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows]),
    }


def score_cases(batch_size: int) -> dict[str, dict]:
    """Every case scored in this process (under a process group if one is initialised)."""
    vit, bert = tiny_vit(num_channels=1).double(), tiny_bert().double()
    images, rows = _images(), _token_rows()
    image_options = dict(IMAGE_OPTIONS, batch_size=batch_size, progress=False, return_per_sample=True)
    text_options = dict(TEXT_OPTIONS, batch_size=batch_size, progress=False, return_per_sample=True)
    score = hf_robattr.evaluate_attribution_robustness
    return {
        "images": score(vit, images, **image_options),
        "image-batches": score(vit, [images[:5], images[5:]], **image_options),
        "text": score(bert, _padded(rows), **text_options),
        "text-dataset": score(bert, datasets.Dataset.from_dict({"input_ids": rows}), **text_options),
        "metric": hf_robattr.AttributionRobustness().compute(model=vit, inputs=images, **image_options),
    }


class _FailsOnRankOne(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if dist.get_rank() == 1:
            raise RuntimeError("boom on rank 1")
        return self.model(pixel_values=pixel_values).logits


def _worker(rank: int, world_size: int, rendezvous: str, results: dict) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world_size)
    try:
        outcome = {"cases": score_cases(batch_size=3)}
        try:
            hf_robattr.evaluate_attribution_robustness(
                _FailsOnRankOne(tiny_vit(num_channels=1).double()),
                _images(),
                num_steps=1,
                num_samples=1,
                progress=False,
            )
            outcome["error"] = None
        except RuntimeError as error:
            outcome["error"] = str(error)
        results[rank] = outcome
    finally:
        dist.destroy_process_group()


def _assert_same(got: dict, expected: dict, label: str) -> None:
    assert set(got) == set(expected), label
    for key, value in expected.items():
        if key in ("baselines", "saturated"):
            assert flat_numbers({key: got[key]}) == pytest.approx(flat_numbers({key: value}), abs=1e-6), (label, key)
        elif key == "per_sample":
            for name, values in value.items():
                for index, (want, have) in enumerate(zip(values, got[key][name], strict=True)):
                    close = have == pytest.approx(want, nan_ok=True, abs=1e-6)
                    assert close, (label, name, index, want, have)
        else:
            assert got[key] == pytest.approx(value, nan_ok=True, abs=1e-6), (label, key)


@pytest.mark.slow
def test_two_processes_give_the_numbers_of_one(tmp_path):
    manager = torch.multiprocessing.Manager()
    results = manager.dict()
    start_ranks(_worker, (2, str(tmp_path / "rendezvous"), results), nprocs=2)
    expected = score_cases(batch_size=4)
    assert sorted(results) == [0, 1]
    for rank in (0, 1):
        for name, result in results[rank]["cases"].items():
            _assert_same(result, expected[name], f"rank {rank}, {name}")
    assert "boom on rank 1" in results[1]["error"]
    assert "failed on rank 1" in results[0]["error"] and "boom on rank 1" in results[0]["error"]


@pytest.fixture
def vit64(vit):
    return vit.double()


@pytest.fixture
def images64(images):
    return images.double()


@pytest.mark.parametrize("batch_size", [4])
def test_the_batch_size_does_not_change_the_numbers(vit64, images64, batch_size):
    options = dict(IMAGE_OPTIONS, progress=False, return_per_sample=True)
    reference = hf_robattr.evaluate_attribution_robustness(vit64, images64, batch_size=32, **options)
    changed = hf_robattr.evaluate_attribution_robustness(vit64, images64, batch_size=batch_size, **options)
    _assert_same(changed, reference, f"batch_size={batch_size}")


def test_float32_agreement(vit, images):
    """In float32 the batch size moves the values by float32 rounding only (the bounds quoted in the docs)."""
    options = dict(IMAGE_OPTIONS, progress=False, return_per_sample=True)
    reference = hf_robattr.evaluate_attribution_robustness(vit, images, batch_size=32, **options)["per_sample"]
    changed = hf_robattr.evaluate_attribution_robustness(vit, images, batch_size=4, **options)["per_sample"]
    for key, values in reference.items():
        tolerance = {"rel": 1e-3} if "relative_input_stability" in key else {"rel": 1e-4, "abs": 1e-6}
        assert changed[key] == pytest.approx(values, nan_ok=True, **tolerance), key


def test_padding_does_not_change_the_numbers(bert):
    """A text scores the same however much padding its batch gives it (unpadded rows batched differently)."""
    bert, rows = bert.double(), _token_rows()
    options = dict(TEXT_OPTIONS, methods=("saliency", "smoothgrad"), progress=False, return_per_sample=True)
    one_batch = hf_robattr.evaluate_attribution_robustness(bert, _padded(rows), batch_size=32, **options)
    dataset = datasets.Dataset.from_dict({"input_ids": rows})
    _assert_same(hf_robattr.evaluate_attribution_robustness(bert, dataset, batch_size=2, **options), one_batch, "")


def test_an_example_scores_the_same_alone_and_in_a_batch(vit64, images64):
    settings = dict(IMAGE_OPTIONS, restarts=1, num_samples=2)
    everything = hf_robattr.evaluate_attribution_robustness(
        vit64, images64[:4], progress=False, return_per_sample=True, **settings
    )
    with hf_robattr.RobustnessScorer(vit64, hf_robattr.RobustnessConfig(**settings)) as scorer:
        alone = scorer.score_batch(images64[3:4], example_ids=[3], keep_maps=True)
    for key, values in alone.per_sample.items():
        assert values.item() == pytest.approx(everything["per_sample"][key][3], nan_ok=True, abs=1e-6), key
    assert alone.maps["saliency"].clean_maps.shape == (1, 8, 8)


SENSITIVITY = ("max_sensitivity", "avg_sensitivity", "local_lipschitz", "relative_input_stability")


@pytest.mark.parametrize(
    "scoring",
    [
        pytest.param({"measures": SENSITIVITY}, id="sensitivity-only"),
        pytest.param({"num_steps": 2}, id="after-the-attack"),  # the attack's draws must not shift the samples'
        pytest.param({"num_steps": 2, "restarts": 2}, id="after-restarts"),
    ],
)
def test_sensitivity_family_equals_the_core(vit64, images64, scoring):
    options = dict(methods="smoothgrad", method_kwargs={"smoothgrad": {"n_samples": 2}}, epsilon=0.1, seed=3)
    family = hf_robattr.sensitivity_family(vit64, images64, measures=SENSITIVITY, **options)
    core = hf_robattr.evaluate_attribution_robustness(
        vit64, images64, return_per_sample=True, progress=False, **options, **scoring
    )
    for name in SENSITIVITY:
        assert family[name].tolist() == pytest.approx(core["per_sample"][f"smoothgrad/{name}"], abs=1e-6), name
