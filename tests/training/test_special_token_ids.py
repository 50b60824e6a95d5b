"""The recipes' BERT names its tokenizer's [CLS]/[SEP] ids in its config (BERT configs name only padding), saved with
the model, so that robustness scores of a recipe run rank its word tokens only."""

import torch
from transformers import AutoModelForSequenceClassification

import hf_robattr  # noqa: F401  (registers the RobAttr models with the Auto classes)
from hf_robattr.attribution import prepare_inputs
from hf_robattr.data import build_offline_tokenizer
from hf_robattr.training.model_arguments import TextModelArguments
from hf_robattr.training.modeling import build_bert_classifier


def test_the_recipes_bert_knows_its_special_tokens(tmp_path):
    tokenizer = build_offline_tokenizer()
    args = TextModelArguments(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    model = build_bert_classifier(args, label_names=["negative", "positive"], tokenizer=tokenizer)
    assert (model.config.cls_token_id, model.config.sep_token_id) == (tokenizer.cls_token_id, tokenizer.sep_token_id)
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    batch = tokenizer(["a great film", "dull"], padding=True, return_tensors="pt")
    prepared = prepare_inputs(loaded, dict(batch))
    assert prepared.word_mask.tolist() == [[0, 1, 1, 1, 0], [0, 1, 0, 0, 0]]
    torch.testing.assert_close(prepared.token_mask, batch["attention_mask"].float())
