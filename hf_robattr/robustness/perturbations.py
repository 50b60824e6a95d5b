"""Perturbation balls: radius per example (or per token), uniform sampling, and projection.

Images are perturbed in pixel space with radius ``epsilon`` (the L-inf or L2 ball over the whole example) and kept
inside the valid input range. Text is perturbed in embedding space, token by token, with a radius relative to the
token's embedding norm: ``epsilon * ||e_t||_2`` for L2 and ``epsilon * ||e_t||_2 / sqrt(D)`` (the RMS entry) for
L-inf. Only the word tokens move (``PreparedInputs.word_mask``): padding never does, and neither do special tokens
([CLS], [SEP], ...) unless ``special_tokens="include"`` counts them as words (:data:`SPECIAL_TOKEN_MODES`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch

from hf_robattr.attribution.inputs import TEXT, PreparedInputs
from hf_robattr.warning_types import SpecialTokensWarning


NORMS = ("linf", "l2")


# The `special_tokens` setting: which tokens of a text are ranked, perturbed and measured.
# "exclude": the word tokens only (real tokens that are not special tokens); "include": every real token.
def _words_only(prepared: PreparedInputs) -> PreparedInputs:
    if not prepared.special_tokens_named:
        warnings.warn(
            "special_tokens='exclude', but nothing names this text's special tokens, so [CLS]/[SEP]/<s>/</s> are "
            "scored as words: the inputs hold no `special_tokens_mask`, and either they are `inputs_embeds` (which "
            "hold no ids to find them by) or neither the model config nor a tokenizer saved with the model names "
            "their ids. Tokenize with `return_special_tokens_mask=True` and pass the mask (with `inputs_embeds`, "
            "the only way), pass `tokenizer=` to the metric, or set the ids on the config (e.g. "
            "model.config.cls_token_id = tokenizer.cls_token_id; likewise sep_token_id).",
            SpecialTokensWarning,
            stacklevel=2,
        )
    return prepared


SPECIAL_TOKEN_MODES: dict[str, Callable[[PreparedInputs], PreparedInputs]] = {
    "exclude": _words_only,
    "include": PreparedInputs.including_special_tokens,
}


def scored_inputs(prepared: PreparedInputs, special_tokens: str) -> PreparedInputs:
    """``prepared`` with the word mask that the ``special_tokens`` setting asks for (images are unchanged)."""
    return SPECIAL_TOKEN_MODES[special_tokens](prepared)


def check_norm(norm: str) -> None:
    """Raise ``ValueError`` unless ``norm`` is a supported ball."""
    if norm not in NORMS:
        raise ValueError(f"unknown `norm` {norm!r}; expected one of {list(NORMS)}.")


def ball_radius(prepared: PreparedInputs, epsilon: float, norm: str) -> torch.Tensor:
    """Radius of each ball, shaped to broadcast against the features: ``[B, 1, ...]``, or ``[B, T, 1]`` for text (0
    at every token that is not a word, so those never move)."""
    check_norm(norm)
    x = prepared.features
    if prepared.kind != TEXT:
        return torch.full((x.shape[0],) + (1,) * (x.dim() - 1), float(epsilon), dtype=x.dtype, device=x.device)
    token_norm = x.detach().norm(dim=-1, keepdim=True)
    scale = 1.0 if norm == "l2" else 1.0 / math.sqrt(x.shape[-1])
    return epsilon * scale * token_norm * prepared.word_mask.unsqueeze(-1)


def _group_dims(prepared: PreparedInputs, tensor: torch.Tensor) -> tuple[int, ...]:
    # Dimensions that one ball spans: the embedding dim for text, everything after the batch dim for images.
    if prepared.kind == TEXT:
        return (-1,)
    return tuple(range(tensor.dim() - prepared.features.dim() + 1, tensor.dim()))


def sample_ball(
    prepared: PreparedInputs,
    radius: torch.Tensor,
    norm: str,
    num_samples: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``num_samples`` uniform draws from each ball: ``[B, num_samples, *feature_shape]`` offsets.

    Drawn on the CPU and moved to the features' device, so a seed gives the same noise on any device: from each
    example's own stream when ``prepared.streams`` is set (text: for its real tokens only), else from
    ``generator``.
    """
    x = prepared.features
    shape = (x.shape[0], num_samples, *x.shape[1:])
    radius = radius.unsqueeze(1)

    def draw(kind: str, draw_shape: tuple[int, ...]) -> torch.Tensor:
        if prepared.streams is not None:
            positions = prepared.token_mask if prepared.kind == TEXT else None
            return prepared.streams.draw(
                kind, draw_shape[1:], dtype=x.dtype, device=x.device, positions=positions, token_axis=1
            )
        sampler = torch.rand if kind == "rand" else torch.randn
        return sampler(draw_shape, generator=generator, dtype=x.dtype).to(x.device)

    if norm == "linf":
        return (draw("rand", shape) * 2 - 1) * radius
    direction = draw("randn", shape)
    dims = _group_dims(prepared, direction)
    direction = direction / torch.linalg.vector_norm(direction, dim=dims, keepdim=True).clamp_min(1e-12)
    size = math.prod(direction.shape[d] for d in dims)
    scale_shape = [1 if d in {dd % direction.dim() for dd in dims} else s for d, s in enumerate(direction.shape)]
    scale = draw("rand", tuple(scale_shape)) ** (1.0 / size)
    return direction * scale * radius


def project_ball(prepared: PreparedInputs, delta: torch.Tensor, radius: torch.Tensor, norm: str) -> torch.Tensor:
    """Project offsets ``[B, *feature_shape]`` back into their balls."""
    if norm == "linf":
        return torch.maximum(torch.minimum(delta, radius), -radius)
    dims = _group_dims(prepared, delta)
    length = torch.linalg.vector_norm(delta, dim=dims, keepdim=True)
    return delta * torch.clamp(radius / length.clamp_min(1e-12), max=1.0)


def steepest_step(prepared: PreparedInputs, grad: torch.Tensor, norm: str) -> torch.Tensor:
    """Unit steepest-descent direction of the ball's norm: ``sign(g)`` for L-inf, ``g / ||g||`` for L2."""
    if norm == "linf":
        return grad.sign()
    dims = _group_dims(prepared, grad)
    return grad / torch.linalg.vector_norm(grad, dim=dims, keepdim=True).clamp_min(1e-12)


def range_projector(
    prepared: PreparedInputs, input_range: tuple[float, float] | None
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function that clamps perturbed features into the valid input range.

    Images: ``input_range`` if given, else each example's own ``[min, max]`` (so normalised pixel values stay within
    what the processor produced). Text: no clamp (embedding space has no box).
    """
    if prepared.kind == TEXT:
        return lambda features: features
    x = prepared.features.detach()
    if input_range is not None:
        low, high = input_range
        if not low < high:
            raise ValueError(f"`input_range` must be (low, high) with low < high; got {input_range}.")
        return lambda features: features.clamp(low, high)
    flat = x.flatten(1)
    shape = (-1,) + (1,) * (x.dim() - 1)
    low, high = flat.amin(dim=1).view(shape), flat.amax(dim=1).view(shape)

    def clamp(features: torch.Tensor) -> torch.Tensor:
        extra = features.dim() - x.dim()
        lo = low.view(low.shape[0], *([1] * extra), *low.shape[1:])
        hi = high.view(high.shape[0], *([1] * extra), *high.shape[1:])
        return torch.maximum(torch.minimum(features, hi), lo)

    return clamp
