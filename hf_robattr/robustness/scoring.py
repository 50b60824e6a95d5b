"""The public entry point: score how robust a model's attributions are, as plain numbers."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from hf_robattr.attribution.argument_checks import check_targets
from hf_robattr.attribution.inputs import IMAGE, model_modality

from .batch_scoring import RobustnessScorer
from .batching import count_batches, iter_batches, num_examples
from .calibration import AUTO, calibrate_epsilon
from .config import RobustnessConfig
from .distributed import process_group, run_on_every_rank
from .saturation import find_saturation, split_baselines, warn_saturation
from .summary import skip_counts, summarise


def evaluate_attribution_robustness(
    model: nn.Module,
    inputs: Any,
    config: RobustnessConfig | Mapping[str, Any] | None = None,
    *,
    targets: torch.Tensor | Sequence[int] | int | None = None,
    target_region: torch.Tensor | None = None,
    device: torch.device | str | None = None,
    return_per_sample: bool = False,
    progress: bool = True,
    **overrides: Any,
) -> dict[str, Any]:
    """Score the robustness of ``model``'s attributions on ``inputs``.

    For every batch and every attribution method: the clean map is compared with the map after the attack (worst
    case over ``restarts``, label preserved) using the similarity measures, and ``num_samples`` uniform draws from
    the ``epsilon`` ball give the sensitivity family. Similarity measures use the maps' magnitudes ``|a|``.

    Under an initialised ``torch.distributed`` process group (``accelerate launch``, ``torchrun``) every rank scores
    its own shard of the examples (every ``world_size``-th one) and all ranks return the same result, equal to a
    one-process run. Pass the same ``inputs`` on every rank.

    Args:
        model: a transformers image/text classifier or a plain module mapping pixel values to logits (DDP and
            ``torch.compile`` wrappers are unwrapped).
        inputs: pixel values ``[N, C, H, W]``; a tokenized mapping (``input_ids`` or ``inputs_embeds``,
            ``attention_mask``, optionally the tokenizer's ``special_tokens_mask``, which tells word tokens from
            special ones and is the only way to with ``inputs_embeds``); a
            ``datasets.Dataset`` with such columns; or an iterable of such batches.
        config: the scoring settings (:class:`RobustnessConfig`, or a dict of its fields; default: the defaults).
        targets: class indices ``[N]`` to explain, or one index for all (default: the model's predictions).
        target_region: boolean map for the ``targeted`` attack (default: the clean map's k weakest features).
        device: where to compute (default: the model's device); the model is moved back afterwards.
        return_per_sample: also return ``"per_sample"``: ``{key: [value per example]}`` (NaN = excluded).
        progress: show a tqdm bar over batches (on rank 0).
        **overrides: settings of :class:`RobustnessConfig` that replace those of ``config`` (``methods``,
            ``attack``, ``epsilon``, ``norm``, ``num_steps``, ``step_size``, ``restarts``, ``k``, ``num_samples``,
            ``batch_size``, ``input_range``, ``method_kwargs``, ``measures``, ``smoothing_beta``, ``special_tokens``,
            ``seed``).

    Returns:
        A flat dict: ``"{method}/{measure}"`` (mean over examples, excluded ones left out) and
        ``"{method}/{measure}_std"`` as floats, plus ``"num_samples"`` (examples given), ``"num_skipped"`` (examples
        left out of at least one method) and ``"{method}/num_skipped"``. Examples that cannot be perturbed (an image
        whose valid range has zero width, e.g. a constant image under the default per-image range; a text without
        a word token, e.g. padding and [CLS]/[SEP] only) and examples whose clean map is all zeros are left out of every measure of the method, with
        one warning; ``ValueError`` if a method has no example left. ``prediction_change_rate`` is the fraction of
        examples for which the attack met a label-changing point; similarity measures also leave out examples where
        no label-preserving perturbed point was found. Use :func:`~hf_robattr.results_io.json_safe` before writing the dict to JSON.

        Two nested entries say whether each measure can rank models on these inputs
        (:mod:`hf_robattr.robustness.saturation`): ``"saturated"`` maps each ``"{method}/{measure}"`` that sits at its
        ceiling or floor, or cannot be told from random noise, to ``{"kind", "examples", "scored", "mean",
        "baseline", "why", "judged"}`` (read such a measure as untested; a :class:`SaturationWarning` and, with
        ``progress``, a line say so too); ``"baselines"`` maps each measure to the means of its per-example
        baselines (``"chance"``: the clean map against its shuffled copy; ``"noise"``: the worst uniform draw from
        the ball). With
        ``return_per_sample`` the baselines' per-example values are in ``"per_sample"`` too, as
        ``"{method}/{measure}@chance"`` / ``"@noise"``. With ``epsilon="auto"``, ``"epsilon_calibration"`` holds the
        chosen radius and its rule (:class:`~hf_robattr.robustness.calibration.EpsilonCalibration`).

    Raises:
        ValueError / TypeError: for a bad setting or argument (naming it, its value and what is allowed), before
            any scoring; what depends on a method's maps (an integer ``k`` larger than an image map's features, a
            ``target_region`` of another map's shape) is found when that method first explains a batch.
    """
    config = RobustnessConfig.from_options(config, **overrides)
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module (a classifier); got {type(model).__name__}.")
    config = config.resolved(model_modality(model))
    if inputs is None:
        raise TypeError("`inputs` is required: pixel values, a tokenized batch, a datasets.Dataset or batches.")
    target_tensor = check_targets(targets)
    _check_target_region(target_region, config)
    _check_flag("return_per_sample", return_per_sample)
    _check_flag("progress", progress)
    device = _check_device(device)
    total = num_examples(inputs)
    if total == 0:
        raise ValueError("`inputs` holds no examples.")
    if target_tensor is not None and target_tensor.dim() == 1 and total is not None and len(target_tensor) != total:
        raise ValueError(f"`targets` has {len(target_tensor)} entries but `inputs` has {total} examples.")
    _check_region_count(target_region, total, model_modality(model))
    calibration = None
    if config.epsilon == AUTO:
        if iter(inputs) is inputs:
            raise ValueError(
                "epsilon='auto' reads the first examples twice (to calibrate, then to score): pass a tensor, a "
                "mapping, a datasets.Dataset or a list of batches, not a one-shot iterator."
            )
        calibration = calibrate_epsilon(model, inputs, config, device=device, targets=target_tensor)
        config = config.replace(epsilon=calibration.value)
        if progress:
            tqdm.write(f"attribution robustness: epsilon='auto' chose {calibration.value:.4g} ({calibration.rule}).")
    rank, world_size = process_group()

    def score_shard() -> tuple[list[int], dict[str, list[float]], list[bool], dict[str, list[bool]]]:
        ids: list[torch.Tensor] = []
        values: dict[str, list[torch.Tensor]] = {}
        unperturbable: list[torch.Tensor] = []
        skipped: dict[str, list[torch.Tensor]] = {}
        batches = iter_batches(inputs, config.batch_size, rank=rank, world_size=world_size)
        bar = tqdm(
            batches,
            total=count_batches(inputs, config.batch_size, rank=rank, world_size=world_size),
            desc="attribution robustness",
            disable=not progress or rank != 0,
        )
        with RobustnessScorer(model, config, device=device, target_region=target_region) as scorer:
            for batch, batch_ids in bar:
                scores = scorer.score_batch(
                    batch, targets=_targets_for(target_tensor, batch_ids), example_ids=batch_ids
                )
                ids.append(batch_ids)
                unperturbable.append(scores.unperturbable)
                for key, value in scores.per_sample.items():
                    values.setdefault(key, []).append(value)
                for method, rows in scores.skipped.items():
                    skipped.setdefault(method, []).append(rows)
        return (
            torch.cat(ids).tolist() if ids else [],
            {key: torch.cat(parts).tolist() for key, parts in values.items()},
            torch.cat(unperturbable).tolist() if unperturbable else [],
            {method: torch.cat(parts).tolist() for method, parts in skipped.items()},
        )

    shards = run_on_every_rank(score_shard, world_size)
    ids = torch.tensor([i for shard in shards for i in shard[0]], dtype=torch.long)
    if ids.numel() == 0:
        raise ValueError("`inputs` holds no examples.")
    if target_tensor is not None and target_tensor.dim() == 1 and len(target_tensor) != ids.numel():
        raise ValueError(f"`targets` has {len(target_tensor)} entries but `inputs` has {ids.numel()} examples.")
    order = ids.argsort()

    def gathered(part: int, key: str | None, dtype: torch.dtype) -> torch.Tensor:
        flat = [v for shard in shards for v in (shard[part] if key is None else shard[part][key])]
        return torch.tensor(flat, dtype=dtype)[order]

    per_sample = {key: gathered(1, key, torch.float64) for key in shards[0][1]}
    skipped = {method: gathered(3, method, torch.bool) for method in config.methods}
    counts = skip_counts(gathered(2, None, torch.bool), skipped, warn=rank == 0)
    scores, baselines = split_baselines(per_sample)
    saturated = find_saturation(scores, baselines)
    if rank == 0:
        warn_saturation(saturated)
        if progress:
            for key, saturation in saturated.items():
                tqdm.write(f"attribution robustness: {key} is saturated ({saturation.kind}): {saturation.why}")
    summary = summarise(scores, ids.numel(), False)
    if return_per_sample:
        summary["per_sample"] = {key: values.tolist() for key, values in per_sample.items()}
    summary["baselines"] = {
        key: {kind: _finite_mean(values) for kind, values in kinds.items()} for key, kinds in baselines.items()
    }
    summary["saturated"] = {key: saturation.to_dict() for key, saturation in saturated.items()}
    if calibration is not None:
        summary["epsilon_calibration"] = calibration.to_dict()
    return {**summary, **counts}


def _finite_mean(values: torch.Tensor) -> float:
    finite = values[~torch.isnan(values)]
    return finite.mean().item() if finite.numel() else math.nan


def _check_target_region(region: Any, config: RobustnessConfig) -> None:
    if region is None:
        return
    if config.attack != "targeted":
        raise ValueError(
            f"`target_region` only applies to attack='targeted'; got attack={config.attack!r}. Pass "
            "attack='targeted' or drop `target_region`."
        )
    if not isinstance(region, torch.Tensor) or region.dtype.is_complex:
        raise TypeError(f"`target_region` must be a boolean tensor (a map); got {type(region).__name__}.")
    if not region.bool().any():
        raise ValueError("`target_region` selects no feature; mark at least one as True.")


def _check_region_count(region: torch.Tensor | None, total: int | None, modality: str) -> None:
    """One map per example (one more dimension than a map: an image map is [H, W], a text map [T]) must number the
    examples."""
    per_example = region is not None and region.dim() == (2 if modality == IMAGE else 1) + 1
    if per_example and total is not None and len(region) != total:
        raise ValueError(
            f"`target_region` holds {len(region)} maps (one per example) but `inputs` has {total} examples; pass "
            "one map for all examples or one per example."
        )


def _targets_for(targets: torch.Tensor | None, ids: torch.Tensor) -> torch.Tensor | None:
    if targets is None:
        return None
    if targets.dim() == 0:
        return targets.expand(len(ids))
    if len(ids) and int(ids.max()) >= len(targets):
        raise ValueError(f"`targets` has {len(targets)} entries, fewer than the examples in `inputs`.")
    return targets[ids]


def _check_flag(name: str, value: Any) -> None:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"`{name}` must be True or False; got {value!r}.")


def _check_device(device: Any) -> torch.device | None:
    if device is None:
        return None
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"`device` must name a torch device such as 'cpu' or 'cuda:0'; got {device!r}.") from error
