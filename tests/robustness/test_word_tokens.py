"""Text scores are over word tokens (issue 22): [CLS], [SEP], padding and the tokenizer's other special tokens are
never ranked, perturbed or measured by default (``special_tokens="exclude"``); ``special_tokens="include"`` gives
the numbers of the code before the setting."""

import math
import warnings

import pytest
import torch
from tiny_models import tiny_bert
from transformers import HfArgumentParser

import hf_robattr
from hf_robattr.attribution import explain, prepare_inputs
from hf_robattr.robustness import RobustnessArguments, RobustnessConfig, RobustnessScorer, sensitivity_family
from hf_robattr.robustness.perturbations import scored_inputs
from hf_robattr.robustness.similarity import masked_topk_mask, similarity_scores, token_counts


CLS, SEP, PAD = 2, 3, 0
FAST = dict(epsilon=0.05, num_steps=3, num_samples=3, progress=False)


def framed_batch(lengths: tuple[int, ...], seed: int = 21) -> dict[str, torch.Tensor]:
    """``[CLS] words [SEP]`` per row, ``lengths[i]`` real tokens in all, right-padded; words are ids in [5, 40)."""
    generator = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.full((len(lengths), width), PAD, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, length in enumerate(lengths):
        words = torch.randint(5, 40, (length - 2,), generator=generator)
        ids[row, :length] = torch.cat([torch.tensor([CLS]), words, torch.tensor([SEP])])
        mask[row, :length] = 1
    return {"input_ids": ids, "attention_mask": mask}


@pytest.fixture(scope="module")
def _framed_bert_session():
    # BERT configs name only the padding id; the recipes' BERT names [CLS]/[SEP] too (from its tokenizer).
    return tiny_bert(cls_token_id=CLS, sep_token_id=SEP, attn_implementation="eager")


@pytest.fixture
def framed_bert(_framed_bert_session):
    import copy

    return copy.deepcopy(_framed_bert_session)


def _expected_words(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    ids = batch["input_ids"]
    return (batch["attention_mask"].bool() & (ids != CLS) & (ids != SEP)).float()


# ---- where the word mask comes from --------------------------------------------------------------------------------


def test_the_config_ids_mark_special_tokens(framed_bert):
    batch = framed_batch((9, 6, 4))
    prepared = prepare_inputs(framed_bert, batch)
    torch.testing.assert_close(prepared.word_mask, _expected_words(batch))
    torch.testing.assert_close(prepared.token_mask, batch["attention_mask"].float())


def test_a_special_tokens_mask_in_the_batch_wins(bert):
    # `bert`'s config names no [CLS]/[SEP] id: the tokenizer's mask is what tells them apart.
    batch = framed_batch((9, 6, 4))
    assert torch.equal(prepare_inputs(bert, batch).word_mask, prepare_inputs(bert, batch).token_mask)
    special = (batch["input_ids"] == CLS) | (batch["input_ids"] == SEP) | (batch["attention_mask"] == 0)
    prepared = prepare_inputs(bert, {**batch, "special_tokens_mask": special.long()})
    torch.testing.assert_close(prepared.word_mask, _expected_words(batch))
    assert "special_tokens_mask" not in prepared.extra  # never passed to the model


def test_embeddings_without_ids_count_every_real_token_unless_told(framed_bert):
    batch = framed_batch((9, 6))
    embeds = framed_bert.get_input_embeddings()(batch["input_ids"]).detach()
    plain = prepare_inputs(framed_bert, {"inputs_embeds": embeds, "attention_mask": batch["attention_mask"]})
    assert torch.equal(plain.word_mask, plain.token_mask)
    # the model frames its texts with [CLS]/[SEP], and embeddings hold no ids to find them by: not named
    assert not plain.special_tokens_named
    special = ((batch["input_ids"] == CLS) | (batch["input_ids"] == SEP)).long()
    told = prepare_inputs(
        framed_bert,
        {"inputs_embeds": embeds, "attention_mask": batch["attention_mask"], "special_tokens_mask": special},
    )
    torch.testing.assert_close(told.word_mask, _expected_words(batch))
    assert told.special_tokens_named


def test_embeddings_without_a_mask_warn_where_the_model_has_special_tokens(framed_bert):
    """The embeddings path warns as the ids path does when [CLS]/[SEP] would be scored as words; the mask, or a model
    with no special token beyond padding, silences it."""
    from hf_robattr.robustness.perturbations import SpecialTokensWarning

    batch = framed_batch((9, 6, 7))
    embeds = framed_bert.get_input_embeddings()(batch["input_ids"]).detach()
    inputs = {"inputs_embeds": embeds, "attention_mask": batch["attention_mask"]}
    with pytest.warns(SpecialTokensWarning, match="`inputs_embeds`.*the only way"):
        hf_robattr.evaluate_attribution_robustness(framed_bert, inputs, methods=("saliency",), **FAST)
    special = ((batch["input_ids"] == CLS) | (batch["input_ids"] == SEP)).long()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpecialTokensWarning)
        told = {**inputs, "special_tokens_mask": special}
        by_embeds = hf_robattr.evaluate_attribution_robustness(framed_bert, told, methods=("saliency",), **FAST)
        by_ids = hf_robattr.evaluate_attribution_robustness(framed_bert, batch, methods=("saliency",), **FAST)
        hf_robattr.evaluate_attribution_robustness(
            framed_bert, inputs, methods=("saliency",), special_tokens="include", **FAST
        )
    for key in ("saliency/topk_intersection", "saliency/kendall_tau"):  # the mask makes embeddings score as ids do
        assert by_embeds[key] == pytest.approx(by_ids[key], rel=1e-5, nan_ok=True), key
    unframed = tiny_bert(attn_implementation="eager")  # names only padding, and no tokenizer is saved with it
    assert prepare_inputs(
        unframed, {"inputs_embeds": embeds[:, :, : unframed.config.hidden_size]}
    ).special_tokens_named


def test_a_special_tokens_mask_of_the_wrong_shape_is_refused(framed_bert):
    batch = framed_batch((6, 6))
    with pytest.raises(ValueError, match=r"inputs\['special_tokens_mask'\].*\[2, 6\].*\[2, 5\]"):
        prepare_inputs(framed_bert, {**batch, "special_tokens_mask": torch.zeros(2, 5)})


# ---- ranking over words --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [pytest.param(k, id=f"k={k}") for k in (0.1, 0.5, 0.99, 1, 3, 50)])
def test_special_tokens_never_enter_a_topk_set(framed_bert, k):
    batch = framed_batch((9, 6, 4))
    words = prepare_inputs(framed_bert, batch).word_mask
    maps = torch.rand(words.shape, generator=torch.Generator().manual_seed(0))
    maps[batch["input_ids"] == SEP] = 100.0  # [SEP] dominates every map, as rollout's does on real models
    maps[batch["input_ids"] == CLS] = 50.0
    chosen = masked_topk_mask(maps, token_counts(k, words), words)
    assert not (chosen & ~words.bool()).any()
    assert chosen.sum(dim=1).tolist() == token_counts(k, words)


@pytest.mark.parametrize(
    ("k", "words", "tokens"), [pytest.param(0.2, 2, 2, id="k=0.2"), pytest.param(0.25, 2, 3, id="k=0.25")]
)
def test_a_fraction_k_counts_word_tokens(framed_bert, k, words, tokens):
    # 10 words between [CLS] and [SEP]: k=0.2 is 2 word slots (0.25: 2 of 10 words, but 3 of 12 tokens).
    prepared = prepare_inputs(framed_bert, framed_batch((12,)))
    assert prepared.word_mask.sum().item() == 10
    assert token_counts(k, prepared.word_mask) == [words]
    assert token_counts(k, scored_inputs(prepared, "include").word_mask) == [tokens]


def test_an_integer_k_larger_than_the_words_is_cut_to_them(framed_bert):
    batch = framed_batch((9, 6, 4))
    assert token_counts(50, prepare_inputs(framed_bert, batch).word_mask) == [7, 4, 2]
    result = hf_robattr.evaluate_attribution_robustness(
        framed_bert, batch, k=50, measures=("topk_intersection",), attack="targeted", **FAST
    )
    assert result["saliency/topk_intersection"] == pytest.approx(1.0)


@pytest.mark.parametrize("mode", ["exclude", "include"])
def test_an_integer_k_is_cut_also_when_every_token_counts(framed_bert, mode):
    """Equal lengths and no padding (with "include", every token is a word): the one-group shortcut cuts k too."""
    batch = framed_batch((6, 6))
    result = hf_robattr.evaluate_attribution_robustness(
        framed_bert, batch, k=50, special_tokens=mode, measures=("topk_intersection",), attack="targeted", **FAST
    )
    assert result["saliency/topk_intersection"] == pytest.approx(1.0)
    clean = torch.tensor([[3.0, 2, 1]])
    assert similarity_scores(clean, clean.flip(1), ("topk_intersection",), 9, torch.ones(1, 3))[
        "topk_intersection"
    ].item() == pytest.approx(1.0)


def test_a_map_where_sep_dominates_is_ranked_over_words():
    # Clean: words 5 > 4 > 3 > 2 > 1; attacked: the reverse; [SEP] (100) tops both. Over words the top 2 swap
    # completely and the ranking reverses; counting [SEP] hides half of it.
    clean = torch.tensor([[0.0, 5, 4, 3, 2, 1, 100]])
    attacked = torch.tensor([[0.0, 1, 2, 3, 4, 5, 100]])
    real = torch.ones(1, 7)
    words = real.clone()
    words[0, [0, 6]] = 0
    names = ("topk_intersection", "kendall_tau")
    over_words = similarity_scores(clean, attacked, names, 2, words)
    over_tokens = similarity_scores(clean, attacked, names, 2, real)
    assert over_words["topk_intersection"].item() == 0.0 and over_words["kendall_tau"].item() == pytest.approx(-1.0)
    assert over_tokens["topk_intersection"].item() == 0.5 and over_tokens["kendall_tau"].item() > -0.5


# ---- perturbation and the scores -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["exclude", "include"])
def test_special_tokens_move_only_when_included(framed_bert, mode):
    batch = framed_batch((9, 6, 4))
    config = RobustnessConfig(methods=("saliency",), special_tokens=mode, epsilon=0.05, num_steps=3, num_samples=2)
    with RobustnessScorer(framed_bert, config) as scorer:
        maps = scorer.score_batch(batch, keep_maps=True).maps["saliency"]
    special = ((batch["input_ids"] == CLS) | (batch["input_ids"] == SEP)).unsqueeze(-1).expand_as(maps.features)
    moved = (maps.attacked_features != maps.features)[special]
    if mode == "exclude":
        assert not moved.any()
        assert (maps.clean_maps[special[..., 0]] == 0).all() and (maps.attacked_maps[special[..., 0]] == 0).all()
        torch.testing.assert_close(maps.word_mask, _expected_words(batch))
    else:
        assert moved.any()


# Per-example values of the code before `special_tokens` existed (commit 3f4ceb4, which ranked every real token), for
# `framed_bert` on framed_batch((9, 6, 4)) under the settings of the test below. The max_sensitivity values were
# re-pinned when the sensitivity samples got a stream of their own (no longer shifted by the attack's draws).
BEFORE_THE_SETTING = {
    "saliency/topk_intersection": [0.6666666865348816, 1.0, 1.0],
    "saliency/kendall_tau": [0.9444444179534912, 1.0, 1.0],
    "saliency/spearman": [0.9833332896232605, 1.0000001192092896, 1.0],
    "saliency/max_sensitivity": [0.003296267706900835, 0.006592576391994953, 0.004567648284137249],
    "rollout/topk_intersection": [1.0, 1.0, 1.0],
    "rollout/kendall_tau": [0.9444444179534912, 1.0, 1.0],
    "rollout/spearman": [0.9833332896232605, 1.0000001192092896, 1.0],
    "rollout/max_sensitivity": [7.289190398296341e-05, 0.0001425114751327783, 7.649519830010831e-05],
}


def _per_sample(model, mode):
    result = hf_robattr.evaluate_attribution_robustness(
        model,
        framed_batch((9, 6, 4)),
        methods=("saliency", "rollout"),
        special_tokens=mode,
        k=0.3,
        seed=1,
        return_per_sample=True,
        **FAST,
    )
    return {key: result["per_sample"][key] for key in BEFORE_THE_SETTING}


# max_sensitivity is ||a - a'|| / ||a|| of float32 maps that agree to ~3 digits: the difference keeps the rounding of
# a and a' (a few float32 ulps of ||a||, set by the CPU's kernels) however small it is, so the ratio is pinned to an
# absolute 32 float32 eps (measured drift under ATEN_CPU_CAPABILITY=default: 3.3e-7, 2.7 eps). The rank measures
# have no tie within rounding on this batch and keep 1e-6.
FLOAT32_EPS = torch.finfo(torch.float32).eps


def test_include_gives_the_numbers_from_before_the_setting(framed_bert):
    included = _per_sample(framed_bert, "include")
    for key, values in BEFORE_THE_SETTING.items():
        absolute = 32 * FLOAT32_EPS if key.endswith("max_sensitivity") else 1e-7
        assert included[key] == pytest.approx(values, rel=1e-6, abs=absolute), key


def test_exclude_moves_the_numbers(framed_bert):
    excluded = _per_sample(framed_bert, "exclude")
    assert excluded["saliency/kendall_tau"][0] != pytest.approx(BEFORE_THE_SETTING["saliency/kendall_tau"][0])


def test_sensitivity_norms_run_over_words(framed_bert):
    batch = framed_batch((9, 6))
    prepared = prepare_inputs(framed_bert, batch)
    words = prepared.word_mask
    offsets = 0.01 * torch.randn(2, 3, *prepared.features.shape[1:], generator=torch.Generator().manual_seed(5))
    offsets = offsets * words[:, None, :, None]
    got = sensitivity_family(
        framed_bert, batch, method="saliency", perturbations=offsets, keep_label=False, measures=("max_sensitivity",)
    )["max_sensitivity"]
    clean = explain(framed_bert, prepared).maps * words
    ratios = []
    for sample in range(3):
        moved = explain(framed_bert, prepared.with_features(prepared.features + offsets[:, sample])).maps * words
        ratios.append((moved - clean).norm(dim=1) / clean.norm(dim=1))
    torch.testing.assert_close(got, torch.stack(ratios, dim=1).amax(dim=1), rtol=1e-5, atol=1e-7)


# ---- texts without a word ------------------------------------------------------------------------------------------


def test_a_text_without_a_word_is_a_counted_skip(framed_bert):
    batch = framed_batch((9, 2, 4))  # row 1 is [CLS] [SEP]
    with pytest.warns(UserWarning, match="no word token"):
        result = hf_robattr.evaluate_attribution_robustness(
            framed_bert, batch, methods=("saliency", "rollout"), return_per_sample=True, **FAST
        )
    assert result["num_skipped"] == 1 and result["saliency/num_skipped"] == 1 and result["rollout/num_skipped"] == 1
    assert all(math.isnan(values[1]) for values in result["per_sample"].values())
    assert math.isfinite(result["saliency/kendall_tau"]) and math.isfinite(result["rollout/max_sensitivity"])


def test_a_batch_without_any_word_is_refused(framed_bert):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"no example left to score for \['saliency'\].*no word token"):
            hf_robattr.evaluate_attribution_robustness(framed_bert, framed_batch((2, 2)), **FAST)


def test_include_scores_a_text_of_special_tokens_only(framed_bert):
    result = hf_robattr.evaluate_attribution_robustness(
        framed_bert, framed_batch((9, 2)), special_tokens="include", measures=("max_sensitivity",), **FAST
    )
    assert result["num_skipped"] == 0


# ---- the setting ---------------------------------------------------------------------------------------------------


def test_the_setting_is_validated_and_parsed():
    assert RobustnessConfig().special_tokens == "exclude"
    with pytest.raises(ValueError, match=r"`special_tokens` 'drop'.*\['exclude', 'include'\]"):
        RobustnessConfig(special_tokens="drop")
    config = RobustnessConfig(special_tokens="include")
    assert RobustnessConfig.from_json(config.to_json()) == config
    (flags,) = HfArgumentParser(RobustnessArguments).parse_args_into_dataclasses(
        ["--robustness_special_tokens", "include"]
    )
    assert flags.to_config().special_tokens == "include"
    with pytest.raises(SystemExit):
        HfArgumentParser(RobustnessArguments).parse_args_into_dataclasses(["--robustness_special_tokens", "drop"])
