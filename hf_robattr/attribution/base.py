"""The shared interface of attribution methods and the result they return."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from .inputs import PreparedInputs


@dataclass(frozen=True)
class Explanation:
    """An attribution result.

    ``maps`` is one map per example (images ``[B, H, W]``, text ``[B, T]``, attention methods on images at patch
    resolution ``[B, H/p, W/p]``). ``logits`` are the model's logits on the explained inputs (the clean inputs of a
    gradient method, before noise or interpolation), so callers can check labels without another forward pass.
    """

    maps: torch.Tensor
    logits: torch.Tensor

    def detached(self) -> Explanation:
        """The same result cut from the autograd graph."""
        return Explanation(self.maps.detach(), self.logits.detach())


class AttributionMethod:
    """Base class: one method, one ``explain`` call.

    Subclasses take their knobs as constructor kwargs and implement :meth:`explain`. ``create_graph=True`` keeps the
    result differentiable with respect to ``prepared.features`` (needed by attribution attacks).
    """

    name: ClassVar[str] = ""

    def __init__(self, **kwargs: Any) -> None:
        if kwargs:
            raise TypeError(f"attribution method {self.name!r} got unexpected options {sorted(kwargs)}.")

    def explain(
        self, model: nn.Module, prepared: PreparedInputs, targets: torch.Tensor | None, *, create_graph: bool = False
    ) -> Explanation:
        """Attribute ``targets`` (class indices ``[B]``; ``None``: the predicted classes) of ``model`` on ``prepared``."""
        raise NotImplementedError


def select_target_logits(logits: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
    """The logit of each example's target class, ``[B]`` (``targets=None``: the predicted class)."""
    if targets is None:
        targets = logits.detach().argmax(dim=1)
    if targets.shape[0] != logits.shape[0]:
        raise ValueError(f"`targets` has {targets.shape[0]} entries but the batch has {logits.shape[0]} examples.")
    if ((targets < 0) | (targets >= logits.shape[1])).any():
        raise ValueError(f"`targets` must be class indices in [0, {logits.shape[1]}); got {targets.tolist()}.")
    return logits.gather(1, targets.view(-1, 1)).squeeze(1)
