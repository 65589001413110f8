"""Checkers for chapter 8.1's exercises: the exact training FLOPs of a GPT, the compute-optimal
split that a fitted law implies, and the vertex of an IsoFLOP parabola.

All three are short formulas that go wrong without an error: a count that forgets the backward
pass is still a big number, exponents swapped still give a line on a log-log plot, and a parabola
fitted in N instead of log N still has a vertex. The answers come from references written here,
not from :mod:`llm_lessons.frontiers.scaling` (its ``exact_training_flops``,
``forward_flops_per_token``, ``ScalingLaw.compute_optimal`` and ``isoflop_minimum`` are
forbidden while the student's code runs).

>>> def flops(n_layer, n_embd, block_size, vocab_size, tokens):
...     C, T, V = n_embd, block_size, vocab_size
...     forward = n_layer * (24 * C * C + 4 * T * C) + 2 * C * V  # per token
...     return 3 * tokens * forward
>>> check_training_flops(flops)
'check_training_flops: all 10 cases passed'
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from llm_lessons.exercises.checking import Case, Mistake, available, random_float, random_int, run_check

# --- the exact training FLOPs of the book's GPT ---


def _flops(n_layer, n_embd, block_size, vocab_size, tokens, passes=3, attention=4, head=True):
    """3 passes x the forward's matrix products per token; the flags give the wrong versions."""
    C, T, V = n_embd, block_size, vocab_size
    per_layer = 2 * C * 3 * C + 2 * C * C + 2 * (2 * C * 4 * C) + attention * T * C
    return passes * tokens * (n_layer * per_layer + (2 * C * V if head else 0))


def check_training_flops(fn: Callable, n_cases: int = 10, seed: int = 0) -> str:
    """``fn(n_layer, n_embd, block_size, vocab_size, tokens)``: the FLOPs of the matrix products
    of training the book's GPT on ``tokens`` tokens. Per token and layer the forward pass
    multiplies by q, k, v (2 C 3C), the output projection (2 C C) and the MLP's two matrices
    (2 C 4C each), and attends to T keys: scores and weighted sum, 2 T C each (all T, as a dense
    kernel computes them). Then the output head, 2 C V. Training costs 3 forward passes' worth."""
    g = torch.Generator().manual_seed(seed)
    fixed = [((4, 128, 64, 65, 10**6), "the nano GPT on a million tokens"),
             ((1, 16, 8, 10, 1), "one token through a one-layer GPT"),
             ((12, 768, 1024, 50257, 300 * 10**9), "GPT-2 small's shape on 300e9 tokens"),
             ((2, 32, 256, 73, 4096), "a long context (T = 256) with few channels")]
    cases = [Case(args, _flops(*args), f"{label}: (n_layer, n_embd, T, V, tokens) = {args}")
             for args, label in fixed]
    while len(cases) < n_cases:
        args = (random_int(g, 1, 9), 16 * random_int(g, 1, 17), 2 ** random_int(g, 3, 10),
                random_int(g, 20, 300), random_int(g, 1, 10**7))
        cases.append(Case(args, _flops(*args), f"(n_layer, n_embd, T, V, tokens) = {args}"))
    mistakes = [
        Mistake("forward only", lambda *a: _flops(*a, passes=1),
                "you counted the forward pass only; the backward pass computes two products for "
                "every one of the forward's (a gradient for the input, one for the weight): "
                "training costs 3 forward passes"),
        Mistake("two passes", lambda *a: _flops(*a, passes=2),
                "you counted 2 passes; the backward pass alone costs two forward passes (gradients "
                "for the activations and for the weights), so training is 3x the forward"),
        Mistake("no attention", lambda *a: _flops(*a, attention=0),
                "you left out attention's own products, the scores q.k and the weighted sum of "
                "values: 2 T C each per token and layer (this is what 6ND leaves out too)"),
        Mistake("causal half", lambda *a: _flops(*a, attention=2),
                "you halved attention's products for the causal mask; a dense kernel computes "
                "all T scores and masks them afterwards: count 2 T C for the scores and 2 T C "
                "for the weighted sum"),
        Mistake("no head", lambda *a: _flops(*a, head=False),
                "you left out the output head, 2 C V per token (the logits over the vocabulary)"),
    ]
    forbidden = available(("llm_lessons.frontiers.scaling.exact_training_flops",
                           "llm_lessons.frontiers.scaling.forward_flops_per_token"))
    return run_check("check_training_flops", fn, cases, mistakes, forbidden=forbidden,
                     atol=0.0, rtol=1e-9)


# --- the compute-optimal split from L(N, D) = E + A / N^alpha + B / D^beta ---


def _optimal(E, A, B, alpha, beta, C, per=6.0, swap=False, gain="right"):
    """(N, D) minimising the law along C = 6 N D; the flags give the wrong versions."""
    a, b = alpha, beta
    G = {"right": (a * A / (b * B)), "inverted": (b * B / (a * A)), "none": 1.0}[gain] ** (1 / (a + b))
    N = G * (C / per) ** ((a if swap else b) / (a + b))
    return N, C / (6 * N)


def check_compute_optimal_split(fn: Callable, n_cases: int = 12, seed: int = 1) -> str:
    """``fn(E, A, B, alpha, beta, C)``: the ``(N, D)`` with 6 N D = C that minimises
    ``E + A / N**alpha + B / D**beta``. Put D = C / (6N) into the law, set its derivative in N
    to zero: N = G (C/6)^(beta/(alpha+beta)) with G = (alpha A / (beta B))^(1/(alpha+beta)),
    and D = C / (6N)."""
    g = torch.Generator().manual_seed(seed)
    fixed = [((1.69, 406.4, 410.7, 0.34, 0.28, 5.76e23), "Chinchilla's law and budget"),
             ((1.0, 100.0, 100.0, 0.3, 0.3, 1e18), "alpha = beta and A = B: N = D"),
             ((0.8, 50.0, 2000.0, 0.5, 0.2, 1e12), "alpha much larger than beta"),
             ((1.2, 3000.0, 20.0, 0.2, 0.6, 3e11), "beta much larger than alpha")]
    cases = [Case(args, _optimal(*args), f"{label}: (E, A, B, alpha, beta, C) = {args}")
             for args, label in fixed]
    while len(cases) < n_cases:
        args = (round(random_float(g, 0.5, 2.0), 3), float(f"{10 ** random_float(g, 0, 4):.4g}"),
                float(f"{10 ** random_float(g, 0, 4):.4g}"), round(random_float(g, 0.1, 0.8), 3),
                round(random_float(g, 0.1, 0.8), 3), float(f"{10 ** random_float(g, 10, 25):.3g}"))
        if abs(args[3] - args[4]) < 0.02:  # a swap of the exponents must show
            continue
        cases.append(Case(args, _optimal(*args), f"(E, A, B, alpha, beta, C) = {args}"))
    mistakes = [
        Mistake("C not C/6", lambda *a: _optimal(*a, per=1.0),
                "you raised C itself to the power; along the budget D = C / (6N), so the tokens "
                "times parameters product is C / 6: N = G (C/6)^(beta/(alpha+beta))"),
        Mistake("exponents swapped", lambda *a: _optimal(*a, swap=True),
                "your N grows as C^(alpha/(alpha+beta)); it is the *data* exponent beta on top: "
                "N_opt ~ C^(beta/(alpha+beta)) (a model whose loss falls fast with N, large "
                "alpha, needs fewer parameters)"),
        Mistake("gain inverted", lambda *a: _optimal(*a, gain="inverted"),
                "your constant is (beta B / (alpha A))^(1/(alpha+beta)); setting the derivative "
                "to zero gives alpha A N^-alpha = beta B D^-beta, so G = (alpha A / (beta B))"
                "^(1/(alpha+beta))"),
        Mistake("no gain", lambda *a: _optimal(*a, gain="none"),
                "you kept only the power of C/6 and dropped the constant G = (alpha A / (beta B))"
                "^(1/(alpha+beta)); the exponent alone gives the slope, not where the line sits"),
    ]
    forbidden = available(("llm_lessons.frontiers.scaling.ScalingLaw.compute_optimal",
                           "llm_lessons.frontiers.scaling.ScalingLaw.tokens_per_parameter"))
    return run_check("check_compute_optimal_split", fn, cases, mistakes, forbidden=forbidden,
                     atol=0.0, rtol=1e-7)


# --- the vertex of an IsoFLOP parabola ---


def _vertex(N, L, x="ln", vertex="right", pick="vertex"):
    """(N_opt, L_min) of the least-squares parabola in log N; the flags give the wrong versions."""
    N, L = np.asarray(N, dtype=float), np.asarray(L, dtype=float)
    if pick == "best run":
        i = int(np.argmin(L))
        return float(N[i]), float(L[i])
    u = {"ln": np.log(N), "log10": np.log10(N), "N": N}[x]
    V = np.stack([u**2, u, np.ones_like(u)], axis=1)  # (runs, 3): least squares V c = L
    scale = np.sqrt((V * V).sum(axis=0))  # columns scaled to norm 1: well conditioned even in N
    c2, c1, c0 = np.linalg.lstsq(V / scale, L, rcond=None)[0] / scale
    u_min = -c1 / (2 * c2) if vertex == "right" else -c2 / (2 * c1)
    back = u_min if x == "N" else math.exp(u_min)  # (the log10 mistake undoes it with exp)
    return float(back), float(c0 + c1 * u_min + c2 * u_min**2)


def check_isoflop_vertex(fn: Callable, n_cases: int = 10, seed: int = 2) -> str:
    """``fn(N, L)``: sizes ``N`` (1-d numpy array, parameters, any order) and the losses ``L``
    they reached at one compute budget. Fit ``L = c2 x**2 + c1 x + c0`` with x = ln N by least
    squares, and return ``(N_opt, L_min)``: ``exp`` of the vertex x* = -c1 / (2 c2), and the
    parabola's value there (Chinchilla's approach 2)."""
    g = torch.Generator().manual_seed(seed)
    hand_N = np.array([1e4, 1e5, 1e6])
    hand_L = 2.0 + 0.1 * (np.log(hand_N) - math.log(1e5)) ** 2
    cases = [Case((hand_N, hand_L), _vertex(hand_N, hand_L),
                  "three sizes on 2 + 0.1 (ln N - ln 1e5)^2: the vertex is (1e5, 2.0) exactly")]
    while len(cases) < n_cases:
        k = random_int(g, 4, 8)
        low = 10 ** random_float(g, 3, 6)
        N = low * np.geomspace(1, 10 ** random_float(g, 1.0, 2.5), k)
        center = math.exp(random_float(g, math.log(N[1]), math.log(N[-2])))
        curve = random_float(g, 0.02, 0.2)
        noise = np.array([random_float(g, -0.01, 0.01) for _ in range(k)])
        L = random_float(g, 1.0, 3.0) + curve * (np.log(N) - math.log(center)) ** 2 + noise
        if len(cases) % 3 == 0:  # runs need not come sorted
            order = torch.randperm(k, generator=g).numpy()
            N, L = N[order], L[order]
        where = "shuffled " if len(cases) % 3 == 0 else ""
        cases.append(Case((N, L), _vertex(N, L), f"{k} {where}sizes from {N.min():.3g} to "
                          f"{N.max():.3g}, losses {np.round(L, 3).tolist()}"))
    mistakes = [
        Mistake("best run", lambda N, L: _vertex(N, L, pick="best run"),
                "you returned the run with the least loss; the vertex of the fitted parabola "
                "lies between the sizes you ran, and uses every run, not only the best"),
        Mistake("in N", lambda N, L: _vertex(N, L, x="N"),
                "you fitted the parabola in N itself; IsoFLOP curves are parabolas in log N "
                "(x = ln N), and N_opt = exp(x*)"),
        Mistake("wrong coefficients", lambda N, L: _vertex(N, L, vertex="wrong"),
                "your vertex is -c2 / (2 c1); for c2 x^2 + c1 x + c0 the derivative 2 c2 x + c1 "
                "vanishes at x* = -c1 / (2 c2) (np.polyfit returns c2 first)"),
        Mistake("log10 then exp", lambda N, L: _vertex(N, L, x="log10"),
                "you fitted in log10 N and undid it with exp; undo the logarithm you used: "
                "10**x* after log10, exp(x*) after ln"),
    ]
    forbidden = available(("llm_lessons.frontiers.scaling.isoflop_minimum",))
    return run_check("check_isoflop_vertex", fn, cases, mistakes, forbidden=forbidden,
                     atol=1e-9, rtol=1e-6)
