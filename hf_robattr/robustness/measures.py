"""The names of every robustness measure, by group.

- Similarity measures compare the clean map with the map at the attacked point (:mod:`.similarity`).
- Attack measures describe the attack itself: ``attack_sensitivity`` (``||a(x) - a(x')|| / ||a(x)||`` at the
  attacked point) and ``prediction_change_rate`` (whether the attack met a label-changing point).
- Sensitivity measures use ``num_samples`` uniform draws from the ball (:mod:`.sensitivity`).

Also the checks of measure settings against the inputs, made before anything is loaded: image-only measures on text,
a top-k count larger than a map ranks.
"""

from __future__ import annotations

from collections.abc import Sequence

from hf_robattr.attribution import ATTENTION_METHODS

from .sensitivity import SENSITIVITY_MEASURES
from .similarity import SIMILARITY_MEASURES


ATTACK_MEASURES: tuple[str, ...] = ("attack_sensitivity", "prediction_change_rate")
# Measures defined on image grids only (a text map has no geometry to move a centre of mass in).
IMAGE_ONLY_MEASURES: tuple[str, ...] = ("center_of_mass_shift",)
MEASURES: tuple[str, ...] = (*SIMILARITY_MEASURES, *ATTACK_MEASURES, *SENSITIVITY_MEASURES)


def check_measures_for_text(measures: Sequence[str] | None, argument: str = "measures") -> None:
    """Refuse image-only measures asked for by name on text inputs (``None``, every measure, leaves them out)."""
    image_only = [m for m in measures or () if m in IMAGE_ONLY_MEASURES]
    if image_only:
        raise ValueError(
            f"`{argument}` asks for {image_only}, defined for images only (a text map has no 2D grid for a centre of "
            f"mass); drop {'it' if len(image_only) == 1 else 'them'} to score text inputs."
        )


def ranked_features(
    methods: Sequence[str],
    *,
    image_size: int | None = None,
    patch_size: int | None = None,
    map_pooling: str = "none",
    max_seq_length: int | None = None,
) -> dict[str, int]:
    """The most features each attribution method's map can rank, which a top-k count must not exceed.

    Images (``image_size``, ``patch_size``): attention maps rank patches, gradient maps pixels (patches with
    ``map_pooling="patch"``). Text (``max_seq_length``): word tokens, never [CLS] or [SEP].
    """
    if max_seq_length is not None:
        return dict.fromkeys(methods, max(max_seq_length - 2, 1))
    if image_size is None or patch_size is None:
        raise ValueError("ranked_features needs image_size and patch_size (images) or max_seq_length (text).")
    patches = (image_size // patch_size) ** 2
    pixels = patches if map_pooling == "patch" else image_size**2
    return {method: patches if method in ATTENTION_METHODS else pixels for method in methods}


def check_k_count(k: int | float, features: dict[str, int], *, flag: str, why: str) -> None:
    """Refuse a top-k count ``k`` larger than what some method's map ranks (``features``, from
    :func:`ranked_features`; ``why`` says where the sizes come from); a fraction always fits."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        return
    over = {method: count for method, count in features.items() if k > count}
    if over:
        ranks = ", ".join(f"{method} ranks {count}" for method, count in over.items())
        raise ValueError(
            f"{flag} {k} asks for the top {k} features of each attribution map, but {ranks} ({why}). Pass a count "
            f"<= {min(over.values())} or a fraction in (0, 1), e.g. 0.1."
        )
