"""Conversion data in every accepted form becomes the same per-example inputs; bad data fails with a clear error."""

import pytest
import torch
from datasets import Dataset, DatasetDict

from hf_robattr.conversion.inputs import PaddingCollator, to_examples
from hf_robattr.data import build_offline_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return build_offline_tokenizer(["the", "film", "was", "good", "bad", "plot"])


def test_texts_batches_and_datasets_give_the_same_examples(tokenizer):
    texts = ["the film was good", "bad plot", "the plot was bad bad bad"]
    from_texts = to_examples(texts, family="bert", tokenizer=tokenizer)
    encoded = tokenizer(texts, padding="max_length", max_length=12, return_tensors="pt")
    from_batch = to_examples(encoded, family="bert")  # right padding is stripped per example
    from_dataset = to_examples(Dataset.from_dict({"text": texts}), family="bert", tokenizer=tokenizer)
    from_dicts = to_examples([dict(e) for e in from_texts], family="bert")
    for examples in (from_batch, from_dataset, from_dicts):
        assert len(examples) == 3
        for got, want in zip(examples, from_texts):
            assert got.keys() == want.keys()
            for key in want:
                assert torch.equal(got[key], want[key]), key
    assert [len(e["input_ids"]) for e in from_texts] == [6, 4, 8]  # [CLS] ... [SEP]


def test_tensors_and_labels():
    pixels = torch.randn(5, 3, 8, 8)
    examples = to_examples({"pixel_values": pixels, "label": torch.arange(5)}, family="vit")
    assert len(examples) == 5 and torch.equal(examples[3]["pixel_values"], pixels[3]) and examples[3]["labels"] == 3
    assert torch.equal(to_examples(pixels, family="vit")[0]["pixel_values"], pixels[0])
    ids = torch.randint(1, 9, (4, 6))
    assert torch.equal(to_examples(ids, family="bert")[2]["input_ids"], ids[2])


@pytest.mark.parametrize(
    "inputs, error, message",
    [
        pytest.param([], ValueError, "inputs is empty", id="empty-list"),
        pytest.param(torch.empty(0, 3, 8, 8), ValueError, "inputs is empty", id="empty-tensor"),
        pytest.param(None, ValueError, "inputs is None", id="none"),
        pytest.param("a sentence", TypeError, "single string", id="one-string"),
        pytest.param(DatasetDict({"train": Dataset.from_dict({"text": ["a"]})}), TypeError, "DatasetDict", id="dict"),
        pytest.param(
            {"pixel_values": torch.randn(3, 3, 8, 8), "labels": torch.arange(2)},
            ValueError,
            "share the batch dimension",
            id="ragged",
        ),
        pytest.param({"images": torch.randn(2, 3, 8, 8)}, ValueError, "none of the model input keys", id="no-keys"),
        pytest.param([{"input_ids": torch.tensor([1, 2])}], ValueError, "has no 'pixel_values'", id="text-for-vit"),
        pytest.param(torch.full((2, 3, 8, 8), float("nan")), ValueError, "must be finite", id="nan"),
        pytest.param([3, 4], TypeError, r"inputs\[0\] must be a mapping", id="numbers"),
        pytest.param(42, TypeError, "inputs must be texts, a tensor", id="int"),
    ],
)
def test_bad_inputs(inputs, error, message):
    with pytest.raises(error, match=message):
        to_examples(inputs, family="vit")


def test_a_shorter_mask_does_not_cut_the_ids():
    """Stripping padding by a 3-token mask would cut 5 ids to 3: the example stays whole, for the data checks to
    refuse it by name (test_api_inputs.py)."""
    example = {"input_ids": torch.tensor([2, 5, 6, 7, 3]), "attention_mask": torch.ones(3, dtype=torch.long)}
    (kept,) = to_examples([example], family="bert")
    assert torch.equal(kept["input_ids"], example["input_ids"]) and len(kept["attention_mask"]) == 3


def test_texts_need_a_tokenizer():
    with pytest.raises(ValueError, match="needs tokenizer="):
        to_examples(["a sentence"], family="bert")
    with pytest.raises(ValueError, match="no text column 'text'"):
        to_examples(Dataset.from_dict({"sentence": ["a"]}), family="bert")


def test_padding_collator_pads_to_the_longest_example():
    examples = [{"input_ids": torch.tensor([5, 6, 7]), "labels": torch.tensor([1, -100, 2])},
                {"input_ids": torch.tensor([8]), "labels": torch.tensor([3])}]  # fmt: skip
    batch = PaddingCollator(pad_token_id=0)(examples)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[1, -100, 2], [3, -100, -100]]


def test_length_grouped_sampler_gives_full_homogeneous_global_batches():
    from hf_robattr.conversion.inputs import LengthGroupedSampler

    lengths = [int(n) for n in torch.randint(3, 60, (203,), generator=torch.Generator().manual_seed(0))]
    sampler = LengthGroupedSampler(lengths, global_batch_size=8, seed=1, group_batches=4)
    order = list(sampler)
    assert len(order) == len(sampler) == 200 and len(set(order)) == 200  # 3 dropped, no repeats
    batches = [order[i : i + 8] for i in range(0, 200, 8)]
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    shuffled = torch.randperm(203, generator=torch.Generator().manual_seed(2))[:200].tolist()
    random_spread = sum(max(lengths[i] for i in shuffled[k : k + 8]) - min(lengths[i] for i in shuffled[k : k + 8])
                        for k in range(0, 200, 8)) / 25  # fmt: skip
    assert spread < 0.5 * random_spread
    assert list(sampler) == order  # deterministic for a seed and epoch
    sampler.set_epoch(1)
    assert list(sampler) != order
