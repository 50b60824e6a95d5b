"""Measure one trained model of the study: predictions, attention preconditions and robustness per example.

Everything is computed on an :class:`EvalPool`, the first ``eval_pool`` examples of a split, the same for every
model of an arm, and returned per example (NaN where an example is left out) so that the analysis can restrict
every model to one common set afterwards.

Robustness values are keyed ``"{attack}|{epsilon:g}|{method}|{measure}"`` (:func:`value_key`): ``topk`` is the
top-k PGD attack, ``noise`` the random baseline (the worst of as many uniform draws as the attack visits points).
Gradient maps of images are also pooled to the model's patches (``patch_topk_intersection``,
``patch_kendall_tau``), so that gradient and attention families compare at the same k. The scorer's per-example
baselines are stored beside each measure (``...|topk_intersection@chance``, ``...|topk_intersection@noise``: the
clean map against its shuffled copy, and the worst uniform draw from the ball; see
:mod:`hf_robattr.robustness.saturation`), and :func:`saturation_flags` says which measures cannot rank models.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import torch
from torch.nn import functional as F

from hf_robattr.attribution import frozen_eval, prepare_inputs
from hf_robattr.attribution.attention import forward_with_attentions
from hf_robattr.robustness import (
    RobustnessConfig,
    RobustnessScorer,
    kendall_tau,
    topk_intersection,
)
from hf_robattr.robustness.saturation import BASELINES, measure_saturation

from .pool import EvalPool
from .protocol import ArmProtocol


__all__ = [
    "ATTACKS",
    "MEASURES",
    "POOLED_MEASURES",
    "attention_change",
    "attention_preconditions_met",
    "preconditions",
    "predictions",
    "robustness",
    "saturation_flags",
    "value_key",
]

ATTACKS = ("topk", "noise")
MEASURES = ("topk_intersection", "kendall_tau", "prediction_change_rate")
MAIN_ONLY_MEASURES = ("max_sensitivity",)
POOLED_MEASURES = ("patch_topk_intersection", "patch_kendall_tau")


def value_key(attack: str, epsilon: float, method: str, measure: str) -> str:
    """The key of one robustness value in a run record."""
    return f"{attack}|{epsilon:g}|{method}|{measure}"


@torch.no_grad()
def predictions(model: torch.nn.Module, inputs: Mapping[str, torch.Tensor], batch_size: int = 128) -> torch.Tensor:
    """Predicted classes ``[N]`` of a batch of model inputs, in eval mode."""
    size = next(iter(inputs.values())).shape[0]
    out = []
    with frozen_eval(model):
        for start in range(0, size, batch_size):
            part = {k: v[start : start + batch_size] for k, v in inputs.items()}
            out.append(model(**part).logits.argmax(dim=-1).cpu())
    return torch.cat(out)


def _evidence_sets(pool: EvalPool, protocol: ArmProtocol, patches: int) -> torch.Tensor | None:
    """Ground truth on the attention map's positions: patches covered at least half by the evidence (images), or
    rationale tokens (text); ``None`` without evidence."""
    if pool.evidence is None:
        return None
    if protocol.model == "vit":
        size = pool.evidence.shape[-1] // math.isqrt(patches)
        return F.avg_pool2d(pool.evidence.float().unsqueeze(1), size).flatten(1) >= 0.5
    return pool.evidence.bool()


@torch.no_grad()
def preconditions(model: torch.nn.Module, pool: EvalPool, protocol: ArmProtocol) -> dict[str, float]:
    """Whether the model's attention means something, on the pool: the last layer's [CLS]-row entropy relative to
    its maximum ``log N`` (1 = uniform), the row's coefficient of variation (std / mean over keys, per head; 0 =
    uniform), and raw attention's evidence recall (share of the evidence positions among the row's top-|evidence|
    positions, head-averaged row) with its chance rate (|evidence| / positions). Means over examples (and heads)."""
    with frozen_eval(model):
        prepared = prepare_inputs(model, {k: v for k, v in pool.inputs.items()})
        _, attentions = forward_with_attentions(model, prepared, prepared.features)
    row = attentions[-1][:, :, 0, :].float()  # [B, heads, N]
    keys = torch.ones(row.shape[0], row.shape[-1], dtype=torch.bool)
    if prepared.token_mask is not None:
        keys = prepared.token_mask.bool().cpu()
    entropy_ratios, variations = [], []
    for i in range(row.shape[0]):
        weights = row[i][:, keys[i]]
        weights = weights / weights.sum(dim=-1, keepdim=True)
        entropy = -(weights * weights.clamp_min(1e-30).log()).sum(dim=-1)
        entropy_ratios.append((entropy / math.log(weights.shape[-1])).mean().item())
        variations.append((weights.std(dim=-1, correction=0) / weights.mean(dim=-1)).mean().item())
    values = {
        "cls_entropy_ratio": sum(entropy_ratios) / len(entropy_ratios),
        "cls_cv": sum(variations) / len(variations),
        "evidence_recall": math.nan,
        "evidence_chance": math.nan,
    }
    positions = row.mean(dim=1)[:, 1:]  # head-averaged row without [CLS]
    evidence = _evidence_sets(pool, protocol, positions.shape[1])
    if evidence is not None:
        evidence = evidence[:, 1:] if protocol.model == "bert" else evidence
        candidates = keys[:, 1:].clone()
        if protocol.model == "bert":  # the last real token is [SEP]
            candidates[torch.arange(len(candidates)), keys.sum(dim=1) - 2] = False
        recalls, chances = [], []
        for i in range(len(positions)):
            truth = evidence[i] & candidates[i]
            count = int(truth.sum())
            if count == 0:
                continue
            scores = positions[i].masked_fill(~candidates[i], -math.inf)
            top = scores.topk(count).indices
            recalls.append(truth[top].float().mean().item())
            chances.append(count / int(candidates[i].sum()))
        if recalls:
            values["evidence_recall"] = sum(recalls) / len(recalls)
            values["evidence_chance"] = sum(chances) / len(chances)
    return values


def _pool_to_patches(maps: torch.Tensor, patch_size: int) -> torch.Tensor:
    return F.avg_pool2d(maps.abs().unsqueeze(1), patch_size).squeeze(1) * patch_size**2


def _configs(protocol: ArmProtocol, seed: int) -> list[tuple[str, float, RobustnessConfig, int]]:
    """(attack name, epsilon, config, number of pool examples) of every scoring pass."""
    passes = []
    common = {
        "k": protocol.topk,
        "batch_size": protocol.robustness_batch_size,
        "input_range": protocol.input_range,
        "seed": seed,
        "num_samples": protocol.sensitivity_samples,
    }
    draws = (protocol.attack_steps + 1) * protocol.attack_restarts
    for epsilon in protocol.epsilons:
        main = epsilon == protocol.main_epsilon
        methods = [m for m in (protocol.methods if main else protocol.sweep_methods) if m != "integrated_gradients"]
        groups = [(tuple(methods), None)]
        if main and "integrated_gradients" in protocol.methods:
            groups.append((("integrated_gradients",), protocol.ig_examples))
        for methods, limit in groups:
            if not methods:
                continue
            options = {"method_kwargs": {"integrated_gradients": {"n_steps": protocol.ig_steps}}} if limit else {}
            measures = (*MEASURES, *MAIN_ONLY_MEASURES) if main else MEASURES
            attack = RobustnessConfig(
                methods=methods,
                attack="topk",
                epsilon=epsilon,
                num_steps=protocol.attack_steps,
                restarts=protocol.attack_restarts,
                measures=measures,
                **common,
                **options,
            )
            noise = attack.replace(attack="random", restarts=draws, measures=MEASURES)
            passes += [("topk", epsilon, attack, limit), ("noise", epsilon, noise, limit)]
    return passes


def _saturation_configs(protocol: ArmProtocol, seed: int) -> list[tuple[str, float, RobustnessConfig, int]]:
    """The attack at the main radius under each budget of ``saturation_budgets`` (its measure names carry the
    budget: ``topk_intersection@20x3``)."""
    return [
        (
            f"@{steps}x{restarts}",
            protocol.main_epsilon,
            RobustnessConfig(
                methods=protocol.saturation_methods,
                attack="topk",
                epsilon=protocol.main_epsilon,
                num_steps=steps,
                restarts=restarts,
                measures=("topk_intersection",),
                k=protocol.topk,
                batch_size=protocol.robustness_batch_size,
                input_range=protocol.input_range,
                seed=seed,
                num_samples=protocol.sensitivity_samples,
            ),
            protocol.saturation_examples,
        )
        for steps, restarts in protocol.saturation_budgets
    ]


def robustness(
    model: torch.nn.Module, pool: EvalPool, protocol: ArmProtocol, seed: int, saturation: bool = False
) -> dict[str, list[float]]:
    """Per-example robustness values of every scoring pass (see the module docstring), true labels as targets;
    with ``saturation``, also the attack under the protocol's saturation budgets."""
    values: dict[str, list[float]] = {}
    pooled = protocol.model == "vit"
    passes = _configs(protocol, seed) + (_saturation_configs(protocol, seed) if saturation else [])
    for attack, epsilon, config, limit in passes:
        budget = attack if attack.startswith("@") else ""
        attack = "topk" if budget else attack
        part = pool.select(limit) if limit else pool
        batch = config.batch_size
        collected: dict[str, list[torch.Tensor]] = {}
        with RobustnessScorer(model, config) as scorer:
            for start in range(0, len(part), batch):
                inputs = {k: v[start : start + batch] for k, v in part.inputs.items()}
                ids = torch.arange(start, min(start + batch, len(part)))
                scores = scorer.score_batch(
                    inputs, targets=part.labels[ids], example_ids=ids, keep_maps=pooled and not budget
                )
                for key, value in scores.per_sample.items():
                    method, measure = key.split("/", 1)
                    collected.setdefault(value_key(attack, epsilon, method, measure + budget), []).append(
                        value.double()
                    )
                for method, maps in scores.maps.items() if not budget else ():
                    if method not in protocol.gradient_methods:
                        continue  # attention maps are at patch level already
                    clean = _pool_to_patches(maps.clean_maps.detach().float(), protocol.patch_size)
                    attacked = _pool_to_patches(maps.attacked_maps.detach().float(), protocol.patch_size)
                    keep = maps.perturbed & ~scores.skipped[method].to(maps.perturbed.device)
                    for name, value in (
                        ("patch_topk_intersection", topk_intersection(clean, attacked, protocol.topk)),
                        ("patch_kendall_tau", kendall_tau(clean, attacked)),
                    ):
                        value = torch.where(keep, value.double(), torch.nan).cpu()
                        collected.setdefault(value_key(attack, epsilon, method, name), []).append(value)
        values.update({key: torch.cat(parts).tolist() for key, parts in collected.items()})
    return values


_BUDGET = re.compile(r"^\d+x\d+$")  # the suffix of a saturation-budget measure, e.g. topk_intersection@20x3


def saturation_flags(values: Mapping[str, list[float]]) -> dict[str, dict[str, Any]]:
    """``{value_key: saturation}`` for every stored measure that cannot rank models on this pool
    (:func:`hf_robattr.robustness.saturation.find_saturation` on the per-example values and their ``@chance`` /
    ``@noise`` baselines; ``saturation`` is ``{"kind", "examples", "scored", "mean", "baseline", "why",
    "judged"}``). Measures of the attack passes only: not the noise pass (a random attack, its own baseline) nor the
    saturation-budget passes."""
    scores: dict[str, torch.Tensor] = {}
    baselines: dict[str, dict[str, torch.Tensor]] = {}
    for key, per_example in values.items():
        if key.split("|", 1)[0] != "topk":
            continue
        measure, *suffix = key.split("|")[-1].split("@")
        if any(_BUDGET.match(part) for part in suffix) or len(suffix) > 1:
            continue
        base = key.rsplit("|", 1)[0] + "|" + measure
        tensor = torch.tensor(per_example, dtype=torch.float64)
        if not suffix:
            scores[base] = tensor
        elif suffix[0] in BASELINES:
            baselines.setdefault(base, {})[suffix[0]] = tensor
    flags = {}
    for key, tensor in scores.items():
        flag = measure_saturation(key.rsplit("|", 1)[-1], tensor, baselines.get(key))
        if flag is not None:
            flags[key] = flag.to_dict()
    return flags


def attention_change(trained: Mapping[str, float], untrained: Mapping[str, float]) -> tuple[float, float]:
    """How a trained model's attention checks moved from the model it started from: the drop of its last-layer
    [CLS]-row entropy ratio and the gain of raw attention's evidence recall (NaN where either lacks it)."""
    drop = untrained["cls_entropy_ratio"] - trained["cls_entropy_ratio"]
    recall, reference = trained.get("evidence_recall", math.nan), untrained.get("evidence_recall", math.nan)
    return drop, recall - reference


def attention_preconditions_met(
    trained: Mapping[str, float],
    untrained: Mapping[str, float],
    *,
    min_entropy_drop: float,
    min_recall_gain: float,
) -> bool:
    """Whether a trained model's attention means something, judged against the model it started from (same seed):
    its last-layer [CLS]-row entropy ratio is at least ``min_entropy_drop`` below the untrained model's, and, where
    the pool has evidence, raw attention's evidence recall is at least ``min_recall_gain`` above the untrained
    model's. Absolute thresholds do not work (the v3 pilot): near-uniform untrained rows still rank a salient
    marker high, and trained kernel rows stay flat while they rank the evidence first. An untrained model judged
    against itself, or against another untrained model, fails."""
    drop, gain = attention_change(trained, untrained)
    if not drop >= min_entropy_drop:
        return False
    if math.isnan(gain):
        return True  # no evidence annotations: entropy alone
    return gain >= min_recall_gain
