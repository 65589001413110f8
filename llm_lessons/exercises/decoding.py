"""Checkers for chapter 4.3's exercises: truncating and reshaping the next-token distribution.

>>> import torch
>>> def keep_top_k(logits, k):
...     kth = logits.sort(descending=True).values[k - 1]
...     return logits.masked_fill(logits < kth, float("-inf"))
>>> check_top_k(keep_top_k)
'check_top_k: all 14 cases passed'
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from llm_lessons.exercises.checking import Case, Mistake, run_check

NEG_INF = float("-inf")


def keep_only(logits: torch.Tensor, keep: list[int], dropped: float = NEG_INF) -> torch.Tensor:
    """The logits at the ids in ``keep``; every other id gets ``dropped`` (-inf: never sampled)."""
    out = torch.full_like(logits, dropped)
    out[keep] = logits[keep]
    return out


def _ranked(logits: torch.Tensor) -> list[int]:
    """Token ids from most to least likely; ties keep the lower id first."""
    return sorted(range(len(logits)), key=lambda i: (-float(logits[i]), i))


def _top_k(logits: torch.Tensor, k: int) -> torch.Tensor:
    kth = float(logits[_ranked(logits)[k - 1]])
    return torch.where(logits >= kth, logits, torch.full_like(logits, NEG_INF))


def _top_p(logits: torch.Tensor, p: float, include_crossing: bool = True) -> torch.Tensor:
    probs = torch.softmax(logits.double(), -1)
    keep, mass = [], 0.0
    for i in _ranked(logits):
        if not include_crossing and keep and mass + float(probs[i]) > p:
            break
        keep.append(i)
        mass += float(probs[i])
        if mass >= p:
            break
    return keep_only(logits, keep)


def _distinct_logits(g: torch.Generator, V: int) -> torch.Tensor:
    """Random logits without ties (a tie makes "the k most likely" ambiguous)."""
    spread = torch.randperm(V, generator=g).double() * 0.7
    return spread + torch.rand(V, generator=g, dtype=torch.float64) * 0.1


def check_top_k(fn: Callable, seed: int = 0) -> str:
    """``fn(logits, k)`` on (V,) logits keeps the k largest and sets the others to -inf."""
    g = torch.Generator().manual_seed(seed)
    cases = []
    for V, k in [(1, 1), (5, 1), (5, 5), (6, 3)] + [(int(torch.randint(2, 30, (), generator=g)), 0)
                                                     for _ in range(10)]:
        k = k or int(torch.randint(1, V + 1, (), generator=g))
        logits = _distinct_logits(g, V)
        cases.append(Case((logits, k), _top_k(logits, k), f"V = {V}, k = {k}"))
    mistakes = [
        Mistake("zeros", lambda lg, k: torch.where(lg >= float(lg[_ranked(lg)[k - 1]]), lg,
                                                    torch.zeros_like(lg)),
                "the dropped tokens must get -inf, not 0: a logit of 0 still has probability "
                "after the softmax"),
        Mistake("one too few", lambda lg, k: _top_k(lg, k - 1) if k > 1 else keep_only(lg, []),
                "you kept k - 1 tokens: is your comparison strict (>) where it should be >= the "
                "k-th largest logit?"),
        Mistake("smallest", lambda lg, k: keep_only(lg, _ranked(lg)[-k:]),
                "you kept the k smallest logits; sort in descending order"),
    ]
    return run_check("check_top_k", fn, cases, mistakes,
                     forbidden=("llm_lessons.sampling.top_k_filter",))


def check_top_p(fn: Callable, n_cases: int = 50, seed: int = 0) -> str:
    """``fn(logits, p)`` keeps the smallest set of most likely tokens whose mass reaches p.

    The token whose probability carries the mass across p is kept (the set must reach p).
    """
    g = torch.Generator().manual_seed(seed)
    cases = [Case((torch.tensor([0.0]), 0.5), torch.tensor([0.0]), "a single token, p = 0.5"),
             Case((torch.tensor([2.0, 1.0, 0.0]), 1.0), torch.tensor([2.0, 1.0, 0.0]),
                  "p = 1 keeps every token")]
    for _ in range(n_cases - len(cases)):
        V = int(torch.randint(2, 12, (), generator=g))
        logits = _distinct_logits(g, V) * 1.5
        p = round(float(torch.rand((), generator=g)) * 0.98 + 0.01, 3)
        cases.append(Case((logits, p), _top_p(logits, p), f"V = {V}, p = {p}, logits = "
                          f"{[round(x, 2) for x in logits.tolist()]}"))
    mistakes = [
        Mistake("stops short", lambda lg, p: _top_p(lg, p, include_crossing=False),
                "your set stops before its mass reaches p: keep the token whose probability "
                "takes the cumulative mass across p (compare the mass *before* each token)"),
        Mistake("logit mass", lambda lg, p: _top_p_on_values(lg, p),
                "you accumulated the logits (or unnormalised exp), not the probabilities: apply "
                "softmax before the cumulative sum"),
    ]
    return run_check("check_top_p", fn, cases, mistakes,
                     forbidden=("llm_lessons.sampling.top_p_filter",))


def _top_p_on_values(logits: torch.Tensor, p: float) -> torch.Tensor:
    keep, mass = [], 0.0
    for i in _ranked(logits):
        keep.append(i)
        mass += float(logits[i].exp())
        if mass >= p:
            break
    return keep_only(logits, keep)
