"""Checkers for chapter 4.4's exercises: filling masks from one forward pass, and mask-predict's
two decisions, which positions to mask again and how many.

Shapes: T positions, V vocabulary. The answers come from references written here, not from
:mod:`llm_lessons.mlm_decoding` (whose functions are forbidden while the student's code runs).

>>> import torch
>>> def fill(ids, logits, mask_id):
...     logits = logits.clone()
...     logits[:, mask_id] = float("-inf")       # never predict [MASK] itself
...     return torch.where(ids == mask_id, logits.argmax(-1), ids)
>>> check_fill_masks(fill)
'check_fill_masks: all 12 cases passed'
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from llm_lessons.exercises.checking import Case, Mistake, run_check

MLM_ANSWERS = ("llm_lessons.mlm_decoding.fill_mask", "llm_lessons.mlm_decoding.iterative_refinement")


def _fill(ids, logits, mask_id, everywhere=False, ban=True):
    scores = logits.clone()
    if ban:
        scores[:, mask_id] = float("-inf")
    best = scores.argmax(-1)  # (T,)
    return best if everywhere else torch.where(ids == mask_id, best, ids)


def check_fill_masks(fn: Callable, n_cases: int = 12, seed: int = 0) -> str:
    """``fn(ids, logits, mask_id)``: ids (T,) with some positions equal to ``mask_id``, logits
    (T, V) from one forward pass. Returns ids (T,) with every masked position replaced by its
    most probable token other than [MASK] itself; the other positions keep their tokens."""
    g = torch.Generator().manual_seed(seed)
    cases = []
    for n in range(n_cases):
        T, V = int(torch.randint(1, 10, (), generator=g)), int(torch.randint(3, 12, (), generator=g))
        mask_id = int(torch.randint(0, V, (), generator=g))
        ids = torch.randint(0, V, (T,), generator=g)
        ids[ids == mask_id] = (mask_id + 1) % V  # given tokens are never [MASK]
        hidden = torch.rand(T, generator=g) < 0.5 if n > 1 else torch.full((T,), n == 1)
        ids[hidden] = mask_id
        logits = torch.randn(T, V, generator=g) * 2
        if n % 2 == 0:  # [MASK] is the top score at some positions: it must not be chosen
            logits[:, mask_id] = logits.max(-1).values + 1
        what = "no [MASK]" if n == 0 else "every position [MASK]" if n == 1 else f"{int(hidden.sum())} [MASK]"
        cases.append(Case((ids, logits, mask_id), _fill(ids, logits, mask_id),
                          f"T = {T}, V = {V}, mask_id = {mask_id}, {what}: ids = {ids.tolist()}"))
    mistakes = [
        Mistake("everywhere", lambda i, lg, m: _fill(i, lg, m, everywhere=True),
                "you replaced every position by its prediction; the given tokens must stay as "
                "they are: only the positions equal to mask_id are filled (torch.where)"),
        Mistake("mask predicted", lambda i, lg, m: _fill(i, lg, m, ban=False),
                "you let [MASK] itself be predicted: set its logit to -inf before the argmax, or "
                "the text keeps masks that nothing fills"),
    ]
    return run_check("check_fill_masks", fn, cases, mistakes, forbidden=MLM_ANSWERS)


def _remask(confidence, free, n, most=False, fixed_too=False):
    order = sorted(range(len(confidence)), key=lambda i: ((-1 if most else 1) * float(confidence[i]), i))
    chosen = [i for i in order if fixed_too or bool(free[i])][:n]
    out = torch.zeros(len(confidence), dtype=torch.bool)
    out[chosen] = True
    return out


def check_remask(fn: Callable, n_cases: int = 12, seed: int = 1) -> str:
    """``fn(confidence, free, n)``: which positions mask-predict masks again. ``confidence`` (T,)
    is each token's probability when it was predicted, ``free`` (T,) bool marks the positions the
    model writes (a prompt's positions are not free). Returns a bool (T,) mask that is True at the
    ``n`` free positions of lowest confidence (on equal confidence the earlier position first)."""
    g, t = torch.Generator().manual_seed(seed), torch.tensor
    cases = [Case((t([0.9, 0.2, 0.5]), t([True, True, True]), 1), t([False, True, False]),
                  "confidence [0.9, 0.2, 0.5], all free, n = 1"),
             Case((t([0.3, 0.3, 0.3, 0.3]), t([True] * 4), 2), t([True, True, False, False]),
                  "four equal confidences, n = 2 (ties: earlier first)"),
             Case((t([0.1, 0.8, 0.3]), t([False, True, True]), 1), t([False, False, True]),
                  "confidence [0.1, 0.8, 0.3], position 0 fixed (not free), n = 1"),
             Case((t([1.0, 1.0, 0.6, 0.4]), t([False, False, True, True]), 0), t([False] * 4),
                  "n = 0 (the last iteration masks nothing)")]
    while len(cases) < n_cases:
        T = int(torch.randint(3, 14, (), generator=g))
        free = torch.rand(T, generator=g) < 0.7
        free[0] = free[-1] = True
        free[int(torch.randint(0, T, (), generator=g))] = False  # a fixed prompt position or two
        confidence = torch.rand(T, generator=g).round(decimals=2)  # a fixed one's may be low too
        confidence[free & (torch.rand(T, generator=g) < 0.2)] = 0.05  # some equal lowest values
        n = int(torch.randint(1, int(free.sum()) + 1, (), generator=g))
        cases.append(Case((confidence, free, n), _remask(confidence, free, n),
                          f"confidence {confidence.tolist()}, free {free.int().tolist()}, n = {n}"))
    mistakes = [
        Mistake("most confident", lambda c, f, n: _remask(c, f, n, most=True),
                "you masked the MOST confident positions again; mask-predict re-predicts the "
                "least confident ones, keeping the tokens the model is surest of"),
        Mistake("fixed too", lambda c, f, n: _remask(c, f, n, fixed_too=True),
                "you also chose positions that are not free (a prompt's tokens): only free "
                "positions may be masked again, however low their confidence"),
    ]
    return run_check("check_remask", fn, cases, mistakes, forbidden=MLM_ANSWERS)


def _counts(N, iterations, shift=1, rising=False):
    return [N * ((i + 1) if rising else (iterations - shift - i)) // iterations for i in range(iterations)]


def check_remask_counts(fn: Callable) -> str:
    """``fn(N, iterations)``: how many of the N free positions mask-predict masks again after each
    iteration i = 0 .. iterations - 1, as a list of ints: N (I - 1 - i) / I rounded down, so fewer
    every time and none after the last. N = 10, I = 4: [7, 5, 2, 0]."""
    sizes = [(10, 4), (1, 1), (5, 1), (7, 7), (3, 5), (48, 12), (64, 10), (13, 3), (100, 7)]
    cases = [Case((N, I), _counts(N, I), f"N = {N}, iterations = {I}") for N, I in sizes]
    mistakes = [
        Mistake("off by one", lambda N, I: _counts(N, I, shift=0),
                "you masked N (I - i) / I after iteration i: the first iteration re-masks all N, "
                "so it was wasted, and the last leaves masks in the output. Use N (I - 1 - i) / I"),
        Mistake("rising", lambda N, I: _counts(N, I, rising=True),
                "your counts grow; mask-predict masks fewer positions every iteration, as the "
                "text settles: N (I - 1 - i) / I"),
        Mistake("fractions", lambda N, I: [N * (I - 1 - i) / I for i in range(I)],
                "these are fractions of positions: round down to whole counts (integer division //)"),
    ]
    return run_check("check_remask_counts", fn, cases, mistakes, forbidden=MLM_ANSWERS)
