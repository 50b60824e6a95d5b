"""``marked_objects``: a generated image set whose label cannot be read off a uniform average over patches.

Every image holds ``num_objects`` small textured squares, each with a class texture of
:data:`~hf_robattr.data.generation.SYNTHETIC_IMAGE_CLASSES`, at random non-overlapping positions on the patch grid.
One of them carries a marker (a pure red frame or dot, a colour no object or background takes), and the label is
the texture of that object. The other objects are distractors, so a model must find the marked object and read its
texture: attention has a job, and the ground-truth evidence (the ``mask`` column) is the marked object's square.

Two kinds of distractors, each with a shortcut the other lacks:

- ``random`` (default): their textures are drawn independently of the label. Only the marked object decides the
  label; an average over the image favours it (the most frequent texture is the label in about half of the images
  with 4 objects, against 1/4 by chance), but cannot reach high accuracy.
- ``every_class``: every texture appears once (with 4 objects), so the set of textures says nothing about the label,
  but the *unmarked* objects decide it (it is the one texture they lack): a one-layer ViT trained by SGD attends to
  them rather than to the marked object (raw-attention evidence recall 0.005 against a chance of 0.06; see
  ``docs/study-v3-pilot.md``).
"""

from __future__ import annotations

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image

from .generation import SYNTHETIC_IMAGE_CLASSES, class_texture, split_dataset


__all__ = ["DISTRACTORS", "MARKERS", "MARKER_COLOUR", "make_marked_objects"]

MARKER_COLOUR = np.array([1.0, 0.0, 0.0], dtype=np.float32)  # objects' light colours have G, B >= 0.65, dark R <= 0.35
MARKERS = ("frame", "dot")
DISTRACTORS = ("every_class", "random")
_MAX_PLACEMENT_TRIES = 1000


def _positions(count: int, image_size: int, size: int, align: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """``count`` top-left corners on the ``align`` grid of non-overlapping ``size``-pixel squares (rejection)."""
    slots = (image_size - size) // align + 1
    placed: list[tuple[int, int]] = []
    for _ in range(_MAX_PLACEMENT_TRIES):
        top, left = (int(v) * align for v in rng.integers(0, slots, size=2))
        if all(abs(top - t) >= size or abs(left - c) >= size for t, c in placed):
            placed.append((top, left))
            if len(placed) == count:
                return placed
    raise ValueError(  # unreachable for the checked options (objects fill at most half the image); kept as a guard
        f"Could not place {count} objects of {size} pixels in a {image_size}-pixel image; use fewer or smaller objects."
    )


def _textures(
    label: int, num_objects: int, num_classes: int, rng: np.random.Generator, distractors: str = "every_class"
) -> np.ndarray:
    """The objects' classes, the marked one (``label``) first. ``every_class``: every other class once, then random
    extras; ``random``: the other objects' classes drawn independently of the label."""
    if distractors == "random":
        return np.concatenate([[label], rng.integers(0, num_classes, size=num_objects - 1)]).astype(int)
    others = rng.permutation([c for c in range(num_classes) if c != label])
    extra = rng.integers(0, num_classes, size=max(0, num_objects - num_classes))
    return np.concatenate([[label], others, extra])[:num_objects].astype(int)


def _marked_image(
    label: int,
    *,
    image_size: int,
    object_size: int,
    num_objects: int,
    marker: str,
    distractors: str,
    align: int,
    noise: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one image (``uint8`` RGB) and the mask of its marked object (``uint8``, 255 inside)."""
    background = rng.uniform(0.25, 0.75, size=3).astype(np.float32)
    image = np.broadcast_to(background, (image_size, image_size, 3)).copy()
    classes = _textures(label, num_objects, len(SYNTHETIC_IMAGE_CLASSES), rng, distractors)
    corners = _positions(num_objects, image_size, object_size, align, rng)
    for cls, (top, left) in zip(classes, corners):
        texture = class_texture(int(cls), object_size, rng)
        dark, light = rng.uniform(0.0, 0.35, size=3), rng.uniform(0.65, 1.0, size=3)
        image[top : top + object_size, left : left + object_size] = dark + texture[..., None] * (light - dark)
    top, left = corners[0]  # the marked object (classes[0] == label)
    square = image[top : top + object_size, left : left + object_size]
    if marker == "frame":
        square[[0, -1], :] = MARKER_COLOUR
        square[:, [0, -1]] = MARKER_COLOUR
    else:  # dot: 2x2 pixels at the centre
        middle = object_size // 2
        square[middle - 1 : middle + 1, middle - 1 : middle + 1] = MARKER_COLOUR
    image += rng.normal(0.0, noise, size=image.shape)
    mask = np.zeros((image_size, image_size), dtype=np.uint8)
    mask[top : top + object_size, left : left + object_size] = 255
    return (np.clip(image, 0.0, 1.0) * 255).round().astype(np.uint8), mask


def _check_options(
    num_examples: int,
    image_size: int,
    object_size: int,
    num_objects: int,
    marker: str,
    distractors: str,
    align: int,
    noise: float,
) -> None:
    if num_examples < 1:
        raise ValueError(f"num_examples must be >= 1, got {num_examples}.")
    if marker not in MARKERS:
        raise ValueError(f"marker must be one of {list(MARKERS)}, got {marker!r}.")
    if distractors not in DISTRACTORS:
        raise ValueError(f"distractors must be one of {list(DISTRACTORS)}, got {distractors!r}.")
    if object_size < 4:
        raise ValueError(f"object_size must be >= 4 (a frame or dot must leave texture visible), got {object_size}.")
    if align < 1 or object_size % align:
        raise ValueError(f"align must be >= 1 and divide object_size ({object_size}), got {align}.")
    if num_objects < 2:
        raise ValueError(f"num_objects must be >= 2 (the marked object and a distractor), got {num_objects}.")
    if num_objects * object_size**2 > image_size**2 // 2:
        raise ValueError(
            f"num_objects ({num_objects}) squares of object_size ({object_size}) must cover at most half of the "
            f"{image_size}x{image_size} image (image_size too small)."
        )
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise}.")


def make_marked_objects(
    *,
    num_examples: int = 4000,
    image_size: int = 32,
    object_size: int = 8,
    num_objects: int = 4,
    marker: str = "frame",
    distractors: str = "random",
    align: int = 4,
    noise: float = 0.08,
    seed: int = 0,
) -> DatasetDict:
    """Generated RGB images of several textured objects; the label is the texture of the one that is marked.

    Each image has a plain background, ``num_objects`` non-overlapping ``object_size``-pixel squares at random
    positions on an ``align``-pixel grid (4 matches the default ViT's patches), each textured by a class of
    :data:`~hf_robattr.data.generation.SYNTHETIC_IMAGE_CLASSES` with random colours and phase (``distractors``:
    ``random``, the unmarked objects' classes drawn independently of the label; ``every_class``, every class once
    when ``num_objects`` is at least the number of classes, further objects random; see the module docstring), and
    Gaussian pixel noise of standard deviation ``noise``. The object whose class is the label carries a pure red
    ``marker``: ``frame`` (a 1-pixel border inside its square) or ``dot`` (2x2 pixels at its centre). Labels are
    balanced exactly (``num_examples`` cycled over the classes, shuffled). Split 80/10/10 with ``seed``.

    Columns: ``image`` (RGB), ``mask`` (``L`` image, 255 inside the marked object's square) and ``label``.

    Raises:
        ValueError: naming the option that is out of range (e.g. objects that cannot fit in the image).
    """
    _check_options(num_examples, image_size, object_size, num_objects, marker, distractors, align, noise)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(num_examples) % len(SYNTHETIC_IMAGE_CLASSES))
    options = {
        "image_size": image_size,
        "object_size": object_size,
        "num_objects": num_objects,
        "marker": marker,
        "distractors": distractors,
        "align": align,
        "noise": noise,
    }
    images, masks = zip(*(_marked_image(int(y), rng=rng, **options) for y in labels))
    features = Features({"image": Image(), "mask": Image(), "label": ClassLabel(names=list(SYNTHETIC_IMAGE_CLASSES))})
    dataset = Dataset.from_dict(
        {"image": list(images), "mask": list(masks), "label": labels.tolist()}, features=features
    )
    return split_dataset(dataset, validation_size=0.1, test_size=0.1, seed=seed)
