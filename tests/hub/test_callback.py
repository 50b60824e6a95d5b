"""The card callback only collects: a short Trainer run fills the card data, and the card renders from it."""

import numpy as np
import torch
from huggingface_hub import ModelCard, metadata_load
from huggingface_hub.repocard_data import model_index_to_eval_results
from transformers import Trainer, TrainingArguments

from hf_robattr.hub import RobAttrModelCardCallback, RobAttrModelCardData, save_model_card
from hf_robattr.training import non_default_arguments


class PixelDataset(torch.utils.data.Dataset):
    def __init__(self, count: int) -> None:
        generator = torch.Generator().manual_seed(0)
        self.pixels = torch.rand(count, 1, 8, 8, generator=generator)
        self.labels = torch.randint(0, 3, (count,), generator=generator)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return {"pixel_values": self.pixels[index], "labels": self.labels[index]}


def accuracy(prediction) -> dict:
    return {"accuracy": float((np.argmax(prediction.predictions, axis=-1) == prediction.label_ids).mean())}


def test_callback_fills_the_card(tmp_path, tiny_kernel_vit):
    model = tiny_kernel_vit(kernel_feature_map="relu").train()
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=3,
        per_device_train_batch_size=4,
        learning_rate=0.05,
        logging_steps=1,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        seed=1,
    )
    callback = RobAttrModelCardCallback(RobAttrModelCardData(model_id="org/tiny"))
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=PixelDataset(12),
        eval_dataset=PixelDataset(6),
        compute_metrics=accuracy,
        callbacks=[callback],
    )
    before = [p.detach().clone() for p in model.parameters()]
    trainer.train()
    trainer.evaluate()
    data = callback.card_data
    assert data.model["architecture"] == "RobAttrViTForImageClassification"
    assert data.model["attention_type"] == "kernel" and data.model["kernel_feature_map"] == "relu"
    assert data.training["learning_rate"] == 0.05
    assert data.training["total_train_batch_size"] == 4
    assert data.training["global_step"] == 3
    assert data.training["optimizer"].startswith("adamw")
    assert {"learning_rate": 0.05, "max_steps": 3, "seed": 1}.items() <= data.hyperparameters.items()
    assert "output_dir" not in data.hyperparameters
    assert 0.0 <= data.eval["accuracy"] <= 1.0 and "loss" in data.eval
    assert any("loss" in row for row in data.log_history)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))  # it trained; we only watched

    trainer.save_model(tmp_path / "out")
    card_path = save_model_card(tmp_path / "out", card_data=data)
    card = ModelCard.load(card_path)
    _, results = model_index_to_eval_results(metadata_load(card_path)["model-index"])
    assert [r.metric_type for r in results] == ["accuracy"]
    assert "All non-default training arguments" in card.text and "`max_steps`: `3`" in card.text


def test_non_default_arguments(tmp_path):
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=0.3, report_to=[])
    assert non_default_arguments(args) == {"learning_rate": 0.3}
