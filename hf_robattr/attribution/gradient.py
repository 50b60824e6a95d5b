"""Gradient attribution methods: saliency, input x gradient, integrated gradients and SmoothGrad.

All of them are differentiable with respect to the input when ``create_graph=True`` and run in batches. Per-feature
values equal captum's ``Saliency``, ``InputXGradient``, ``IntegratedGradients`` and ``NoiseTunnel(Saliency)``
(smoothgrad) before the reduction to maps (:func:`~hf_robattr.attribution.inputs.reduce_to_map`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .argument_checks import check_int, check_number, check_optional_number
from .base import AttributionMethod, Explanation, select_target_logits
from .inputs import PreparedInputs, forward_logits, reduce_to_map


def input_gradient(
    model: nn.Module, prepared: PreparedInputs, targets: torch.Tensor | None, *, create_graph: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of each example's target logit with respect to ``prepared.features``, plus the logits."""
    features = prepared.features
    if not features.requires_grad:
        features = features.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = forward_logits(model, prepared, features)
        (grad,) = torch.autograd.grad(select_target_logits(logits, targets).sum(), features, create_graph=create_graph)
    return grad, logits


def clean_logits_and_targets(
    model: nn.Module, prepared: PreparedInputs, targets: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits on the clean inputs (no graph) and the targets: the given ones, else the predicted classes."""
    with torch.no_grad():
        logits = forward_logits(model, prepared)
    return logits, logits.argmax(dim=1) if targets is None else targets


class Saliency(AttributionMethod):
    """Absolute input gradient ``|d logit_y / d x|`` (Simonyan et al. 2014); captum ``Saliency(abs=True)``."""

    name = "saliency"

    def __init__(self, *, abs: bool = True) -> None:
        super().__init__()
        self.abs = abs

    def per_feature(
        self, model: nn.Module, prepared: PreparedInputs, targets: torch.Tensor | None, *, create_graph: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Unreduced attributions (the input's shape) and logits."""
        grad, logits = input_gradient(model, prepared, targets, create_graph=create_graph)
        return (grad.abs() if self.abs else grad), logits

    def explain(
        self, model: nn.Module, prepared: PreparedInputs, targets: torch.Tensor | None, *, create_graph: bool = False
    ) -> Explanation:
        """See :class:`AttributionMethod`."""
        values, logits = self.per_feature(model, prepared, targets, create_graph=create_graph)
        result = Explanation(reduce_to_map(values, prepared), logits)
        return result if create_graph else result.detached()


class InputXGradient(Saliency):
    """Input times gradient ``x * d logit_y / d x`` (Shrikumar et al. 2016); captum ``InputXGradient``."""

    name = "input_x_gradient"

    def __init__(self) -> None:
        super().__init__(abs=False)

    def per_feature(
        self, model: nn.Module, prepared: PreparedInputs, targets: torch.Tensor | None, *, create_graph: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Unreduced attributions (the input's shape) and logits."""
        grad, logits = input_gradient(model, prepared, targets, create_graph=create_graph)
        return prepared.features * grad, logits


def _integration_nodes(n_steps: int, method: str) -> tuple[list[float], list[float]]:
    # The same nodes and weights as captum's `approximation_parameters`, so results match it.
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n_steps)
        return list(0.5 * (nodes + 1.0)), list(0.5 * weights)
    if method == "riemann_trapezoid":
        if n_steps < 2:
            raise ValueError(f"`n_steps` must be >= 2 for riemann_trapezoid; got {n_steps}.")
        alphas = [i / (n_steps - 1) for i in range(n_steps)]
        weights = [0.5 / (n_steps - 1)] + [1.0 / (n_steps - 1)] * (n_steps - 2) + [0.5 / (n_steps - 1)]
        return alphas, weights
    offsets = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}
    if method not in offsets:
        valid = ["gausslegendre", "riemann_trapezoid", *offsets]
        raise ValueError(f"`method` must be one of {valid}; got {method!r}.")
    alphas = [(i + offsets[method]) / n_steps for i in range(n_steps)]
    return alphas, [1.0 / n_steps] * n_steps


def _baseline_like(baseline: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``baseline`` broadcast to the features ``x`` (``ValueError`` naming it when it does not fit)."""
    value = torch.as_tensor(baseline, dtype=x.dtype, device=x.device)
    if not torch.isfinite(value).all():
        raise ValueError("integrated gradients: `baseline` contains NaN or infinite values; expected finite numbers.")
    try:
        return value.expand_as(x)
    except RuntimeError:
        raise ValueError(
            f"integrated gradients: `baseline` of shape {tuple(value.shape)} does not fit the inputs' features of "
            f"shape {tuple(x.shape)}: pass a number, one example's shape {tuple(x.shape[1:])}, or the whole batch's "
            f"{tuple(x.shape)}."
        ) from None


class IntegratedGradients(Saliency):
    """Integrated gradients (Sundararajan et al. 2017); captum ``IntegratedGradients``.

    ``baseline`` is a number or a tensor broadcastable to the features (default 0). ``n_steps`` path points are
    evaluated in chunks of ``internal_batch_size`` examples (default: all at once).
    """

    name = "integrated_gradients"

    def __init__(
        self,
        *,
        baseline: float | torch.Tensor = 0.0,
        n_steps: int = 50,
        method: str = "gausslegendre",
        internal_batch_size: int | None = None,
    ) -> None:
        super().__init__(abs=False)
        n_steps = check_int("n_steps", n_steps, minimum=1)
        if internal_batch_size is not None:
            internal_batch_size = check_int("internal_batch_size", internal_batch_size, minimum=1)
        self.baseline = baseline
        self.n_steps = n_steps
        self.alphas, self.weights = _integration_nodes(n_steps, method)
        self.internal_batch_size = internal_batch_size

    def per_feature(
        self, model: nn.Module, prepared: PreparedInputs, targets: torch.Tensor | None, *, create_graph: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Unreduced attributions (the input's shape) and the logits on the clean inputs."""
        x = prepared.features
        logits, targets = clean_logits_and_targets(model, prepared, targets)
        baseline = _baseline_like(self.baseline, x)
        batch = x.shape[0]
        alphas = torch.tensor(self.alphas, dtype=x.dtype, device=x.device)
        weights = torch.tensor(self.weights, dtype=x.dtype, device=x.device)
        shape = (-1,) + (1,) * x.dim()
        # Step-major layout [n_steps * B, ...], like captum.
        path = baseline.unsqueeze(0) + alphas.view(shape) * (x - baseline).unsqueeze(0)
        path = path.reshape(-1, *x.shape[1:])
        expanded = prepared.tile(self.n_steps).with_features(path)
        chunk = self.internal_batch_size or path.shape[0]
        grads = []
        for start in range(0, path.shape[0], chunk):
            part = expanded.select(slice(start, start + chunk))
            part_targets = targets.repeat(self.n_steps)[start : start + chunk]
            grad, _ = input_gradient(model, part, part_targets, create_graph=create_graph)
            grads.append(grad)
        grads = torch.cat(grads).view(self.n_steps, batch, *x.shape[1:])
        total = (weights.view(shape) * grads).sum(dim=0)
        return (x - baseline) * total, logits


class SmoothGrad(Saliency):
    """SmoothGrad (Smilkov et al. 2017): mean saliency over ``n_samples`` Gaussian-noised copies of the input.

    The noise standard deviation is ``stdev`` if given, else ``noise_level * (max - min)`` of each example's features
    (Smilkov's relative noise level). ``noise`` ``[B, n_samples, *feature_shape]`` can be passed to reuse fixed draws
    (e.g. the ones captum drew); otherwise it is drawn from ``generator``. Same as captum
    ``NoiseTunnel(Saliency()).attribute(nt_type="smoothgrad")`` given the same noise.
    """

    name = "smoothgrad"

    def __init__(
        self,
        *,
        n_samples: int = 20,
        noise_level: float = 0.15,
        stdev: float | None = None,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        abs: bool = True,
    ) -> None:
        super().__init__(abs=abs)
        n_samples = check_int("n_samples", n_samples, minimum=1)
        noise_level = check_number("noise_level", noise_level, non_negative=True)
        stdev = check_optional_number("stdev", stdev, non_negative=True)
        self.n_samples = n_samples
        self.noise_level = noise_level
        self.stdev = stdev
        self.noise = noise
        self.generator = generator

    def _scale(self, prepared: PreparedInputs) -> torch.Tensor:
        """The noise standard deviation of each example, ``[B]``."""
        x = prepared.features.detach()
        if self.stdev is not None:
            return torch.full((x.shape[0],), float(self.stdev), dtype=x.dtype, device=x.device)
        if prepared.token_mask is None:
            flat = x.reshape(x.shape[0], -1)
            return self.noise_level * (flat.amax(dim=1) - flat.amin(dim=1))
        # Text: the spread of the real tokens' embeddings (padding does not set the noise level).
        real = prepared.token_mask.bool().unsqueeze(-1).expand_as(x).reshape(x.shape[0], -1)
        flat = x.reshape(x.shape[0], -1)
        high = torch.where(real, flat, -torch.inf).amax(dim=1)
        low = torch.where(real, flat, torch.inf).amin(dim=1)
        return self.noise_level * torch.where(real.any(dim=1), high - low, torch.zeros_like(high))

    def _noise(self, prepared: PreparedInputs) -> torch.Tensor:
        x = prepared.features
        if self.noise is not None:
            expected = (x.shape[0], self.n_samples, *x.shape[1:])
            if tuple(self.noise.shape) != expected:
                raise ValueError(f"`noise` must have shape {expected}; got {tuple(self.noise.shape)}.")
            return self.noise.to(device=x.device, dtype=x.dtype)
        shape = (self.n_samples, *x.shape[1:])
        if prepared.streams is not None:
            # One stream per example; text draws for its real tokens only (axis 1 of [n_samples, T, D]).
            draws = prepared.streams.draw(
                "randn", shape, dtype=x.dtype, device=x.device, positions=prepared.token_mask, token_axis=1
            )
        else:
            draws = torch.randn((x.shape[0], *shape), generator=self.generator, dtype=x.dtype).to(x.device)
        return draws * self._scale(prepared).view(-1, *([1] * x.dim()))

    def per_feature(
        self, model: nn.Module, prepared: PreparedInputs, targets: torch.Tensor | None, *, create_graph: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Unreduced attributions (the input's shape) and the logits on the clean inputs."""
        x = prepared.features
        logits, targets = clean_logits_and_targets(model, prepared, targets)
        noisy = (x.unsqueeze(1) + self._noise(prepared)).reshape(-1, *x.shape[1:])
        expanded = prepared.repeat_interleave(self.n_samples).with_features(noisy)
        grad, _ = input_gradient(model, expanded, targets.repeat_interleave(self.n_samples), create_graph=create_graph)
        grad = grad.abs() if self.abs else grad
        return grad.view(x.shape[0], self.n_samples, *x.shape[1:]).mean(dim=1), logits


GRADIENT_METHODS: dict[str, type[Saliency]] = {
    cls.name: cls for cls in (Saliency, InputXGradient, IntegratedGradients, SmoothGrad)
}
