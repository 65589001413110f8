"""Checkers for chapters 3 and 4.2's exercises: sinusoidal positions, RoPE, the pre-norm block and
the key-value cache.

Every reference here is written out again, one position and one coordinate at a time (the
checker never asks ``llm_lessons.positional`` for the answer). Shapes: B batch, T positions,
C channels (``d_model``), nh heads, S cached positions, hs head size.

>>> import torch
>>> def append(cache_k, cache_v, k_new, v_new, block_size):
...     k = torch.cat([cache_k, k_new], dim=2)  # (B, nh, S, hs) + (B, nh, 1, hs) -> (B, nh, S+1, hs)
...     v = torch.cat([cache_v, v_new], dim=2)
...     return k[:, :, -block_size:], v[:, :, -block_size:]
>>> check_kv_cache_append(append)
'check_kv_cache_append: all 8 cases passed'
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import torch
from torch import nn

from llm_lessons.exercises.checking import Case, ExerciseFailed, Mistake, run_check


def sinusoidal_table(n: int, d: int, swapped: bool = False, exponent: str = "2i/d",
                layout: str = "interleaved") -> torch.Tensor:
    """The (n, d) table, entry by entry; the flags build the usual wrong versions."""
    pe = torch.zeros(n, d, dtype=torch.float64)
    for pos in range(n):
        for col in range(d):
            if layout == "interleaved":  # columns 2i, 2i+1 share pair i's frequency
                i, is_sin = col // 2, col % 2 == 0
            else:  # "halves": sin of every frequency, then cos of every frequency
                i, is_sin = col % (d // 2), col < d // 2
            power = {"2i/d": 2 * i / d, "i/d": i / d, "col/d": col / d}[exponent]
            angle = pos / 10000 ** power
            pe[pos, col] = math.sin(angle) if is_sin != swapped else math.cos(angle)
    return pe.float()


def check_sinusoidal_encoding(fn: Callable[[int, int], torch.Tensor]) -> str:
    """``fn(n_positions, d_model)`` returns the (n_positions, d_model) table of Vaswani et al.:

    PE[pos, 2i] = sin(pos / 10000^(2i / d_model)), PE[pos, 2i+1] = cos(the same angle).
    """
    sizes = [(1, 2), (1, 6), (2, 2), (3, 4), (4, 6), (8, 8), (12, 10), (20, 16)]
    cases = [Case((n, d), sinusoidal_table(n, d), f"n_positions = {n}, d_model = {d}") for n, d in sizes]
    mistakes = [
        Mistake("swapped", lambda n, d: sinusoidal_table(n, d, swapped=True),
                "sin and cos are swapped: the even columns 2i hold sin, the odd columns 2i+1 hold "
                "cos (position 0 is [0, 1, 0, 1, ...])"),
        Mistake("exponent per column", lambda n, d: sinusoidal_table(n, d, exponent="col/d"),
                "your odd columns have their own frequency: columns 2i and 2i+1 are one pair and "
                "share the angle pos / 10000^(2i/d_model); use the pair index i, not the column"),
        Mistake("exponent i/d", lambda n, d: sinusoidal_table(n, d, exponent="i/d"),
                "your exponent is i/d_model; it is 2i/d_model (i counts pairs, so the frequencies "
                "fall from 1 down to nearly 1/10000)"),
        Mistake("concatenated", lambda n, d: sinusoidal_table(n, d, layout="halves"),
                "you put every sin in the first half and every cos in the second: the two are "
                "interleaved, sin in column 2i and cos in column 2i+1"),
    ]
    return run_check("check_sinusoidal_encoding", fn, cases, mistakes, atol=1e-4,
                     forbidden=("llm_lessons.positional.sinusoidal_encoding",))


def _rope(x: torch.Tensor, positions: torch.Tensor, sign: int = 1, halves: bool = False,
          use_positions: bool = True) -> torch.Tensor:
    """Rotate each pair of x (T, d) by positions[t] * 10000^(-2i/d), one pair at a time."""
    T, d = x.shape
    out = x.double().clone()
    for t in range(T):
        pos = int(positions[t]) if use_positions else t
        for i in range(d // 2):
            a_at, b_at = (i, i + d // 2) if halves else (2 * i, 2 * i + 1)
            angle = sign * pos * 10000 ** (-2 * i / d)
            a, b = float(x[t, a_at]), float(x[t, b_at])
            out[t, a_at] = a * math.cos(angle) - b * math.sin(angle)  # counter-clockwise
            out[t, b_at] = a * math.sin(angle) + b * math.cos(angle)
    return out.to(x.dtype)


def check_rope(fn: Callable, seed: int = 0) -> str:
    """``fn(x, positions)`` applies rotary position embedding to x (T, d), positions (T,) ints.

    The convention of ``llm_lessons.positional.apply_rope``: pair i is the neighbours
    (x[t, 2i], x[t, 2i+1]), turned counter-clockwise by the angle positions[t] * 10000^(-2i/d):
    (a, b) -> (a cos - b sin, a sin + b cos).
    """
    g = torch.Generator().manual_seed(seed)
    layouts = [([0], 2), ([7], 4), ([0, 1, 2], 2), (list(range(4)), 8), ([5, 2, 9], 6),
               (list(range(10, 15)), 4), ([3, 3, 0, 12], 10)]
    cases = []
    for pos, d in layouts:
        x, positions = torch.randn(len(pos), d, generator=g), torch.tensor(pos)
        cases.append(Case((x, positions), _rope(x, positions), f"x of shape (T={len(pos)}, d={d}), "
                          f"positions = {pos}"))
    mistakes = [
        Mistake("negated", lambda x, p: _rope(x, p, sign=-1),
                "you rotated the wrong way (the angle negated): (a, b) becomes "
                "(a cos - b sin, a sin + b cos), with the minus sign on b in the first coordinate"),
        Mistake("halves", lambda x, p: _rope(x, p, halves=True),
                "you paired x[i] with x[i + d/2] (the two halves); here a pair is two neighbours, "
                "x[2i] and x[2i+1]"),
        Mistake("identity", lambda x, p: x.clone(),
                "x came back unchanged: every token was turned by position 0. Turn pair i of row t "
                "by positions[t] * 10000^(-2i/d)"),
        Mistake("arange", lambda x, p: _rope(x, p, use_positions=False),
                "you used the row numbers 0 .. T-1 as positions; use the given positions (when "
                "decoding with a cache, the new token's position is not 0)"),
    ]
    return run_check("check_rope", fn, cases, mistakes, atol=1e-4,
                     forbidden=("llm_lessons.positional.apply_rope",))


def _frozen(module: nn.Module, g: torch.Generator) -> nn.Module:
    """``module`` with random parameters (so ln1 and ln2 differ) that need no gradient."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=g) + (1.0 if p.dim() == 1 else 0.0))
    return module.requires_grad_(False)


def _stand_ins(C: int, g: torch.Generator) -> tuple[Callable, ...]:
    """attn, mlp, ln1, ln2 for one case: small, deterministic and all different."""
    w_attn = torch.randn(C, C, generator=g) / math.sqrt(C)
    w_in, w_out = torch.randn(C, 2 * C, generator=g) / math.sqrt(C), torch.randn(2 * C, C, generator=g)

    def attn(h: torch.Tensor) -> torch.Tensor:
        """A causal running mean over time, then a linear map: it mixes positions, as attention does."""
        counts = torch.arange(1, h.shape[1] + 1, dtype=h.dtype)[None, :, None]  # (1, T, 1)
        return (h.cumsum(dim=1) / counts) @ w_attn  # (B, T, C)

    def mlp(h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(h @ w_in) @ w_out  # (B, T, C) -> (B, T, 2C) -> (B, T, C)

    return attn, mlp, _frozen(nn.LayerNorm(C), g), _frozen(nn.LayerNorm(C), g)


def _pre_norm(x, attn, mlp, ln1, ln2):
    h = x + attn(ln1(x))  # each sublayer reads a normalised copy and adds to the residual stream
    return h + mlp(ln2(h))


def _post_norm(x, attn, mlp, ln1, ln2):
    h = ln1(x + attn(x))  # the original Transformer: normalise the sum
    return ln2(h + mlp(h))


def check_pre_norm_block(fn: Callable, seed: int = 0) -> str:
    """``fn(x, attn, mlp, ln1, ln2)`` is GPT-2's pre-norm block on x (B, T, C):

    h = x + attn(ln1(x)), then y = h + mlp(ln2(h)). The four are callables (B, T, C) -> (B, T, C):
    ln1 and ln2 are ``nn.LayerNorm`` with different weights, attn a stand-in that mixes positions.
    """
    g = torch.Generator().manual_seed(seed)
    cases = []
    for B, T, C in [(1, 1, 4), (1, 3, 4), (2, 5, 8), (2, 4, 6), (3, 2, 10)]:
        x = torch.randn(B, T, C, generator=g) * 2 + 1  # not already normalised
        args = (x, *_stand_ins(C, g))
        cases.append(Case(args, _pre_norm(*args), f"x of shape (B={B}, T={T}, C={C})"))
    same_norm = ("you used the same LayerNorm twice: ln1 goes before attn, ln2 before mlp (each has "
                 "its own weights)")
    mistakes = [
        Mistake("post-norm", _post_norm,
                "you normalised after the residual sum (post-norm, the original Transformer); "
                "pre-norm normalises each sublayer's input: x + attn(ln1(x))"),
        Mistake("no residual", lambda x, a, m, n1, n2: m(n2(a(n1(x)))),
                "the residual connections are missing: add each sublayer's output to its input, "
                "h = x + attn(ln1(x)), then y = h + mlp(ln2(h))"),
        Mistake("parallel", lambda x, a, m, n1, n2: x + a(n1(x)) + m(n2(x)),
                "both sublayers read the original x (a parallel block); the MLP must read h = "
                "x + attn(ln1(x)), the stream after attention: y = h + mlp(ln2(h))"),
        Mistake("ln1 twice", lambda x, a, m, n1, n2: _pre_norm(x, a, m, n1, n1), same_norm),
        Mistake("ln2 twice", lambda x, a, m, n1, n2: _pre_norm(x, a, m, n2, n2), same_norm),
        Mistake("no mlp", lambda x, a, m, n1, n2: x + a(n1(x)),
                "you stopped after attention: add the MLP sublayer too, y = h + mlp(ln2(h))"),
    ]
    return run_check("check_pre_norm_block", fn, cases, mistakes)


def _window(cache: torch.Tensor, new: torch.Tensor, block_size: int, prepend: bool = False,
            keep: str = "last") -> torch.Tensor:
    """Cache (B, nh, S, hs) plus new (B, nh, 1, hs), position by position; flags for mistakes."""
    old = [cache[:, :, s] for s in range(cache.shape[2])]  # S slices of (B, nh, hs)
    rows = [new[:, :, 0]] + old if prepend else old + [new[:, :, 0]]
    if keep == "last":
        rows = rows[-block_size:]
    elif keep == "first":
        rows = rows[:block_size]
    elif keep == "drop one":  # a sliding window that forgets one position per step
        rows = rows[1:] if len(rows) > block_size else rows
    elif keep == "crop before":
        rows = old[-block_size:] + [new[:, :, 0]]
    return torch.stack(rows, dim=2)  # (B, nh, len(rows), hs)


def _both(**flags) -> Callable:
    return lambda ck, cv, k, v, bs: (_window(ck, k, bs, **flags), _window(cv, v, bs, **flags))


AXES = {"0": "the batch axis", "1": "the head axis", "3": "the head-size axis"}


def check_kv_cache_append(fn: Callable, seed: int = 0) -> str:
    """``fn(cache_k, cache_v, k_new, v_new, block_size)`` returns the new cache ``(k, v)``.

    cache_k, cache_v are (B, nh, S, hs) (S may be 0), k_new, v_new are (B, nh, 1, hs). The new
    position goes after the cached ones on the time axis (dim 2); a cache longer than block_size
    keeps only its last block_size positions, the newest included.
    """
    g = torch.Generator().manual_seed(seed)
    cases = []
    for B, nh, S, hs, bs in [(1, 1, 0, 2, 4), (1, 2, 2, 3, 4), (2, 2, 3, 2, 4), (1, 3, 4, 2, 4),
                             (2, 1, 1, 4, 1), (1, 2, 0, 3, 1), (2, 2, 6, 2, 4), (1, 1, 3, 5, 3)]:
        ck, cv = torch.randn(B, nh, S, hs, generator=g), torch.randn(B, nh, S, hs, generator=g)
        k, v = torch.randn(B, nh, 1, hs, generator=g), torch.randn(B, nh, 1, hs, generator=g)
        args = (ck, cv, k, v, bs)
        cases.append(Case(args, _both()(*args), f"cache of shape (B={B}, nh={nh}, S={S}, hs={hs}), "
                          f"block_size = {bs}"))
    prepended = ("you put the new position before the cached ones: append it at the end, "
                 "torch.cat([cache_k, k_new], dim=2), so the newest position is last")
    mistakes = [
        Mistake("no crop", _both(keep="all"),
                "the cache grew past block_size: after appending, keep only the last block_size "
                "positions, k[:, :, -block_size:]"),
        Mistake("first", _both(keep="first"),
                "you kept the first block_size positions and dropped the newest; keep the last "
                "ones, k[:, :, -block_size:]"),
        Mistake("crop before", _both(keep="crop before"),
                "you cropped before appending, so block_size + 1 positions remain: append first, "
                "then keep the last block_size"),
        Mistake("drop one", _both(keep="drop one"),
                "you dropped only the oldest position: a cache already longer than block_size "
                "must keep exactly its last block_size positions, k[:, :, -block_size:]"),
        Mistake("prepend", _both(prepend=True), prepended),
        Mistake("prepend, no crop", _both(prepend=True, keep="all"), prepended),
        Mistake("prepend, first", _both(prepend=True, keep="first"), prepended),
        Mistake("k and v swapped", lambda ck, cv, k, v, bs: _both()(ck, cv, k, v, bs)[::-1],
                "you returned (v, k); return the keys first, (k, v)"),
    ]

    def appended(cache_k, cache_v, k_new, v_new, block_size):
        try:
            return fn(cache_k, cache_v, k_new, v_new, block_size)
        except RuntimeError as error:  # torch.cat on the wrong axis fails before any answer
            axis = re.search(r"must match except in dimension (\d)", str(error))
            if axis is None:
                raise
            raise ExerciseFailed(
                f"check_kv_cache_append, cache of shape {tuple(cache_k.shape)}: you concatenated "
                f"along dimension {axis[1]} ({AXES.get(axis[1], 'not time')}); the cache and the "
                "new entry differ only on the time axis, dim=2: torch.cat([cache_k, k_new], dim=2)"
            ) from error

    return run_check("check_kv_cache_append", appended, cases, mistakes, student=fn)
