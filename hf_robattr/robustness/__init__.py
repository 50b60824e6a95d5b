"""Attribution robustness: perturbations and attacks, similarity and sensitivity measures, curvature diagnostics,
the scoring settings :class:`RobustnessConfig` and the public entry point :func:`evaluate_attribution_robustness`."""

from .arguments import RobustnessArguments
from .attacks import ATTACKS, Attack, AttackProblem, AttackResult, get_attack
from .batch_scoring import AttackedMaps, BatchScores, RobustnessScorer
from .config import RobustnessConfig
from .curvature import Estimate, attention_entropy, hessian_top_eigenvalue, hessian_trace, input_curvature
from .explained import ExplainedExamples, explain_examples
from .measures import MEASURES
from .perturbations import NORMS
from .sampled_sensitivity import sensitivity_family
from .scoring import evaluate_attribution_robustness
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
    "NORMS",
    "SENSITIVITY_MEASURES",
    "SIMILARITY_MEASURES",
    "Attack",
    "AttackProblem",
    "AttackResult",
    "AttackedMaps",
    "BatchScores",
    "Estimate",
    "ExplainedExamples",
    "RobustnessArguments",
    "RobustnessConfig",
    "RobustnessScorer",
    "attention_entropy",
    "center_of_mass_shift",
    "cosine",
    "evaluate_attribution_robustness",
    "explain_examples",
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
