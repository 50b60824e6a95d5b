"""The public pieces that attention transfer builds on: explicit weights, per-layer recording, the swap warning."""

import warnings

import pytest
import torch
from transformers import AutoModelForImageClassification, ViTConfig, ViTForImageClassification

from hf_robattr.models import (
    KernelSwapWarning,
    RobAttrBertConfig,
    RobAttrBertForSequenceClassification,
    RobAttrViTConfig,
    RobAttrViTForImageClassification,
    build_feature_map,
    kernel_attention_weights,
    modeling_robattr_common,
    record_attention_inputs,
    softmax_attention_weights,
)


B, H, N, D = 2, 3, 6, 8


def _qk(seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(B, H, N, D, generator=generator, dtype=torch.float64) for _ in range(2))


@pytest.mark.parametrize("name", ["elu", "relu", "favor", "hedgehog"])
def test_kernel_attention_weights_match_the_formula_with_a_2d_padding_mask(name):
    feature_map = build_feature_map(name, num_heads=H, head_dim=D, seed=1)
    q, k = _qk()
    padding = torch.tensor([[1] * N, [1] * 4 + [0] * 2])
    got = kernel_attention_weights(feature_map, q, k, padding, eps=1e-6)
    phi_q, phi_k = feature_map(q.float(), k.float())
    scores = torch.einsum("bhif,bhjf->bhij", phi_q.double(), phi_k.double()) * padding[:, None, None, :]
    torch.testing.assert_close(got.double(), scores / (scores.sum(-1, keepdim=True) + 1e-6), atol=1e-6, rtol=1e-5)
    assert torch.all(got[1, :, :, 4:] == 0)


def test_softmax_attention_weights_match_torch_softmax_with_each_mask_form():
    q, k = _qk()
    padding = torch.tensor([[1] * N, [1] * 4 + [0] * 2])
    logits = q @ k.transpose(-1, -2) / D**0.5
    want = logits.masked_fill(padding[:, None, None, :] == 0, float("-inf")).softmax(-1)
    additive = torch.zeros(B, 1, N, N).masked_fill(padding[:, None, None, :] == 0, torch.finfo(torch.float32).min)
    for mask in (padding, padding[:, None, None, :].bool(), additive):
        torch.testing.assert_close(softmax_attention_weights(q, k, mask).double(), want, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(
        softmax_attention_weights(q, k, None, scaling=0.1).double(), (0.1 * q @ k.mT).softmax(-1)
    )


def test_a_bad_mask_shape_is_named():
    q, k = _qk()
    with pytest.raises(ValueError, match=r"attention_mask must be 2D .* or 4D .*got shape \(2, 6, 6\)"):
        kernel_attention_weights(build_feature_map("elu", H, D), q, k, torch.ones(B, N, N))


def _kernel_bert(bert_kwargs, feature_map="hedgehog", peaked=False):
    torch.manual_seed(0)
    config = RobAttrBertConfig(attention_type="kernel", kernel_feature_map=feature_map, **bert_kwargs)
    model = RobAttrBertForSequenceClassification(config).eval()
    if peaked:  # peaked softmax rows, far from the near-uniform rows of the untrained kernel
        with torch.no_grad():
            for layer in model.bert.encoder.layer:
                layer.attention.self.query.weight.mul_(40)
    return model


def test_recorded_inputs_give_the_weights_the_model_returns(bert_kwargs, text_batch):
    model = _kernel_bert(bert_kwargs)
    with record_attention_inputs(model) as records:
        out = model(**text_batch, output_attentions=True)
    assert [r.name for r in records] == [f"bert.encoder.layer.{i}.attention.self" for i in range(2)]
    for record, returned in zip(records, out.attentions):
        assert record.query.shape == (3, 4, 10, 8) and record.module.feature_map is not None
        torch.testing.assert_close(record.kernel_weights(), returned, atol=0, rtol=0)
    with torch.no_grad():  # the recording stops with the block
        model(**text_batch)
    assert len(records) == 2


def test_softmax_outputs_make_a_kernel_model_run_its_softmax_teacher(bert_kwargs, text_batch):
    """LoLCATs' layer-local transfer: each layer sees the teacher's inputs, so its q/k are the teacher's."""
    student = _kernel_bert(bert_kwargs, peaked=True)
    teacher = RobAttrBertForSequenceClassification(RobAttrBertConfig(**bert_kwargs)).eval()
    teacher.load_state_dict(student.state_dict(), strict=False)
    with torch.no_grad():
        teacher_out = teacher(**text_batch, output_attentions=True, output_hidden_states=True)
        with record_attention_inputs(student, softmax_outputs=True) as records:
            student_hidden = student(**text_batch, output_hidden_states=True).hidden_states[-1]
        plain_hidden = student(**text_batch, output_hidden_states=True).hidden_states[-1]
    torch.testing.assert_close(student_hidden, teacher_out.hidden_states[-1], atol=1e-5, rtol=1e-5)
    # without the recording, kernel attention runs: 100x the tolerance above away from the teacher
    assert (plain_hidden - teacher_out.hidden_states[-1]).abs().max() > 1e-3
    for record, teacher_weights in zip(records, teacher_out.attentions):
        torch.testing.assert_close(record.softmax_weights(), teacher_weights, atol=1e-6, rtol=1e-5)


def test_a_layer_local_transfer_loss_trains_the_feature_maps(bert_kwargs, text_batch):
    model = _kernel_bert(bert_kwargs, peaked=True)
    feature_maps = [p for n, p in model.named_parameters() if ".feature_map." in n]
    optimizer = torch.optim.Adam(feature_maps, lr=0.05)

    def transfer_loss():
        with record_attention_inputs(model, softmax_outputs=True) as records:
            model(**text_batch)
        loss = 0.0
        keep = text_batch["attention_mask"][:, None, :, None].bool()  # rows of real query tokens
        for record in records:
            query, key, mask = record.query.detach(), record.key.detach(), record.attention_mask
            teacher = softmax_attention_weights(query, key, mask, record.scaling)
            student = kernel_attention_weights(record.module.feature_map, query, key, mask, record.module.kernel_eps)
            kl = (teacher * (torch.log(teacher + 1e-9) - torch.log(student + 1e-9))).sum(-1, keepdim=True)
            loss = loss + kl.masked_select(keep.expand_as(kl)).mean()
        return loss

    first = transfer_loss()
    for _ in range(15):
        optimizer.zero_grad()
        loss = transfer_loss()
        loss.backward()
        assert all(p.grad is not None for p in feature_maps)
        optimizer.step()
    assert transfer_loss() < 0.7 * first


def test_recording_needs_robattr_attention(bert_kwargs):
    torch.manual_seed(0)
    model = RobAttrBertForSequenceClassification(RobAttrBertConfig(attn_implementation="eager", **bert_kwargs))
    with (
        pytest.raises(ValueError, match=r"record_attention_inputs needs .*'robattr_softmax'.*got .*'eager'"),
        record_attention_inputs(model),
    ):
        pass


# --- the warning when a softmax checkpoint is loaded with kernel attention -------------------------------------


@pytest.fixture
def swap_warning_not_yet_shown(monkeypatch):
    monkeypatch.setattr(modeling_robattr_common, "_warned_about_swap", False)


def _loads(load) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load()
    return [w for w in caught if issubclass(w.category, KernelSwapWarning)]


def test_a_softmax_checkpoint_loaded_as_kernel_warns_once(tmp_path, vit_kwargs, swap_warning_not_yet_shown):
    ViTForImageClassification(ViTConfig(**vit_kwargs)).save_pretrained(tmp_path / "plain")
    RobAttrViTForImageClassification(RobAttrViTConfig(**vit_kwargs)).save_pretrained(tmp_path / "softmax")

    assert not _loads(lambda: RobAttrViTForImageClassification.from_pretrained(tmp_path / "softmax"))
    first = _loads(
        lambda: RobAttrViTForImageClassification.from_pretrained(tmp_path / "plain", attention_type="kernel")
    )
    assert len(first) == 1
    message = str(first[0].message)
    assert "without attention transfer" in message and "hf_robattr.convert_to_kernel" in message
    again = _loads(
        lambda: AutoModelForImageClassification.from_pretrained(tmp_path / "softmax", attention_type="kernel")
    )
    assert not again  # once per process


@pytest.mark.parametrize(
    "load",
    [
        pytest.param(lambda p: RobAttrViTForImageClassification.from_pretrained(p, attention_type="kernel"), id="kw"),
        pytest.param(lambda p: AutoModelForImageClassification.from_pretrained(p, attention_type="kernel"), id="auto"),
    ],
)
def test_each_loading_path_warns(tmp_path, vit_kwargs, swap_warning_not_yet_shown, load):
    RobAttrViTForImageClassification(RobAttrViTConfig(**vit_kwargs)).save_pretrained(tmp_path)
    assert len(_loads(lambda: load(tmp_path))) == 1


def test_a_kernel_checkpoint_does_not_warn(tmp_path, vit_kwargs, swap_warning_not_yet_shown):
    model = RobAttrViTForImageClassification(RobAttrViTConfig(attention_type="kernel", **vit_kwargs))
    model.save_pretrained(tmp_path)
    assert not _loads(lambda: RobAttrViTForImageClassification.from_pretrained(tmp_path))
    assert not _loads(lambda: AutoModelForImageClassification.from_pretrained(tmp_path, attention_type="kernel"))
