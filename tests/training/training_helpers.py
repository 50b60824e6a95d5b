"""Shared helpers of the training tests: arguments, a tiny image dataset, a short training run."""

import torch
from datasets import Dataset
from transformers import default_data_collator

from hf_robattr.attribution import twice_differentiable_attention
from hf_robattr.training import RobAttrTrainer, RobAttrTrainingArguments


def make_args(tmp_path, **overrides):
    defaults = {
        "output_dir": str(tmp_path),
        "report_to": "none",
        "disable_tqdm": True,
        "save_strategy": "no",
        "per_device_train_batch_size": 4,
        "use_cpu": True,
        "seed": 0,
    }
    return RobAttrTrainingArguments(**{**defaults, **overrides})


def image_dataset(n=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randn(n, 3, 8, 8, generator=generator)
    labels = torch.randint(0, 3, (n,), generator=generator)
    return Dataset.from_dict({"pixel_values": pixels.numpy(), "labels": labels.numpy()}).with_format("torch")


def train(tmp_path, make_vit, callbacks=(), **overrides):
    args = make_args(tmp_path, **overrides)
    model = make_vit().float().train()
    trainer = RobAttrTrainer(
        model=model,
        args=args,
        train_dataset=image_dataset(),
        data_collator=default_data_collator,
        callbacks=list(callbacks),
    )
    trainer.train()
    return trainer


def grads_of(model):
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]


def regularizer_gradient(regularizer, model, batch):
    """The gradient the trainer would apply: via ``step`` (own backward passes) or ``objective`` in compute_loss."""
    model.zero_grad(set_to_none=True)
    with twice_differentiable_attention():
        if regularizer.owns_backward():
            regularizer.step(model, batch, core=model, backward=torch.Tensor.backward)
        else:
            regularizer.objective(*regularizer.loss_and_penalty(model, batch, core=model)).backward()
    return grads_of(model)
