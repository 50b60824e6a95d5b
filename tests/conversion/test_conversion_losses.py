"""The distillation losses against independent references (torch's kl_div, explicit formulas)."""

import pytest
import torch
import torch.nn.functional as F

from hf_robattr.conversion.losses import attention_kl, logit_kl, pooled_embedding, relative_squared_error


def test_attention_kl_matches_kl_div_over_real_rows_and_keys():
    generator = torch.Generator().manual_seed(0)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    keep = mask[:, None, None, :].bool()
    teacher = torch.randn(2, 3, 5, 5, generator=generator).masked_fill(~keep, float("-inf")).softmax(-1)
    student = torch.rand(2, 3, 5, 5, generator=generator) * keep
    student = student / student.sum(-1, keepdim=True)
    got = attention_kl(teacher, student, mask)
    for b, length in enumerate((5, 3)):
        t, s = teacher[b, :, :length, :length], student[b, :, :length, :length]
        want = F.kl_div(s.log(), t, reduction="none").sum(-1).mean()
        torch.testing.assert_close(got[b], want)
    assert torch.allclose(attention_kl(teacher, teacher, mask), torch.zeros(2), atol=1e-6)
    assert attention_kl(teacher, student).shape == (2,)


def test_relative_squared_error_and_pooling():
    student, teacher = torch.randn(2, 4, 3), torch.randn(2, 4, 3)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    got = relative_squared_error(student, teacher, mask)
    want = (student[1, :2] - teacher[1, :2]).pow(2).sum() / teacher[1, :2].pow(2).sum()
    torch.testing.assert_close(got[1], want)
    torch.testing.assert_close(pooled_embedding(teacher, mask, family="bert")[1], teacher[1, :2].mean(0))
    torch.testing.assert_close(pooled_embedding(teacher, mask, family="vit"), teacher[:, 0])


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_logit_kl_matches_kl_div(temperature):
    teacher, student = torch.randn(3, 7), torch.randn(3, 7)
    want = F.kl_div(F.log_softmax(student / temperature, -1), F.log_softmax(teacher / temperature, -1),
                    reduction="none", log_target=True).sum(-1) * temperature**2  # fmt: skip
    torch.testing.assert_close(logit_kl(teacher, student, temperature=temperature), want)
    tokens = torch.tensor([[1, 1, 1], [1, 0, 0]])  # per-token logits: the mean over each example's real tokens
    per_token = logit_kl(teacher.expand(2, 3, 7), student.expand(2, 3, 7), tokens, temperature=temperature)
    torch.testing.assert_close(per_token, torch.stack([want.mean(), want[0]]))
