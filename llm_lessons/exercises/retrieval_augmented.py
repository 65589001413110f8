"""Checkers for chapter 6.2's exercises: fitting a retrieved passage into the model's window,
the targets that score only the continuation, and a paired bootstrap of two conditions.

All three are a few lines and all three fail quietly when wrong: a passage cut from the wrong
end still fits the window, targets that also score the context still give a loss, and an
interval of b - a instead of a - b still looks like an interval. The answers come from
references written here, not from :mod:`llm_lessons.applications.rag` (whose functions are
forbidden, with the book's bootstrap).

>>> def fit(passage, prompt, continuation, size):
...     return (passage + prompt + continuation)[-size:]
>>> check_fit_window(fit)
'check_fit_window: all 10 cases passed'
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from llm_lessons.exercises.checking import Case, Mistake, available, random_int, run_check

_LETTERS = "abcdefghijklmnopqrstuvwxyz ,.\n"


def _text(g: torch.Generator, n: int) -> str:
    return "".join(_LETTERS[random_int(g, 0, len(_LETTERS))] for _ in range(n))


# --- fitting the passage into the window ---


def _fit(passage, prompt, continuation, size, how="left"):
    """The reference (how="left") and the usual wrong versions."""
    whole = passage + prompt + continuation
    if how == "left":
        return whole[-size:]
    if how == "right":  # the window's first characters: the continuation is what gets cut
        return whole[:size]
    if how == "passage right":  # the passage's *first* characters kept
        room = max(size - len(prompt) - len(continuation), 0)
        return (passage[:room] + prompt + continuation)[-size:]
    if how == "off by one":  # one character too many: the model's window would overflow
        return whole[-(size + 1):]
    raise ValueError(how)


def check_fit_window(fn: Callable, n_cases: int = 10, seed: int = 0) -> str:
    """``fn(passage, prompt, continuation, size)`` returns ``passage + prompt + continuation``
    in at most ``size`` characters, cut from the left: the passage's oldest characters go first,
    then the prompt's; the continuation is always kept whole (``size`` is at least its length)."""
    g = torch.Generator().manual_seed(seed)
    cases = [
        Case(("ABCDEFGH", "prompt", "next", 14), "EFGHpromptnext",
             "passage 'ABCDEFGH', prompt 'prompt', continuation 'next', size 14"),
        Case(("ABC", "prompt", "next", 14), "ABCpromptnext",
             "a passage that fits whole (13 characters in a window of 14)"),
        Case(("", "prompt", "next", 14), "promptnext", "no passage"),
        Case(("ABCDEFGH", "prompt", "next", 7), "mptnext",
             "size 7: the passage and part of the prompt are cut"),
    ]
    while len(cases) < n_cases:
        P, Q, X = random_int(g, 0, 30), random_int(g, 1, 25), random_int(g, 1, 17)
        size = random_int(g, X, P + Q + X + 3)
        args = (_text(g, P), _text(g, Q), _text(g, X), size)
        cases.append(Case(args, _fit(*args), f"random: passage {P}, prompt {Q}, "
                          f"continuation {X} characters, size {size}"))
    mistakes = [
        Mistake("right", lambda *a: _fit(*a, how="right"),
                "you kept the window's first characters, so the continuation (the part being "
                "scored) was cut; cut from the left: whole[-size:]"),
        Mistake("passage right", lambda *a: _fit(*a, how="passage right"),
                "you kept the *start* of the passage; the model reads left to right, so keep "
                "its end, the characters next to the prompt"),
        Mistake("off by one", lambda *a: _fit(*a, how="off by one"),
                "your window holds size + 1 characters; at most size fit"),
    ]
    forbidden = available(("llm_lessons.applications.rag.fit_window",))
    return run_check("check_fit_window", fn, cases, mistakes, forbidden=forbidden)


# --- targets that score only the continuation ---


def _targets(window, n_scored, how="right"):
    inputs = window[:-1].clone()
    targets = window[1:].clone()
    if how == "all":  # the context scored too
        return inputs, targets
    if how == "unshifted":  # targets not shifted: the model is asked for the token it reads
        targets = window[:-1].clone()
    cut = len(targets) - n_scored + (1 if how == "one short" else 0)
    targets[:cut] = -100
    return inputs, targets


def check_continuation_targets(fn: Callable, n_cases: int = 8, seed: int = 1) -> str:
    """``fn(window, n_scored)``: ``window`` (T + 1,) token ids; return ``(inputs, targets)``,
    both (T,): ``inputs = window[:-1]``, ``targets`` the next ids ``window[1:]`` with ``-100``
    everywhere except the last ``n_scored`` positions (the continuation)."""
    g = torch.Generator().manual_seed(seed)
    hand = torch.tensor([5, 6, 7, 8, 9])
    cases = [Case((hand, 2), _targets(hand, 2), "window [5, 6, 7, 8, 9], n_scored 2"),
             Case((hand, 4), _targets(hand, 4), "window [5, 6, 7, 8, 9], n_scored 4 (every target)"),
             Case((hand[:2], 1), _targets(hand[:2], 1), "window [5, 6], n_scored 1")]
    while len(cases) < n_cases:
        T = random_int(g, 3, 65)
        n = random_int(g, 1, T + 1)
        window = torch.randint(0, 73, (T + 1,), generator=g)
        cases.append(Case((window, n), _targets(window, n), f"a random window of {T + 1} ids, "
                          f"n_scored {n}"))
    mistakes = [
        Mistake("all", lambda w, n: _targets(w, n, how="all"),
                "your targets score the context too; set every target before the last "
                "n_scored to -100, so only the continuation counts"),
        Mistake("unshifted", lambda w, n: _targets(w, n, how="unshifted"),
                "your targets are not shifted: the target at position t is the *next* id, "
                "window[t + 1], so targets come from window[1:]"),
        Mistake("one short", lambda w, n: _targets(w, n, how="one short"),
                "you score n_scored - 1 positions: the first character of the continuation is "
                "predicted at the position of the prompt's last character"),
    ]
    forbidden = available(("llm_lessons.applications.rag.continuation_targets",))
    return run_check("check_continuation_targets", fn, cases, mistakes, forbidden=forbidden)


# --- a paired bootstrap of a difference ---


def _paired(a, b, rows, how="paired"):
    d = a.double() - b.double()
    if how == "sign":
        d = -d
    if how == "spread":  # quantiles of single probes' differences, not of resampled means
        means = d[rows].reshape(-1)  # (n_boot, N) -> (n_boot * N,)
    else:
        means = d[rows].mean(dim=1)  # (n_boot, N) -> (n_boot,)
    q = (0.05, 0.95) if how == "90%" else (0.025, 0.975)
    low, high = torch.quantile(means, torch.tensor(q, dtype=torch.float64))
    return float(d.mean()), float(low), float(high)


def check_paired_bootstrap(fn: Callable, n_cases: int = 6, seed: int = 2) -> str:
    """``fn(a, b, rows)``: ``a`` and ``b`` (N,) losses of the same N probes under two
    conditions, ``rows`` (n_boot, N) the resampled probe indices. Return ``(mean, low, high)``:
    the mean of ``a - b`` and the 2.5% and 97.5% quantiles (``torch.quantile``) of its mean over
    each resample, the same probes for ``a`` and ``b``."""
    g = torch.Generator().manual_seed(seed)
    cases = []
    for k in range(n_cases):
        N, n_boot = random_int(g, 4, 40), (200, 500)[k % 2]
        shared = torch.rand(N, generator=g) * 3  # what a probe's difficulty adds to both
        a = shared + 0.1 * torch.randn(N, generator=g) + 0.05 * (k - 2)
        b = shared + 0.1 * torch.randn(N, generator=g)
        rows = torch.randint(0, N, (n_boot, N), generator=g)
        cases.append(Case((a, b, rows), _paired(a, b, rows), f"{N} probes, {n_boot} resamples"))
    mistakes = [
        Mistake("sign", lambda a, b, r: _paired(a, b, r, how="sign"),
                "your difference is b - a; the exercise asks for a - b (its mean is negative "
                "when a is the lower loss)"),
        Mistake("90%", lambda a, b, r: _paired(a, b, r, how="90%"),
                "your interval holds 90%: take the 2.5% and 97.5% quantiles for 95%"),
        Mistake("spread", lambda a, b, r: _paired(a, b, r, how="spread"),
                "your interval is the spread of single probes' differences; average each "
                "resample first (a mean over dim 1 of d[rows]), then take the quantiles of "
                "those n_boot means"),
    ]
    forbidden = available(("llm_lessons.applications.rag.paired_difference",
                           "llm_lessons.evaluation.agreement.bootstrap_ci"))
    return run_check("check_paired_bootstrap", fn, cases, mistakes, forbidden=forbidden,
                     atol=1e-6, rtol=1e-5)
