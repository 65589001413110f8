"""Checkers for chapter 2.4's exercises: perplexity and the units of a language model's loss.

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
