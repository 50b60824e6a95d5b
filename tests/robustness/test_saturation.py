"""Saturation is reported, never hidden: planted ceilings, floors and attacks no better than noise are flagged (and
healthy scores are not), in the unit rule and end to end."""

import math
import warnings

import numpy as np
import pytest
import scipy.stats
import torch
from torch import nn

import hf_robattr
from hf_robattr.attribution.random_streams import ExampleStreams
from hf_robattr.robustness.baselines import CHANCE_RATIO_MEASURES, CHANCE_SHUFFLES, chance_scores, shuffled
from hf_robattr.robustness.saturation import (
    ALPHA,
    MIN_EXAMPLES,
    SaturationWarning,
    find_saturation,
    measure_saturation,
    shown_positive,
    split_baselines,
)
from hf_robattr.robustness.similarity import SIMILARITY_MEASURES, similarity_scores


def _values(*numbers):
    return torch.tensor(numbers, dtype=torch.float64)


@pytest.mark.parametrize(
    ("measure", "values", "baselines", "kind"),
    [
        pytest.param("topk_intersection", _values(1, 1, 1, 1, 1, 1, 1, 1, 1, 0.9), {}, "ceiling", id="topk-at-1"),
        pytest.param("max_sensitivity", _values(0, 0, 0, 0, 0), {}, "ceiling", id="sensitivity-at-0"),
        pytest.param(
            "kendall_tau",
            _values(0.02, -0.05, 0.01, 0.0, 0.03, -0.02),
            {"chance": _values(0.0, 0.01, -0.01, 0.02, 0.0, 0.0)},
            "floor",
            id="kendall-at-chance",
        ),
        pytest.param(
            "max_sensitivity",
            _values(1.4, 1.5, 1.3, 1.45, 1.38, 1.44),
            {"chance": _values(1.41, 1.41, 1.40, 1.42, 1.41, 1.40)},
            "floor",
            id="sensitivity-as-far-as-shuffled",
        ),
        pytest.param(
            "topk_intersection",
            _values(0.8, 0.7, 0.75, 0.8, 0.7),
            {"chance": _values(0.1, 0.1, 0.1, 0.1, 0.1), "noise": _values(0.8, 0.7, 0.7, 0.8, 0.75)},
            "noise",
            id="attack-no-better-than-noise",
        ),
        pytest.param(
            "center_of_mass_shift",
            _values(0.5, 0.4, 0.45, 0.5, 0.42, 0.48),
            {"chance": _values(2.0, 2.1, 1.9, 2.0, 2.2, 1.8), "noise": _values(0.5, 0.5, 0.4, 0.45, 0.43, 0.47)},
            "noise",
            id="shift-no-larger-than-noise",
        ),
    ],
)
def test_planted_saturation_is_flagged(measure, values, baselines, kind):
    saturation = measure_saturation(measure, values, baselines)
    assert saturation is not None and saturation.kind == kind
    assert saturation.scored == len(values) and 0 < saturation.examples <= len(values)
    assert saturation.why and (saturation.baseline is None) == (kind == "ceiling")


def test_a_measure_that_can_rank_is_not_flagged():
    values = _values(0.6, 0.5, 0.55, 0.62, 0.58, 0.5)
    baselines = {"chance": _values(0.1, 0.1, 0.12, 0.1, 0.09, 0.1), "noise": _values(0.9, 0.85, 0.9, 0.95, 0.9, 0.88)}
    assert measure_saturation("topk_intersection", values, baselines) is None


@pytest.mark.parametrize("margin", [1 / 3, 0.0, -0.25])
def test_equal_margins_are_judged_as_scipy_judges_them_without_its_warning(margin):
    """Every example ``margin`` better than chance (a top-k intersection of 1/3 against 0): scipy's t test gives
    p = 0 (or NaN, or 1) and warns that the mean of equal values was rounded; the rule gives scipy's verdict,
    silently."""
    values, chance = _values(*([0.2 + margin] * 6)), _values(*([0.2] * 6))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = scipy.stats.ttest_1samp((values - chance).numpy(), 0.0, alternative="greater").pvalue
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        saturation = measure_saturation("topk_intersection", values, {"chance": chance})
    assert (saturation is None) == bool(p < 0.05) and (saturation is None) == (margin > 0)
    assert saturation is None or saturation.kind == "floor"


def test_the_floor_test_of_a_bounded_measure_is_scipys_t_test_without_its_warning():
    """Equal, nearly equal (tiny spreads, tiny means) and ordinary margins: the verdict of scipy's one-sided t test
    at ALPHA, and no warning."""
    rng = np.random.default_rng(0)
    cases = [np.full(6, 1 / 3), np.zeros(6), np.full(8, 1e-13), np.array([1e-13, 2e-13, 3e-13, 4e-13, 5e-13])]
    cases += [
        rng.normal(rng.normal(0.0, 1e-12), 10.0 ** rng.integers(-16, 0), size=rng.integers(MIN_EXAMPLES, 12))
        for _ in range(300)
    ]
    for margin in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p = scipy.stats.ttest_1samp(margin, 0.0, alternative="greater").pvalue
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert shown_positive(torch.from_numpy(margin), bounded=True) == bool(p < ALPHA), margin


def test_a_floor_from_too_few_untied_examples_says_so():
    """4 of 6 examples clearly better than chance and 2 exactly at it: the signed-rank test drops the ties and cannot
    reach 5% with 4 (p = 1/16, as scipy says), so the shift sits at the floor, and the sentence says why."""
    values, chance = _values(0.1, 0.2, 0.15, 0.12, 2.0, 1.5), _values(2.0, 2.1, 1.9, 2.2, 2.0, 1.5)
    assert scipy.stats.wilcoxon((chance - values)[:4].numpy(), alternative="greater").pvalue == 1 / 16
    saturation = measure_saturation("center_of_mass_shift", values, {"chance": chance})
    assert saturation.kind == "floor" and "Only 4 examples differ from chance at all" in saturation.why
    assert "(it needs 5)" in saturation.why
    six = measure_saturation("center_of_mass_shift", _values(0.1, 0.2, 0.15, 0.12, 0.3, 0.2), {"chance": chance})
    assert six is None  # 6 untied examples, all better: p = 1/64


def test_the_noise_rule_counts_the_examples_it_judged():
    """Examples at the perfect value under both the attack and noise are the ceiling rule's: the noise rule judges
    the other 5 and flags 4 of them, and the record, its sentence and the run's end summary all say "4 of 5"."""
    from hf_robattr.hub.summary import saturation_note

    values = _values(1, 1, 1, 0.8, 0.7, 0.75, 0.8, 0.7)
    baselines = {"chance": _values(*([0.1] * 8)), "noise": _values(1, 1, 1, 0.8, 0.7, 0.7, 0.8, 0.75)}
    saturation = measure_saturation("topk_intersection", values, baselines)
    assert (saturation.kind, saturation.examples, saturation.judged, saturation.scored) == ("noise", 4, 5, 8)
    assert "in 4 of 5 examples" in saturation.why
    assert "`saliency/topk_intersection` no worse than random noise (4 of 5 examples)" in saturation_note(
        {"saliency/topk_intersection": saturation.to_dict()}
    )
    ceiling = measure_saturation("topk_intersection", _values(*([1.0] * 9), 0.5))
    assert (ceiling.examples, ceiling.judged, ceiling.scored) == (9, 10, 10)


def test_too_few_examples_only_check_the_ceiling():
    values = _values(*([0.0] * (MIN_EXAMPLES - 1)))
    assert measure_saturation("kendall_tau", values, {"chance": values.clone()}) is None


def test_not_scored_examples_and_unknown_measures_are_left_out():
    assert measure_saturation("topk_intersection", _values(math.nan, math.nan)) is None
    assert measure_saturation("prediction_change_rate", _values(0, 0, 0, 0)) is None


def test_baseline_keys_are_split_from_the_scores():
    scores, baselines = split_baselines(
        {
            "saliency/cosine": _values(1.0),
            "saliency/cosine@chance": _values(0.5),
            "saliency/cosine@noise": _values(0.9),
        }
    )
    assert list(scores) == ["saliency/cosine"] and set(baselines["saliency/cosine"]) == {"chance", "noise"}
    assert find_saturation(scores, baselines)["saliency/cosine"].kind == "ceiling"


def test_shuffles_keep_padding_in_place_and_are_seeded():
    maps = torch.arange(12, dtype=torch.float64).view(2, 6)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    first = shuffled(maps, mask, ExampleStreams.keyed(0, [0, 1], "x"))
    again = shuffled(maps, mask, ExampleStreams.keyed(0, [0, 1], "x"))
    assert torch.equal(first, again)
    assert torch.equal(first[0, 4:], maps[0, 4:]) and sorted(first[0, :4].tolist()) == maps[0, :4].tolist()
    assert sorted(first[1].tolist()) == maps[1].tolist()
    assert CHANCE_SHUFFLES >= 4


def test_a_shuffle_moves_only_the_scored_features_wherever_they_sit():
    maps = torch.arange(1, 25, dtype=torch.float32).view(3, 8)
    mask = torch.tensor([[0, 1, 0, 1, 1, 0, 1, 0], [1, 1, 1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0, 0, 1]])
    result = shuffled(maps, mask, ExampleStreams.keyed(1, [0, 1, 2], "x"))
    keys = ExampleStreams.keyed(1, [0, 1, 2], "x").draw(
        "rand", (8,), dtype=torch.float64, device="cpu", positions=mask
    )
    for row in range(3):
        kept = mask[row] == 0
        assert torch.equal(result[row, kept], maps[row, kept])
        # the scored features in the order of their keys, put back into the scored slots (the rule, by hand)
        slots = mask[row].nonzero().squeeze(1)
        assert torch.equal(result[row, slots], maps[row, slots[keys[row, slots].argsort()]])
    assert not torch.equal(result[1], maps[1])


@pytest.mark.parametrize("text", [False, True], ids=["image-maps", "token-maps-with-padding"])
def test_chance_scores_are_the_mean_over_shuffles_scored_one_at_a_time(text):
    """The batched chance levels against the plain reference: each shuffle drawn in turn and scored on its own."""
    generator = torch.Generator().manual_seed(4)
    clean = torch.randn(5, 12, generator=generator) if text else torch.randn(5, 3, 6, 6, generator=generator)
    mask = None
    if text:
        mask = torch.ones(5, 12, dtype=torch.long)
        mask[:, 0] = 0
        mask[torch.arange(5), 11 - torch.arange(5)] = 0
    names = list(SIMILARITY_MEASURES)

    def compare(a, b, rows_mask, measures):
        return similarity_scores(a.abs(), b.abs(), measures, 0.25, rows_mask)

    result = chance_scores(compare, clean, mask, ExampleStreams.keyed(2, range(5)), names, CHANCE_RATIO_MEASURES)
    streams = ExampleStreams.keyed(2, range(5))
    per_shuffle = []
    for _ in range(CHANCE_SHUFFLES):
        copy = shuffled(clean, mask, streams)
        scores = compare(clean, copy, mask, names)
        ratio = (copy - clean).flatten(1).norm(dim=1) / clean.flatten(1).norm(dim=1)
        scores.update(dict.fromkeys(CHANCE_RATIO_MEASURES, ratio))
        per_shuffle.append(scores)
    assert set(result) == set(names) | set(CHANCE_RATIO_MEASURES)
    for name, value in result.items():
        expected = torch.stack([scores[name] for scores in per_shuffle]).mean(dim=0)
        torch.testing.assert_close(value, expected, rtol=1e-6, atol=1e-7, equal_nan=True, msg=name)


def _score(model, inputs, **options):
    settings = dict(methods=("saliency",), num_steps=2, num_samples=3, progress=False, return_per_sample=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = hf_robattr.evaluate_attribution_robustness(model, inputs, **{**settings, **options})
    return result, [w for w in caught if issubclass(w.category, SaturationWarning)]


def test_maps_that_cannot_move_read_as_saturated_at_the_ceiling():
    torch.manual_seed(0)
    linear = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 3))  # saliency does not depend on the input
    result, warned = _score(linear, torch.rand(8, 3, 4, 4), epsilon=0.1)
    for measure in ("topk_intersection", "kendall_tau", "cosine", "max_sensitivity"):
        assert result["saturated"][f"saliency/{measure}"]["kind"] == "ceiling"
    assert len(warned) == 1 and "saliency/topk_intersection at its ceiling" in str(warned[0].message)
    assert "saliency/topk_intersection@chance" in result["per_sample"]


class Chaotic(nn.Module):
    """Logits ``c + 0.01 V sin(1000 W x)``: the label never changes (``c`` favours class 0), but the saliency at any
    point 1e-2 away is unrelated to the clean one (a planted floor)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.hidden, self.out = nn.Linear(64, 64), nn.Linear(64, 3)
        self.register_buffer("margin", torch.tensor([10.0, 0.0, 0.0]))

    def forward(self, x):
        return self.margin + 0.01 * self.out(torch.sin(1000 * self.hidden(x.flatten(1))))


def test_a_radius_that_scrambles_the_maps_reads_as_saturated_at_the_floor():
    images = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    result, warned = _score(Chaotic(), images, epsilon=0.2, measures=("topk_intersection", "kendall_tau"))
    flagged = result["saturated"]
    assert flagged["saliency/kendall_tau"]["kind"] == "floor", flagged
    assert flagged["saliency/topk_intersection"]["kind"] == "floor", flagged
    assert result["baselines"]["saliency/kendall_tau"]["chance"] == pytest.approx(0.0, abs=0.1)
    assert warned


def test_healthy_scores_carry_baselines_and_no_flag(vit):
    images = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    result, _ = _score(vit, images, epsilon=0.02, measures=("topk_intersection", "max_sensitivity"), num_steps=5)
    chance = result["baselines"]["saliency/topk_intersection"]["chance"]
    assert chance == pytest.approx(0.1, abs=0.05)  # k = 10% of the features: a shuffled top-k keeps about 10%
    assert result["saliency/topk_intersection"] > chance
    assert "saliency/max_sensitivity" not in result["saturated"]


def test_attack_sensitivity_alone_keeps_its_baselines_and_its_noise_flag():
    """Its noise baseline is the worst uniform draw, so the draws are made even when no sampled measure is asked
    for: the baselines equal those of a run that also asks for max_sensitivity, and the saliency of a linear model
    (an attack cannot do better than noise) is still flagged."""
    torch.manual_seed(0)
    linear = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 3))
    images = torch.rand(8, 3, 4, 4, generator=torch.Generator().manual_seed(4))
    alone, _ = _score(linear, images, epsilon=0.1, measures=("attack_sensitivity",))
    beside, _ = _score(linear, images, epsilon=0.1, measures=("attack_sensitivity", "max_sensitivity"))
    baselines = alone["baselines"]["saliency/attack_sensitivity"]
    assert all(math.isfinite(value) for value in baselines.values()), baselines
    assert baselines == pytest.approx(beside["baselines"]["saliency/attack_sensitivity"])
    assert alone["saturated"].keys() == {"saliency/attack_sensitivity"}
