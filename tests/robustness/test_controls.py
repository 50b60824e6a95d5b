"""Positive and negative controls: on a model trained here, every measure at its default settings ranks the same
model with every perturbation halved (:class:`~hf_robattr.robustness.controls.AttenuatedClassifier`, more robust by
construction) above it, by more than the measure's seed-to-seed spread; and the model wrapped with nothing halved
scores the same within that spread.

Images: a tiny ViT trained on scikit-learn's digits. Text: a tiny BERT trained on the embedded sentiment sentences.
The construction is exact for maps that see the input through the model only (saliency, attention maps); input x
gradient multiplies by the unattenuated input, so it is not a control for that method (see the controls module).
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from transformers import BertConfig, BertForSequenceClassification, ViTConfig, ViTForImageClassification

import hf_robattr
from hf_robattr.data.embedded import make_synthetic_sentiment
from hf_robattr.data.tokenizer import build_offline_tokenizer
from hf_robattr.robustness.controls import AttenuatedClassifier
from hf_robattr.robustness.saturation import PERFECT, SaturationWarning


pytestmark = pytest.mark.slow

SEEDS = (0, 1, 2)
EXAMPLES = 16


def _train(model: torch.nn.Module, batches, steps: int, lr: float = 3e-3) -> torch.nn.Module:
    """A few Adam steps on ``batches`` (a function of the step giving model kwargs with ``labels``)."""
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for step in range(steps):
        loss = model(**batches(step)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def digits():
    """A tiny ViT trained on digits (8 x 8, 2 x 2 patches), and held-out images to score."""
    data = load_digits()
    images = torch.tensor(data.images / 16.0, dtype=torch.float32).unsqueeze(1)
    labels = torch.tensor(data.target)
    config = ViTConfig(
        image_size=8,
        patch_size=2,
        num_channels=1,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=10,
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    model = ViTForImageClassification(config)
    train = slice(0, 1500)
    order = torch.randperm(1500, generator=torch.Generator().manual_seed(0))

    def batch(step):
        rows = order[(step * 64) % 1500 :][:64]
        return {"pixel_values": images[train][rows], "labels": labels[train][rows]}

    _train(model, batch, steps=400, lr=3e-3)
    accuracy = (model(pixel_values=images[1500:]).logits.argmax(1) == labels[1500:]).float().mean().item()
    assert accuracy > 0.7, accuracy
    return model, images[1500 : 1500 + EXAMPLES]


@pytest.fixture(scope="module")
def sentiment():
    """A tiny BERT trained on the embedded sentiment sentences, and held-out tokenized sentences to score."""
    tokenizer = build_offline_tokenizer()
    data = make_synthetic_sentiment(num_examples=1200, seed=0)
    train, test = data["train"], data["test"]
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=32,
        num_labels=2,
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)

    def batch(step):
        rows = [(step * 32 + i) % len(train) for i in range(32)]
        encoded = tokenizer([train[i]["sentence"] for i in rows], padding=True, return_tensors="pt")
        return {**encoded, "labels": torch.tensor([train[i]["label"] for i in rows])}

    _train(model, batch, steps=200)
    encoded = tokenizer(test["sentence"][:EXAMPLES], padding=True, return_tensors="pt")
    return model, dict(encoded)


def _means(model, inputs, method, seeds=SEEDS) -> dict[str, np.ndarray]:
    """``{measure: [mean per scoring seed]}`` at the default settings; ``"saturated"``: the measures flagged in any
    of the scorings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SaturationWarning)
        rows = [
            hf_robattr.evaluate_attribution_robustness(model, inputs, methods=(method,), seed=seed, progress=False)
            for seed in seeds
        ]
    keys = [key for key in rows[0] if key.startswith(f"{method}/") and key.split("/")[1] in PERFECT]
    means = {key.split("/")[1]: np.array([row[key] for row in rows]) for key in keys}
    means["saturated"] = {key.split("/")[1] for row in rows for key in row["saturated"]}
    return means


def _check_order(weaker: dict, stronger: dict) -> None:
    """Every measure ranks ``stronger`` as more robust, by more than either model's spread over the seeds, unless
    the scorer flagged it as saturated (then it says itself that it cannot rank these models)."""
    wrong = {}
    flagged = weaker["saturated"] | stronger["saturated"]
    for measure, values in weaker.items():
        if measure == "saturated" or measure in flagged:
            continue
        sign = PERFECT[measure][1]
        margin = sign * (stronger[measure].mean() - values.mean())
        spread = max(np.ptp(values), np.ptp(stronger[measure]))
        if not margin > spread:
            wrong[measure] = (round(values.mean(), 4), round(stronger[measure].mean(), 4), round(spread, 4))
    assert wrong == {}, f"measure: (weaker mean, stronger mean, seed spread): {wrong}"
    assert len(flagged) <= len(weaker) // 2, f"too many saturated measures to call this a control: {flagged}"


def _check_same(first: dict, second: dict) -> None:
    """Two scorings of one function agree within the seed-to-seed spread (the negative control)."""
    for measure, values in first.items():
        if measure == "saturated":
            continue
        spread = max(np.ptp(values), np.ptp(second[measure]), 1e-9)
        assert abs(values.mean() - second[measure].mean()) <= 2 * spread, measure


def _control(model, inputs, method):
    """The model's scores (wrapped with factor 1: the same function) and the attenuated model's."""
    own = _means(AttenuatedClassifier(model, inputs, factor=1.0), inputs, method)
    attenuated = _means(AttenuatedClassifier(model, inputs, factor=0.5), inputs, method)
    return own, attenuated


@pytest.mark.parametrize("method", ["saliency", "rollout"])
def test_images_every_measure_ranks_the_attenuated_model_above(digits, method):
    _check_order(*_control(*digits, method))


def test_images_the_same_function_scores_the_same(digits):
    model, images = digits
    first = _means(model, images, "saliency")
    again = _means(AttenuatedClassifier(copy.deepcopy(model), images, factor=1.0), images, "saliency", seeds=(3, 4, 5))
    _check_same(first, again)


@pytest.mark.parametrize("method", ["saliency", "rollout"])
def test_text_every_measure_ranks_the_attenuated_model_above(sentiment, method):
    _check_order(*_control(*sentiment, method))


@pytest.mark.parametrize("factor", [0.5, np.float32(0.5), 1], ids=["float", "numpy", "int"])
def test_any_real_factor_in_range_is_taken(factor):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    assert AttenuatedClassifier(model, torch.zeros(1, 1, 2, 2), factor=factor).factor == float(factor)


@pytest.mark.parametrize("factor", [0, 1.5, -0.5, True, "0.5", float("nan")])
def test_a_factor_outside_the_unit_interval_is_refused(factor):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"`factor` must be a number in \(0, 1\]"):
        AttenuatedClassifier(model, torch.zeros(1, 1, 2, 2), factor=factor)
