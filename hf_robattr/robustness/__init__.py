"""Attribution robustness: perturbations and attacks, similarity and sensitivity measures, curvature diagnostics,
and the public entry point :func:`evaluate_attribution_robustness`."""

from .attacks import ATTACKS, AttackResult, AttackSettings, get_attack
from .curvature import Estimate, attention_entropy, hessian_top_eigenvalue, hessian_trace, input_curvature
from .evaluate import MEASURES, evaluate_attribution_robustness
from .family import sensitivity_family
from .sensitivity import SENSITIVITY_MEASURES, sensitivity_measures
from .similarity import (
    SIMILARITY_MEASURES,
    center_of_mass_shift,
    cosine,
    kendall_tau,
    pearson,
    spearman,
    topk_intersection,
)


__all__ = [
    "ATTACKS",
    "MEASURES",
    "SENSITIVITY_MEASURES",
    "SIMILARITY_MEASURES",
    "AttackResult",
    "AttackSettings",
    "Estimate",
    "attention_entropy",
    "center_of_mass_shift",
    "cosine",
    "evaluate_attribution_robustness",
    "get_attack",
    "hessian_top_eigenvalue",
    "hessian_trace",
    "input_curvature",
    "kendall_tau",
    "pearson",
    "sensitivity_family",
    "sensitivity_measures",
    "spearman",
    "topk_intersection",
]
