"""The names of every robustness measure, by group.

- Similarity measures compare the clean map with the map at the attacked point (:mod:`.similarity`).
- Attack measures describe the attack itself: ``attack_sensitivity`` (``||a(x) - a(x')|| / ||a(x)||`` at the
  attacked point) and ``prediction_change_rate`` (whether the attack met a label-changing point).
- Sensitivity measures use ``num_samples`` uniform draws from the ball (:mod:`.sensitivity`).
"""

from __future__ import annotations

from collections.abc import Sequence

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
