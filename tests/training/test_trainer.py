"""RobAttrTrainer: the step applies the regularizer's gradient, ``none`` is the plain Trainer step, logging,
diagnostics logging and checkpoint loading."""

import pytest
import torch
from training_helpers import grads_of, image_dataset, make_args, regularizer_gradient, train
from transformers import Trainer, default_data_collator

from hf_robattr.robustness import RobustnessConfig
from hf_robattr.training import (
    DiagnosticsCallback,
    IGNormRegularizer,
    InputGradNormRegularizer,
    RobAttrTrainer,
    SAMRegularizer,
)


@pytest.mark.parametrize(
    ("name", "options", "cls"),
    [
        pytest.param("input_grad_norm", {}, InputGradNormRegularizer, id="input_grad_norm"),
        pytest.param("sam", {}, SAMRegularizer, id="sam"),
        pytest.param(
            "ig_norm", {"ig_steps": 4, "ig_chunk_size": 2, "ig_epsilon": 0.0}, IGNormRegularizer, id="ig-chunked"
        ),
    ],
)
def test_training_step_applies_the_regularizer(tmp_path, image_batch, make_vit, name, options, cls):
    model = make_vit().train()
    args = make_args(tmp_path, regularizer=name, regularizer_weight=0.3, **options)
    trainer = RobAttrTrainer(model=model, args=args, train_dataset=image_dataset())
    assert isinstance(trainer.regularizer, cls)
    trainer.current_gradient_accumulation_steps = 1
    model.zero_grad(set_to_none=True)
    trainer.training_step(model, dict(image_batch))
    actual = grads_of(model)
    expected = regularizer_gradient(trainer.regularizer, make_vit().train(), dict(image_batch))
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e, rtol=1e-7, atol=1e-9)


def test_none_is_the_plain_trainer_step(tmp_path, image_batch, make_vit):
    grads = []
    for trainer_cls, args in ((Trainer, make_args(tmp_path)), (RobAttrTrainer, make_args(tmp_path))):
        model = make_vit().train()
        trainer = trainer_cls(model=model, args=args, train_dataset=image_dataset())
        trainer.current_gradient_accumulation_steps = 1
        trainer.training_step(model, dict(image_batch))
        grads.append(grads_of(model))
    assert getattr(trainer, "regularizer", "missing") is None
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_args_must_be_robattr_training_arguments(tmp_path, make_vit):
    from transformers import TrainingArguments

    with pytest.raises(TypeError, match="RobAttrTrainingArguments"):
        RobAttrTrainer(model=make_vit().float(), args=TrainingArguments(output_dir=str(tmp_path)))


def test_regularized_training_logs_data_loss_and_penalty(tmp_path, make_vit):
    trainer = train(tmp_path, make_vit, regularizer="curvature", max_steps=4, logging_steps=2)
    rows = [row for row in trainer.state.log_history if "loss" in row]
    assert len(rows) == 2
    for row in rows:
        assert row["regularizer_penalty"] >= 0
        assert row["loss"] == pytest.approx(row["data_loss"] + 0.01 * row["regularizer_penalty"], rel=1e-3)


def test_diagnostics_are_logged_through_trainer_log(tmp_path, make_vit):
    args = {
        "max_steps": 2,
        "logging_steps": 1,
        "diagnostics_steps": 2,
        "diagnostics_batch_size": 4,
        "report_to": "tensorboard",
    }
    config = RobustnessConfig(num_samples=1, num_steps=1)
    trainer = train(tmp_path, make_vit, callbacks=[DiagnosticsCallback(config)], **args)
    rows = [row for row in trainer.state.log_history if "diagnostics/hessian_trace" in row]
    assert [row["step"] for row in rows] == [0, 2]
    for key in (
        "diagnostics/hessian_top_eigenvalue",
        "diagnostics/input_curvature",
        "diagnostics/attention_entropy",
        "diagnostics/robustness/saliency/topk_intersection",
    ):
        assert all(isinstance(row[key], float) for row in rows), key
    assert trainer.model.training
    assert [row["step"] for row in trainer.state.log_history if "loss" in row] == [1, 2]  # loss logs kept
    assert list(tmp_path.rglob("events.out.tfevents*"))


def test_load_best_model_at_end_loads_the_best_checkpoint(tmp_path, make_vit):
    """transformers 5.x reloads Trainer checkpoints without ViT key renames; RobAttrTrainer must really load them."""
    from safetensors.torch import load_file

    overrides = {"max_steps": 4, "eval_strategy": "steps", "eval_steps": 2, "save_strategy": "steps", "save_steps": 2}
    overrides |= {"load_best_model_at_end": True, "metric_for_best_model": "loss", "logging_steps": 2}
    args = make_args(tmp_path, **overrides)
    trainer = RobAttrTrainer(
        model=make_vit().float().train(),
        args=args,
        train_dataset=image_dataset(),
        eval_dataset=image_dataset(8, seed=1),
        data_collator=default_data_collator,
    )
    trainer.train()
    best = trainer.state.best_model_checkpoint
    trainer.save_model(str(tmp_path / "final"))
    saved, final = load_file(f"{best}/model.safetensors"), load_file(str(tmp_path / "final" / "model.safetensors"))
    assert saved.keys() == final.keys()
    for name in saved:
        torch.testing.assert_close(final[name], saved[name], rtol=0, atol=0, msg=name)
