"""Perturbations that keep the predicted label: random draws and PGD attacks on the attribution map.

PGD attacks (Ghorbani et al. 2019) minimise an objective of the perturbed map by projected gradient steps through the
attribution method (second derivatives, hence ``create_graph`` and MATH attention). Every visited point is checked
against the clean prediction: the attack returns, per example, the label-preserving point with the lowest objective
over all steps and restarts, so the worst case over restarts is what gets scored. An example where no perturbed point
kept the label is returned unperturbed and flagged.

Objectives (lower = stronger attack), on ``p = |a'| / sum |a'|`` (text: over the word tokens only, see
``PreparedInputs.word_mask``; special tokens are neither ranked nor counted in the mass):

- ``topk``: mass of ``p`` on the clean map's top-k features;
- ``mass_center``: minus the distance between the centres of mass of ``|a'|`` and ``|a|``;
- ``targeted``: minus the mass of ``p`` on a target region (default: the clean map's k weakest features; pass
  ``target_region``, a boolean map, to choose; for text its special tokens carry no mass).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from hf_robattr.attribution import AttributionMethod, PreparedInputs, twice_differentiable_attention

from .perturbations import ball_radius, project_ball, range_projector, sample_ball, steepest_step
from .similarity import center_of_mass, masked_topk_mask, resolve_k, token_counts, topk_mask


class AttackSettings(Protocol):
    """What an attack reads of its settings. :class:`~hf_robattr.RobustnessConfig` is one; the attacks do not import
    it (the config validates attack names against :data:`ATTACKS`, so the import goes one way)."""

    epsilon: float | str | None
    norm: str
    num_steps: int
    step_size: float | None
    k: int | float
    restarts: int
    input_range: tuple[float, float] | None

    def resolved(self, modality: str) -> AttackSettings:
        """The settings with the default radius made explicit for ``modality``."""
        ...


@dataclass(frozen=True)
class AttackProblem:
    """Everything an attack works on, in one object.

    Attributes:
        model / method: the classifier and the attribution method whose maps are attacked.
        prepared: the inputs (random starts come from ``prepared.streams``, one stream per example, if set).
        targets: the classes explained; labels: the clean predictions every accepted point must keep.
        clean_maps: the maps at the clean inputs.
        config: the settings the attack reads (``epsilon``, ``norm``, ``num_steps``, ``step_size``, ``k``,
            ``restarts``, ``input_range``); the default radius (``epsilon=None``) is resolved for the inputs'
            modality, and ``epsilon="auto"`` is refused (the scorer calibrates it before attacking).
        target_region: boolean map for the targeted attack (default: the clean map's k weakest features).
        generator: where random starts come from when ``prepared`` has no streams.
    """

    model: nn.Module
    method: AttributionMethod
    prepared: PreparedInputs
    targets: torch.Tensor
    labels: torch.Tensor
    clean_maps: torch.Tensor
    config: AttackSettings
    target_region: torch.Tensor | None = None
    generator: torch.Generator | None = None

    def __post_init__(self) -> None:
        if self.config.epsilon == "auto":
            raise ValueError(
                "`config.epsilon='auto'` must be calibrated before an attack: score with "
                "evaluate_attribution_robustness (which calibrates it), or pass a number."
            )
        object.__setattr__(self, "config", self.config.resolved(self.prepared.kind))


@dataclass(frozen=True)
class AttackResult:
    """Per example: the chosen perturbed features and their maps, whether a label-preserving perturbed point was
    found (``perturbed``), and whether any visited point changed the predicted label (``label_changed``)."""

    features: torch.Tensor
    maps: torch.Tensor
    perturbed: torch.Tensor
    label_changed: torch.Tensor


def _mass(maps: torch.Tensor) -> torch.Tensor:
    flat = maps.reshape(maps.shape[0], -1).abs()
    return flat / flat.sum(dim=1, keepdim=True).clamp_min(1e-12)


Objective = Callable[[torch.Tensor], torch.Tensor]

# Default PGD step length, as a multiple of epsilon / num_steps (Madry et al. 2018 use 2.5): enough for the last steps
# to reach the ball's boundary from anywhere inside it.
DEFAULT_STEP_FACTOR = 2.5


def _top_features(maps: torch.Tensor, k: int | float, word_mask: torch.Tensor | None) -> torch.Tensor:
    """Each map's ``k`` largest features; for text ``k`` is counted per text over its word tokens (a fraction of
    them, at least 1, or an integer cut to their number) and only word tokens are chosen."""
    if word_mask is None:
        return topk_mask(maps, resolve_k(k, maps[0].numel()))
    return masked_topk_mask(maps, token_counts(k, word_mask), word_mask)


def topk_objective(problem: AttackProblem) -> Objective:
    """Mass of the perturbed map on the clean top-k features."""
    prepared = problem.prepared
    clean = prepared.words_only(problem.clean_maps.detach())
    mask = _top_features(clean.abs(), problem.config.k, prepared.word_mask).to(clean.dtype)
    return lambda maps: (_mass(prepared.words_only(maps)) * mask).sum(dim=1)


def mass_center_objective(problem: AttackProblem) -> Objective:
    """Minus the centre-of-mass displacement."""
    prepared = problem.prepared
    center = center_of_mass(prepared.words_only(problem.clean_maps.detach()))
    return lambda maps: -(center_of_mass(prepared.words_only(maps)) - center).norm(dim=1)


def examples_region(
    region: torch.Tensor | None, example_ids: torch.Tensor, clean_maps: torch.Tensor
) -> torch.Tensor | None:
    """The targeted attack's region for some examples (``example_ids``: their indices in the whole input): the one
    map as given, or, with one map per example of the whole input (one more dimension than a map), theirs."""
    if region is None or region.dim() != clean_maps.dim():
        return region
    if len(example_ids) and int(example_ids.max()) >= region.shape[0]:
        raise ValueError(
            f"`target_region` holds {region.shape[0]} maps (one per example) but `inputs` has an example at index "
            f"{int(example_ids.max())}: pass one map of shape {tuple(clean_maps.shape[1:])} for all examples, or one "
            "per example of the whole input."
        )
    return region[example_ids.to(region.device)]


def targeted_objective(problem: AttackProblem) -> Objective:
    """Minus the mass on the target region."""
    prepared = problem.prepared
    clean = prepared.words_only(problem.clean_maps.detach())
    if problem.target_region is not None:
        region = problem.target_region.to(clean.device).bool()
        if region.shape != clean.shape[1:] and region.shape != clean.shape:
            raise ValueError(
                f"`target_region` must be a boolean map of shape {tuple(clean.shape[1:])} (one map) or "
                f"{tuple(clean.shape)} (one per example); got {tuple(region.shape)}."
            )
        region = region.expand_as(clean).reshape(clean.shape[0], -1)
    else:
        region = _top_features(-clean.abs(), problem.config.k, prepared.word_mask)
    region = region.to(clean.dtype)
    return lambda maps: -(_mass(prepared.words_only(maps)) * region).sum(dim=1)


@dataclass(frozen=True)
class SearchSpace:
    """A problem with what every search step needs: the balls' radii, the clamp into the valid input range, and
    the objective to lower."""

    problem: AttackProblem
    radius: torch.Tensor
    clamp: Callable[[torch.Tensor], torch.Tensor]
    objective: Objective


class Attack:
    """Base class: search the ball around each example for a label-preserving point with a low objective."""

    objective_factory: Callable[[AttackProblem], Objective] = staticmethod(topk_objective)

    def __call__(self, problem: AttackProblem) -> AttackResult:
        """The worst label-preserving point over ``config.restarts`` searches, per example."""
        prepared, config = problem.prepared, problem.config
        radius = ball_radius(prepared, config.epsilon, config.norm)
        space = SearchSpace(
            problem, radius, range_projector(prepared, config.input_range), type(self).objective_factory(problem)
        )
        best = BestPoints(prepared.features.detach(), problem.clean_maps.detach())
        # PGD differentiates through the attribution: softmax attention must run on the MATH backend.
        with twice_differentiable_attention():
            for _ in range(config.restarts):
                start = sample_ball(prepared, radius, config.norm, 1, problem.generator).squeeze(1)
                self.search(space, start, best)
        return AttackResult(best.features, best.maps, best.found, best.changed)

    def search(self, space: SearchSpace, start: torch.Tensor, best: BestPoints) -> None:
        """Visit points of the ball from ``start``; offer each, with its map and label check, to ``best``."""
        raise NotImplementedError


class BestPoints:
    """Tracks, per example, the label-preserving point with the lowest objective."""

    def __init__(self, features: torch.Tensor, maps: torch.Tensor) -> None:
        batch = features.shape[0]
        self.features, self.maps = features.clone(), maps.clone()
        self.score = maps.new_full((batch,), torch.inf)
        self.found = torch.zeros(batch, dtype=torch.bool, device=features.device)
        self.changed = torch.zeros_like(self.found)

    def offer(
        self, features: torch.Tensor, maps: torch.Tensor, score: torch.Tensor, keeps_label: torch.Tensor
    ) -> None:
        """Record a visited point; it replaces the current one where it keeps the label and scores lower."""
        self.changed |= ~keeps_label
        better = keeps_label & (score.detach() < self.score)
        self.score = torch.where(better, score.detach().to(self.score.dtype), self.score)
        self.found |= better
        shape = (-1,) + (1,) * (features.dim() - 1)
        self.features = torch.where(better.view(shape), features.detach(), self.features)
        shape = (-1,) + (1,) * (maps.dim() - 1)
        self.maps = torch.where(better.view(shape), maps.detach(), self.maps)


class RandomAttack(Attack):
    """One uniform draw from the ball per restart; the worst label-preserving draw (by the top-k objective) wins."""

    def search(self, space: SearchSpace, start: torch.Tensor, best: BestPoints) -> None:
        """Score the random start itself."""
        problem = space.problem
        features = space.clamp(problem.prepared.features.detach() + start)
        with torch.no_grad():
            result = problem.method.explain(problem.model, problem.prepared.with_features(features), problem.targets)
        best.offer(features, result.maps, space.objective(result.maps), result.logits.argmax(dim=1) == problem.labels)


class PGDAttack(Attack):
    """Projected gradient descent on the objective from a random start, ``num_steps`` steps."""

    def search(self, space: SearchSpace, start: torch.Tensor, best: BestPoints) -> None:
        """``num_steps`` projected steps from ``start``; every visited point is offered to ``best``."""
        problem, config = space.problem, space.problem.config
        prepared = problem.prepared
        x = prepared.features.detach()
        step = (config.step_size or DEFAULT_STEP_FACTOR * config.epsilon / config.num_steps) / config.epsilon
        delta = space.clamp(x + start) - x
        for index in range(config.num_steps + 1):
            last = index == config.num_steps
            delta = delta.detach().requires_grad_(not last)
            features = x + delta
            with torch.enable_grad() if not last else torch.no_grad():
                result = problem.method.explain(
                    problem.model, prepared.with_features(features), problem.targets, create_graph=not last
                )
                score = space.objective(result.maps)
            best.offer(features, result.maps, score, result.logits.argmax(dim=1) == problem.labels)
            if last:
                break
            if score.requires_grad:
                (grad,) = torch.autograd.grad(score.sum(), delta)
            else:
                # The map does not depend on the input (e.g. saliency of a linear model): nothing to follow.
                grad = torch.zeros_like(delta)
            delta = delta - step * space.radius * steepest_step(prepared, grad, config.norm)
            delta = project_ball(prepared, delta, space.radius, config.norm)
            delta = space.clamp(x + delta) - x


class TopKAttack(PGDAttack):
    """PGD lowering the perturbed map's mass on the clean top-k features."""


class MassCenterAttack(PGDAttack):
    """PGD moving the perturbed map's centre of mass away from the clean one."""

    objective_factory = staticmethod(mass_center_objective)


class TargetedAttack(PGDAttack):
    """PGD pushing the perturbed map's mass into a target region."""

    objective_factory = staticmethod(targeted_objective)


ATTACKS: dict[str, type[Attack]] = {
    "random": RandomAttack,
    "topk": TopKAttack,
    "mass_center": MassCenterAttack,
    "targeted": TargetedAttack,
}


def get_attack(name: str) -> type[Attack]:
    """The attack class registered as ``name`` (``ValueError`` listing the names if there is none)."""
    if not isinstance(name, str) or name not in ATTACKS:
        raise ValueError(f"unknown `attack` {name!r}; expected one of {sorted(ATTACKS)}.")
    return ATTACKS[name]
