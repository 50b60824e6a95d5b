"""The targeted attack's ``target_region``, one map for all examples or one per example, whatever the batching: each
example's score equals its score when its own region is the one map for all (every example draws from its own
stream, so the rest of the input does not change it)."""

import pytest
import torch

import hf_robattr


SETTINGS = dict(
    attack="targeted", methods=("saliency",), epsilon=0.05, num_steps=2, num_samples=2, seed=3, progress=False
)
pytestmark = pytest.mark.filterwarnings("ignore::hf_robattr.robustness.saturation.SaturationWarning")


def _regions(count: int) -> torch.Tensor:
    """A different region per example: a band of rows at a different height."""
    regions = torch.zeros(count, 8, 8, dtype=torch.bool)
    for row in range(count):
        regions[row, row % 6 : row % 6 + 2] = True
    return regions


def _per_sample(model, inputs, region, **settings) -> list[float]:
    result = hf_robattr.evaluate_attribution_robustness(
        model, inputs, target_region=region, return_per_sample=True, **{**SETTINGS, **settings}
    )
    return result["per_sample"]["saliency/topk_intersection"]


@pytest.mark.parametrize("batch_size", [1, 2, 5])
def test_one_region_per_example_follows_its_example_across_batches(vit, images, batch_size):
    regions = _regions(len(images))
    alone = [_per_sample(vit, images, regions[i])[i] for i in range(len(images))]
    batched = _per_sample(vit, images, regions, batch_size=batch_size)
    assert batched == pytest.approx(alone, rel=1e-5, abs=1e-6)
    # The regions matter: one region for all gives other scores.
    assert _per_sample(vit, images, regions[0], batch_size=batch_size) != pytest.approx(alone, rel=1e-5, abs=1e-6)


def test_regions_of_skipped_examples_and_of_a_list_of_batches_line_up(vit, images):
    images = images.clone()
    images[1] = 0.5  # a constant image: left out, so the next example sits at another row of its batch
    regions = _regions(len(images))
    expected = _per_sample(vit, images, regions, batch_size=len(images))
    assert expected[1] != expected[1]  # NaN: left out
    assert _per_sample(vit, images, regions, batch_size=4) == pytest.approx(expected, nan_ok=True)
    batches = [images[:3], images[3:]]
    assert _per_sample(vit, batches, regions) == pytest.approx(expected, nan_ok=True)


@pytest.mark.parametrize("count", [5, 7])
def test_a_region_count_other_than_the_examples_is_refused_before_scoring(vit, images, count):
    with pytest.raises(ValueError, match=rf"`target_region` holds {count} maps .* 6 examples"):
        _per_sample(vit, images, _regions(count))


def test_too_few_regions_for_batches_of_unknown_count_name_the_example(vit, images):
    batches = iter([images[:3], images[3:]])  # a generator: its length is unknown until scored
    with pytest.raises(ValueError, match=r"`target_region` holds 4 maps .* index 5"):
        _per_sample(vit, batches, _regions(4))
