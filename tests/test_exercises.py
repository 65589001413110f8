"""Every exercise checker: an independent solution passes, a stub is "not implemented yet", each
plausible wrong answer fails with words that name its mistake, and the package function that is
the answer cannot be used to pass."""

from __future__ import annotations

import math

import pytest
import torch
from checker_contract import contract

from llm_lessons import attention, sampling
from llm_lessons import exercises as ex
from llm_lessons.exercises.checking import Case, ExerciseFailed, difference, run_check
from llm_lessons.sampling import top_p_filter as imported_top_p


def my_attention(q, k, v):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return torch.softmax(scores, dim=-1) @ v


def my_masked_attention(q, k, v, mask):
    scores = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def my_top_p(logits, p):
    probs = torch.softmax(logits, -1)
    order = sorted(range(len(probs)), key=lambda i: (-probs[i].item(), i))
    keep, mass = [], 0.0
    for i in order:
        keep.append(i)
        mass += probs[i].item()
        if mass >= p:
            break
    out = torch.full_like(logits, float("-inf"))
    out[keep] = logits[keep]
    return out


def my_top_k(logits, k):
    kth = torch.topk(logits, k).values[-1]
    return torch.where(logits >= kth, logits, torch.full_like(logits, float("-inf")))


def my_split(x, n_head):
    B, T, C = x.shape
    return x.view(B, T, n_head, C // n_head).transpose(1, 2)


def my_merge(y):
    B, nh, T, hs = y.shape
    return y.transpose(1, 2).contiguous().view(B, T, nh * hs)


def softmax_over_queries(q, k, v):
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-2) @ v


def mask_after_softmax(q, k, v, mask):
    w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), -1)
    return w.masked_fill(~mask, 0.0) @ v


def top_p_stops_short(logits, p):
    probs = torch.softmax(logits, -1)
    order = torch.argsort(probs, descending=True)
    before = torch.cumsum(probs[order], 0) - probs[order]
    keep = order[(before + probs[order]) <= p]
    if len(keep) == 0:
        keep = order[:1]
    out = torch.full_like(logits, float("-inf"))
    out[keep] = logits[keep]
    return out


def nll(logits, t):
    return torch.nn.functional.cross_entropy(logits, t)


# checker -> (a correct solution written here, [(a wrong answer, words its failure must say)])
CASES = {
    ex.check_causal_mask: (lambda T: torch.tril(torch.ones(T, T)).bool(), [
        (lambda T: torch.ones(T, T).triu().bool(), "upper-triangular"),
        (lambda T: torch.ones(T, T).tril(-1).bool(), "hides the diagonal"),
        (lambda T: ~torch.ones(T, T).tril().bool(), "inverted"),
        (lambda T: attention.causal_mask(T), "without calling llm_lessons.attention.causal_mask"),
    ]),
    ex.check_attention: (my_attention, [
        (lambda q, k, v: torch.softmax(q @ k.transpose(-2, -1), -1) @ v, "sqrt(d_k)"),
        (softmax_over_queries, "softmax over the last"),
        (lambda q, k, v: torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), -1),
         "multiply them by v"),
        (lambda q, k, v: my_attention(q, k, v)[0], "expected shape"),
        (lambda q, k, v: attention.scaled_dot_product_attention(q, k, v)[0], "without calling"),
        (lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(q, k, v),
         "without calling torch.nn.functional.scaled_dot_product_attention"),
    ]),
    ex.check_masked_attention: (my_masked_attention, [
        (mask_after_softmax, "after the softmax"),
        (lambda q, k, v, m: my_attention(q, k, v), "mask changed nothing"),
        (lambda q, k, v, m: my_masked_attention(q, k, v, m.T), "j < i instead of j > i"),
    ]),
    ex.check_split_heads: (my_split, [
        (lambda x, nh: x.reshape(x.shape[0], nh, x.shape[1], x.shape[2] // nh), "transpose(1, 2)"),
        (lambda x, nh: x.view(x.shape[0], x.shape[1], x.shape[2] // nh, nh).permute(0, 3, 1, 2),
         "contiguous channels"),
    ]),
    ex.check_merge_heads: (my_merge, [
        (lambda y: y.reshape(y.shape[0], y.shape[2], -1), "without moving the head axis"),
        (lambda y: y.transpose(1, 2), "expected shape"),
    ]),
    ex.check_top_k: (my_top_k, [
        (lambda lg, k: torch.where(lg >= torch.topk(lg, k).values[-1], lg, torch.zeros_like(lg)),
         "not 0"),
        (lambda lg, k: torch.where(lg > torch.topk(lg, k).values[-1], lg,
                                   torch.full_like(lg, float("-inf"))), "k - 1"),
        (lambda lg, k: sampling.top_k_filter(lg, k), "without calling"),
    ]),
    ex.check_top_p: (my_top_p, [
        (top_p_stops_short, "mass reaches p"),
        (lambda lg, p: sampling.top_p_filter(lg, p), "without calling"),
    ]),
    ex.check_perplexity: (lambda lg, t: nll(lg, t).exp(), [
        (nll, "exponential"),
        (lambda lg, t: torch.nn.functional.cross_entropy(lg, t, reduction="sum").exp(), "average"),
        (lambda lg, t: 2 ** nll(lg, t), "use e"),
        (lambda lg, t: torch.exp(-lg[range(len(t)), t].mean()), "log_softmax"),
    ]),
}
(test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
 test_each_wrong_answer_is_named) = contract(CASES)


def cheat_with_an_imported_answer(logits, p):
    return imported_top_p(logits, p)  # bound before the check, so patching cannot reach it


def test_a_forbidden_function_held_under_a_global_name_is_caught():
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.sampling.top_p_filter"):
        ex.check_top_p(cheat_with_an_imported_answer)


def test_the_forbidden_function_handed_in_itself_is_refused():
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.sampling.top_p_filter"):
        ex.check_top_p(sampling.top_p_filter)


def test_a_crash_in_the_students_code_is_reported_with_its_error():
    with pytest.raises(ExerciseFailed, match="raised ZeroDivisionError"):
        ex.check_causal_mask(lambda T: 1 / 0)


def test_the_forbidden_functions_work_again_after_a_check():
    with pytest.raises(ExerciseFailed):
        ex.check_attention(lambda q, k, v: attention.scaled_dot_product_attention(q, k, v)[0])
    q = k = v = torch.ones(1, 2, 2)
    assert attention.scaled_dot_product_attention(q, k, v)[0].shape == (1, 2, 2)


def test_an_unrecognised_wrong_answer_shows_the_first_wrong_case():
    with pytest.raises(ExerciseFailed, match=r"T = 1: expected"):
        ex.check_causal_mask(lambda T: torch.zeros(T, T, dtype=torch.bool))


def test_difference_compares_nested_values():
    assert difference((torch.ones(2), 1.0), (torch.ones(2), 1.0)) is None
    assert "value 1" in difference((torch.ones(2), 2.0), (torch.ones(2), 1.0))
    assert difference(float("inf"), float("inf")) is None


def test_run_check_refuses_a_wrong_type():
    cases = [Case((1,), torch.zeros(2), "x = 1")]
    with pytest.raises(ExerciseFailed, match="expected a tensor"):
        run_check("check_x", lambda x: [0, 0], cases)
