"""Grouped-query attention with rotary positions: the attention layer of Llama, Mistral and Qwen.

Shapes use fixed letters: B batch, T new positions, S all positions (cached + new), C channels,
nh query heads, nkv key/value heads, hs head size (C // nh).

Multi-head attention gives every query head its own keys and values. During generation the
key-value cache holds them all, 2 * n_layer * nh * hs numbers per token, and reading that cache
is what limits decoding speed. **Grouped-query attention** (Ainslie et al., 2023) keeps nh query
heads but only nkv key/value heads; each group of nh / nkv query heads shares one. nkv = nh is
ordinary multi-head attention, nkv = 1 is multi-query attention (Shazeer, 2019). The cache shrinks
by nh / nkv; the queries keep their variety.

Positions enter as **RoPE** (:func:`llm_lessons.positional.apply_rope`, chapter 4.2): queries and
keys are rotated by their absolute position, so their dot product depends on the offset only.
The cache stores keys already rotated, which is why a cached step needs its ``start`` position.

A **sliding window** (Longformer, 2020; Mistral 7B, 2023) lets each query see only its last W
positions, itself included: attention costs O(T W) instead of O(T^2), and information from
further back still arrives, one window per layer, through the layers below.

>>> attn = GroupedQueryAttention(n_embd=16, n_head=4, n_kv_head=2)
>>> attn(torch.zeros(1, 5, 16)).shape
torch.Size([1, 5, 16])
>>> attn.k.weight.shape    # keys: 2 heads of size 4, half of multi-head attention's (16, 16)
torch.Size([8, 16])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from llm_lessons.attention import KVCache, causal_mask
from llm_lessons.positional import apply_rope


def window_mask(T: int, S: int, window: int | None = None,
                device: torch.device | str | None = None) -> torch.Tensor:
    """Boolean (T, S): the causal mask, further limited to the last ``window`` keys of each query.

    >>> window_mask(4, 4, window=2).int()    # each position sees itself and the one before
    tensor([[1, 0, 0, 0],
            [1, 1, 0, 0],
            [0, 1, 1, 0],
            [0, 0, 1, 1]], dtype=torch.int32)
    """
    mask = causal_mask(T, S, device=device)  # (T, S); query i sits at position S - T + i
    if window is not None:
        mask = mask.triu(diagonal=S - T - window + 1)  # keys with q - k < window
    return mask


class GroupedQueryAttention(nn.Module):
    """Causal self-attention with nh query heads sharing nkv key/value heads, RoPE and no biases.

    ``forward(x, start=0, cache=None)``: x (B, T, C) holds positions ``start .. start + T - 1``;
    with a :class:`~llm_lessons.attention.KVCache` the new keys and values are appended to it
    (nkv heads each: the cache is nh / nkv times smaller than multi-head attention's).
    """

    def __init__(self, n_embd: int, n_head: int, n_kv_head: int | None = None,
                 rope_base: float = 10000.0, dropout: float = 0.0, sliding_window: int | None = None):
        super().__init__()
        n_kv_head = n_head if n_kv_head is None else n_kv_head
        if n_head < 1 or n_embd % n_head != 0:
            raise ValueError(f"n_embd ({n_embd}) must be a positive multiple of n_head ({n_head})")
        if n_kv_head < 1 or n_head % n_kv_head != 0:
            raise ValueError(f"n_head ({n_head}) must be a multiple of n_kv_head ({n_kv_head}): "
                             "each key/value head serves an equal group of query heads")
        if (n_embd // n_head) % 2 != 0:
            raise ValueError(f"RoPE rotates pairs: the head size n_embd // n_head = {n_embd // n_head} "
                             "must be even")
        if sliding_window is not None and sliding_window < 1:
            raise ValueError(f"sliding_window must be a positive number of positions, got {sliding_window}")
        self.n_embd, self.n_head, self.n_kv_head = n_embd, n_head, n_kv_head
        self.sliding_window = sliding_window
        self.head_size, self.rope_base, self.dropout = n_embd // n_head, rope_base, dropout
        kv = n_kv_head * self.head_size
        self.q = nn.Linear(n_embd, n_embd, bias=False)
        self.k = nn.Linear(n_embd, kv, bias=False)
        self.v = nn.Linear(n_embd, kv, bias=False)
        self.o = nn.Linear(n_embd, n_embd, bias=False)

    def forward(self, x: torch.Tensor, start: int = 0, cache: KVCache | None = None) -> torch.Tensor:
        """x: (B, T, C) -> (B, T, C)."""
        if x.dim() != 3 or x.shape[-1] != self.n_embd:
            raise ValueError(f"expected x of shape (B, T, {self.n_embd}), got {tuple(x.shape)}")
        B, T, C = x.shape
        hs, nkv = self.head_size, self.n_kv_head
        q = self.q(x).view(B, T, self.n_head, hs).transpose(1, 2)  # (B, T, C) -> (B, nh, T, hs)
        k = self.k(x).view(B, T, nkv, hs).transpose(1, 2)  # (B, T, nkv*hs) -> (B, nkv, T, hs)
        v = self.v(x).view(B, T, nkv, hs).transpose(1, 2)  # (B, T, nkv*hs) -> (B, nkv, T, hs)
        positions = torch.arange(start, start + T, device=x.device)  # (T,)
        q = apply_rope(q, positions, self.rope_base)
        k = apply_rope(k, positions, self.rope_base)
        if cache is not None:
            k, v = cache.append(k, v)  # (B, nkv, S, hs)
        S = k.shape[-2]
        group = self.n_head // nkv
        k = k.repeat_interleave(group, dim=1)  # (B, nkv, S, hs) -> (B, nh, S, hs): heads 0..g-1 share
        v = v.repeat_interleave(group, dim=1)  # key/value head 0, the next g share head 1, ...
        p = self.dropout if self.training else 0.0
        if T == S and self.sliding_window is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        else:  # T new queries are the last T of S positions
            mask = window_mask(T, S, self.sliding_window, x.device)  # (T, S)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, nh, T, hs) -> (B, T, C)
        return self.o(y)
