"""The warning categories of the scoring core, in a module that imports nothing: filtering them
(``warnings.filterwarnings("ignore", category=SaturationWarning)``, pytest's ``filterwarnings`` setting) or
rebuilding a recorded one in another process (pytest-xdist's controller imports a warning's module to recreate its
category) does not load torch. ``hf_robattr.robustness.saturation`` and ``hf_robattr.robustness.perturbations``
export them too.
"""

__all__ = ["SaturationWarning", "SpecialTokensWarning"]


class SaturationWarning(UserWarning):
    """A robustness measure sits at its floor or ceiling, or cannot be told from random noise: it does not rank
    models on these inputs."""


class SpecialTokensWarning(UserWarning):
    """``special_tokens="exclude"`` on texts whose special tokens nothing names: they may be scored as words."""
