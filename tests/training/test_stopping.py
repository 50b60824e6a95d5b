"""Matched fit (TargetLossCallback) against a direct computation of the training loss; divergence stopping."""

import math

import pytest
import torch
import torch.nn.functional as F
from training_helpers import image_dataset, make_args, train
from transformers import TrainerControl, TrainerState, default_data_collator

from hf_robattr.training import DivergenceCallback, RobAttrTrainer, TargetLossCallback


def direct_loss(model, num_examples):
    """Mean cross-entropy of the model in eval mode on the first ``num_examples`` training examples."""
    data = image_dataset()[:num_examples]
    model.eval()
    with torch.no_grad():
        return F.cross_entropy(model(pixel_values=data["pixel_values"]).logits, data["labels"]).item()


def checks(trainer):
    return [row for row in trainer.state.log_history if "matched_fit/train_loss" in row]


def test_stops_at_the_first_check_below_the_target_with_the_true_loss(tmp_path, make_vit):
    callback = TargetLossCallback(50.0, num_examples=12, check_every_examples=8)
    trainer = train(tmp_path, make_vit, [callback], max_steps=6, logging_steps=1, target_train_loss=50.0)
    assert trainer.state.global_step == 2  # 2 steps x 4 examples = the first check
    record = callback.record()
    assert record["target_reached"] is True
    assert (record["target_reached_at_step"], record["target_reached_at_examples"]) == (2, 8)
    assert record["train_loss_at_stop"] == pytest.approx(direct_loss(trainer.model, 12), rel=1e-5)
    assert [row["matched_fit/examples"] for row in checks(trainer)] == [8.0]


def test_never_reached_records_the_true_loss_at_the_last_step(tmp_path, make_vit):
    callback = TargetLossCallback(1e-9, num_examples=16, check_every_examples=12)
    trainer = train(tmp_path, make_vit, [callback], max_steps=5, logging_steps=1)
    record = callback.record()
    assert record["target_reached"] is False and record["target_reached_at_step"] is None
    assert [row["matched_fit/examples"] for row in checks(trainer)] == [12.0]  # step 3 crosses 12 examples
    assert record["train_loss_at_stop_step"] == 5  # measured again at the end
    assert record["train_loss_at_stop"] == pytest.approx(direct_loss(trainer.model, 16), rel=1e-5)


@pytest.mark.parametrize("batch_size", [pytest.param(2, id="B2"), pytest.param(8, id="B8")])
def test_checks_follow_examples_not_steps(tmp_path, make_vit, batch_size):
    callback = TargetLossCallback(1e-9, num_examples=4, check_every_examples=8)
    args = {"per_device_train_batch_size": batch_size, "num_train_epochs": 2, "logging_steps": 100}
    trainer = train(tmp_path, make_vit, [callback], **args)
    assert [row["matched_fit/examples"] for row in checks(trainer)] == [8.0, 16.0, 24.0, 32.0]
    assert [row["step"] for row in checks(trainer)] == [8 // batch_size * k for k in (1, 2, 3, 4)]


def test_state_restores_after_resume(tmp_path, make_vit):
    """A run resumed from a checkpoint restores the callback (Trainer rebuilds it from ``state()``) and ends with
    the record of the uninterrupted run."""
    options = {"max_steps": 4, "logging_steps": 1, "target_train_loss": 1e-9}
    options |= {"target_loss_examples": 8, "target_check_every_examples": 8}
    straight = TargetLossCallback(1e-9, num_examples=8, check_every_examples=8)
    train(tmp_path / "straight", make_vit, [straight], **options)

    first = TargetLossCallback(1e-9, num_examples=8, check_every_examples=8)
    train(tmp_path / "first", make_vit, [first], save_strategy="steps", save_steps=2, **options)
    resumed_args = make_args(tmp_path / "resumed", **options)
    trainer = RobAttrTrainer(
        model=make_vit().float().train(),
        args=resumed_args,
        train_dataset=image_dataset(),
        data_collator=default_data_collator,
        callbacks=[TargetLossCallback(1e-9, num_examples=8, check_every_examples=8)],
    )
    trainer.train(resume_from_checkpoint=str(tmp_path / "first" / "checkpoint-2"))
    restored = next(cb for cb in trainer.callback_handler.callbacks if isinstance(cb, TargetLossCallback))
    assert restored.trainer is trainer
    assert restored.record() == pytest.approx(straight.record())


def test_resuming_after_the_target_was_reached_is_refused(tmp_path, make_vit):
    """The checkpoint at the stop holds ``reached``: resumed, the run would take a step past the target before the
    callback stopped it. Refused before any step."""
    options = {"max_steps": 6, "logging_steps": 1, "save_strategy": "steps", "save_steps": 2}
    first = train(
        tmp_path / "first", make_vit, [TargetLossCallback(50.0, num_examples=8, check_every_examples=8)], **options
    )
    assert first.state.global_step == 2
    trainer = RobAttrTrainer(
        model=make_vit().float().train(),
        args=make_args(tmp_path / "resumed", max_steps=6, logging_steps=1),
        train_dataset=image_dataset(),
        data_collator=default_data_collator,
        callbacks=[TargetLossCallback(50.0, num_examples=8, check_every_examples=8)],
    )
    with pytest.raises(ValueError, match=r"reached --target_train_loss 50 \(at step 2\): resuming would train past"):
        trainer.train(resume_from_checkpoint=str(tmp_path / "first" / "checkpoint-2"))
    assert trainer.state.global_step == 2


@pytest.mark.parametrize(
    ("callback", "flag"),
    [
        pytest.param(
            TargetLossCallback(100.0, num_examples=8, check_every_examples=8), "--target_train_loss", id="target"
        ),
        pytest.param(
            TargetLossCallback(1e-9, num_examples=4, check_every_examples=8), "--target_loss_examples", id="examples"
        ),
        pytest.param(DivergenceCallback(7.0), "--divergence_loss", id="divergence"),
    ],
)
def test_a_resume_with_other_stopping_settings_is_refused(tmp_path, make_vit, callback, flag):
    """Transformers rebuilds a saved callback from the checkpoint's arguments: resumed with another target, the run
    would stop by the old one while its record states the new one. Refused, naming the flag and both values."""
    options = {"max_steps": 4, "logging_steps": 1, "save_strategy": "steps", "save_steps": 2}
    saved = [TargetLossCallback(1e-9, num_examples=8, check_every_examples=8), DivergenceCallback(20.0)]
    train(tmp_path / "first", make_vit, saved, **options)
    others = [cb for cb in saved if type(cb) is not type(callback)]
    trainer = RobAttrTrainer(
        model=make_vit().float().train(),
        args=make_args(tmp_path / "resumed", max_steps=4, logging_steps=1),
        train_dataset=image_dataset(),
        data_collator=default_data_collator,
        callbacks=[*others, callback],
    )
    with pytest.raises(ValueError, match=rf"{flag} .* in the checkpoint, .* now.*start a new run"):
        trainer.train(resume_from_checkpoint=str(tmp_path / "first" / "checkpoint-2"))
    assert trainer.state.global_step == 2  # refused before any step


@pytest.mark.parametrize(
    ("logs", "diverged"),
    [
        pytest.param({"loss": 5.0}, False, id="finite-below"),
        pytest.param({"loss": 25.0}, True, id="above-limit"),
        pytest.param({"loss": math.nan}, True, id="nan"),
        pytest.param({"loss": math.inf}, True, id="inf"),
        pytest.param({"loss": 25.0, "data_loss": 5.0}, False, id="data-loss-wins"),
        pytest.param({"eval_loss": 99.0}, False, id="not-a-training-log"),
    ],
)
def test_divergence_reads_the_logged_data_loss(logs, diverged):
    callback, control = DivergenceCallback(20.0), TrainerControl()
    callback.on_log(None, TrainerState(global_step=3), control, logs=logs)
    assert callback.diverged is diverged and control.should_training_stop is diverged
    assert callback.diverged_at_step == (3 if diverged else None)


def test_divergence_stops_a_run_whose_weights_became_nan(tmp_path, make_vit):
    """Trainer logs the running mean instead of a NaN step loss; the non-finite weights still stop the run."""
    callback = DivergenceCallback(1e6)
    trainer = train(tmp_path, make_vit, [callback], max_steps=20, logging_steps=1, learning_rate=1e30)
    assert callback.diverged and trainer.state.global_step < 20


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"target": 0.0}, "target_train_loss must be > 0", id="target"),
        pytest.param({"target": 0.1, "num_examples": 0}, "num_examples must be >= 1", id="examples"),
        pytest.param({"target": 0.1, "check_every_examples": 0}, "check_every_examples", id="every"),
    ],
)
def test_bad_target_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TargetLossCallback(**kwargs)
