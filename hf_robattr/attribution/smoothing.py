"""Explanation-time beta-smoothing (Dombrowski et al. 2019): explain a ReLU network as if its ReLUs were softplus.

``softplus_beta(x) = log(1 + exp(beta * x)) / beta`` tends to ReLU as ``beta`` grows; a small ``beta`` smooths the
map's dependence on the input without retraining. Only ``nn.ReLU`` modules are swapped (transformers' ``"relu"``
activation is one); functional ReLUs and other activations (GELU) are left alone.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

from torch import nn


SMOOTHABLE_ACTIVATIONS: tuple[type[nn.Module], ...] = (nn.ReLU,)


@contextlib.contextmanager
def softplus_smoothing(model: nn.Module, beta: float) -> Iterator[int]:
    """Replace every ReLU module in ``model`` with ``nn.Softplus(beta)``; put the originals back on exit.

    Yields the number of replaced modules.
    """
    if beta <= 0:
        raise ValueError(f"`smoothing_beta` must be > 0; got {beta}.")
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    for parent in model.modules():
        for name, child in parent.named_children():
            if type(child) in SMOOTHABLE_ACTIVATIONS:
                swapped.append((parent, name, child))
    if not swapped:
        warnings.warn(
            f"`smoothing_beta` has no effect: {type(model).__name__} has no nn.ReLU modules to replace.", stacklevel=3
        )
    try:
        for parent, name, _child in swapped:
            setattr(parent, name, nn.Softplus(beta=beta))
        yield len(swapped)
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)
