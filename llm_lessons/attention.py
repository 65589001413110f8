"""Scaled dot-product attention and multi-head attention, written to be read.

Shapes use fixed letters: B batch, T query positions, S key positions (S == T without a
cache), C channels (``n_embd``), nh heads, hs head size (C // nh).

The core formula (Vaswani et al., 2017)::

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V

A tiny worked example: two keys, one query that matches the second key far better, so almost
all of the weight goes there and the output is nearly the second value.

>>> q = torch.tensor([[0.0, 4.0]]); k = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
>>> v = torch.tensor([[10.0], [20.0]])
>>> out, w = scaled_dot_product_attention(q, k, v)
>>> w.round(decimals=3)
tensor([[0.0560, 0.9440]])
>>> out.round(decimals=2)
tensor([[19.4400]])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def causal_mask(T: int, S: int | None = None, device: torch.device | str | None = None) -> torch.Tensor:
    """Boolean (T, S) mask, True where query i may attend to key j (j <= i).

    With a key-value cache the T queries are the *last* T of S positions, so query i sits at
    absolute position ``S - T + i``.

    >>> causal_mask(3).int()
    tensor([[1, 0, 0],
            [1, 1, 0],
            [1, 1, 1]], dtype=torch.int32)
    """
    S = T if S is None else S
    if T < 0 or S < T:
        raise ValueError(f"causal_mask needs 0 <= T <= S, got T={T}, S={S}")
    return torch.ones(T, S, dtype=torch.bool, device=device).tril(diagonal=S - T)


def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Turn a (B, S) 0/1 "which tokens are real" mask into a (B, 1, 1, S) boolean key mask.

    >>> padding_mask(torch.tensor([[1, 1, 0]])).shape
    torch.Size([1, 1, 1, 3])
    """
    if attention_mask.dim() != 2:
        raise ValueError(f"attention_mask must be (B, S), got shape {tuple(attention_mask.shape)}")
    if attention_mask.is_floating_point() or attention_mask.is_complex():
        raise TypeError(f"attention_mask must hold integers or booleans (1/True = real token), "
                        f"got {attention_mask.dtype}")
    return attention_mask.bool()[:, None, None, :]  # (B, S) -> (B, 1, 1, S): same for every head, query


def _broadcast(*shapes: tuple[int, ...]) -> tuple[int, ...] | None:
    """The shape ``shapes`` broadcast to, or None if they do not (NumPy rules).

    Plain Python on purpose: ``torch.broadcast_shapes`` costs about half a millisecond on CPU,
    as much as the attention itself for short sequences.

    >>> _broadcast((4, 1, 3), (2, 1)), _broadcast((3,), (4,))
    ((4, 2, 3), None)
    """
    ndim = max(len(s) for s in shapes)
    padded = [(1,) * (ndim - len(s)) + tuple(s) for s in shapes]
    out = []
    for sizes in zip(*padded, strict=True):
        distinct = {n for n in sizes if n != 1}
        if len(distinct) > 1:
            return None
        out.append(distinct.pop() if distinct else 1)
    return tuple(out)


def _check_mask(mask: torch.Tensor, scores_shape: torch.Size, rows: bool = True) -> None:
    """Raise unless ``mask`` is boolean, broadcasts to ``scores_shape`` and (if ``rows``) leaves
    every query at least one key."""
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise TypeError(f"mask must be a boolean tensor (True = may attend), got {got}")
    if _broadcast(mask.shape, scores_shape) != tuple(scores_shape):
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to the attention "
                         f"scores' shape {tuple(scores_shape)} (..., T, S)")
    if not rows:
        return
    empty = ~mask.any(dim=-1)  # (..., T): True for a query that may attend to nothing
    if empty.any():
        where = tuple(torch.nonzero(empty)[0].tolist())
        raise ValueError(f"query row {where} of the mask {tuple(mask.shape)} is fully masked (it may "
                         "attend to no key): softmax over no keys is undefined (NaN); check the "
                         "padding and causal masks (e.g. left padding under a causal mask)")


def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    shapes = f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got {t.dtype} ({shapes})")
        if t.dim() < 2:
            raise ValueError(f"q, k and v need at least 2 dims (..., T, hs), got {shapes}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must share the head size (last dim): {shapes}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v must have the same number of positions S (dim -2): {shapes}")
    if _broadcast(q.shape[:-2], k.shape[:-2], v.shape[:-2]) is None:
        raise ValueError(f"the leading (batch, head) dims of q, k and v do not broadcast: {shapes}")


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None, dropout_p: float = 0.0,
                                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T / sqrt(hs)) v, returning the output and the attention weights.

    q: (..., T, hs), k: (..., S, hs), v: (..., S, hv); ``mask`` is boolean, broadcastable to
    (..., T, S), True where attention is allowed (a (T, S) mask applies to every batch and
    head). Returns out (..., T, hv) and weights (..., T, S) whose rows are non-negative and sum
    to 1, exactly 0 where masked. A query row with no allowed key raises ``ValueError``.
    ``dropout_p`` drops weights (and rescales the rest) as in training; pass 0 for inference.

    With a causal mask the first query can only see the first key, so it copies the first value:

    >>> q = k = torch.eye(2); v = torch.tensor([[1.0], [3.0]])
    >>> out, w = scaled_dot_product_attention(q, k, v, mask=causal_mask(2))
    >>> w.round(decimals=3)
    tensor([[1.0000, 0.0000],
            [0.3300, 0.6700]])
    >>> out.round(decimals=2)
    tensor([[1.0000],
            [2.3400]])
    """
    _check_qkv(q, k, v)
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p}")
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., T, hs) @ (..., hs, S) -> (..., T, S)
    if mask is not None:
        _check_mask(mask, scores.shape)
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ v, weights  # (..., T, S) @ (..., S, hv) -> (..., T, hv)


@dataclass
class KVCache:
    """Keys and values of the positions seen so far, for one attention layer.

    Generation feeds one new token at a time; its query attends to every cached key, so each
    step costs O(S) instead of recomputing the whole O(S^2) prefix.
    """

    k: torch.Tensor | None = None  # (B, nh, S, hs)
    v: torch.Tensor | None = None  # (B, nh, S, hs)

    @property
    def length(self) -> int:
        return 0 if self.k is None else self.k.shape[-2]

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add this step's keys/values (B, nh, T, hs) and return all of them (B, nh, S, hs)."""
        if self.k is None:
            self.k, self.v = k, v
        else:
            self.k = torch.cat([self.k, k], dim=-2)
            self.v = torch.cat([self.v, v], dim=-2)
        return self.k, self.v


class MultiHeadAttention(nn.Module):
    """Multi-head attention: project, split into nh heads, attend, concatenate, project.

    MultiHead(X) = Concat(head_1, ..., head_nh) W_O with head_i = Attention(X W_Q^i, X W_K^i,
    X W_V^i). ``qkv`` holds W_Q, W_K, W_V stacked as one (3C, C) Linear (the layout of
    ``torch.nn.MultiheadAttention.in_proj_weight``); ``proj`` is W_O. ``causal=True`` makes it a
    decoder's self-attention. ``fused=True`` (the default) runs PyTorch's fused kernel
    ``F.scaled_dot_product_attention`` — the same maths, faster and lighter; ``fused=False``
    runs :func:`scaled_dot_product_attention`. Set ``keep_weights = True`` to use the explicit
    path and keep the last weights (B, nh, T, S) in ``self.weights`` for plotting.

    ``mask`` (boolean, True = may attend) is (T, S), (B, T, S) (same for every head), or
    anything broadcastable to (B, nh, T, S) such as :func:`padding_mask`'s (B, 1, 1, S).

    >>> mha = MultiHeadAttention(n_embd=8, n_head=2, causal=True)
    >>> mha.keep_weights = True
    >>> mha(torch.zeros(1, 5, 8)).shape
    torch.Size([1, 5, 8])
    >>> mha.weights[0, 0, 2]  # equal scores: query 2 spreads over the 3 keys it may see
    tensor([0.3333, 0.3333, 0.3333, 0.0000, 0.0000])
    """

    def __init__(self, n_embd: int, n_head: int, causal: bool = False, dropout: float = 0.0,
                 bias: bool = True, fused: bool = True):
        super().__init__()
        if n_head < 1 or n_embd < 1 or n_embd % n_head != 0:
            raise ValueError(f"n_embd ({n_embd}) must be a positive multiple of n_head ({n_head})")
        self.n_embd, self.n_head, self.causal, self.dropout = n_embd, n_head, causal, dropout
        self.fused = fused
        self.keep_weights = False
        self.weights: torch.Tensor | None = None
        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=bias)  # q, k and v projections in one matmul
        self.proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.resid_dropout = nn.Dropout(dropout)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        B, T, C = t.shape
        return t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, T, C) -> (B, nh, T, hs)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                cache: KVCache | None = None) -> torch.Tensor:
        """x: (B, T, C); mask: boolean, broadcastable to (B, nh, T, S), True = may attend."""
        if x.dim() != 3 or x.shape[-1] != self.n_embd:
            raise ValueError(f"expected x of shape (B, T, {self.n_embd}), got {tuple(x.shape)}")
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=-1)  # each (B, T, C)
        q, k, v = self._heads(q), self._heads(k), self._heads(v)  # each (B, nh, T, hs)
        if cache is not None:
            k, v = cache.append(k, v)  # (B, nh, S, hs), S = cached + T
        S = k.shape[-2]
        if isinstance(mask, torch.Tensor) and mask.dim() == 3:
            mask = mask[:, None]  # (B, T, S) -> (B, 1, T, S): the same mask for every head
        if mask is not None:  # dtype and shape first, so combining with the causal mask cannot fail
            _check_mask(mask, torch.Size((B, self.n_head, T, S)), rows=False)
        p = self.dropout if self.training else 0.0
        if self.fused and not self.keep_weights and self.causal and mask is None and T == S:
            # the kernel's own causal path is the fastest; no mask tensor is built at all
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        else:
            if self.causal:
                cm = causal_mask(T, S, device=x.device)  # (T, S)
                mask = cm if mask is None else mask & cm
            if self.fused and not self.keep_weights:
                if mask is not None:  # same checks as the explicit path: shape, dtype, empty rows
                    _check_mask(mask, torch.Size((B, self.n_head, T, S)))
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
            else:
                y, w = scaled_dot_product_attention(q, k, v, mask=mask, dropout_p=p)
                self.weights = w.detach() if self.keep_weights else None
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, nh, T, hs) -> (B, T, C)
        return self.resid_dropout(self.proj(y))
