"""Score one batch: explain, attack, sample the ball, measure; per example and per method, with the maps.

:class:`RobustnessScorer` is what :func:`~hf_robattr.robustness.evaluate_attribution_robustness` runs on every
batch; it is public so that a caller can get the maps behind the scores (the model card picture, the demo).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hf_robattr.attribution.argument_checks import check_targets
from hf_robattr.attribution.attention import ATTENTION_METHODS, attention_weights_enabled
from hf_robattr.attribution.base import AttributionMethod
from hf_robattr.attribution.input_checks import check_class_logits
from hf_robattr.attribution.inputs import (
    IMAGE,
    PreparedInputs,
    forward_logits,
    frozen_eval,
    model_device,
    model_modality,
    prepare_inputs,
    unwrap_model,
)
from hf_robattr.attribution.methods import make_method, resolve_targets
from hf_robattr.attribution.random_streams import ExampleStreams
from hf_robattr.attribution.smoothing import softplus_smoothing

from .attacks import AttackProblem, examples_region, get_attack
from .baselines import baseline_measures, chance_scores, noise_scores
from .batching import move
from .config import RobustnessConfig
from .measures import ATTACK_MEASURES, IMAGE_ONLY_MEASURES, MEASURES, check_measures_for_text
from .perturbations import ball_radius, range_projector, sample_ball, scored_inputs
from .perturbed_maps import perturbed_explanations
from .saturation import baseline_key
from .sensitivity import SENSITIVITY_MEASURES, sensitivity_measures, sensitivity_ratio
from .similarity import SIMILARITY_MEASURES, TopKCountError, similarity_scores


@dataclass(frozen=True)
class AttackedMaps:
    """One method's maps of a batch, clean and at the attacked point.

    ``labels`` are the clean predictions; the attacked point keeps them (the attack returns label-preserving points
    only; where it found none the example is returned unperturbed with ``perturbed`` false). Text maps are the maps
    the scores compare: 0 at every token that is not scored (padding and, with ``special_tokens="exclude"``, the
    special tokens); ``word_mask`` ``[B, T]`` marks the scored tokens (``None`` for images).
    """

    clean_maps: torch.Tensor
    attacked_maps: torch.Tensor
    features: torch.Tensor
    attacked_features: torch.Tensor
    labels: torch.Tensor
    perturbed: torch.Tensor
    word_mask: torch.Tensor | None = None


@dataclass(frozen=True)
class BatchScores:
    """One batch's scores.

    Attributes:
        per_sample: ``{"{method}/{measure}": [B]}``, NaN where an example is left out.
        example_ids: ``[B]`` indices of the examples in the whole input.
        unperturbable: ``[B]`` examples that cannot be perturbed (an image whose valid range has zero width, i.e. a
            constant image under the default per-image range; a text without a word token, e.g. padding and
            [CLS]/[SEP] only): left out of every measure.
        skipped: ``{method: [B]}`` examples left out of that method's measures (unperturbable, or an all-zero clean
            map, which has no ranking, direction or mass to compare).
        maps: with ``keep_maps``, each method's maps (skipped examples keep their clean map and are unperturbed).
    """

    per_sample: dict[str, torch.Tensor]
    example_ids: torch.Tensor
    unperturbable: torch.Tensor
    skipped: dict[str, torch.Tensor]
    maps: dict[str, AttackedMaps]


class RobustnessScorer:
    """Scores batches of one model under one :class:`RobustnessConfig`.

    Use it as a context manager: on entry the model is moved to ``device`` (default: its own), put in eval mode with
    frozen parameters, switched to attention weights if an attention method needs them, and smoothed if
    ``smoothing_beta`` is set; everything is restored on exit.

    Example:
        >>> import torch
        >>> from hf_robattr import RobustnessConfig, RobustnessScorer
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
        >>> config = RobustnessConfig(epsilon=0.1, num_steps=2, num_samples=2)
        >>> with RobustnessScorer(model, config) as scorer:
        ...     scores = scorer.score_batch(torch.rand(2, 3, 2, 2), keep_maps=True)
        >>> scores.per_sample["saliency/topk_intersection"].shape, scores.maps["saliency"].clean_maps.shape
        (torch.Size([2]), torch.Size([2, 2, 2]))
    """

    def __init__(
        self,
        model: nn.Module,
        config: RobustnessConfig,
        *,
        device: torch.device | str | None = None,
        target_region: torch.Tensor | None = None,
    ) -> None:
        config = config.resolved(model_modality(model))
        if config.epsilon == "auto":
            raise ValueError(
                "RobustnessScorer needs a numeric `epsilon`: resolve epsilon='auto' first with "
                "hf_robattr.robustness.calibration.calibrate_epsilon (evaluate_attribution_robustness does it)."
            )
        self.model = unwrap_model(model)
        self.config = config
        self.original_device = model_device(self.model)
        self.device = torch.device(device) if device is not None else self.original_device
        self.target_region = target_region
        self.methods = {name: make_method(name, **config.method_kwargs.get(name, {})) for name in config.methods}
        self._stack: contextlib.ExitStack | None = None

    def __enter__(self) -> RobustnessScorer:
        stack = contextlib.ExitStack()
        if self.device != self.original_device:
            self.model.to(self.device)
            stack.callback(self.model.to, self.original_device)
        stack.enter_context(frozen_eval(self.model))
        if any(name in ATTENTION_METHODS for name in self.methods):
            stack.enter_context(attention_weights_enabled(self.model))
        if self.config.smoothing_beta is not None:
            stack.enter_context(softplus_smoothing(self.model, self.config.smoothing_beta))
        self._stack = stack
        return self

    def __exit__(self, *exc_info: Any) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()

    def score_batch(
        self,
        batch: torch.Tensor | dict[str, Any],
        *,
        targets: torch.Tensor | None = None,
        example_ids: torch.Tensor | Sequence[int] | None = None,
        keep_maps: bool = False,
    ) -> BatchScores:
        """Per-example values of every configured method and measure on ``batch`` (a pixel tensor or a tokenized
        mapping); ``targets`` ``[B]`` default to the predictions; ``example_ids`` (default ``0..B-1``) are the
        examples' indices in the whole input; ``keep_maps`` also returns each method's maps."""
        if self._stack is None:
            raise RuntimeError("use RobustnessScorer as a context manager: `with RobustnessScorer(...) as scorer:`.")
        prepared = scored_inputs(prepare_inputs(self.model, move(batch, self.device)), self.config.special_tokens)
        ids = torch.arange(prepared.batch_size) if example_ids is None else torch.as_tensor(example_ids).long()
        if ids.shape != (prepared.batch_size,):
            raise ValueError(
                f"`example_ids` must hold one index per example ({prepared.batch_size}); got {ids.tolist()}."
            )
        self._check_range(prepared)
        if prepared.kind != IMAGE:
            check_measures_for_text(self.config.measures)
        with torch.no_grad():
            logits = forward_logits(self.model, prepared)
        check_class_logits(logits)
        labels = logits.argmax(dim=1)
        targets = resolve_targets(None if targets is None else check_targets(targets), logits, len(ids), labels.device)
        wanted = [
            m for m in (self.config.measures or MEASURES) if prepared.kind == IMAGE or m not in IMAGE_ONLY_MEASURES
        ]
        unperturbable = ~self.perturbable(prepared)
        per_sample: dict[str, torch.Tensor] = {}
        skipped: dict[str, torch.Tensor] = {}
        maps: dict[str, AttackedMaps] = {}
        for name, method in self.methods.items():
            # Every draw for an example (noise of SmoothGrad, attack starts, sensitivity samples) comes from its own
            # stream, keyed by the seed, its index and the method: the same whatever batch or process scores it.
            # The sensitivity samples have a stream of their own, so the attack's draws (its restarts, SmoothGrad's
            # noise at every step) do not shift them: they are the same whatever attack runs, as sensitivity_family's.
            streams = ExampleStreams.keyed(self.config.seed, ids, name)
            sample_streams = ExampleStreams.keyed(self.config.seed, ids, f"{name}/sensitivity")
            chance_streams = ExampleStreams.keyed(self.config.seed, ids, f"{name}/chance")
            try:
                scores, method_maps, method_skipped = self._score_method(
                    method, prepared.with_streams(streams), targets, labels, wanted, ~unperturbable, keep_maps,
                    (sample_streams, chance_streams), ids,
                )  # fmt: skip
            except TopKCountError as error:  # a map's size is only known per method: name it
                raise TopKCountError(f"method {name!r}: {error}") from error
            per_sample.update({f"{name}/{measure}": values.detach().cpu() for measure, values in scores.items()})
            skipped[name] = method_skipped.cpu()
            if method_maps is not None:
                maps[name] = method_maps
        return BatchScores(per_sample, ids, unperturbable.cpu(), skipped, maps)

    def _check_range(self, prepared: PreparedInputs) -> None:
        """Refuse an ``input_range`` that does not contain the pixel values (every point would be clamped outside
        the ball)."""
        if self.config.input_range is None or prepared.kind != IMAGE:
            return
        low, high = self.config.input_range
        x = prepared.features.detach()
        tolerance = 1e-6 * max(1.0, abs(low), abs(high))
        lowest, highest = x.min().item(), x.max().item()
        if lowest < low - tolerance or highest > high + tolerance:
            raise ValueError(
                f"`input_range` {self.config.input_range} excludes the inputs: their values span "
                f"[{lowest:.4g}, {highest:.4g}]. Pass the range the pixel values live in (e.g. (-1.0, 1.0) after a "
                "ViT processor), or None for each image's own min/max."
            )

    def perturbable(self, prepared: PreparedInputs) -> torch.Tensor:
        """``[B]``: whether each example has room to move (a non-empty ball inside its valid range; text: a word)."""
        if prepared.kind != IMAGE:
            return prepared.word_mask.bool().any(dim=1)
        if self.config.input_range is not None:
            return torch.ones(prepared.batch_size, dtype=torch.bool, device=prepared.features.device)
        flat = prepared.features.detach().flatten(1)
        return flat.amax(dim=1) > flat.amin(dim=1)

    def _score_method(
        self,
        method: AttributionMethod,
        prepared: PreparedInputs,
        targets: torch.Tensor,
        labels: torch.Tensor,
        measures: Sequence[str],
        perturbable: torch.Tensor,
        keep_maps: bool,
        side_streams: tuple[ExampleStreams, ExampleStreams],
        example_ids: torch.Tensor,
    ) -> tuple[dict[str, torch.Tensor], AttackedMaps | None, torch.Tensor]:
        """Per-example values of ``measures`` for one method (NaN where an example is left out), its maps (with
        ``keep_maps``), and which examples were skipped. Only the examples that can be perturbed and have a non-zero
        clean map are attacked and sampled."""
        batch = prepared.batch_size
        rows = perturbable.nonzero().squeeze(1)
        clean = method.explain(self.model, prepared.select(rows), targets[rows]) if len(rows) else None
        clean_maps = None
        if clean is not None:
            scored = prepared.select(rows).words_only(clean.maps.detach())
            clean_maps = clean.maps.new_zeros((batch, *clean.maps.shape[1:]))
            clean_maps[rows] = scored
            rows = rows[scored.flatten(1).abs().amax(dim=1) > 0]
        skipped = torch.ones(batch, dtype=torch.bool, device=perturbable.device)
        skipped[rows] = False
        keys = [*measures] + [
            baseline_key(m, kind) for kind, names in baseline_measures(measures).items() for m in names
        ]
        scores = {key: prepared.features.new_full((batch,), torch.nan).cpu() for key in keys}
        attacked = None
        if len(rows):
            part_scores, attacked = self._measure(
                method,
                prepared.select(rows),
                targets[rows],
                labels[rows],
                clean_maps[rows],
                measures,
                tuple(streams.select(rows) for streams in side_streams),
                example_ids[rows.to(example_ids.device)],
            )
            for measure, values in part_scores.items():
                scores[measure] = values.new_full((batch,), torch.nan)
                scores[measure][rows] = values.detach()
        if not keep_maps:
            return scores, None, skipped
        left_out = (~perturbable).nonzero().squeeze(1)
        if len(left_out):  # for the picture only: these examples' streams are not used by the scores
            plain = method.explain(self.model, prepared.select(left_out), targets[left_out]).maps.detach()
            plain = prepared.select(left_out).words_only(plain)
            clean_maps = plain.new_zeros((batch, *plain.shape[1:])) if clean_maps is None else clean_maps
            clean_maps[left_out] = plain
        attacked_maps, attacked_features = clean_maps.clone(), prepared.features.detach().clone()
        perturbed = torch.zeros(batch, dtype=torch.bool, device=clean_maps.device)
        if attacked is not None:
            attacked_maps[rows] = attacked.maps.detach()
            attacked_features[rows] = attacked.features.detach()
            perturbed[rows] = attacked.perturbed
        maps = AttackedMaps(
            clean_maps,
            attacked_maps,
            prepared.features.detach(),
            attacked_features,
            labels,
            perturbed,
            prepared.word_mask,
        )
        return scores, maps, skipped

    def _pooled(self, maps: torch.Tensor, prepared: PreparedInputs) -> torch.Tensor:
        """With ``map_pooling="patch"``, pixel-resolution image maps summed over each ViT patch."""
        if (
            self.config.map_pooling == "none"
            or prepared.kind != IMAGE
            or maps.shape[-2:] != prepared.features.shape[-2:]
        ):
            return maps
        size = getattr(getattr(self.model, "config", None), "patch_size", None)
        if size is None:
            raise ValueError(
                "`map_pooling`='patch' needs a ViT-style model with `config.patch_size`; "
                f"{type(self.model).__name__} has none."
            )
        size = (size, size) if isinstance(size, int) else tuple(size)
        if maps.shape[-2] % size[0] or maps.shape[-1] % size[1]:
            raise ValueError(
                f"`map_pooling`='patch': maps of shape {tuple(maps.shape[-2:])} do not tile into {size} patches."
            )
        pooled = torch.nn.functional.avg_pool2d(maps.unsqueeze(1), size).squeeze(1)
        return pooled * (size[0] * size[1])

    def _baselines(
        self,
        prepared: PreparedInputs,
        clean_maps: torch.Tensor,
        sampled_maps: torch.Tensor,
        valid: torch.Tensor,
        chance_streams: ExampleStreams,
        wanted: set[str],
    ) -> dict[str, torch.Tensor]:
        """``{"measure@chance"|"measure@noise": [B]}``: the baselines :mod:`.saturation` compares the scores with."""

        def compare(clean, perturbed, mask, names):  # as the attacked maps are compared: magnitudes, pooled
            pooled = [self._pooled(maps.abs(), prepared) for maps in (clean, perturbed)]
            return similarity_scores(*pooled, names, self.config.k, mask)

        mask = prepared.word_mask
        names = baseline_measures(list(wanted))
        similarity_names = [name for name in SIMILARITY_MEASURES if name in wanted]
        chance = chance_scores(compare, clean_maps, mask, chance_streams, similarity_names, names["chance"])
        noise = noise_scores(compare, clean_maps, sampled_maps, valid, mask, similarity_names)
        baselines = {baseline_key(name, "chance"): chance[name] for name in names["chance"]}
        baselines.update({baseline_key(name, "noise"): noise[name] for name in names["noise"]})
        return baselines

    def _measure(
        self,
        method: AttributionMethod,
        prepared: PreparedInputs,
        targets: torch.Tensor,
        labels: torch.Tensor,
        clean_maps: torch.Tensor,
        measures: Sequence[str],
        side_streams: tuple[ExampleStreams, ExampleStreams],
        example_ids: torch.Tensor,
    ) -> tuple[dict[str, torch.Tensor], Any]:
        """The measures on examples that can be scored (``example_ids``: their indices in the whole input): attack +
        similarity, then the sampled sensitivity family and the baselines (``side_streams``: the streams of the
        samples and of the chance baseline)."""
        model, config = self.model, self.config
        sample_streams, chance_streams = side_streams
        scores: dict[str, torch.Tensor] = {}
        wanted = set(measures)
        result = None
        if wanted & {*SIMILARITY_MEASURES, *ATTACK_MEASURES}:
            region = examples_region(self.target_region, example_ids, clean_maps)
            problem = AttackProblem(model, method, prepared, targets, labels, clean_maps, config, region)
            result = get_attack(config.attack)()(problem)
            result = dataclasses.replace(result, maps=prepared.words_only(result.maps))
            nan = clean_maps.new_full((prepared.batch_size,), torch.nan)
            names = [name for name in SIMILARITY_MEASURES if name in wanted]
            compared = [self._pooled(maps.abs(), prepared) for maps in (clean_maps, result.maps)]
            similarity = similarity_scores(*compared, names, config.k, prepared.word_mask)
            for name, value in similarity.items():
                scores[name] = torch.where(result.perturbed, value.to(nan.dtype), nan)
            if "attack_sensitivity" in wanted:
                value = sensitivity_ratio(clean_maps, result.maps.unsqueeze(1)).squeeze(1)
                scores["attack_sensitivity"] = torch.where(result.perturbed, value.to(nan.dtype), nan)
            if "prediction_change_rate" in wanted:
                scores["prediction_change_rate"] = result.label_changed.to(nan.dtype)
        sensitivity_names = tuple(name for name in SENSITIVITY_MEASURES if name in wanted)
        similarity_names = [name for name in SIMILARITY_MEASURES if name in wanted]
        # attack_sensitivity alone still needs the draws: its noise baseline is the worst of them.
        if sensitivity_names or similarity_names or "attack_sensitivity" in wanted:
            x = prepared.features
            sampled = prepared.with_streams(sample_streams)
            radius = ball_radius(sampled, config.epsilon, config.norm)
            offsets = sample_ball(sampled, radius, config.norm, config.num_samples)
            # The draws stay in the valid input range, like the attacks' points.
            offsets = range_projector(sampled, config.input_range)(x.unsqueeze(1) + offsets) - x.unsqueeze(1)
            maps, logits = perturbed_explanations(model, method, sampled, targets, offsets, config.batch_size)
            maps = prepared.words_only(maps)
            valid = logits.argmax(dim=2) == labels.unsqueeze(1)
            if sensitivity_names:
                scores.update(
                    sensitivity_measures(
                        clean_maps,
                        maps,
                        inputs=x,
                        perturbed_inputs=x.unsqueeze(1) + offsets,
                        valid=valid,
                        measures=sensitivity_names,
                    )
                )
            scores.update(self._baselines(prepared, clean_maps, maps, valid, chance_streams, wanted))
        return scores, result
