"""convert_to_kernel checks ``inputs``, ``eval_inputs`` and ``validation_inputs`` alike: data that does not fit the
teacher fails before any training with a ``ValueError`` that names the argument (not a raw ``IndexError``)."""

import pytest
import torch
from conversion_helpers import QUICK, TINY_BERT
from transformers import Trainer

from hf_robattr.conversion import convert_to_kernel


HELD_OUT = ["eval_inputs", "validation_inputs"]
VOCAB = TINY_BERT["vocab_size"]  # 40: ids 0..39


class TrainingStarted(Exception):
    """Raised in place of ``Trainer.train``: every check passed."""


@pytest.fixture
def no_training(monkeypatch):
    """Make ``Trainer.train`` raise :class:`TrainingStarted`, so that a test sees how far the checks got."""

    def refuse(*args, **kwargs):
        raise TrainingStarted

    monkeypatch.setattr(Trainer, "train", refuse)


@pytest.mark.parametrize("argument", HELD_OUT)
def test_held_out_token_ids_outside_the_vocabulary_name_the_argument(teachers, text_ids, no_training, argument):
    train, held_out = text_ids
    bad = {**held_out, "input_ids": held_out["input_ids"] + 200}  # the reviewer's repro: ids + 200
    with pytest.raises(ValueError) as raised:
        convert_to_kernel(teachers["bert"], train, **QUICK, transfer_check_steps=10, **{argument: bad})
    message = str(raised.value)
    assert message.startswith(f"{argument} do not fit the model (RobAttrBertModel): {argument}[0] has token ids")
    assert f"the vocabulary holds ids 0 to {VOCAB - 1}" in message


@pytest.mark.parametrize("argument", ["inputs", *HELD_OUT])
def test_one_bad_example_late_in_the_data_is_found_and_named(teachers, text_ids, no_training, argument):
    train, held_out = text_ids
    data = {"inputs": train, "eval_inputs": held_out, "validation_inputs": held_out}
    ids = data[argument]["input_ids"].clone()
    ids[9, 2] = VOCAB  # one past the last id; the two-example forward pass never sees example 9
    data[argument] = {**data[argument], "input_ids": ids}
    inputs = data.pop("inputs")
    with pytest.raises(ValueError, match=rf"^{argument} do not fit .*: {argument}\[9\] has token ids in \[\d+, 40\]"):
        convert_to_kernel(teachers["bert"], inputs, **QUICK, **data)


@pytest.mark.parametrize("argument", HELD_OUT)
def test_negative_held_out_token_ids_are_refused(teachers, text_ids, no_training, argument):
    train, held_out = text_ids
    ids = held_out["input_ids"].clone()
    ids[0, 0] = -1
    with pytest.raises(ValueError, match=rf"{argument}\[0\] has token ids in \[-1, "):
        convert_to_kernel(teachers["bert"], train, **QUICK, **{argument: {**held_out, "input_ids": ids}})


@pytest.mark.parametrize("argument", HELD_OUT)
def test_held_out_images_of_the_wrong_size_name_the_argument(teachers, images, no_training, argument):
    train, _ = images
    wrong = torch.randn(4, 3, 12, 12)  # the tiny ViT takes 8x8 images
    with pytest.raises(ValueError, match=rf"^{argument} do not fit the model \(RobAttrViTModel\): "):
        convert_to_kernel(teachers["vit"], train, **QUICK, **{argument: wrong})


@pytest.mark.parametrize("argument", HELD_OUT)
def test_held_out_ids_up_to_the_last_vocabulary_entry_pass_the_checks(teachers, text_ids, no_training, argument):
    train, held_out = text_ids
    ids = held_out["input_ids"].clone()
    ids[0, 0] = VOCAB - 1
    with pytest.raises(TrainingStarted):
        convert_to_kernel(teachers["bert"], train, **QUICK, **{argument: {**held_out, "input_ids": ids}})
