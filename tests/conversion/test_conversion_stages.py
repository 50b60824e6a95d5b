"""Stage 1 lowers the attention-matching loss on held-out inputs, for every feature map; stage 2 raises output
fidelity; the layer-local loss equals a naive computation from transformers' own eager attention."""

import pytest
import torch
from conversion_helpers import QUICK
from transformers import TrainingArguments

from hf_robattr.conversion import AttentionTransferTrainer, convert_to_kernel
from hf_robattr.conversion.inputs import ExampleDataset, PaddingCollator, to_examples
from hf_robattr.conversion.losses import attention_kl
from hf_robattr.conversion.student import build_model_pair
from hf_robattr.conversion.transfer import AttentionTransferModel


def _held_out_transfer_loss(pair, student, examples) -> torch.Tensor:
    """The stage 1 objective (per-layer KL on the teacher's inputs) of ``student`` on ``examples``."""
    batch = PaddingCollator()([ExampleDataset(examples)[i] for i in range(len(examples))])
    with torch.no_grad():
        return AttentionTransferModel(student, pair.teacher)(**batch)["metrics"]


def _data(name, text_ids, images):
    return (images if name.startswith("vit") else text_ids), ("vit" if name.startswith("vit") else "bert")


@pytest.mark.parametrize(
    "name, feature_map",
    [("bert", "hedgehog"), ("vit", "hedgehog"), ("bert", "elu"), ("vit", "relu"), ("bert", "favor")],
)
def test_attention_transfer_lowers_the_attention_loss_on_held_out_inputs(
    teachers, text_ids, images, name, feature_map
):
    (train, held_out), family = _data(name, text_ids, images)
    teacher = teachers[name]
    result = convert_to_kernel(teacher, train, feature_map, eval_inputs=held_out, **{**QUICK, "recovery": "none"})
    examples = to_examples(held_out, family=family)
    pair = build_model_pair(teacher, feature_map=feature_map)
    before = _held_out_transfer_loss(pair, pair.student, examples)
    after = _held_out_transfer_loss(pair, result.model, examples)
    assert (after < 0.85 * before).all(), (before, after)
    # ... and end to end (each model on its own hidden states), as the fidelity report measures it
    swap, transfer = (
        result.fidelity["plain_swap"]["attention_kl"],
        result.fidelity["attention_transfer"]["attention_kl"],
    )
    assert all(a < b for a, b in zip(transfer, swap)), (swap, transfer)
    stage = result.stages["attention_transfer"]
    assert stage.steps == QUICK["transfer_steps"] and stage.trainable_parameters > 0
    if feature_map != "hedgehog":  # parameter-free maps train query/key adapters only, merged into the weights
        assert stage.trainable_parameters == 2 * 2 * (2 * 16 * 8)  # layers x (query, key) x (A + B) of rank 8
    names = {n for n, _ in result.model.named_parameters()}
    assert not any("lora" in n for n in names) and "transfer" not in str(type(result.model))


def test_layer_local_loss_equals_the_naive_kl_of_eager_attention(teachers, text_ids):
    """Layer 0 sees the same input in both models: its stage 1 KL is the KL between transformers' eager softmax
    weights and the kernel model's weights (``output_attentions``), computed independently."""
    teacher = teachers["bert"]
    pair = build_model_pair(teacher, feature_map="hedgehog")
    with torch.no_grad():
        for parameter in pair.student.parameters():
            if parameter.dim() == 3:  # move the hedgehog maps away from identity
                parameter.add_(0.3 * torch.randn_like(parameter))
    batch = {k: v[:8] for k, v in text_ids[0].items()}
    examples = to_examples(batch, family="bert")
    module = AttentionTransferModel(pair.student, pair.teacher)
    got = module(**PaddingCollator()([ExampleDataset(examples)[i] for i in range(8)]))["metrics"]
    teacher.set_attn_implementation("eager")
    with torch.no_grad():
        teacher_weights = teacher(**batch, output_attentions=True).attentions[0]
        student_weights = pair.student(**batch, output_attentions=True).attentions[0]
    want = attention_kl(teacher_weights, student_weights, batch["attention_mask"]).mean()
    torch.testing.assert_close(got[0], want, rtol=1e-4, atol=1e-6)
    # cached teacher inputs (second visit of the same examples) give the same loss
    cached = AttentionTransferModel(pair.student, pair.teacher, cache_teacher_inputs=True)
    collated = PaddingCollator()([ExampleDataset(examples)[i] for i in range(8)])
    first, second = cached(**collated)["loss"], cached(**collated)["loss"]
    assert len(cached._cache) == 8
    torch.testing.assert_close(first, second, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "name, recovery, key",
    [
        ("bert_classifier", "lora", "logit_kl"),
        ("vit_classifier", "full", "logit_kl"),
        ("bert_mlm", "lora", "logit_kl"),
        ("bert", "lora", "embedding_cosine_mean"),
    ],
)
def test_recovery_raises_output_fidelity(teachers, text_ids, images, name, recovery, key):
    (train, held_out), _ = _data(name, text_ids, images)
    settings = {**QUICK, "transfer_steps": 0, "recovery": recovery, "recovery_steps": 40}
    settings["recovery_learning_rate"] = 1e-4 if recovery == "full" else 5e-3
    result = convert_to_kernel(teachers[name], train, "hedgehog", eval_inputs=held_out, **settings)
    before, after = result.fidelity["plain_swap"][key], result.fidelity["recovery"][key]
    assert (after > before) if key == "embedding_cosine_mean" else (after < 0.75 * before), (before, after)
    assert result.stages["recovery"].steps == 40
    assert not any("lora" in n for n, _ in result.model.named_parameters())
    assert type(result.model).__name__ == "RobAttr" + type(teachers[name]).__name__


def test_task_loss_uses_labels(teachers, images):
    train, held_out = images
    labels = torch.arange(64) % 3
    settings = {**QUICK, "transfer_steps": 0, "recovery_steps": 10, "task_loss_weight": 1.0}
    result = convert_to_kernel(teachers["vit_classifier"], {"pixel_values": train, "labels": labels}, **settings)
    logged = [row for row in result.stages["recovery"].log_history if "recovery/task_loss" in row]
    assert logged and all(row["recovery/task_loss"] > 0 for row in logged)
    fidelity = convert_to_kernel(
        teachers["vit_classifier"], train, eval_inputs={"pixel_values": held_out, "labels": labels[:16]},
        **{**QUICK, "transfer_steps": 0, "recovery": "none"},
    ).fidelity["plain_swap"]  # fmt: skip
    assert {"teacher_accuracy", "student_accuracy", "accuracy_drop"} <= set(fidelity)


def test_attention_transfer_trainer_builds_its_model_from_the_objective_options(teachers, tmp_path):
    """``objective`` holds ``AttentionTransferModel``'s keyword options; omitted, the model's own defaults apply."""
    pair = build_model_pair(teachers["bert"], feature_map="hedgehog")
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", disable_tqdm=True)

    def options(model):
        return model.output_weight, model.cache_teacher_inputs, model.shares_projections

    objective = {"output_weight": 0.5, "cache_teacher_inputs": True, "shared_projections": False}
    trainer = AttentionTransferTrainer(student=pair.student, teacher=pair.teacher, objective=objective, args=args)
    assert isinstance(trainer.model, AttentionTransferModel) and trainer.model.student is pair.student
    assert options(trainer.model) == (0.5, True, False)
    default = AttentionTransferTrainer(student=pair.student, teacher=pair.teacher, args=args)
    assert options(default.model) == options(AttentionTransferModel(pair.student, pair.teacher))
    with pytest.raises(TypeError, match="unexpected keyword argument 'temperature'"):
        AttentionTransferTrainer(student=pair.student, teacher=pair.teacher, objective={"temperature": 2.0}, args=args)
