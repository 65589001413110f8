"""The exercise checkers accept correct solutions written independently and reject wrong ones."""

import math

import pytest
import torch

from llm_lessons import exercises


def my_attention(q, k, v):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
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


def test_correct_solutions_pass():
    assert "passed" in exercises.check_causal_mask(lambda T: torch.tril(torch.ones(T, T)).bool())
    assert "passed" in exercises.check_attention(my_attention)
    assert "passed" in exercises.check_attention(lambda q, k, v: (my_attention(q, k, v), None))
    assert "passed" in exercises.check_top_p(my_top_p)
    assert "passed" in exercises.check_perplexity(
        lambda logits, t: torch.nn.functional.cross_entropy(logits, t).exp())


def test_wrong_solutions_fail_with_a_reason():
    with pytest.raises(AssertionError, match="differs"):
        exercises.check_causal_mask(lambda T: torch.ones(T, T).triu().bool())
    with pytest.raises(AssertionError, match="differs"):  # forgot the sqrt(d_k) scaling
        exercises.check_attention(lambda q, k, v: torch.softmax(q @ k.transpose(-2, -1), -1) @ v)
    with pytest.raises(AssertionError, match="differs"):  # keeps one token too few
        exercises.check_top_p(lambda logits, p: my_top_p(logits, p * 0.5))
    with pytest.raises(AssertionError, match="expected"):  # mean NLL instead of its exp
        exercises.check_perplexity(lambda logits, t: torch.nn.functional.cross_entropy(logits, t))
    with pytest.raises(AssertionError, match="shape"):
        exercises.check_attention(lambda q, k, v: my_attention(q, k, v)[0])


def test_stub_is_reported_as_not_implemented():
    def stub(q, k, v):
        raise NotImplementedError

    with pytest.raises(AssertionError, match="not implemented"):
        exercises.check_attention(stub)
