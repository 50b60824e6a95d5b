"""Kernel attention against a naive O(N^2) reference formula, per feature map, with and without padding."""

import pytest
import torch
from torch import nn

from hf_robattr.models import (
    FEATURE_MAPS,
    FavorFeatureMap,
    build_feature_map,
    kernel_attention_forward,
    key_padding_mask,
)


B, H, N, D = 2, 3, 7, 8
EPS = 1e-6


class _Attention(nn.Module):
    """Stand-in for an HF attention module: what kernel_attention_forward reads from ``module``."""

    def __init__(self, feature_map: nn.Module, eps: float = EPS):
        super().__init__()
        self.feature_map = feature_map
        self.kernel_eps = eps


def _reference_features(feature_map: nn.Module, x: torch.Tensor, is_query: bool) -> torch.Tensor:
    """phi written out from each paper's formula, independently of the modules' code."""
    name = type(feature_map).__name__
    if name == "EluFeatureMap":
        return torch.where(x > 0, x + 1, torch.exp(x))
    if name == "ReluFeatureMap":
        return x.clamp_min(0)
    if name == "FavorFeatureMap":
        xs = x / D**0.25
        logits = torch.einsum("bhnd,md->bhnm", xs, feature_map.projection.double()) - (xs**2).sum(-1, keepdim=True) / 2
        if is_query:  # the documented per-query shift, which cancels up to eps
            logits = logits - logits.max(dim=-1, keepdim=True).values
        return torch.exp(logits)
    if name == "HedgehogFeatureMap":
        prefix = "" if feature_map.shared_qk else ("query_" if is_query else "key_")
        weight, bias = getattr(feature_map, f"{prefix}weight"), getattr(feature_map, f"{prefix}bias")
        z = torch.einsum("bhnd,hdf->bhnf", x, weight.double()) + bias.double()[:, None]
        return torch.cat([torch.softmax(z, -1), torch.softmax(-z, -1)], -1)
    raise AssertionError(name)


def naive_kernel_attention(feature_map, q, k, v, keep=None, eps=EPS):
    """O(N^2) loop-free reference in float64: out_i = sum_j s_ij v_j / (sum_j s_ij + eps), s_ij = phi(q_i).phi(k_j)."""
    phi_q = _reference_features(feature_map, q.double(), is_query=True)
    phi_k = _reference_features(feature_map, k.double(), is_query=False)
    scores = torch.einsum("bhif,bhjf->bhij", phi_q, phi_k)
    if keep is not None:
        scores = scores * keep[:, None, None, :].double()
    weights = scores / (scores.sum(-1, keepdim=True) + eps)
    return (weights @ v.double()).transpose(1, 2), weights


def _inputs(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(B, H, N, D, generator=gen).requires_grad_() for _ in range(3))
    keep = torch.ones(B, N, dtype=torch.bool)
    keep[1, 4:] = False
    return q, k, v, keep


# Every feature map, Hedgehog both with a map each for queries and keys (the default) and with one shared map.
MAP_NAMES = [*sorted(FEATURE_MAPS), "hedgehog-shared"]


def _make_map(name: str) -> nn.Module:
    base, shared = name.removesuffix("-shared"), name.endswith("-shared")
    feature_map = build_feature_map(base, num_heads=H, head_dim=D, num_features=16, seed=3, shared_qk=shared)
    # move learnable maps away from their identity init, each parameter differently, to cover learned weights
    generator = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for parameter in feature_map.parameters():
            parameter.add_(0.3 * torch.randn(parameter.shape, generator=generator) + 0.1)
    return feature_map


CASES = [
    pytest.param(
        name, masked, weights, id=f"{name}-{'pad' if masked else 'nopad'}-{'weights' if weights else 'linear'}"
    )
    for name in MAP_NAMES
    for masked in (False, True)
    for weights in (False, True)
]


@pytest.mark.parametrize(("name", "masked", "with_weights"), CASES)
def test_matches_naive_reference_outputs_and_input_gradients(name, masked, with_weights):
    torch.manual_seed(0)
    module = _Attention(_make_map(name)).eval()
    q, k, v, keep = _inputs()
    mask = key_padding_mask(B, N, N, attention_mask=keep) if masked else None
    out, weights = kernel_attention_forward(module, q, k, v, mask, output_attentions=with_weights)
    ref_out, ref_weights = naive_kernel_attention(module.feature_map, q, k, v, keep if masked else None)

    assert out.shape == (B, N, H, D)
    torch.testing.assert_close(out.double(), ref_out, atol=1e-5, rtol=1e-4)
    if with_weights:
        torch.testing.assert_close(weights.double(), ref_weights, atol=1e-6, rtol=1e-4)
    else:
        assert weights is None

    probe = torch.randn_like(out)
    grads = torch.autograd.grad((out * probe).sum(), (q, k, v))
    ref_grads = torch.autograd.grad((ref_out * probe.double()).sum(), (q, k, v))
    for grad, ref_grad in zip(grads, ref_grads):
        torch.testing.assert_close(grad, ref_grad, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", MAP_NAMES)
def test_real_tokens_do_not_depend_on_padded_tokens(name):
    module = _Attention(_make_map(name)).eval()
    q, k, v, keep = _inputs()
    mask = key_padding_mask(B, N, N, attention_mask=keep)
    out, _ = kernel_attention_forward(module, q, k, v, mask)
    k2, v2 = k.detach().clone(), v.detach().clone()
    k2[1, :, 4:] = 100 * torch.randn_like(k2[1, :, 4:])
    v2[1, :, 4:] = 100 * torch.randn_like(v2[1, :, 4:])
    out2, _ = kernel_attention_forward(module, q, k2, v2, mask)
    torch.testing.assert_close(out[1, :4], out2[1, :4], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", ["elu", "favor", "hedgehog", "hedgehog-shared"])
def test_weights_rows_sum_to_one_and_lie_on_the_autograd_path(name):
    module = _Attention(_make_map(name)).eval()
    q, k, v, keep = _inputs()
    mask = key_padding_mask(B, N, N, attention_mask=keep)
    out, weights = kernel_attention_forward(module, q, k, v, mask, output_attentions=True)
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, H, N), atol=1e-5, rtol=0)
    assert torch.all(weights[1, :, :, 4:] == 0)
    weights.retain_grad()
    out.sum().backward()
    assert weights.grad is not None and weights.grad.abs().sum() > 0


def test_relu_rows_sum_to_at_most_one():
    module = _Attention(_make_map("relu")).eval()
    q, k, v, _ = _inputs()
    _, weights = kernel_attention_forward(module, q, k, v, None, output_attentions=True)
    assert torch.all(weights.sum(-1) <= 1 + 1e-6)


def test_full_4d_mask_matches_key_padding_mask():
    module = _Attention(_make_map("elu")).eval()
    q, k, v, keep = _inputs()
    padding = key_padding_mask(B, N, N, attention_mask=keep)
    additive = torch.zeros(B, 1, N, N).masked_fill(~padding, torch.finfo(torch.float32).min)
    out_pad, _ = kernel_attention_forward(module, q, k, v, padding)
    out_full, _ = kernel_attention_forward(module, q, k, v, additive)
    torch.testing.assert_close(out_pad, out_full, atol=1e-6, rtol=1e-5)


def test_key_padding_mask_is_linear_in_length_and_never_reads_values():
    keep = torch.ones(2, 5, dtype=torch.long)
    assert key_padding_mask(2, 5, 5, attention_mask=None) is None
    # a mask of all ones is returned as a mask too: no branch on tensor values, so the model can be exported
    assert key_padding_mask(2, 5, 5, attention_mask=keep).all()
    keep[0, 3:] = 0
    mask = key_padding_mask(2, 5, 5, attention_mask=keep)
    assert mask.shape == (2, 1, 1, 5) and mask.dtype == torch.bool
    assert mask[0, 0, 0].tolist() == [True, True, True, False, False]


@pytest.mark.parametrize("name", MAP_NAMES)
def test_dropout_is_applied_and_both_paths_agree(name):
    module = _Attention(_make_map(name)).train()
    q, k, v, keep = _inputs()
    mask = key_padding_mask(B, N, N, attention_mask=keep)
    torch.manual_seed(1)
    out_linear, _ = kernel_attention_forward(module, q, k, v, mask, dropout=0.5)
    torch.manual_seed(1)
    out_weights, weights = kernel_attention_forward(module, q, k, v, mask, dropout=0.5, output_attentions=True)
    no_dropout, _ = kernel_attention_forward(module, q, k, v, mask, dropout=0.0)
    torch.testing.assert_close(out_linear, out_weights, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(out_linear, no_dropout)
    assert (weights == 0).any()


@pytest.mark.parametrize("dtype", [pytest.param(torch.float16, id="fp16"), pytest.param(torch.bfloat16, id="bf16")])
@pytest.mark.parametrize("name", MAP_NAMES)
def test_half_precision_is_stable(name, dtype):
    module = _Attention(_make_map(name)).eval()
    gen = torch.Generator().manual_seed(0)
    # 8192 keys: the feature sums exceed the fp16 range unless accumulated in fp32.
    q, k, v = (4 * torch.randn(1, H, 8192, D, generator=gen).to(dtype) for _ in range(3))
    out_half, _ = kernel_attention_forward(module, q, k, v, None)
    out_full, _ = kernel_attention_forward(module, q.float(), k.float(), v.float(), None)
    assert out_half.dtype == dtype and torch.isfinite(out_half).all()
    torch.testing.assert_close(out_half.float(), out_full, atol=0.02, rtol=0.02)


def test_favor_approximates_softmax_attention():
    feature_map = FavorFeatureMap(num_heads=1, head_dim=D, num_features=8192, seed=0)
    module = _Attention(feature_map).eval()
    gen = torch.Generator().manual_seed(0)
    q, k, v = (0.5 * torch.randn(1, 1, 16, D, generator=gen) for _ in range(3))
    out, _ = kernel_attention_forward(module, q, k, v, None)
    exact = torch.softmax(q @ k.transpose(-1, -2) / D**0.5, -1) @ v
    torch.testing.assert_close(out, exact.transpose(1, 2), atol=0.03, rtol=0)


def test_favor_is_seeded_and_redraws_only_in_training():
    first = FavorFeatureMap(num_heads=1, head_dim=D, num_features=16, seed=5, redraw_interval=2)
    second = FavorFeatureMap(num_heads=1, head_dim=D, num_features=16, seed=5, redraw_interval=2)
    torch.testing.assert_close(first.projection, second.projection)
    x = torch.randn(1, 1, 3, D)
    initial = first.projection.clone()
    first.eval()
    for _ in range(5):
        first(x, x)
    torch.testing.assert_close(first.projection, initial)
    first.train()
    first(x, x)
    first(x, x)
    torch.testing.assert_close(first.projection, initial)
    first(x, x)  # third call: the interval of 2 has elapsed
    assert not torch.allclose(first.projection, initial)
    second.train()
    for _ in range(3):
        second(x, x)
    torch.testing.assert_close(first.projection, second.projection)


def test_unknown_feature_map_lists_the_allowed_names():
    with pytest.raises(ValueError, match=r"Unknown kernel feature map 'cosine'.*'elu'.*'favor'.*'hedgehog'.*'relu'"):
        build_feature_map("cosine", num_heads=1, head_dim=4)
