"""Checkers for chapter 8.3's exercises: one step of the online softmax, the key-value cache's
bytes per token, and a sliding-window causal mask.

All three fail quietly when wrong. An online-softmax step that forgets to rescale its running
sum still returns finite numbers of the right shape; a cache size that counts the keys but not
the values is off by exactly two, a plausible-looking number; a window one position too wide
still looks like a band. The answers come from references written here, not from
:func:`llm_lessons.frontiers.flash_attention.online_softmax_attention`,
:func:`llm_lessons.frontiers.modern_gpt.kv_cache_bytes_per_token` or
:func:`llm_lessons.frontiers.gqa.window_mask` (each forbidden in its exercise).

>>> def kv_bytes(n_layer, n_embd, n_head, n_kv_head, bytes_per_number):
...     return 2 * n_layer * n_kv_head * (n_embd // n_head) * bytes_per_number
>>> check_kv_cache_bytes(kv_bytes)
'check_kv_cache_bytes: all 8 cases passed'
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from llm_lessons.exercises.checking import Case, Mistake, available, random_int, run_check

# --- one step of the online softmax ---


def _online_step(m, l, acc, s, v, rescale_sum=True, rescale_acc=True, normalise=False):
    """(m', l', acc') after one tile of scores s (n, Bk) and values v (Bk, hs); the flags give
    the usual wrong versions."""
    m_new = torch.maximum(m, s.amax(dim=-1, keepdim=True))  # (n, 1)
    p = torch.exp(s - m_new)  # (n, Bk); a masked score (-inf) gives 0
    correction = torch.exp(m - m_new)  # (n, 1); 0 before the first tile (m = -inf)
    l_new = (l * correction if rescale_sum else l) + p.sum(dim=-1, keepdim=True)
    acc_new = (acc * correction if rescale_acc else acc) + p @ v  # (n, hs)
    if normalise:
        acc_new = acc_new / l_new
    return m_new, l_new, acc_new


def _state(g: torch.Generator, n: int, hs: int, k_seen: int, scale: float):
    """A running state (m, l, acc) after ``k_seen`` keys of random scores (built by the
    reference itself, so it is a state the loop can really reach)."""
    m = torch.full((n, 1), -math.inf)
    l, acc = torch.zeros(n, 1), torch.zeros(n, hs)
    if k_seen:
        s = torch.randn(n, k_seen, generator=g) * scale
        v = torch.randn(k_seen, hs, generator=g)
        m, l, acc = _online_step(m, l, acc, s, v)
    return m, l, acc


def check_online_softmax_step(fn: Callable, n_cases: int = 9, seed: int = 0) -> str:
    """``fn(m, l, acc, s, v)`` takes one tile: the running maximum ``m`` (n, 1) of the scores
    seen so far (-inf before the first tile), the running sum ``l`` (n, 1) of exp(score - m),
    the running sum ``acc`` (n, hs) of exp(score - m) * value, this tile's scores ``s``
    (n, Bk), -inf where masked, and its values ``v`` (Bk, hs). Return ``(m, l, acc)`` after
    the tile: the new maximum m', both sums rescaled by exp(m - m') and this tile's terms
    exp(s - m') added. After the last tile, acc / l is softmax(scores) @ values."""
    g = torch.Generator().manual_seed(seed)
    inf = math.inf
    start = (torch.full((1, 1), -inf), torch.zeros(1, 1), torch.zeros(1, 2))
    s1, v1 = torch.tensor([[1.0, 3.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    after = _online_step(*start, s1, v1)
    s2, v2 = torch.tensor([[5.0, 0.0]]), torch.tensor([[2.0, 2.0], [-1.0, 1.0]])
    s3 = torch.tensor([[2.0, -inf]])
    cases = [
        Case((*start, s1, v1), after, "the first tile: m = -inf, l = 0, acc = 0, "
             "s = [[1, 3]], v = [[1, 0], [0, 1]]"),
        Case((*after, s2, v2), _online_step(*after, s2, v2),
             "a second tile whose score 5 raises the maximum from 3 to 5 (the old sums shrink "
             "by exp(3 - 5))"),
        Case((*after, s3, v2), _online_step(*after, s3, v2),
             "a tile that does not raise the maximum (3), one key masked (-inf)"),
    ]
    masked = torch.full((1, 2), -inf)
    cases.append(Case((*after, masked, v2), _online_step(*after, masked, v2),
                      "a tile whose keys are all masked (nothing changes)"))
    while len(cases) < n_cases:
        n, hs, k_seen, bk = random_int(g, 1, 5), random_int(g, 1, 6), random_int(g, 1, 7), random_int(g, 1, 6)
        scale = (1.0, 30.0)[len(cases) % 2]  # large scores: exp without the shift overflows
        m, l, acc = _state(g, n, hs, k_seen, scale)
        s = torch.randn(n, bk, generator=g) * scale + (2.0 if len(cases) % 3 == 0 else 0.0)
        v = torch.randn(bk, hs, generator=g)
        cases.append(Case((m, l, acc, s, v), _online_step(m, l, acc, s, v),
                          f"{n} rows after {k_seen} keys, a tile of {bk} keys with scores of "
                          f"size about {scale:g}, head size {hs}"))
    mistakes = [
        Mistake("sum not rescaled", lambda *a: _online_step(*a, rescale_sum=False),
                "you did not rescale the running sum l: when the maximum rises from m to m', the "
                "terms already in l were exp(score - m) and must become exp(score - m'), so "
                "multiply l by exp(m - m') before adding the tile"),
        Mistake("acc not rescaled", lambda *a: _online_step(*a, rescale_acc=False),
                "you did not rescale acc: it holds exp(score - m) * v for the keys seen so far, "
                "so when the maximum rises it must be multiplied by exp(m - m') too, like l"),
        Mistake("nothing rescaled", lambda *a: _online_step(*a, rescale_sum=False, rescale_acc=False),
                "you never rescaled l or acc: multiply both by exp(m - m') whenever the maximum "
                "rises from m to m'"),
        Mistake("normalised", lambda *a: _online_step(*a, normalise=True),
                "you divided acc by l inside the step; keep acc unnormalised (a sum of "
                "exp(score - m) * v) and divide by l once, after the last tile"),
    ]
    forbidden = available(("llm_lessons.frontiers.flash_attention.online_softmax_attention",))
    return run_check("check_online_softmax_step", fn, cases, mistakes, forbidden=forbidden,
                     atol=1e-5, rtol=1e-4)


# --- the key-value cache's bytes per token ---


def _kv_bytes(n_layer, n_embd, n_head, n_kv_head, bytes_per_number, tensors=2, heads="kv",
              layers=True):
    head_size = n_embd // n_head
    counted = {"kv": n_kv_head, "query": n_head}[heads]
    return tensors * (n_layer if layers else 1) * counted * head_size * bytes_per_number


def check_kv_cache_bytes(fn: Callable, seed: int = 1) -> str:
    """``fn(n_layer, n_embd, n_head, n_kv_head, bytes_per_number)``: how many bytes the
    key-value cache grows by for each token a decoder generates, with ``n_kv_head`` key/value
    heads of size n_embd // n_head in each of ``n_layer`` layers and ``bytes_per_number`` bytes
    per stored number (2 for float16). Return an int."""
    shapes = [
        ((80, 8192, 64, 8, 2), "Llama-2-70B: 80 layers, 64 query heads, 8 key/value heads, float16"),
        ((80, 8192, 64, 64, 2), "the same shape with multi-head attention (n_kv_head = n_head)"),
        ((32, 4096, 32, 1, 2), "multi-query attention: one key/value head, float16"),
        ((4, 128, 4, 4, 4), "the book's nano GPT in float32"),
        ((1, 64, 8, 2, 1), "one layer, int8"),
    ]
    cases = [Case(args, _kv_bytes(*args), label) for args, label in shapes]
    g = torch.Generator().manual_seed(seed)
    while len(cases) < 8:
        n_kv = (1, 2, 4)[random_int(g, 0, 3)]
        n_head = n_kv * random_int(g, 2, 5)
        args = (random_int(g, 2, 13), n_head * 2 * random_int(g, 2, 9), n_head, n_kv, 2)
        cases.append(Case(args, _kv_bytes(*args), f"a random decoder {args}"))
    mistakes = [
        Mistake("keys only", lambda *a: _kv_bytes(*a, tensors=1),
                "you counted the keys but not the values: the cache stores both, one key and one "
                "value vector per key/value head, so multiply by 2"),
        Mistake("query heads", lambda *a: _kv_bytes(*a, heads="query"),
                "you counted n_head heads; the cache holds only the n_kv_head key/value heads "
                "(grouped queries share them), which is the whole point of GQA"),
        Mistake("one layer", lambda *a: _kv_bytes(*a, layers=False),
                "you counted one layer; every layer keeps its own cache, so multiply by n_layer"),
        Mistake("numbers", lambda n_layer, n_embd, n_head, n_kv_head, b: _kv_bytes(
            n_layer, n_embd, n_head, n_kv_head, 1),
                "you counted numbers, not bytes: multiply by bytes_per_number"),
    ]
    forbidden = available(("llm_lessons.frontiers.modern_gpt.kv_cache_bytes_per_token",))
    return run_check("check_kv_cache_bytes", fn, cases, mistakes, forbidden=forbidden, atol=0, rtol=0)


# --- a sliding-window causal mask ---


def _window(T, S, window, width=0, offset=True, causal=True):
    """Boolean (T, S); query i sits at position S - T + i (``offset``) and may see key j when
    0 <= pos - j < window + width; the flags give the usual wrong versions."""
    pos = torch.arange(T)[:, None] + (S - T if offset else 0)  # (T, 1)
    keys = torch.arange(S)[None, :]  # (1, S)
    gap = pos - keys  # (T, S): how far back key j lies
    mask = gap >= 0 if causal else torch.ones(T, S, dtype=torch.bool)
    if window is not None:
        mask = mask & (gap.abs() < window + width)
    return mask


def check_window_mask(fn: Callable, n_cases: int = 9, seed: int = 2) -> str:
    """``fn(T, S, window)`` returns a boolean (T, S) mask for T queries that are the *last* T of
    S positions (query i sits at position S - T + i, as with a key-value cache): True where the
    query may attend to key j, that is j <= its position and, unless ``window`` is None, the
    key is among its last ``window`` positions, itself included (position - j < window)."""
    g = torch.Generator().manual_seed(seed)
    fixed = [((4, 4, 2), "T = S = 4, window 2 (each position sees itself and the one before)"),
             ((2, 6, 3), "T = 2 new queries after 4 cached positions, window 3"),
             ((1, 7, 4), "one decoding step: T = 1 query at position 6, window 4"),
             ((5, 5, None), "window None: the plain causal mask"),
             ((5, 5, 1), "window 1: each position sees only itself"),
             ((3, 4, 10), "a window wider than the sequence: the plain causal mask")]
    cases = [Case(args, _window(*args), label) for args, label in fixed]
    while len(cases) < n_cases:
        S = random_int(g, 4, 12)
        T, window = random_int(g, 1, S + 1), random_int(g, 2, S)
        cases.append(Case((T, S, window), _window(T, S, window), f"T = {T}, S = {S}, window {window}"))
    mistakes = [
        Mistake("one too wide", lambda *a: _window(*a, width=1),
                "your window is one key too wide: a window of W holds the query's own position "
                "and the W - 1 before it, so keep keys with position - j < W (not <= W)"),
        Mistake("one too narrow", lambda *a: _window(*a, width=-1),
                "your window is one key too narrow: it must count the query's own position, W "
                "keys in all (position - j from 0 to W - 1)"),
        Mistake("no offset", lambda *a: _window(*a, offset=False),
                "you placed query i at position i; with S > T the queries are the last T "
                "positions, so query i sits at S - T + i"),
        Mistake("not causal", lambda *a: _window(*a, causal=False),
                "your band looks both ways (|position - j| < W); a decoder's window lies only "
                "behind the query: also require j <= position"),
    ]
    forbidden = available(("llm_lessons.frontiers.gqa.window_mask",))
    return run_check("check_window_mask", fn, cases, mistakes, forbidden=forbidden)
