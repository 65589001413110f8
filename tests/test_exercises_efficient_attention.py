"""Chapter 8.3's checkers (one online-softmax step, the key-value cache's bytes per token, a
sliding-window causal mask): an independent solution passes, a stub is "not implemented yet",
each plausible wrong answer fails with words that name its mistake, and the functions that are
the answer cannot be used to pass."""

from __future__ import annotations

import math

import pytest
import torch
from checker_contract import contract

from llm_lessons.exercises.checking import ExerciseFailed
from llm_lessons.exercises.efficient_attention import (
    check_kv_cache_bytes,
    check_online_softmax_step,
    check_window_mask,
)
from llm_lessons.frontiers import gqa, modern_gpt
from llm_lessons.frontiers.flash_attention import online_softmax_attention
from llm_lessons.frontiers.gqa import window_mask as imported_window_mask
from llm_lessons.frontiers.modern_gpt import ModernConfig

# --- one online-softmax step ---


def my_step(m, l, acc, s, v):
    m_new = torch.max(torch.cat([m, s], dim=1), dim=1, keepdim=True).values  # (n, 1)
    shrink = torch.exp(m - m_new)
    p = torch.exp(s - m_new)
    return m_new, shrink * l + p.sum(1, keepdim=True), shrink * acc + p @ v


def step_sum_kept(m, l, acc, s, v):
    m_new, _, acc_new = my_step(m, l, acc, s, v)
    return m_new, l + torch.exp(s - m_new).sum(1, keepdim=True), acc_new


def step_acc_kept(m, l, acc, s, v):
    m_new, l_new, _ = my_step(m, l, acc, s, v)
    return m_new, l_new, acc + torch.exp(s - m_new) @ v


def step_normalised(m, l, acc, s, v):
    m_new, l_new, acc_new = my_step(m, l, acc, s, v)
    return m_new, l_new, acc_new / l_new


def step_by_package(m, l, acc, s, v):
    q = torch.ones(1, 1, 1, 1)
    online_softmax_attention(q, q, q)  # not the answer, but it is forbidden all the same
    return my_step(m, l, acc, s, v)


# --- bytes per token ---


def my_kv_bytes(n_layer, n_embd, n_head, n_kv_head, bytes_per_number):
    keys = values = n_layer * n_kv_head * (n_embd // n_head)
    return (keys + values) * bytes_per_number


def kv_keys_only(n_layer, n_embd, n_head, n_kv_head, bytes_per_number):
    return n_layer * n_kv_head * (n_embd // n_head) * bytes_per_number


def kv_every_query_head(n_layer, n_embd, n_head, n_kv_head, bytes_per_number):
    return 2 * n_layer * n_embd * bytes_per_number


def kv_by_package(n_layer, n_embd, n_head, n_kv_head, bytes_per_number):
    dtype = {1: torch.int8, 2: torch.float16, 4: torch.float32}[bytes_per_number]
    config = ModernConfig(vocab_size=2, n_layer=n_layer, n_embd=n_embd, n_head=n_head, n_kv_head=n_kv_head)
    return modern_gpt.kv_cache_bytes_per_token(config, dtype)


# --- the window mask ---


def my_window(T, S, window):
    mask = torch.zeros(T, S, dtype=torch.bool)
    for i in range(T):
        position = S - T + i
        first = 0 if window is None else max(0, position - window + 1)
        mask[i, first:position + 1] = True
    return mask


def window_inclusive(T, S, window):
    return my_window(T, S, None if window is None else window + 1)


def window_from_zero(T, S, window):
    return my_window(T, T, window) if T == S else torch.cat(
        [my_window(T, T, window), torch.zeros(T, S - T, dtype=torch.bool)], dim=1)


def window_both_ways(T, S, window):
    pos = torch.arange(S - T, S)[:, None]
    gap = (pos - torch.arange(S)[None, :]).abs()
    return gap < window if window is not None else torch.ones(T, S, dtype=torch.bool)


def window_by_package(T, S, window):
    return gqa.window_mask(T, S, window)


# checker -> (a correct solution written here, [(a wrong answer, words its failure must say)])
CASES = {
    check_online_softmax_step: (my_step, [
        (step_sum_kept, "did not rescale the running sum l"),
        (step_acc_kept, "did not rescale acc"),
        (step_normalised, "divided acc by l inside the step"),
        (step_by_package, "without calling llm_lessons.frontiers.flash_attention.online_softmax_attention"),
    ]),
    check_kv_cache_bytes: (my_kv_bytes, [
        (kv_keys_only, "counted the keys but not the values"),
        (kv_every_query_head, "you counted n_head heads"),
        (kv_by_package, "without calling llm_lessons.frontiers.modern_gpt.kv_cache_bytes_per_token"),
    ]),
    check_window_mask: (my_window, [
        (window_inclusive, "one key too wide"),
        (window_from_zero, "you placed query i at position i"),
        (window_both_ways, "looks both ways"),
        (window_by_package, "without calling llm_lessons.frontiers.gqa.window_mask"),
    ]),
}
(test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
 test_each_wrong_answer_is_named) = contract(CASES)


def test_the_steps_over_every_tile_give_softmax_attention():
    # the exercise's convention is the one the package's tiled loop follows
    g = torch.Generator().manual_seed(0)
    s, v = torch.randn(3, 10, generator=g) * 5, torch.randn(10, 4, generator=g)
    m, l, acc = torch.full((3, 1), -math.inf), torch.zeros(3, 1), torch.zeros(3, 4)
    for start in range(0, 10, 3):
        m, l, acc = my_step(m, l, acc, s[:, start:start + 3], v[start:start + 3])
    assert torch.allclose(acc / l, s.softmax(-1) @ v, atol=1e-5)


def test_the_references_match_the_package():
    for T, S, window in [(4, 4, 2), (2, 6, 3), (1, 7, 4), (5, 5, None), (3, 9, 1)]:
        assert torch.equal(my_window(T, S, window), gqa.window_mask(T, S, window))
    for args in [(80, 8192, 64, 8, 2), (4, 128, 4, 2, 4)]:
        assert my_kv_bytes(*args) == kv_by_package(*args)


def cheat_with_an_imported_window_mask(T, S, window):
    return imported_window_mask(T, S, window)  # bound before the check, so patching cannot reach it


def test_a_forbidden_function_held_under_a_global_name_is_caught():
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.frontiers.gqa.window_mask"):
        check_window_mask(cheat_with_an_imported_window_mask)
