"""Attention without the T x T matrix: the online softmax, tiled as FlashAttention tiles it.

Shapes use fixed letters: B batch, nh heads, T positions, hs head size, Bq query rows and Bk key
rows per tile.

Plain attention writes the scores ``S = Q K^T / sqrt(hs)`` (T x T per head) to memory, reads
them back for the softmax, writes the weights, and reads them again to multiply by V. For long
sequences that traffic, not the arithmetic, is the cost. FlashAttention (Dao et al., 2022)
never stores S: it walks over tiles of keys and keeps, for each query row, three running
quantities, enough to finish the softmax exactly:

- ``m``, the largest score seen so far (for a stable ``exp``);
- ``l``, the sum of ``exp(score - m)`` over the keys seen so far;
- ``acc``, the sum of ``exp(score - m) * v`` over those keys.

When a new tile raises the maximum from m to m', everything accumulated so far is rescaled by
``exp(m - m')``; at the end ``acc / l`` is exactly ``softmax(S) V``. This is the *online softmax*
(Milakov & Gimelshein, 2018). Here it is written in PyTorch, so it is slow, but it computes the
same numbers as ``F.scaled_dot_product_attention`` and autograd differentiates it; the point is
what it reads and writes, counted by :func:`memory_traffic`.

>>> q = k = v = torch.randn(1, 1, 10, 4)
>>> out = online_softmax_attention(q, k, v, block_q=4, block_k=3, causal=True)
>>> torch.allclose(out, torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True),
...                atol=1e-6)
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def online_softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                             block_q: int = 64, block_k: int = 64, causal: bool = False,
                             traffic: list[int] | None = None) -> torch.Tensor:
    """softmax(q k^T / sqrt(hs)) v for q, k, v of shape (B, nh, T, hs), one tile at a time.

    With ``causal``, query i sees keys j <= i, and tiles wholly above the diagonal are skipped.
    Pass ``traffic=[0, 0]`` to have the numbers read and written per head added to it (what a
    GPU kernel would move between main memory and its on-chip tiles).
    """
    if not (q.shape == k.shape == v.shape) or q.dim() != 4:
        raise ValueError(f"q, k, v must share one shape (B, nh, T, hs), got {tuple(q.shape)}, "
                         f"{tuple(k.shape)}, {tuple(v.shape)}")
    if block_q < 1 or block_k < 1:
        raise ValueError(f"tile sizes must be positive, got block_q={block_q}, block_k={block_k}")
    B, nh, T, hs = q.shape
    scale = 1.0 / math.sqrt(hs)
    rows = []
    for qs in range(0, T, block_q):
        qt = q[:, :, qs:qs + block_q] * scale  # (B, nh, Bq, hs): a tile of queries, kept on chip
        n = qt.shape[2]
        moved = [n * hs, n * hs]  # read the query tile, write its output tile
        m = torch.full((B, nh, n, 1), -math.inf, dtype=q.dtype, device=q.device)  # running max
        l = torch.zeros(B, nh, n, 1, dtype=q.dtype, device=q.device)  # running sum of exp
        acc = torch.zeros(B, nh, n, hs, dtype=q.dtype, device=q.device)  # running sum of exp * v
        for ks in range(0, T, block_k):
            if causal and ks > qs + n - 1:
                break  # this tile and every later one lie above the diagonal: nothing to see
            s = qt @ k[:, :, ks:ks + block_k].transpose(-2, -1)  # (B, nh, Bq, Bk) scores of the tile
            moved[0] += 2 * s.shape[-1] * hs  # read the key tile and the value tile
            if causal:
                qi = torch.arange(qs, qs + n, device=q.device)[:, None]
                kj = torch.arange(ks, ks + s.shape[-1], device=q.device)[None, :]
                s = s.masked_fill(kj > qi, -math.inf)
            m_new = torch.maximum(m, s.amax(dim=-1, keepdim=True))  # (B, nh, Bq, 1)
            p = torch.exp(s - m_new)  # (B, nh, Bq, Bk); masked keys give exp(-inf) = 0
            correction = torch.exp(m - m_new)  # how much the old sums shrink under the new max
            l = l * correction + p.sum(dim=-1, keepdim=True)
            acc = acc * correction + p @ v[:, :, ks:ks + block_k]  # (B, nh, Bq, hs)
            m = m_new
        rows.append(acc / l)
        if traffic is not None:
            traffic[0], traffic[1] = traffic[0] + moved[0], traffic[1] + moved[1]
    return torch.cat(rows, dim=2)  # (B, nh, T, hs)


@dataclass(frozen=True)
class Traffic:
    """Numbers (not bytes) read from and written to main memory by one attention head."""

    reads: int
    writes: int

    @property
    def total(self) -> int:
        return self.reads + self.writes


def memory_traffic(T: int, hs: int, block_q: int | None = None, block_k: int | None = None) -> Traffic:
    """Main-memory traffic of attention for one head, causal mask ignored (it halves both terms).

    ``block_q=None``: the plain algorithm. Read Q and K (2 T hs), write S (T^2); read S, write
    P = softmax(S) (2 T^2); read P and V (T^2 + T hs), write O (T hs).

    With tiles: each query tile is read once and its output written once (2 T hs in all), and
    every query tile reads all of K and V (ceil(T / Bq) * 2 T hs). No T x T term at all: the
    ratio is about 4 T^2 / (2 T^2 hs / Bq) = 2 Bq / hs, so the larger the query tile that fits
    in fast memory, the larger the saving (for long sequences it tends to that bound, not to
    anything that grows with T).

    >>> plain, tiled = memory_traffic(4096, 64), memory_traffic(4096, 64, block_q=128, block_k=128)
    >>> round(plain.total / tiled.total, 2), round(plain.total / memory_traffic(4096, 64, 512).total, 1)
    (3.94, 14.4)
    """
    if block_q is None:
        return Traffic(reads=2 * T * hs + T * T + T * T + T * hs, writes=T * T + T * T + T * hs)
    tiles = -(-T // block_q)  # ceil(T / Bq)
    return Traffic(reads=T * hs + tiles * 2 * T * hs, writes=T * hs)
