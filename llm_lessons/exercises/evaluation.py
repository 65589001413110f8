"""Checkers for chapter 2.4's exercises: perplexity, and one Elo update of a pairwise
comparison (how arenas of human votes rank models).

>>> import torch
>>> check_perplexity(lambda logits, t: torch.exp(-logits.log_softmax(-1)[range(len(t)), t].mean()))
'check_perplexity: all 20 cases passed'
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from llm_lessons.exercises.checking import Case, Mistake, run_check


def _mean_nll(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean negative log-likelihood in nats, one position at a time."""
    total = 0.0
    for t in range(len(targets)):
        row = logits[t].double()
        total += float(torch.logsumexp(row, 0) - row[targets[t]])
    return total / len(targets)


def check_perplexity(fn: Callable, n_cases: int = 20, seed: int = 0) -> str:
    """``fn(logits, targets)``, logits (T, V) and targets (T,), returns exp(mean NLL in nats)."""
    g = torch.Generator().manual_seed(seed)
    cases = [Case((torch.zeros(4, 7), torch.tensor([0, 3, 6, 2])), 7.0,
                  "uniform logits over V = 7 (the perplexity must be 7)")]
    for _ in range(n_cases - 1):
        T, V = int(torch.randint(1, 20, (), generator=g)), int(torch.randint(2, 30, (), generator=g))
        logits = torch.randn(T, V, generator=g) * 2
        targets = torch.randint(0, V, (T,), generator=g)
        cases.append(Case((logits, targets), math.exp(_mean_nll(logits, targets)),
                          f"T = {T} positions, V = {V}"))
    mistakes = [
        Mistake("nll", lambda lg, t: _mean_nll(lg, t),
                "you returned the mean NLL (the cross-entropy); perplexity is its exponential, "
                "exp(mean NLL)"),
        Mistake("sum", lambda lg, t: math.exp(_mean_nll(lg, t) * len(t)),
                "you exponentiated the total NLL: average over the positions first"),
        Mistake("base 2", lambda lg, t: 2 ** _mean_nll(lg, t),
                "you took 2 to the power of a loss in nats: use e (or convert the loss to bits "
                "first)"),
        Mistake("no softmax", lambda lg, t: math.exp(-float(lg[range(len(t)), t].double().mean())),
                "you used the raw logits as log-probabilities: apply log_softmax over the "
                "vocabulary first"),
    ]
    return run_check("check_perplexity", fn, cases, mistakes,
                     forbidden=("llm_lessons.evaluation.likelihood.perplexity",))


def _elo(r_a, r_b, score_a, k, base=10.0, flipped=False, only_a=False, same_sign=False):
    exponent = (r_a - r_b) / 400 if flipped else (r_b - r_a) / 400
    expected_a = 1.0 / (1.0 + base ** exponent)  # a's expected score against b
    change = k * (score_a - expected_a)
    new_b = r_b if only_a else (r_b + change if same_sign else r_b - change)
    return r_a + change, new_b


def check_elo_update(fn: Callable, n_cases: int = 14, seed: int = 1) -> str:
    """``fn(r_a, r_b, score_a, k)`` returns the ratings ``(new_a, new_b)`` after one game: a's
    expected score is E_a = 1 / (1 + 10^((r_b - r_a) / 400)), score_a is 1 (a won), 0.5 (a tie)
    or 0 (b won); a gains k (score_a - E_a) and b loses exactly as much. 1000 beats 1000 with
    k = 16: (1008, 992)."""
    g = torch.Generator().manual_seed(seed)
    fixed = [(1000.0, 1000.0, 1.0, 16.0, "equal ratings, a wins, k = 16"),
             (1000.0, 1000.0, 0.5, 16.0, "equal ratings, a tie"),
             (1400.0, 1000.0, 1.0, 32.0, "the favourite wins (400 points ahead)"),
             (1000.0, 1200.0, 1.0, 24.0, "the underdog wins (200 points behind)")]
    cases = [Case(args[:4], _elo(*args[:4]), args[4]) for args in fixed]
    while len(cases) < n_cases:
        r_a, r_b = (round(800 + 800 * float(torch.rand((), generator=g)), 1) for _ in range(2))
        score = [0.0, 0.5, 1.0][int(torch.randint(0, 3, (), generator=g))]
        k = [4.0, 16.0, 32.0][int(torch.randint(0, 3, (), generator=g))]
        cases.append(Case((r_a, r_b, score, k), _elo(r_a, r_b, score, k),
                          f"r_a = {r_a}, r_b = {r_b}, score_a = {score}, k = {k}"))
    mistakes = [
        Mistake("flipped", lambda *a: _elo(*a, flipped=True),
                "your expected score is the wrong way round: the higher-rated player should be "
                "expected to win, E_a = 1 / (1 + 10^((r_b - r_a) / 400))"),
        Mistake("base e", lambda *a: _elo(*a, base=math.e),
                "you used e^x in the expected score; Elo's scale is base 10: 400 points "
                "difference means odds of 10 to 1"),
        Mistake("only a", lambda *a: _elo(*a, only_a=True),
                "you updated a but left b unchanged: b loses exactly what a gains, "
                "new_b = r_b - k (score_a - E_a)"),
        Mistake("same sign", lambda *a: _elo(*a, same_sign=True),
                "you moved both ratings the same way: what a gains, b loses "
                "(new_b = r_b - k (score_a - E_a))"),
    ]
    return run_check("check_elo_update", fn, cases, mistakes, atol=1e-6, rtol=1e-9,
                     forbidden=("llm_lessons.evaluation.agreement.elo_ratings",))
