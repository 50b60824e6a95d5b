"""Explicit regularizers: the baselines that the implicit-regularization regime (plain SGD) is compared against.

Every regularizer works on a classification batch (a mapping of model kwargs with ``labels``) and on the model's
*input space*: pixels (``pixel_values``) for images, word embeddings (``inputs_embeds``) for text. With
``L = mean_i CE_i`` the data loss over a batch of ``B`` examples and ``lambda`` the weight, the objectives are:

- ``input_grad_norm``: ``L + lambda * mean_i ||d CE_i / d x_i||^2`` (double backprop).
- ``ig_norm``: ``L + lambda * mean_i ||IG_i||_1`` with ``IG_i = (x_i - b_i) * mean_k d CE_i / d x (b_i + k/m (x_i - b_i))``,
  ``k = 1..m``, and the baseline ``b_i = x_i + U(-eps, eps)`` drawn in the input ball (IG-NORM, Chen et al. 2019,
  with a random rather than attacked point). The ``m`` path points are processed ``chunk_size`` at a time; with
  more than one chunk the exact gradient is accumulated chunk by chunk (see :class:`IGNormRegularizer`).
- ``curvature``: ``L + lambda * mean_i ||g_i(x_i + h z_i) - g_i(x_i)||^2 / h^2`` with ``g_i = d CE_i / d x`` and
  ``z_i = sign(g_i) / ||sign(g_i)||`` held constant: a finite-difference input-Hessian penalty (CURE/SSR style).
- ``igr``: ``L + lambda * ||d L / d theta||^2`` (explicit gradient regularization, Barrett & Dherin 2021).
- ``sam``: the gradient of ``L(theta + rho g / ||g||)``, ``g = dL/dtheta``, with ``rho = lambda`` (Foret et al. 2021).

``none`` adds nothing: the implicit regime is the plain Trainer step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from hf_robattr.attribution import (
    PreparedInputs,
    forward_logits,
    prepare_inputs,
    twice_differentiable_attention,
)


__all__ = [
    "REGULARIZERS",
    "CurvatureRegularizer",
    "GradientNormRegularizer",
    "IGNormRegularizer",
    "InputGradNormRegularizer",
    "NoRegularizer",
    "Regularizer",
    "SAMRegularizer",
    "differentiable_inputs",
    "get_regularizer",
]


def first_order_context() -> AbstractContextManager:
    """Every SDPA kernel again (inside :func:`twice_differentiable_attention`), for passes that are differentiated
    once: the fused CPU kernel is about 20% faster per forward/backward of the tiny ViT than MATH."""
    return sdpa_kernel(
        [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION, SDPBackend.MATH]
    )


def differentiable_inputs(core: nn.Module, inputs: Mapping[str, Any]) -> PreparedInputs:
    """The batch as :class:`~hf_robattr.attribution.PreparedInputs` (``labels`` dropped) whose ``features`` stay on
    the autograd graph: pixels as given, or for text the word embeddings of ``input_ids`` computed here, so that
    gradients also reach the embedding matrix (``prepare_inputs`` itself returns them detached)."""
    batch = {key: value for key, value in inputs.items() if key != "labels"}
    if "input_ids" in batch and "inputs_embeds" not in batch:
        batch["inputs_embeds"] = core.get_input_embeddings()(batch.pop("input_ids"))
    prepared = prepare_inputs(core, batch)
    return prepared.with_features(batch[prepared.feature_key])


def _per_sample_sq_norm(t: torch.Tensor) -> torch.Tensor:
    return t.pow(2).flatten(1).sum(1)


class Regularizer:
    """An explicit regularizer used by :class:`~hf_robattr.training.RobAttrTrainer`.

    Subclasses set :attr:`name` and implement either :meth:`loss_and_penalty` (a differentiable penalty that the
    trainer adds in ``compute_loss``) or, when :meth:`owns_backward` is true, :meth:`step` (which runs its own
    backward passes from ``training_step``).

    ``model`` is what the main forward runs through (maybe DDP-wrapped; call it once per step); ``core`` is the
    unwrapped model, used for embeddings, parameters and any further forward passes.
    """

    name: ClassVar[str]
    needs_second_derivatives: ClassVar[bool] = True

    def __init__(self, weight: float = 0.0) -> None:
        if weight < 0:
            raise ValueError(f"regularizer_weight must be >= 0, got {weight}.")
        self.weight = float(weight)

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v}" for k, v in vars(self).items())
        return f"{type(self).__name__}({options})"

    def owns_backward(self) -> bool:
        """Whether this regularizer runs its own backward passes (then the trainer calls :meth:`step`)."""
        return False

    def objective(self, loss: torch.Tensor, penalty: torch.Tensor) -> torch.Tensor:
        """The objective minimised, from the data loss ``L`` and penalty ``R``: ``L + lambda R``."""
        return loss + self.weight * penalty

    def context(self) -> AbstractContextManager:
        """Context for the regularizer's computation (MATH attention when second derivatives are needed)."""
        return twice_differentiable_attention() if self.needs_second_derivatives else nullcontext()

    def loss_and_penalty(
        self, model: Callable[..., Any], inputs: Mapping[str, Any], *, core: nn.Module
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(L, R)``: the mean data loss and the (unweighted) penalty, both differentiable."""
        raise NotImplementedError

    def step(
        self,
        model: Callable[..., Any],
        inputs: Mapping[str, Any],
        *,
        core: nn.Module,
        backward: Callable[[torch.Tensor], None],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Accumulate the objective's gradient with ``backward`` (called last on the main forward's graph).

        Returns the detached ``(L, R)`` for logging.
        """
        loss, penalty = self.loss_and_penalty(model, inputs, core=core)
        backward(self.objective(loss, penalty))
        return loss.detach(), penalty.detach()


class NoRegularizer(Regularizer):
    """``none``: nothing added; the trainer runs the plain ``Trainer`` step (the implicit regime under SGD)."""

    name = "none"
    needs_second_derivatives = False

    def loss_and_penalty(self, model, inputs, *, core):
        loss = F.cross_entropy(forward_logits(model, differentiable_inputs(core, inputs)), inputs["labels"])
        return loss, loss.new_zeros(())


class InputGradNormRegularizer(Regularizer):
    """``input_grad_norm``: ``lambda * mean_i ||d CE_i / d x_i||^2`` by double backprop, on the main forward."""

    name = "input_grad_norm"

    def loss_and_penalty(self, model, inputs, *, core):
        prepared = differentiable_inputs(core, inputs)
        x = prepared.features
        if not x.requires_grad:
            x = x.detach().requires_grad_(True)
        losses = F.cross_entropy(forward_logits(model, prepared, x), inputs["labels"], reduction="none")
        (grad,) = torch.autograd.grad(losses.sum(), x, create_graph=True)
        return losses.mean(), _per_sample_sq_norm(grad).mean()


class CurvatureRegularizer(Regularizer):
    """``curvature``: ``lambda * mean_i ||g_i(x_i + h z_i) - g_i(x_i)||^2 / h^2``, ``z_i = sign(g_i)/||sign(g_i)||``.

    A finite-difference estimate of ``||H_x z||^2`` (input Hessian along the gradient-sign direction), as in
    CURE (Moosavi-Dezfooli et al. 2019); ``h`` is ``step``.
    """

    name = "curvature"

    def __init__(self, weight: float = 0.0, *, step: float = 0.1) -> None:
        super().__init__(weight)
        if step <= 0:
            raise ValueError(f"curvature_step must be > 0, got {step}.")
        self.step_size = float(step)

    def loss_and_penalty(self, model, inputs, *, core):
        prepared = differentiable_inputs(core, inputs)
        x = prepared.features
        if not x.requires_grad:
            x = x.detach().requires_grad_(True)
        labels = inputs["labels"]
        losses = F.cross_entropy(forward_logits(model, prepared, x), labels, reduction="none")
        (grad,) = torch.autograd.grad(losses.sum(), x, create_graph=True)
        direction = grad.detach().sign()
        norms = direction.flatten(1).norm(dim=1).clamp_min(1e-12)
        direction = direction / norms.view(-1, *([1] * (x.dim() - 1)))
        shifted = x + self.step_size * direction
        if not shifted.requires_grad:
            shifted.requires_grad_(True)
        shifted_losses = F.cross_entropy(forward_logits(core, prepared, shifted), labels, reduction="none")
        (shifted_grad,) = torch.autograd.grad(shifted_losses.sum(), shifted, create_graph=True)
        penalty = _per_sample_sq_norm(shifted_grad - grad) / self.step_size**2
        return losses.mean(), penalty.mean()


class GradientNormRegularizer(Regularizer):
    """``igr``: ``lambda * ||d L / d theta||^2`` over all trainable parameters (Barrett & Dherin 2021).

    Gradient descent with step ``h`` follows ``L + (h/4) ||grad L||^2`` implicitly; this makes it explicit.
    """

    name = "igr"

    def loss_and_penalty(self, model, inputs, *, core):
        loss = F.cross_entropy(forward_logits(model, differentiable_inputs(core, inputs)), inputs["labels"])
        params = [p for p in core.parameters() if p.requires_grad]
        grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
        penalty = sum(g.pow(2).sum() for g in grads if g is not None)
        return loss, penalty


class IGNormRegularizer(Regularizer):
    """``ig_norm``: ``lambda * mean_i ||IG_i||_1`` with ``m = steps`` path points from a random baseline.

    The baseline ``b = x + U(-epsilon, epsilon)`` is drawn with the global torch RNG (seeded by the Trainer).
    Path points ``b + (k/m)(x - b)``, ``k = 1..m``, are processed ``chunk_size`` at a time.

    - One chunk (``chunk_size >= steps``): one graph through all ``m`` points; autograd differentiates the L1 norm.
    - Several chunks: memory stays at one chunk's graph. A first pass without a graph gives ``IG`` and
      ``s = sign(IG)``; since ``d||IG||_1 = <s, dIG>`` and ``IG`` is a sum over points, a second pass
      back-propagates ``<s * (x - b), d CE / d x(point)> / m`` chunk by chunk. This is the exact gradient of the
      penalty (the same subgradient autograd takes), at the cost of one extra first-order pass over the points of
      every chunk but the first (whose graph is kept through the first pass: memory peaks at one chunk's graph plus
      one point's).
    """

    name = "ig_norm"

    def __init__(self, weight: float = 0.0, *, steps: int = 10, chunk_size: int = 10, epsilon: float = 0.1) -> None:
        super().__init__(weight)
        if steps < 1:
            raise ValueError(f"ig_steps must be >= 1, got {steps}.")
        if chunk_size < 1:
            raise ValueError(f"ig_chunk_size must be >= 1, got {chunk_size}.")
        if epsilon < 0:
            raise ValueError(f"ig_epsilon must be >= 0, got {epsilon}.")
        self.steps, self.chunk_size, self.epsilon = int(steps), int(chunk_size), float(epsilon)

    def __repr__(self) -> str:
        chunks = -(-self.steps // self.chunk_size)
        how = "one graph" if chunks == 1 else f"{chunks} chunks of <= {self.chunk_size} steps, exact chunked gradient"
        return f"IGNormRegularizer(weight={self.weight}, steps={self.steps}, epsilon={self.epsilon}: {how})"

    def owns_backward(self) -> bool:
        return self.chunk_size < self.steps

    def baseline_offset(self, x: torch.Tensor) -> torch.Tensor:
        """``b - x``: uniform noise in the L-inf ball of radius ``epsilon`` (global torch RNG)."""
        return (torch.rand_like(x) * 2 - 1) * self.epsilon

    def _chunks(self) -> Iterator[torch.Tensor]:
        alphas = torch.arange(1, self.steps + 1, dtype=torch.float64) / self.steps
        yield from alphas.split(self.chunk_size)

    def _path_gradients(
        self,
        core: nn.Module,
        prepared: PreparedInputs,
        delta: torch.Tensor,
        alphas: torch.Tensor,
        labels: torch.Tensor,
        *,
        create_graph: bool,
    ) -> torch.Tensor:
        """``d CE / d x`` at the points ``x + (1 - alpha) delta`` (``= b + alpha (x - b)``), ``[len(alphas), *x.shape]``.

        ``x`` is ``prepared.features``. One forward of ``B`` examples per alpha (on CPU this is faster than one
        forward of ``len(alphas) * B``).
        """
        x = prepared.features
        grads = []
        for alpha in alphas.tolist():
            point = x + (1 - alpha) * delta
            if not point.requires_grad:
                point.requires_grad_(True)
            loss = F.cross_entropy(forward_logits(core, prepared, point), labels, reduction="sum")
            grads.append(torch.autograd.grad(loss, point, create_graph=create_graph)[0])
        return torch.stack(grads)

    def loss_and_penalty(self, model, inputs, *, core):
        prepared = differentiable_inputs(core, inputs)
        labels = inputs["labels"]
        loss = F.cross_entropy(forward_logits(model, prepared), labels)
        delta = self.baseline_offset(prepared.features.detach())
        path = [self._path_gradients(core, prepared, delta, a, labels, create_graph=True) for a in self._chunks()]
        mean_grad = torch.cat(path).sum(0) / self.steps
        ig = -delta * mean_grad  # (x - b) * mean path gradient
        return loss, ig.abs().flatten(1).sum(1).mean()

    def step(self, model, inputs, *, core, backward):
        labels = inputs["labels"]
        prepared = differentiable_inputs(core, inputs)
        x = prepared.features
        delta = self.baseline_offset(x.detach())
        first, *rest_chunks = list(self._chunks())
        # The first chunk keeps its graph from the start, so only the other chunks need the extra first-order pass.
        kept = self._path_gradients(core, prepared, delta, first, labels, create_graph=True)
        mean_grad = kept.detach().sum(0)
        detached = prepared.with_features(x.detach())
        with first_order_context():
            for alphas in rest_chunks:
                mean_grad += self._path_gradients(core, detached, delta, alphas, labels, create_graph=False).sum(0)
        ig = -delta * mean_grad / self.steps
        penalty = ig.abs().flatten(1).sum(1).mean()
        direction = ig.sign() * -delta / (self.steps * x.shape[0])  # d||IG||_1 / d(mean_k grad_k), per point
        backward(self.weight * (kept * direction.unsqueeze(0)).sum())
        del kept
        for alphas in rest_chunks:
            fresh = differentiable_inputs(core, inputs)  # a fresh graph to the embeddings (text) for every chunk
            grads = self._path_gradients(core, fresh, delta, alphas, labels, create_graph=True)
            backward(self.weight * (grads * direction.unsqueeze(0)).sum())
        with first_order_context():
            loss = F.cross_entropy(forward_logits(model, differentiable_inputs(core, inputs)), labels)
            backward(loss)  # last: under DDP, this backward's gradient synchronisation averages the accumulated sum
        return loss.detach(), penalty.detach()


class SAMRegularizer(Regularizer):
    """``sam``: sharpness-aware minimisation with radius ``rho = regularizer_weight`` (Foret et al. 2021).

    One forward/backward on ``core`` gives ``g = dL/dtheta`` (the local batch gradient); the parameters move to
    ``theta + rho g/||g||``; the main forward/backward there gives the update direction; the parameters move back.
    The logged penalty is the sharpness ``L(theta + e) - L(theta)``.
    """

    name = "sam"
    needs_second_derivatives = False

    def owns_backward(self) -> bool:
        return True

    def objective(self, loss: torch.Tensor, penalty: torch.Tensor) -> torch.Tensor:
        """SAM minimises the perturbed loss ``L(theta + e) = L + sharpness``."""
        return loss + penalty

    def step(self, model, inputs, *, core, backward):
        params = [p for p in core.parameters() if p.requires_grad]
        loss = F.cross_entropy(forward_logits(core, differentiable_inputs(core, inputs)), inputs["labels"])
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
        norm = torch.sqrt(sum(g.pow(2).sum() for g in grads)).clamp_min(1e-12)
        offsets = [g * (self.weight / norm) for g in grads]
        with torch.no_grad():
            torch._foreach_add_(params, offsets)
        try:
            perturbed = F.cross_entropy(forward_logits(model, differentiable_inputs(core, inputs)), inputs["labels"])
            backward(perturbed)
        finally:
            with torch.no_grad():
                torch._foreach_sub_(params, offsets)
        return loss.detach(), (perturbed - loss).detach()


REGULARIZERS: dict[str, type[Regularizer]] = {
    cls.name: cls
    for cls in (
        NoRegularizer,
        InputGradNormRegularizer,
        IGNormRegularizer,
        CurvatureRegularizer,
        GradientNormRegularizer,
        SAMRegularizer,
    )
}


def get_regularizer(name: str) -> type[Regularizer]:
    """The regularizer class registered as ``name`` in :data:`REGULARIZERS`; an unknown name raises ``ValueError``
    listing the valid ones."""
    if name not in REGULARIZERS:
        raise ValueError(f"Unknown --regularizer {name!r}; expected one of {sorted(REGULARIZERS)}.")
    return REGULARIZERS[name]
