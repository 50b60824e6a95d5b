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


def _texts(count: int = 16, length: int = 8, **extra) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(3)
    return [{"input_ids": torch.randint(1, VOCAB, (length,), generator=generator), **extra} for _ in range(count)]


def _with(examples: list[dict], index: int, **changes) -> list[dict]:
    """``examples`` with example ``index`` changed (a key set to None is removed)."""
    changed = {**examples[index], **changes}
    return [*examples[:index], {k: v for k, v in changed.items() if v is not None}, *examples[index + 1 :]]


MASK = torch.ones(8, dtype=torch.long)
LATE = 9  # past the two examples of the teacher's forward pass
# (teacher, argument, its data, the message after "<argument> do not fit the model (<class>): ")
BAD_DATA = {
    "longer-than-max-positions": ("bert", "inputs", _with(_texts(), LATE, input_ids=torch.randint(1, VOCAB, (20,))),
                                  r"inputs\[9\] has 20 tokens, more than the model's max_position_embeddings \(16\)"),
    "token-type-out-of-range": ("bert", "eval_inputs", _with(_texts(token_type_ids=torch.zeros(8, dtype=torch.long)),
                                LATE, token_type_ids=torch.full((8,), 5)),
                                r"eval_inputs\[9\] has token_type_ids in \[5, 5\] .* type_vocab_size=2"),
    "mixed-attention-mask": ("bert", "inputs", _with(_texts(attention_mask=MASK), LATE, attention_mask=None),
                             r"inputs\[9\] has the inputs \['input_ids'\], but inputs\[0\] has \['attention_mask', "
                             r"'input_ids'\]: every example needs the same inputs"),
    "mask-of-another-length": ("bert", "validation_inputs", _with(_texts(attention_mask=MASK), LATE,
                               attention_mask=torch.ones(9, dtype=torch.long)),
                               r"validation_inputs\[9\] has attention_mask of shape \(9,\) for input_ids of shape"),
    "shorter-mask": ("bert", "inputs", _with(_texts(attention_mask=MASK), LATE, attention_mask=torch.ones(3, dtype=torch.long)),
                     r"inputs\[9\] has attention_mask of shape \(3,\) for input_ids of shape"),
    "float-ids": ("bert", "inputs", _with(_texts(), LATE, input_ids=torch.rand(8) * 30),
                  r"inputs\[9\] has input_ids of shape \(8,\) and dtype torch.float32; expected one sequence of "
                  r"integer token ids"),
    "images-of-two-sizes": ("vit", "inputs", _with([{"pixel_values": torch.randn(3, 8, 8)} for _ in range(16)], LATE,
                            pixel_values=torch.randn(3, 16, 16)),
                            r"inputs\[9\] has pixel_values of shape \(3, 16, 16\), but the model takes images of "
                            r"shape \(3, 8, 8\)"),
    "class-label-out-of-range": ("bert_classifier", "inputs", _with(_texts(labels=torch.tensor(1)), LATE,
                                 labels=torch.tensor(7)), r"inputs\[9\] has label 7 \(torch.int64\), but the model has "
                                 r"3 labels: expected an integer class id from 0 to 2 \(or -100: unscored\)"),
    "eval-label-out-of-range": ("bert_classifier", "eval_inputs", _with(_texts(labels=torch.tensor(0)), LATE,
                                labels=torch.tensor(3)), r"eval_inputs\[9\] has label 3"),
    "float-class-labels": ("vit_classifier", "eval_inputs", [{"pixel_values": torch.randn(3, 8, 8),
                           "labels": torch.tensor(1.0)} for _ in range(16)], r"eval_inputs\[0\] has label 1.0 "
                           r"\(torch.float32\)"),
    "class-labels-for-a-masked-lm": ("bert_mlm", "eval_inputs", _texts(labels=torch.tensor(1)),
                                     r"eval_inputs\[0\] has labels of shape \(\) and dtype torch.int64; a masked LM "
                                     r"takes one integer label per token \(shape \(8,\)"),
    "token-label-outside-the-vocabulary": ("bert_mlm", "inputs", _with(_texts(labels=torch.full((8,), -100)), LATE,
                                           labels=torch.tensor([-100] * 7 + [VOCAB])),
                                           r"inputs\[9\] has token labels in \[40, 40\]; expected ids from 0 to 39"),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_DATA)
def test_every_example_is_checked_before_any_training(teachers, text_ids, images, no_training, case):
    """One bad example anywhere in inputs, eval_inputs or validation_inputs fails up front, naming the argument, the
    example and what was expected (it failed mid-training, or was measured silently, when only two were checked)."""
    teacher, argument, data, message = BAD_DATA[case]
    good = _texts(16) if teacher.startswith("bert") else images[0]
    arguments = {"inputs": good, argument: data}
    inputs = arguments.pop("inputs")
    task_loss = {"task_loss_weight": 1.0} if "labels" in data[0] and argument == "inputs" else {}
    name = type(teachers[teacher]).__name__.replace("Bert", "RobAttrBert").replace("ViT", "RobAttrViT")
    with pytest.raises(ValueError, match=rf"^{argument} do not fit the model \({name}\): {message}"):
        convert_to_kernel(teachers[teacher], inputs, **QUICK, **task_loss, **arguments)


def test_labels_a_model_can_take_pass_the_checks(teachers, no_training):
    """Unscored labels (-100), a masked LM's token labels, and a base model's labels (dropped: nothing uses them)."""
    scored = _with(_texts(16, labels=torch.tensor(2)), 3, labels=torch.tensor(-100))
    with pytest.raises(TrainingStarted):
        convert_to_kernel(teachers["bert_classifier"], scored, eval_inputs=scored[:4], task_loss_weight=1.0, **QUICK)
    tokens = _texts(16, labels=torch.tensor([-100, 5, -100, 39, -100, -100, 0, -100]))
    with pytest.raises(TrainingStarted):
        convert_to_kernel(teachers["bert_mlm"], tokens, eval_inputs=tokens[:4], **QUICK)
    with pytest.raises(TrainingStarted):
        convert_to_kernel(teachers["bert"], _texts(16, labels=torch.tensor(99)), **QUICK)
