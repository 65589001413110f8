"""Chapter 8.3's claims that the package tests do not already cover: what each attention keeps
for the backward pass (counted through autograd's saved-tensor hooks), a key-value cache weighed
on the ``meta`` device at a 70B model's shape, and a sliding window passed to the book's GPT
blocks as a mask (the notebook's way of windowing the shipped model)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from llm_lessons.attention import KVCache, causal_mask, scaled_dot_product_attention
from llm_lessons.frontiers.gqa import GroupedQueryAttention, window_mask
from llm_lessons.frontiers.modern_gpt import ModernConfig, kv_cache_bytes_per_token
from llm_lessons.gpt import GPT, GPTConfig


def saved_bytes(attention, q, k, v):
    """Bytes of the distinct storages autograd saves for backward, other than q, k and v."""
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        attention(q, k, v)
    for t in (q, k, v):
        storages.pop(t.untyped_storage().data_ptr(), None)
    return sum(storages.values())


@pytest.mark.parametrize("T", [64, 256])
def test_the_explicit_attention_keeps_t_squared_numbers_and_the_fused_one_keeps_t(T):
    B, nh, hs = 2, 3, 16
    q, k, v = (torch.randn(B, nh, T, hs, requires_grad=True) for _ in range(3))
    explicit = saved_bytes(lambda q, k, v: scaled_dot_product_attention(q, k, v, mask=causal_mask(T))[0],
                           q, k, v)
    fused = saved_bytes(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), q, k, v)
    assert explicit >= B * nh * T * T * 4  # the weights P, float32, at least
    assert fused < 4 * B * nh * T * (hs + 2)  # O(T): the output and a statistic per row, no T x T term
    assert explicit / fused > T / (hs + 2)


def test_a_cache_weighed_on_the_meta_device_is_the_formula_at_70b_scale():
    with torch.device("meta"):
        layer = GroupedQueryAttention(8192, 64, 8).half()
        x = torch.empty(1, 128, 8192, dtype=torch.float16)
    cache = KVCache()
    layer(x, cache=cache)
    config = ModernConfig(vocab_size=32000, block_size=128, n_layer=80, n_head=64, n_embd=8192, n_kv_head=8)
    assert 80 * (cache.k.nbytes + cache.v.nbytes) == 128 * kv_cache_bytes_per_token(config, torch.float16)
    assert kv_cache_bytes_per_token(config, torch.float16) == 327_680  # 2 x 80 x 8 x 128 x 2


def _windowed_logits(model, idx, window):
    T = idx.shape[1]
    h = model.wte(idx) + model.wpe(torch.arange(T))
    for block in model.blocks:
        h = block(h, mask=window_mask(T, T, window))
    return model.lm_head(model.ln_f(h))


def test_a_window_passed_to_the_gpt_blocks_limits_the_reach_to_layers_times_w_minus_1():
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("nano", vocab_size=11, block_size=32, n_layer=2)).eval()
    idx = torch.randint(0, 11, (1, 32))
    with torch.no_grad():
        assert torch.allclose(_windowed_logits(model, idx, None), model(idx)[0], atol=1e-5)
        last = _windowed_logits(model, idx, 4)[0, -1]  # 2 layers x 3 positions back: 25 .. 31
        far, near = idx.clone(), idx.clone()
        far[0, :25] = (far[0, :25] + 1) % 11
        near[0, 25] = (near[0, 25] + 1) % 11
        assert torch.equal(_windowed_logits(model, far, 4)[0, -1], last)
        assert not torch.equal(_windowed_logits(model, near, 4)[0, -1], last)
