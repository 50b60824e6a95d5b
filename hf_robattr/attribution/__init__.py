"""Attribution maps from a model and inputs: gradient methods, attention methods, one call shape."""

from .attention import ATTENTION_METHODS, AttentionRollout, GradAttention, RawAttention, attention_weights_enabled
from .base import AttributionMethod, Explanation
from .gradient import GRADIENT_METHODS, InputXGradient, IntegratedGradients, Saliency, SmoothGrad
from .inputs import (
    PreparedInputs,
    forward_logits,
    frozen_eval,
    prepare_inputs,
    twice_differentiable_attention,
    unwrap_model,
)
from .methods import ATTRIBUTION_METHODS, attribute, explain, get_method, make_method
from .smoothing import softplus_smoothing


__all__ = [
    "ATTENTION_METHODS",
    "ATTRIBUTION_METHODS",
    "GRADIENT_METHODS",
    "AttentionRollout",
    "AttributionMethod",
    "Explanation",
    "GradAttention",
    "InputXGradient",
    "IntegratedGradients",
    "PreparedInputs",
    "RawAttention",
    "Saliency",
    "SmoothGrad",
    "attention_weights_enabled",
    "attribute",
    "explain",
    "forward_logits",
    "frozen_eval",
    "get_method",
    "make_method",
    "prepare_inputs",
    "softplus_smoothing",
    "twice_differentiable_attention",
    "unwrap_model",
]
