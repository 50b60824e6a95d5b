"""Attribution maps from a model and inputs: gradient methods, attention methods, one call shape."""

from .attention import ATTENTION_METHODS, AttentionRollout, GradAttention, RawAttention, attention_weights_enabled
from .base import AttributionMethod, Explanation
from .gradient import GRADIENT_METHODS, InputXGradient, IntegratedGradients, Saliency, SmoothGrad
from .inputs import PreparedInputs, prepare_inputs, unwrap_model
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
    "get_method",
    "make_method",
    "prepare_inputs",
    "softplus_smoothing",
    "unwrap_model",
]
