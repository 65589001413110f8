"""Chapter 8.1's checkers (exact training FLOPs, the compute-optimal split of a law, the vertex
of an IsoFLOP parabola): an independent solution passes, a stub is "not implemented yet", each
plausible wrong answer fails with words that name its mistake, and the package functions that
are the answer cannot be used to pass."""

from __future__ import annotations

import math

import numpy as np
import pytest
from checker_contract import contract

from llm_lessons.exercises.checking import ExerciseFailed
from llm_lessons.exercises.scaling_laws import (
    check_compute_optimal_split,
    check_isoflop_vertex,
    check_training_flops,
)
from llm_lessons.frontiers import scaling
from llm_lessons.frontiers.scaling import ScalingLaw
from llm_lessons.frontiers.scaling import isoflop_minimum as imported_isoflop_minimum

# --- exact training FLOPs ---


def my_flops(n_layer, n_embd, block_size, vocab_size, tokens):
    C = n_embd
    attention = 2 * block_size * C + 2 * block_size * C  # scores, then the weighted sum
    weights = 3 * C * C + C * C + 4 * C * C + 4 * C * C  # multiply-adds of qkv, proj, MLP
    forward = n_layer * (2 * weights + attention) + 2 * C * vocab_size
    return forward * tokens * 3


def flops_forward_only(n_layer, n_embd, block_size, vocab_size, tokens):
    return my_flops(n_layer, n_embd, block_size, vocab_size, tokens) // 3


def flops_without_attention(n_layer, n_embd, block_size, vocab_size, tokens):
    return 3 * tokens * (24 * n_layer * n_embd**2 + 2 * n_embd * vocab_size)


def flops_causal_half(n_layer, n_embd, block_size, vocab_size, tokens):
    C, T = n_embd, block_size
    return 3 * tokens * (n_layer * (24 * C * C + 2 * T * C) + 2 * C * vocab_size)


def flops_by_package(n_layer, n_embd, block_size, vocab_size, tokens):
    return scaling.exact_training_flops(n_layer, n_embd, block_size, vocab_size, tokens)


# --- the compute-optimal split ---


def my_split(E, A, B, alpha, beta, C):
    # minimise A N^-alpha + B (C / 6N)^-beta numerically in log N, then polish in closed form
    def loss(logN):
        N = math.exp(logN)
        return A * N**-alpha + B * (C / (6 * N)) ** -beta

    lo, hi = -50.0, 100.0
    for _ in range(300):  # ternary search: the loss is convex in log N
        m1, m2 = lo + (hi - lo) / 3, hi - (hi - lo) / 3
        lo, hi = (lo, m2) if loss(m1) < loss(m2) else (m1, hi)
    N = math.exp((lo + hi) / 2)
    N = (alpha * A / (beta * B) * (C / 6) ** beta) ** (1 / (alpha + beta))
    return N, C / (6 * N)


def split_with_c(E, A, B, alpha, beta, C):
    N = (alpha * A / (beta * B)) ** (1 / (alpha + beta)) * C ** (beta / (alpha + beta))
    return N, C / (6 * N)


def split_swapped(E, A, B, alpha, beta, C):
    N = (alpha * A / (beta * B)) ** (1 / (alpha + beta)) * (C / 6) ** (alpha / (alpha + beta))
    return N, C / (6 * N)


def split_without_gain(E, A, B, alpha, beta, C):
    N = (C / 6) ** (beta / (alpha + beta))
    return N, C / (6 * N)


def split_by_package(E, A, B, alpha, beta, C):
    return ScalingLaw(E, A, B, alpha, beta).compute_optimal(C)


# --- the IsoFLOP vertex ---


def my_vertex(N, L):
    c2, c1, c0 = np.polyfit(np.log(N), L, 2)
    x = -c1 / (2 * c2)
    return math.exp(x), c0 - c1**2 / (4 * c2)


def vertex_best_run(N, L):
    i = int(np.argmin(L))
    return N[i], L[i]


def vertex_in_n(N, L):
    c2, c1, c0 = np.polyfit(N, L, 2)
    x = -c1 / (2 * c2)
    return x, c0 + c1 * x + c2 * x * x


def vertex_from_wrong_coefficients(N, L):
    c2, c1, c0 = np.polyfit(np.log(N), L, 2)
    x = -c2 / (2 * c1)
    return math.exp(x), c0 + c1 * x + c2 * x * x


def vertex_by_package(N, L):
    return scaling.isoflop_minimum(N, L)


CASES = {
    check_training_flops: (my_flops, [
        (flops_forward_only, "counted the forward pass only"),
        (flops_without_attention, "left out attention's own products"),
        (flops_causal_half, "halved attention's products"),
        (flops_by_package, "without calling llm_lessons.frontiers.scaling.exact_training_flops"),
    ]),
    check_compute_optimal_split: (my_split, [
        (split_with_c, "raised C itself"),
        (split_swapped, "C^(alpha/(alpha+beta))"),
        (split_without_gain, "dropped the constant G"),
        (split_by_package, "without calling llm_lessons.frontiers.scaling.ScalingLaw.compute_optimal"),
    ]),
    check_isoflop_vertex: (my_vertex, [
        (vertex_best_run, "the run with the least loss"),
        (vertex_in_n, "fitted the parabola in N itself"),
        (vertex_from_wrong_coefficients, "-c2 / (2 c1)"),
        (vertex_by_package, "without calling llm_lessons.frontiers.scaling.isoflop_minimum"),
    ]),
}
(test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
 test_each_wrong_answer_is_named) = contract(CASES)


def test_the_references_match_the_package():
    # the checkers' conventions are the book's: the same count, the same split, the same vertex
    for shape in [(4, 128, 64, 65), (1, 16, 8, 10), (6, 160, 64, 73)]:
        assert my_flops(*shape, 1000) == scaling.exact_training_flops(*shape, 1000)
    law = ScalingLaw(1.69, 406.4, 410.7, 0.34, 0.28)
    for C in (1e11, 5.76e23):
        assert my_split(1.69, 406.4, 410.7, 0.34, 0.28, C) == pytest.approx(law.compute_optimal(C))
    N = np.geomspace(1e4, 1e6, 6)
    L = 2 + 0.05 * (np.log(N) - 11.0) ** 2 + np.array([0.01, -0.02, 0.0, 0.01, -0.01, 0.02])
    assert my_vertex(N, L) == pytest.approx(scaling.isoflop_minimum(N, L))


def cheat_with_an_imported_vertex(N, L):
    return imported_isoflop_minimum(N, L)  # bound before the check, so patching cannot reach it


def test_a_forbidden_function_held_under_a_global_name_is_caught():
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.frontiers.scaling.isoflop_minimum"):
        check_isoflop_vertex(cheat_with_an_imported_vertex)
