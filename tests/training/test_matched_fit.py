"""Two-sided matched fit (MatchedFitCallback) on planted loss curves: the true training loss of a model is a planted
function of its training step, so every check, rollback probe and restored copy of the weights can be told apart."""

import json
import math
import shutil

import pytest
import torch
from datasets import Dataset
from safetensors.torch import load_file
from torch import nn
from training_helpers import make_args
from transformers import default_data_collator
from transformers.modeling_outputs import SequenceClassifierOutput

from hf_robattr.training import (
    MatchedFitCallback,
    RobAttrTrainer,
    RobAttrTrainingArguments,
    TrainingRecord,
    training_callbacks,
)


class PlantedCurve(nn.Module):
    """A classifier whose eval-mode cross-entropy on every example (label 0) is ``curve[t]``, where the parameter
    ``t`` counts SGD steps: the training objective ``-t`` has gradient -1, so plain SGD at lr 1 adds 1 per step."""

    def __init__(self, curve: list[float]) -> None:
        super().__init__()
        self.t = nn.Parameter(torch.zeros(()))
        self.curve = torch.tensor(curve, dtype=torch.float64)

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None) -> SequenceClassifierOutput:
        batch = pixel_values.shape[0]
        loss_now = self.curve[round(self.t.item())]
        # cross-entropy of class 0 with logits (a, 0) is log(1 + exp(-a)): a = -log(expm1(L)) gives L
        margin = -torch.log(torch.expm1(loss_now)).float()
        logits = torch.stack([margin.expand(batch), torch.zeros(batch)], dim=1)
        return SequenceClassifierOutput(loss=-self.t + 0 * pixel_values.sum(), logits=logits)


def planted_trainer(folder, curve, callback, *, max_steps, save_every_step=False):
    data = Dataset.from_dict({"pixel_values": torch.zeros(16, 3, 8, 8).numpy(), "labels": [0] * 16})
    data = data.with_format("torch")
    args = make_args(folder, learning_rate=1.0, max_steps=max_steps, logging_steps=1, max_grad_norm=0.0)
    if save_every_step:
        args.save_strategy, args.save_steps = "steps", 1
    return RobAttrTrainer(
        model=PlantedCurve(curve), args=args, train_dataset=data, data_collator=default_data_collator,
        callbacks=[callback],
    )  # fmt: skip


def planted_run(tmp_path, curve, callback, *, max_steps):
    trainer = planted_trainer(tmp_path, curve, callback, max_steps=max_steps)
    trainer.train()
    return trainer, callback.record()


# batch 4: a check every 4 steps (16 examples), a copy of the weights at every step (4 examples)
OPTIONS = {"band": 0.1, "num_examples": 8, "check_every_examples": 16, "snapshot_every_examples": 4}


def checkpointing_trainer(folder, curve, *, max_steps):
    """A matched fit at target 1 with the options above, saving a Trainer checkpoint at every step."""
    return planted_trainer(
        folder, curve, MatchedFitCallback(1.0, **OPTIONS), max_steps=max_steps, save_every_step=True
    )


def test_a_crossing_between_checks_rolls_back_to_the_closest_copy(tmp_path):
    """Target 1, band [0.9, 1.1]: the check at step 4 is above it (1.5), the check at step 8 below it (0.5); the
    copies in between hold 1.3, 1.02, 0.8: the run ends on step 6's weights (1.02, in the band)."""
    curve = [3.0, 2.5, 2.0, 1.8, 1.5, 1.3, 1.02, 0.8, 0.5, 0.4, 0.3, 0.2, 0.1]
    trainer, record = planted_run(tmp_path, curve, MatchedFitCallback(1.0, **OPTIONS), max_steps=12)
    assert trainer.state.global_step == 8  # stopped at the check that overshot
    assert trainer.model.t.item() == 6.0  # and rolled back to the closest copy
    assert record["fit_outcome"] == "in_band" and record["rolled_back"] is True and record["target_reached"] is True
    assert record["train_loss_at_stop"] == pytest.approx(1.02, rel=1e-5)
    assert (record["train_loss_at_stop_step"], record["train_examples_at_stop"]) == (6, 24)
    measured = dict((int(e), loss) for e, loss in record["fit_checks"])
    assert measured[16] == pytest.approx(1.5) and measured[32] == pytest.approx(0.5)
    assert set(measured) <= {16, 20, 24, 28, 32} and len(measured) <= 4  # bisection: not every copy is measured


def test_a_check_inside_the_band_stops_there(tmp_path):
    curve = [3.0, 2.5, 2.0, 1.5, 1.05, 0.9, 0.5, 0.4, 0.3]
    trainer, record = planted_run(tmp_path, curve, MatchedFitCallback(1.0, **OPTIONS), max_steps=8)
    assert trainer.state.global_step == 4 and trainer.model.t.item() == 4.0
    assert record["fit_outcome"] == "in_band" and record["rolled_back"] is False
    assert record["train_loss_at_stop"] == pytest.approx(1.05, rel=1e-5)


def test_the_outcome_fills_the_typed_training_record(tmp_path):
    curve = [3.0, 2.5, 2.0, 1.5, 1.05, 0.9, 0.5, 0.4, 0.3]
    callback = MatchedFitCallback(1.0, **OPTIONS)
    _, record = planted_run(tmp_path, curve, callback, max_steps=8)
    training = callback.fill(TrainingRecord(optimizer="sgd", global_step=4))
    assert (training.optimizer, training.global_step, training.target_reached) == ("sgd", 4, True)
    fit = training.matched_fit
    assert fit.target_check_every_examples == 16 and fit.band.fit_outcome == "in_band"
    assert TrainingRecord.from_json(record) == callback.fill(TrainingRecord())  # every key it writes is a field's


def test_a_run_that_never_reaches_the_band_is_flagged_above_it(tmp_path):
    curve = [3.0 - 0.1 * step for step in range(13)]  # 1.8 after 12 steps
    trainer, record = planted_run(tmp_path, curve, MatchedFitCallback(1.0, **OPTIONS), max_steps=10)
    assert trainer.state.global_step == 10 and trainer.model.t.item() == 10.0
    assert record["fit_outcome"] == "above_band" and record["target_reached"] is False
    assert record["train_loss_at_stop"] == pytest.approx(2.0, rel=1e-5)  # measured at the last step
    assert [int(e) for e, _ in record["fit_checks"]] == [16, 32, 40]


def test_a_jump_over_the_band_is_flagged_below_it(tmp_path):
    """One step jumps from 1.3 to 0.8: the closest copy (0.8, |log 0.8| < |log 1.3|) lies below the band."""
    curve = [3.0, 2.5, 2.0, 1.8, 1.5, 1.4, 1.3, 0.8, 0.5, 0.4, 0.3]
    trainer, record = planted_run(tmp_path, curve, MatchedFitCallback(1.0, **OPTIONS), max_steps=10)
    assert trainer.model.t.item() == 7.0
    assert record["fit_outcome"] == "below_band" and record["target_reached"] is False and record["rolled_back"]


def test_an_overshoot_after_the_last_check_is_rolled_back_at_the_end(tmp_path):
    curve = [3.0, 2.5, 2.0, 1.8, 1.5, 1.3, 1.0, 0.8, 0.5]
    trainer, record = planted_run(tmp_path, curve, MatchedFitCallback(1.0, **OPTIONS), max_steps=7)
    assert trainer.state.global_step == 7 and trainer.model.t.item() == 6.0
    assert record["fit_outcome"] == "in_band" and record["rolled_back"] is True


def test_no_check_or_rollback_before_min_examples(tmp_path):
    """With min_examples 24 (step 6) the first check is at step 6, already below the band: the run cannot go back
    before it and is flagged below the band."""
    curve = [3.0, 2.5, 1.5, 1.0, 0.9, 0.8, 0.6, 0.5, 0.4, 0.3]
    callback = MatchedFitCallback(1.0, min_examples=24, **OPTIONS)
    trainer, record = planted_run(tmp_path, curve, callback, max_steps=9)
    assert trainer.model.t.item() == 6.0 and record["fit_outcome"] == "below_band" and not record["rolled_back"]
    assert [int(e) for e, _ in record["fit_checks"]] == [24]


def test_without_copies_between_checks_it_rolls_back_to_the_previous_check(tmp_path):
    """Target 1.1 within 1%: step 4 (1.2) and step 8 (0.95) straddle the band; with no copies in between the
    closer of the two checks (1.2) is kept, and the run is flagged above the band."""
    curve = [3.0, 2.5, 2.0, 1.8, 1.2, 1.15, 1.1, 1.0, 0.95, 0.9]
    options = {**OPTIONS, "snapshot_every_examples": 0, "band": 0.01}
    trainer, record = planted_run(tmp_path, curve, MatchedFitCallback(1.1, **options), max_steps=9)
    assert trainer.state.global_step == 8 and trainer.model.t.item() == 4.0
    assert record["fit_outcome"] == "above_band" and record["rolled_back"] is True


def test_the_training_argument_selects_the_two_sided_rule(tmp_path):
    args = RobAttrTrainingArguments(
        output_dir=str(tmp_path), target_train_loss=0.01, target_loss_band=0.1, target_min_examples=64,
        target_snapshot_every_examples=8,
    )  # fmt: skip
    (callback,) = training_callbacks(args)
    assert isinstance(callback, MatchedFitCallback)
    assert (callback.low, callback.high) == pytest.approx((0.009, 0.011))
    assert (callback.min_examples, callback.snapshot_every_examples) == (64, 8)
    assert not any(isinstance(c, MatchedFitCallback) for c in training_callbacks(make_args(tmp_path)))
    assert math.isclose(callback.target, 0.01)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"band": 0.0}, "target_loss_band must be in", id="band-zero"),
        pytest.param({"band": 1.0}, "target_loss_band must be in", id="band-one"),
        pytest.param({"band": 0.1, "min_examples": -1}, "min_examples must be >= 0", id="min"),
        pytest.param({"band": 0.1, "snapshot_every_examples": -4}, "snapshot_every_examples", id="snapshot"),
    ],
)
def test_bad_band_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MatchedFitCallback(0.1, **kwargs)


@pytest.mark.parametrize(
    ("flags", "match"),
    [
        pytest.param({"target_loss_band": 0.1}, "--target_loss_band needs --target_train_loss", id="no-target"),
        pytest.param({"target_train_loss": 0.1, "target_loss_band": 1.5}, "--target_loss_band", id="band"),
        pytest.param({"target_min_examples": -1}, "--target_min_examples", id="min"),
        pytest.param(
            {
                "target_train_loss": 0.1,
                "load_best_model_at_end": True,
                "eval_strategy": "steps",
                "save_strategy": "steps",
            },
            "--load_best_model_at_end cannot be combined with --target_train_loss",
            id="load-best",
        ),
    ],
)
def test_bad_band_arguments_name_the_flag(tmp_path, flags, match):
    with pytest.raises(ValueError, match=match):
        RobAttrTrainingArguments(output_dir=str(tmp_path), **flags)


def test_a_resumed_run_records_its_checks_in_order():
    """A checkpoint stores the checks as JSON lists; the resumed run appends tuples: the record sorts both."""
    import json

    saved = json.loads(json.dumps(MatchedFitCallback(1.0, **OPTIONS).state()))
    resumed = MatchedFitCallback(**saved["args"])
    for name, value in {**saved["attributes"], "checks": [[16, 1.5], [32, 1.2]]}.items():
        setattr(resumed, name, value)  # as the Trainer restores a callback's state from a checkpoint
    resumed.checks.append((24, 1.3))
    assert resumed.fit_record().band.fit_checks == [[16, 1.5], [24, 1.3], [32, 1.2]]


def test_resuming_after_the_fit_ended_is_refused(tmp_path):
    """A checkpoint saved at the stop holds the callback's outcome: resumed, the run would take one more step before
    the callback stopped it, past the fit its record states. Refused before any step."""
    curve = [3.0, 2.5, 2.0, 1.8, 1.5, 1.3, 1.0, 0.8, 0.5, 0.4, 0.3]
    first = checkpointing_trainer(tmp_path / "first", curve, max_steps=10)
    first.train()
    assert first.state.global_step == 8 and first.model.t.item() == 6.0  # rolled back at the check of step 8
    again = checkpointing_trainer(tmp_path / "again", curve, max_steps=10)
    with pytest.raises(
        ValueError, match=r"saved after the run's matched fit ended \(in_band, the weights of step 6\)"
    ):
        again.train(resume_from_checkpoint=str(tmp_path / "first" / "checkpoint-8"))
    assert again.state.global_step == 8 and again.model.t.item() == 6.0  # no step taken


def test_a_checkpoint_saved_before_an_end_of_budget_rollback_is_refused_too(tmp_path):
    """Out of budget at step 7 (the last check at step 4): the checkpoint of step 7 is saved before the rollback to
    step 6, so it holds step 7's weights. Its state gets the outcome: resumed, it is refused instead of ending on
    weights the run did not keep."""
    curve = [3.0, 2.5, 2.0, 1.8, 1.5, 1.3, 1.0, 0.8, 0.5]
    first = checkpointing_trainer(tmp_path / "first", curve, max_steps=7)
    first.train()
    assert first.model.t.item() == 6.0  # rolled back at the end
    checkpoint = tmp_path / "first" / "checkpoint-7"
    assert load_file(checkpoint / "model.safetensors")["t"].item() == 7.0  # saved before the rollback
    again = checkpointing_trainer(tmp_path / "again", curve, max_steps=7)
    with pytest.raises(ValueError, match=r"matched fit ended \(in_band, the weights of step 6\)"):
        again.train(resume_from_checkpoint=str(checkpoint))
    # a checkpoint this run did not save (a leftover of an earlier run in the folder) is not marked
    leftover = tmp_path / "leftover"
    shutil.copytree(tmp_path / "first", leftover)
    state = json.loads((leftover / "checkpoint-7" / "trainer_state.json").read_text())
    state["stateful_callbacks"]["MatchedFitCallback"]["attributes"]["outcome"] = None
    (leftover / "checkpoint-7" / "trainer_state.json").write_text(json.dumps(state))
    unsaved = checkpointing_trainer(leftover, curve, max_steps=7)
    unsaved.args.save_strategy = "no"
    unsaved.train()
    assert unsaved.model.t.item() == 6.0  # rolled back too
    state = json.loads((leftover / "checkpoint-7" / "trainer_state.json").read_text())
    assert state["stateful_callbacks"]["MatchedFitCallback"]["attributes"]["outcome"] is None
    # a checkpoint saved before any rollback keeps no outcome: a longer budget can still continue from it
    no_rollback = checkpointing_trainer(tmp_path / "short", curve, max_steps=3)
    no_rollback.train()
    longer = checkpointing_trainer(tmp_path / "longer", curve, max_steps=7)
    longer.train(resume_from_checkpoint=str(tmp_path / "short" / "checkpoint-3"))
    assert longer.callback_handler.callbacks[-1].record()["fit_outcome"] == "in_band"
