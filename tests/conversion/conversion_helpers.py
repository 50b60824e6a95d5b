"""Shared builders of the conversion tests."""

import torch
from transformers import BertConfig, ViTConfig


TINY_BERT = dict(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                 max_position_embeddings=16, num_labels=3)  # fmt: skip
TINY_VIT = dict(image_size=8, patch_size=2, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                intermediate_size=32, num_labels=3)  # fmt: skip
# Few steps of both stages on the tiny models (one process, no progress bars).
QUICK = dict(
    batch_size=16,
    transfer_steps=30,
    transfer_learning_rate=0.05,
    recovery_steps=30,
    logging_steps=10,
    progress=False,
    use_cpu=True,
)


def sharp_teacher(model_class, seed: int = 0, **overrides):
    """A tiny softmax model with weights redrawn where it matters: large query/key weights (attention far from
    uniform), value/output projections that move the residual stream, and an output head whose logits depend on the
    input. ``overrides`` replace config fields (e.g. ``num_labels``)."""
    torch.manual_seed(seed)
    is_vit = model_class.__name__.startswith("ViT")
    settings = {**(TINY_VIT if is_vit else TINY_BERT), **overrides}
    config = (ViTConfig if is_vit else BertConfig)(**settings, tie_word_embeddings=False)
    model = model_class(config).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith(("query.weight", "key.weight", "q_proj.weight", "k_proj.weight")):
                parameter.normal_(0.0, 0.4)
            elif name.endswith(("value.weight", "attention.output.dense.weight", "v_proj.weight", "o_proj.weight")):
                parameter.normal_(0.0, 0.3)  # attention moves the residual stream
            elif name.endswith(("classifier.weight", "decoder.weight", "pooler.dense.weight")):
                parameter.normal_(0.0, 1.0)
    return model


def save_tiny_checkpoint(model_class, folder, seed: int = 0, **overrides):
    """Save a tiny sharp softmax checkpoint (plain transformers classes, config ``overrides``) into ``folder``; BERT
    gets an offline tokenizer of common English words (others map to [UNK])."""
    model = sharp_teacher(model_class, seed=seed, **overrides)
    model.save_pretrained(folder)
    if not model_class.__name__.startswith("ViT"):
        from hf_robattr.data import build_offline_tokenizer

        words = [
            "the",
            "a",
            "of",
            "to",
            "and",
            "is",
            "in",
            "that",
            "it",
            "for",
            "as",
            "with",
            "be",
            "on",
            "not",
            "this",
            "by",
            "are",
            "or",
            "an",
        ]
        build_offline_tokenizer(words[: TINY_BERT["vocab_size"] - 5], model_max_length=16).save_pretrained(folder)
    return folder
