"""Shared helpers of the training tests: arguments, a tiny image dataset, a short training run."""

import torch
from datasets import Dataset
from transformers import default_data_collator

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
