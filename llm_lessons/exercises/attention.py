"""Checkers for chapter 4.1's exercises: the causal mask, attention, and multi-head split/merge.

Every reference here is written out again (the checker never asks ``llm_lessons.attention`` for
the answer), and the functions that *are* the answer are forbidden while the student's code runs.

>>> import torch
>>> check_causal_mask(lambda T: torch.ones(T, T, dtype=torch.bool).tril())
'check_causal_mask: all 6 cases passed'
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from llm_lessons.exercises.checking import Case, Mistake, run_check

ATTENTION_ANSWERS = ("llm_lessons.attention.scaled_dot_product_attention",
                     "torch.nn.functional.scaled_dot_product_attention")


def _lower_triangle(T: int) -> torch.Tensor:
    mask = torch.zeros(T, T, dtype=torch.bool)
    for i in range(T):
        mask[i, : i + 1] = True
    return mask


def check_causal_mask(fn: Callable[[int], torch.Tensor]) -> str:
    """``fn(T)`` returns the (T, T) boolean mask: True where query i may attend to key j (j ≤ i)."""
    cases = [Case((T,), _lower_triangle(T), f"T = {T}") for T in (1, 2, 3, 5, 8, 13)]
    mistakes = [
        Mistake("upper", lambda T: _lower_triangle(T).T,
                "your mask is upper-triangular: query i would see the future keys j > i. "
                "Row i is the query, so keep the columns j <= i (torch.tril)"),
        Mistake("strict", lambda T: _lower_triangle(T) & ~torch.eye(T, dtype=torch.bool),
                "your mask hides the diagonal: a token may attend to itself (j = i), so the "
                "first query would see nothing at all"),
        Mistake("inverted", lambda T: ~_lower_triangle(T),
                "your mask is inverted: True must mark the keys a query may see, not the "
                "hidden ones"),
    ]
    return run_check("check_causal_mask", fn, cases, mistakes,
                     forbidden=("llm_lessons.attention.causal_mask",))


def _attention(q, k, v, mask=None, scale=True, dim=-1, mask_after=False):
    """Softmax attention written from the formula (and, with flags, the usual wrong versions)."""
    scores = q @ k.transpose(-2, -1)
    if scale:
        scores = scores / math.sqrt(q.shape[-1])
    if mask is not None and not mask_after:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=dim)
    if mask is not None and mask_after:
        weights = weights.masked_fill(~mask, 0.0)
    return weights @ v


def _attention_cases(n: int, seed: int, masked: bool) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    cases = []
    shapes = [(1, 1, 1), (1, 3, 2), (2, 4, 8)]  # a single token, then small, then general
    shapes += [(int(torch.randint(1, 4, (), generator=g)), int(torch.randint(2, 9, (), generator=g)),
                int(torch.randint(2, 17, (), generator=g))) for _ in range(n - len(shapes))]
    for B, T, hs in shapes:
        q, k, v = (torch.randn(B, T, hs, generator=g) for _ in range(3))
        args = (q, k, v, _lower_triangle(T)) if masked else (q, k, v)
        cases.append(Case(args, _attention(*args), f"q, k, v of shape (B={B}, T={T}, hs={hs})"))
    return cases


def check_attention(fn: Callable, n_cases: int = 20, seed: int = 0) -> str:
    """``fn(q, k, v)`` returns softmax(q kᵀ / √hs) v for q, k, v of shape (B, T, hs).

    A function that returns ``(output, weights)`` is accepted too (its output is judged).
    """
    mistakes = [
        Mistake("no scaling", lambda q, k, v: _attention(q, k, v, scale=False),
                "the scores are not divided by sqrt(d_k): without the 1/sqrt(hs) factor the "
                "softmax saturates as the head size grows"),
        Mistake("scaled by d", lambda q, k, v: (torch.softmax(
            q @ k.transpose(-2, -1) / q.shape[-1], dim=-1) @ v),
                "you divided the scores by d_k; the formula divides by sqrt(d_k)"),
        Mistake("softmax over queries", lambda q, k, v: _attention(q, k, v, dim=-2),
                "your weights do not sum to 1 over the keys: did you apply softmax over the last "
                "dimension (the keys), not over the queries?"),
        Mistake("weights only", lambda q, k, v: torch.softmax(
            q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1),
                "you returned the attention weights; multiply them by v to get the output"),
    ]

    def output(q, k, v):
        out = fn(q, k, v)
        return out[0] if isinstance(out, tuple) else out

    return run_check("check_attention", output, _attention_cases(n_cases, seed, masked=False),
                     mistakes, forbidden=ATTENTION_ANSWERS, student=fn)


def check_masked_attention(fn: Callable, n_cases: int = 12, seed: int = 1) -> str:
    """``fn(q, k, v, mask)`` applies a boolean mask (True = may attend) before the softmax."""
    mistakes = [
        Mistake("mask after softmax", lambda q, k, v, m: _attention(q, k, v, m, mask_after=True),
                "you masked after the softmax: the hidden keys got weight 0 but the visible "
                "ones no longer sum to 1. Set the hidden scores to -inf before the softmax"),
        Mistake("mask ignored", lambda q, k, v, m: _attention(q, k, v),
                "the mask changed nothing: every query still attends to the future keys"),
        Mistake("inverted mask", lambda q, k, v, m: _attention(q, k, v, m.T),
                "you hid the keys j < i instead of j > i: True in the mask marks what a query may "
                "see (row = query, column = key)"),
    ]
    return run_check("check_masked_attention", fn, _attention_cases(n_cases, seed, masked=True),
                     mistakes, forbidden=ATTENTION_ANSWERS)


def _split(x: torch.Tensor, n_head: int) -> torch.Tensor:
    B, T, C = x.shape
    out = torch.empty(B, n_head, T, C // n_head)
    for h in range(n_head):  # head h owns channels h*hs ... (h+1)*hs - 1
        out[:, h] = x[:, :, h * (C // n_head):(h + 1) * (C // n_head)]
    return out


def check_split_heads(fn: Callable, seed: int = 2) -> str:
    """``fn(x, n_head)`` turns (B, T, C) into (B, nh, T, hs), head h holding channels h·hs…."""
    g = torch.Generator().manual_seed(seed)
    cases = []
    for B, T, C, nh in [(1, 1, 4, 1), (1, 3, 4, 2), (2, 5, 12, 3), (2, 4, 16, 4)]:
        x = torch.randn(B, T, C, generator=g)
        cases.append(Case((x, nh), _split(x, nh), f"x of shape (B={B}, T={T}, C={C}), nh={nh}"))
    mistakes = [
        Mistake("view without transpose", lambda x, nh: x.reshape(
            x.shape[0], nh, x.shape[1], x.shape[2] // nh),
                "you reshaped (B, T, C) straight to (B, nh, T, hs): that mixes positions into "
                "heads. View as (B, T, nh, hs) first, then transpose(1, 2)"),
        Mistake("heads interleaved", lambda x, nh: x.reshape(
            x.shape[0], x.shape[1], x.shape[2] // nh, nh).permute(0, 3, 1, 2),
                "your heads take every nh-th channel; head h must own the contiguous channels "
                "h*hs to (h+1)*hs - 1: view as (B, T, nh, hs), not (B, T, hs, nh)"),
    ]
    return run_check("check_split_heads", fn, cases, mistakes)


def check_merge_heads(fn: Callable, seed: int = 3) -> str:
    """``fn(y)`` turns (B, nh, T, hs) back into (B, T, C): the inverse of the split."""
    g = torch.Generator().manual_seed(seed)
    cases = []
    for B, nh, T, hs in [(1, 1, 1, 4), (1, 2, 3, 2), (2, 3, 5, 4), (2, 4, 4, 4)]:
        y = torch.randn(B, nh, T, hs, generator=g)
        merged = torch.cat([y[:, h] for h in range(nh)], dim=-1)
        cases.append(Case((y,), merged, f"y of shape (B={B}, nh={nh}, T={T}, hs={hs})"))
    mistakes = [
        Mistake("reshape without transpose", lambda y: y.reshape(
            y.shape[0], y.shape[2], y.shape[1] * y.shape[3]),
                "you reshaped (B, nh, T, hs) to (B, T, C) without moving the head axis: "
                "transpose(1, 2) first, then .contiguous().view(B, T, C)"),
    ]
    return run_check("check_merge_heads", fn, cases, mistakes)
