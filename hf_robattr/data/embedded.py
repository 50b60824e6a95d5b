"""Embedded offline datasets: no network, fixed seeds, fixed train/validation/test splits.

Four sets are built in memory and returned as a :class:`datasets.DatasetDict`:

- ``digits``: scikit-learn's ``load_digits`` (1797 real 8x8 handwritten digits), as grayscale images.
- ``synthetic_images``: 32x32 RGB images whose class is decided by a textured square placed at a random
  position over clutter and noise; the square's ground-truth mask is stored beside each image.
- ``marked_objects``: 32x32 RGB images of several textured objects; the label is the texture of the one object
  that carries a red marker (see :mod:`hf_robattr.data.marked_objects`), so an average over the image cannot
  decide it.
- ``synthetic_sentiment``: short sentences whose label is decided by a few sentiment words among neutral
  filler; the positions of those words (the rationale) are stored beside each sentence.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, Sequence, Value

from .generation import SYNTHETIC_IMAGE_CLASSES, class_texture, split_dataset
from .marked_objects import make_marked_objects


__all__ = [
    "EMBEDDED_DATASETS",
    "GENERATED_DATASETS",
    "SENTIMENT_NEGATIVE_WORDS",
    "SENTIMENT_POSITIVE_WORDS",
    "load_embedded_dataset",
    "make_digits",
    "make_marked_objects",
    "make_synthetic_images",
    "make_synthetic_sentiment",
    "split_dataset",
]

SENTIMENT_POSITIVE_WORDS = (
    "good", "great", "excellent", "wonderful", "superb", "delightful", "brilliant", "enjoyable", "charming", "moving",
)  # fmt: skip
SENTIMENT_NEGATIVE_WORDS = (
    "bad", "awful", "terrible", "boring", "dull", "poor", "weak", "tedious", "clumsy", "painful",
)  # fmt: skip
NEUTRAL_WORDS = (
    "the", "a", "movie", "film", "plot", "actor", "actress", "story", "scene", "script", "director", "music",
    "was", "is", "felt", "seemed", "and", "with", "of", "in", "this", "that", "it", "its", "ending", "cast",
    "camera", "dialogue", "pacing", "score", "we", "saw", "on", "sunday", "at", "cinema", "second", "half",
)  # fmt: skip


def make_digits(*, seed: int = 0) -> DatasetDict:
    """scikit-learn's handwritten digits as 8x8 grayscale images (column ``image``) with 10 classes (``label``)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)
    features = Features({"image": Image(), "label": ClassLabel(names=[str(d) for d in range(10)])})
    dataset = Dataset.from_dict({"image": list(images), "label": digits.target.tolist()}, features=features)
    return split_dataset(dataset, validation_size=0.1, test_size=0.2, seed=seed)


def _synthetic_image(
    label: int, image_size: int, patch: int, align: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one cluttered image and the mask of the region that holds its class evidence."""
    image = rng.uniform(0.0, 1.0, size=3).astype(np.float32) * 0.5 + 0.25
    image = np.broadcast_to(image, (image_size, image_size, 3)).copy()
    for _ in range(int(rng.integers(3, 7))):  # clutter: plain rectangles of random colours
        h, w = rng.integers(3, image_size // 2, size=2)
        top, left = rng.integers(0, image_size - h), rng.integers(0, image_size - w)
        image[top : top + h, left : left + w] = rng.uniform(0.0, 1.0, size=3)
    texture = class_texture(label, patch, rng)
    top, left = rng.integers(0, (image_size - patch) // align + 1, size=2) * align
    dark, light = rng.uniform(0.0, 0.35, size=3), rng.uniform(0.65, 1.0, size=3)
    image[top : top + patch, left : left + patch] = dark + texture[..., None] * (light - dark)
    image += rng.normal(0.0, 0.08, size=image.shape)  # sensor noise
    mask = np.zeros((image_size, image_size), dtype=np.uint8)
    mask[top : top + patch, left : left + patch] = 255
    return (np.clip(image, 0.0, 1.0) * 255).round().astype(np.uint8), mask


def make_synthetic_images(
    *, num_examples: int = 2400, image_size: int = 32, evidence_size: int = 8, align: int = 4, seed: int = 0
) -> DatasetDict:
    """Generated RGB images whose class evidence sits in a known square, with ground-truth masks.

    Each image has a plain background, 3-6 random clutter rectangles, Gaussian noise, and one
    ``evidence_size``-pixel square textured by its class (horizontal, vertical, checkerboard or diagonal
    stripes, with random colours and phase) at a random position on an ``align``-pixel grid (4 matches the
    default ViT's patches). Columns: ``image`` (RGB), ``mask``
    (``L`` image, 255 inside the evidence square) and ``label``.
    """
    if image_size < evidence_size:
        raise ValueError(f"image_size must be at least evidence_size ({evidence_size}), got {image_size}.")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(SYNTHETIC_IMAGE_CLASSES), size=num_examples)
    images, masks = zip(*(_synthetic_image(int(y), image_size, evidence_size, align, rng) for y in labels))
    features = Features({"image": Image(), "mask": Image(), "label": ClassLabel(names=list(SYNTHETIC_IMAGE_CLASSES))})
    dataset = Dataset.from_dict(
        {"image": list(images), "mask": list(masks), "label": labels.tolist()}, features=features
    )
    return split_dataset(dataset, validation_size=0.1, test_size=0.1, seed=seed)


def _sentence(label: int, rng: np.random.Generator) -> tuple[str, list[int]]:
    """One sentence of neutral filler with 1-2 words of the label's sentiment; returns (text, rationale word ids)."""
    words = list(rng.choice(NEUTRAL_WORDS, size=int(rng.integers(6, 14))))
    lexicon = SENTIMENT_POSITIVE_WORDS if label == 1 else SENTIMENT_NEGATIVE_WORDS
    for word in rng.choice(lexicon, size=int(rng.integers(1, 3)), replace=False):
        words.insert(int(rng.integers(0, len(words) + 1)), str(word))
    rationale = [i for i, word in enumerate(words) if word in lexicon]
    return " ".join(words), rationale


def make_synthetic_sentiment(*, num_examples: int = 2000, seed: int = 0) -> DatasetDict:
    """Generated sentiment sentences with known rationale words.

    Columns: ``sentence``, ``label`` (0 negative, 1 positive) and ``rationale`` (word indices, split on spaces,
    of the sentiment words that decide the label).
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=num_examples)
    sentences, rationales = zip(*(_sentence(int(y), rng) for y in labels))
    features = Features(
        {
            "sentence": Value("string"),
            "label": ClassLabel(names=["negative", "positive"]),
            "rationale": Sequence(Value("int32")),
        }
    )
    dataset = Dataset.from_dict(
        {"sentence": list(sentences), "label": labels.tolist(), "rationale": list(rationales)}, features=features
    )
    return split_dataset(dataset, validation_size=0.1, test_size=0.1, seed=seed)


EMBEDDED_DATASETS: dict[str, Callable[..., DatasetDict]] = {
    "digits": make_digits,
    "marked_objects": make_marked_objects,
    "synthetic_images": make_synthetic_images,
    "synthetic_sentiment": make_synthetic_sentiment,
}
# The generated sets, whose size is an option (``num_examples``).
GENERATED_DATASETS = ("marked_objects", "synthetic_images", "synthetic_sentiment")


def load_embedded_dataset(name: str, *, seed: int = 0, **options: object) -> DatasetDict:
    """Build the embedded dataset ``name`` (one of :data:`EMBEDDED_DATASETS`) with fixed splits.

    ``options`` go to the builder (e.g. ``num_examples=4000`` for ``synthetic_images``; see
    :func:`make_synthetic_images`, :func:`make_synthetic_sentiment`); an option the builder lacks is an error.
    Built once per process, seed and options (later calls return a shallow copy of the cached splits; transforms
    attached with ``with_transform`` make new datasets, so the cache is never changed by callers).
    """
    if name not in EMBEDDED_DATASETS:
        raise ValueError(f"Unknown embedded dataset {name!r}; expected one of {sorted(EMBEDDED_DATASETS)}.")
    accepted = set(inspect.signature(EMBEDDED_DATASETS[name]).parameters) - {"seed"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise TypeError(f"Embedded dataset {name!r} has no option(s) {unknown}; it accepts {sorted(accepted)}.")
    return DatasetDict(_cached_embedded_dataset(name, seed, tuple(sorted(options.items()))))


@functools.lru_cache(maxsize=8)
def _cached_embedded_dataset(name: str, seed: int, options: tuple[tuple[str, object], ...]) -> DatasetDict:
    return EMBEDDED_DATASETS[name](seed=seed, **dict(options))
