"""The image transform's memo: encoded images decoded and transformed once, the same float32 values bit for bit as a
direct PIL decode and the per-image computation, a cache bounded in bytes, every input kind still accepted."""

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader
from transformers import ViTImageProcessorPil, default_data_collator

from hf_robattr.data import (
    IMAGE_TENSOR_CACHE,
    ImageClassificationTransform,
    TensorCache,
    load_embedded_dataset,
    processed_pixels,
)


@pytest.fixture(autouse=True)
def empty_cache():
    IMAGE_TENSOR_CACHE.clear()
    yield
    IMAGE_TENSOR_CACHE.clear()


@pytest.fixture(scope="module")
def synthetic():
    return load_embedded_dataset("synthetic_images", num_examples=100)["train"].select(range(12))


@pytest.fixture(scope="module")
def digits():
    return load_embedded_dataset("digits")["train"].select(range(12))


def _decoded(dataset, column):
    """The column's images, decoded straight from their PNG bytes by PIL (no ``datasets`` decoding)."""
    encoded = dataset.cast_column(column, type(dataset.features[column])(decode=False))[column]
    return [Image.open(io.BytesIO(value["bytes"])) for value in encoded]


def _reference_pixels(image, size, channels):
    """The per-image computation of the transform before the cache (resize, [0, 1], normalise with 0.5/0.5)."""
    image = image.convert("RGB" if channels == 3 else "L").resize((size, size), Image.BILINEAR)
    array = np.asarray(image, dtype=np.float32) / 255.0
    tensor = torch.from_numpy(array).view(size, size, channels).permute(2, 0, 1)
    half = torch.full((channels, 1, 1), 0.5)
    return (tensor - half) / half


def _reference_mask(mask, size):
    mask = mask.convert("L").resize((size, size), Image.NEAREST)
    return torch.from_numpy(np.asarray(mask, dtype=np.float32) / 255.0)


def _same(got, expected):
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert a.dtype == b.dtype == torch.float32 and torch.equal(a, b)


@pytest.mark.parametrize(
    ("name", "size", "channels", "masks"),
    [
        pytest.param("synthetic", 16, 3, True, id="synthetic-rgb-masks"),
        pytest.param("synthetic", 32, 1, False, id="synthetic-gray"),
        pytest.param("digits", 32, 3, False, id="digits-rgb"),
        pytest.param("digits", 16, 1, False, id="digits-gray"),
    ],
)
def test_attached_transform_is_bit_identical_to_pil_and_the_uncached_path(request, name, size, channels, masks):
    dataset = request.getfixturevalue(name)
    expected = [_reference_pixels(image, size, channels) for image in _decoded(dataset, "image")]
    transform = ImageClassificationTransform(
        image_size=size, num_channels=channels, mask_column="mask" if masks else None
    )
    attached = transform.attach(dataset)
    uncached = dataset.with_transform(
        ImageClassificationTransform(image_size=size, num_channels=channels, cache=False)
    )
    _same(uncached[:]["pixel_values"], expected)
    _same(attached[:5]["pixel_values"], expected[:5])  # misses, then a batch of hits and misses, then all hits
    _same(attached[:]["pixel_values"], expected)
    _same([attached[i]["pixel_values"] for i in range(len(dataset))], expected)
    assert IMAGE_TENSOR_CACHE.hits >= len(dataset) + 5
    if masks:
        expected_masks = [_reference_mask(mask, size) for mask in _decoded(dataset, "mask")]
        _same(attached[:]["masks"], expected_masks)
        _same(attached[:]["masks"], expected_masks)


def test_processor_path_is_bit_identical_to_one_batched_processor_call(synthetic):
    processor = ViTImageProcessorPil(size={"height": 16, "width": 16}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    images = [image.convert("RGB") for image in _decoded(synthetic, "image")]
    expected = list(processor(images, return_tensors="pt")["pixel_values"])
    attached = ImageClassificationTransform(image_processor=processor).attach(synthetic)
    for _ in range(2):
        _same([attached[i]["pixel_values"] for i in (0, 3)], [expected[0], expected[3]])
        _same(attached[:]["pixel_values"], expected)
    other = ViTImageProcessorPil(size={"height": 8, "width": 8}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    assert ImageClassificationTransform(image_processor=other).attach(synthetic)[0]["pixel_values"].shape == (3, 8, 8)


def test_a_one_channel_model_gets_grayscale_pixels_from_either_processor(synthetic):
    """With a one-channel processor the images go in as grayscale (PIL's "L"), with an RGB one the three normalised
    channels are averaged; the same memo serves a 3-channel transform of the same processor without mixing them."""
    images = _decoded(synthetic, "image")
    gray = ViTImageProcessorPil(size={"height": 8, "width": 8}, image_mean=[0.5], image_std=[0.5])
    expected = gray([image.convert("L") for image in images], return_tensors="pt")["pixel_values"]
    assert expected.shape[1] == 1
    _same(processed_pixels(gray, images, num_channels=1), expected)
    rgb = ViTImageProcessorPil(size={"height": 8, "width": 8}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    colour = rgb([image.convert("RGB") for image in images], return_tensors="pt")["pixel_values"]
    _same(processed_pixels(rgb, images, num_channels=1), colour.mean(dim=1, keepdim=True))
    _same(processed_pixels(rgb, images), colour)
    for channels in (1, 3, 1):
        row = ImageClassificationTransform(image_processor=rgb, num_channels=channels).attach(synthetic)[0]
        assert row["pixel_values"].shape == (channels, 8, 8)


def test_settings_are_part_of_the_key(synthetic):
    for size in (8, 16):
        for channels in (1, 3):
            transform = ImageClassificationTransform(image_size=size, num_channels=channels, mask_column="mask")
            row = transform.attach(synthetic)[0]
            assert row["pixel_values"].shape == (channels, size, size) and row["masks"].shape == (size, size)
    plain = ImageClassificationTransform(image_size=8).attach(synthetic)[0]["pixel_values"]
    shifted = ImageClassificationTransform(image_size=8, mean=(0.25,) * 3).attach(synthetic)[0]["pixel_values"]
    assert torch.allclose(shifted - plain, torch.full_like(plain, 0.5))


def test_returned_tensors_do_not_share_the_cached_storage(synthetic):
    attached = ImageClassificationTransform(image_size=8, mask_column="mask").attach(synthetic)
    first = attached[0]
    expected = {key: first[key].clone() for key in ("pixel_values", "masks")}
    for _ in range(2):  # a miss, then a hit: neither hands out the cached tensor
        row = attached[0]
        for key, value in expected.items():
            assert torch.equal(row[key], value)
            row[key].add_(100.0)


def test_dataloader_epochs_match_the_uncached_path(synthetic):
    def epochs(dataset):
        batches = []
        for epoch in range(2):
            order = torch.Generator().manual_seed(epoch)
            loader = DataLoader(dataset, batch_size=4, shuffle=True, generator=order, collate_fn=default_data_collator)
            batches += list(loader)
        return batches

    reference = epochs(synthetic.with_transform(ImageClassificationTransform(mask_column="mask", cache=False)))
    cached = epochs(ImageClassificationTransform(mask_column="mask").attach(synthetic))
    for a, b in zip(reference, cached, strict=True):
        assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


def test_the_cache_is_bounded_in_bytes_and_evicts_the_least_recently_used():
    cache = TensorCache(max_bytes=3 * 64)  # three 4x4 float32 tensors
    for key in "abc":
        cache.put(key, torch.zeros(4, 4))
    assert cache.get("a") is not None  # "a" is now the most recent: "b" goes first
    cache.put("d", torch.zeros(4, 4))
    assert "b" not in cache and all(key in cache for key in "acd") and cache.nbytes == 3 * 64
    cache.put("big", torch.zeros(8, 8))  # larger than the cap: not stored, nothing evicted
    assert "big" not in cache and len(cache) == 3
    cache.max_bytes = 64
    assert len(cache) == 1 and "d" in cache and cache.nbytes == 64
    with pytest.raises(ValueError, match="max_bytes"):
        TensorCache(max_bytes=-1)


def test_a_tiny_cap_evicts_and_values_stay_exact(synthetic, monkeypatch):
    monkeypatch.setattr(IMAGE_TENSOR_CACHE, "max_bytes", 2 * 3 * 8 * 8 * 4)  # two 3x8x8 images
    expected = [_reference_pixels(image, 8, 3) for image in _decoded(synthetic, "image")]
    attached = ImageClassificationTransform(image_size=8).attach(synthetic)
    for _ in range(2):
        _same(attached[:]["pixel_values"], expected)
        assert len(IMAGE_TENSOR_CACHE) == 2 and IMAGE_TENSOR_CACHE.nbytes <= IMAGE_TENSOR_CACHE.max_bytes


def test_pil_images_arrays_paths_and_encoded_bytes_give_the_same_pixels(synthetic, tmp_path):
    image = _decoded(synthetic, "image")[0]
    path = tmp_path / "image.png"
    image.save(path)
    expected = _reference_pixels(image, 16, 3)
    transform = ImageClassificationTransform(image_size=16)
    inputs = [image, np.asarray(image), str(path), path, {"bytes": path.read_bytes(), "path": None}]
    out = transform({"image": inputs, "label": [0] * len(inputs)})
    _same(out["pixel_values"], [expected] * len(inputs))
    assert len(IMAGE_TENSOR_CACHE) == 1  # the path and the bytes share one digest; PIL images and arrays are not kept
    assert IMAGE_TENSOR_CACHE.hits == 0
    _same(transform({"image": [path], "label": [0]})["pixel_values"], [expected])
    assert IMAGE_TENSOR_CACHE.hits == 1
    gray = ImageClassificationTransform(image_size=4, num_channels=1)._pixels(np.zeros((4, 4), np.uint8))
    assert gray.shape == (1, 4, 4)
