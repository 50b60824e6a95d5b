"""A study's settings: its arms (protocol + grid) and the pre-registered analysis settings."""

from __future__ import annotations

from dataclasses import dataclass

from .grid import ArmGrid
from .protocol import ArmProtocol


__all__ = ["ANALYSES", "ANALYSIS_FIELDS", "StudySettings"]

# v2: run-level slopes, v2's claim rules, one headline measure. v3 (issue 25): cell random effects, one rule shape,
# co-primary measures, manipulation check, positive controls, margins from the measures' own spread.
ANALYSES = ("v2", "v3")
# The settings of the analysis (not of the runs): the ones get_settings can override.
ANALYSIS_FIELDS = (
    "alpha",
    "margin",
    "headline_measure",
    "min_cls_cv",
    "min_recall_gain",
    "min_entropy_drop",
    "analysis",
    "error_rate_simulations",
)


@dataclass(frozen=True)
class StudySettings:
    """A scale's arms and its analysis settings, fixed before any run (the report's protocol section prints them).

    ``margin``: the smallest slope of ``headline_measure`` per doubling of lr/B that matters (claim 2's
    equivalence margin, claims 1 and 3's "contradicted" bound); ``alpha``: the level of every test. A run's
    attention is *degenerate* when its last-layer [CLS]-row coefficient of variation is below ``min_cls_cv`` or,
    where evidence masks exist, raw attention's evidence recall is less than ``min_recall_gain`` above chance (v2's
    absolute rule, which many untrained models pass); v3's paired rule
    (:func:`~hf_robattr.study.measure.attention_preconditions_met`), which v3's analysis uses for arms trained from
    an untrained start (no pretrained checkpoint, no warm start), compares a trained model with that start: entropy ratio at least ``min_entropy_drop`` lower,
    evidence recall at least ``min_recall_gain`` higher. A cell whose usable runs are mostly degenerate is kept out
    of claims 2 and 3. ``analysis`` picks the rules: ``"v2"`` (study v2's, kept so that its report re-renders) or ``"v3"``
    (:mod:`~hf_robattr.study.analysis_v3`, where ``margin`` is only the fallback of the margin rule);
    ``error_rate_simulations``: how many simulated studies v3 replays each decision rule on (seeded).
    """

    scale: str
    arms: tuple[tuple[ArmProtocol, ArmGrid], ...]
    alpha: float = 0.05
    margin: float = 0.01
    headline_measure: str = "topk_intersection"
    min_cls_cv: float = 0.02
    min_recall_gain: float = 0.05
    min_entropy_drop: float = 0.05
    analysis: str = "v2"
    error_rate_simulations: int = 1000  # v3: simulated studies per rule (Monte Carlo SE 0.007 at a rate of 0.05)

    def __post_init__(self) -> None:
        if self.analysis not in ANALYSES:
            raise ValueError(f"StudySettings.analysis must be one of {list(ANALYSES)}, got {self.analysis!r}.")
        if not 0 < self.alpha < 1 or not self.margin > 0:
            raise ValueError(f"StudySettings.alpha must be in (0, 1) and margin > 0, got {self.alpha}, {self.margin}.")
        if self.error_rate_simulations < 1:
            raise ValueError(f"StudySettings.error_rate_simulations must be >= 1, got {self.error_rate_simulations}.")
        names = [protocol.arm for protocol, _ in self.arms]
        if len(set(names)) != len(names):
            raise ValueError(f"StudySettings.arms has duplicate arm names {names}.")

    @property
    def arm_names(self) -> tuple[str, ...]:
        """The arms in their order."""
        return tuple(protocol.arm for protocol, _ in self.arms)

    def arm(self, name: str) -> tuple[ArmProtocol, ArmGrid]:
        """The protocol and grid of arm ``name``."""
        for protocol, grid in self.arms:
            if protocol.arm == name:
                return protocol, grid
        raise ValueError(f"Unknown arm {name!r}; expected one of {list(self.arm_names)}.")

    def protocol(self, name: str) -> ArmProtocol:
        """The protocol of arm ``name``."""
        return self.arm(name)[0]
