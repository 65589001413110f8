"""The checkers of layer normalisation (3.1), ALiBi's biases (4.2) and the Elo update (2.4c): an
independent solution passes, a stub is "not implemented yet", each plausible wrong answer fails
with words that name its mistake, and the references agree with PyTorch and the package."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from checker_contract import contract
from torch import nn

from llm_lessons.evaluation.agreement import elo_ratings
from llm_lessons.exercises.checking import ExerciseFailed
from llm_lessons.exercises.evaluation import check_elo_update
from llm_lessons.exercises.layers import check_alibi_bias, check_layer_norm

# --- layer normalisation ---


def my_layer_norm(x, weight, bias, eps):
    centred = x - x.mean(dim=-1, keepdim=True)
    return centred * torch.rsqrt(centred.pow(2).mean(dim=-1, keepdim=True) + eps) * weight + bias


def layer_norm_unbiased(x, weight, bias, eps):
    centred = x - x.mean(dim=-1, keepdim=True)
    return centred / torch.sqrt(x.var(dim=-1, keepdim=True) + eps) * weight + bias


def layer_norm_eps_outside(x, weight, bias, eps):
    centred = x - x.mean(dim=-1, keepdim=True)
    return centred / (centred.pow(2).mean(dim=-1, keepdim=True).sqrt() + eps) * weight + bias


def layer_norm_without_affine(x, weight, bias, eps):
    centred = x - x.mean(dim=-1, keepdim=True)
    return centred * torch.rsqrt(centred.pow(2).mean(dim=-1, keepdim=True) + eps)


def layer_norm_by_module(x, weight, bias, eps):
    ln = nn.LayerNorm(x.shape[-1], eps=eps)
    with torch.no_grad():
        ln.weight.copy_(weight)
        ln.bias.copy_(bias)
        return ln(x)


# --- ALiBi ---


def my_alibi(T, n_heads):
    slopes = torch.tensor([2.0 ** (-8 * (h + 1) / n_heads) for h in range(n_heads)])
    i, j = torch.meshgrid(torch.arange(T), torch.arange(T), indexing="ij")
    return -slopes[:, None, None] * torch.where(j <= i, i - j, 0)


def alibi_rewarding_distance(T, n_heads):
    return -my_alibi(T, n_heads)


def alibi_reversed_slopes(T, n_heads):
    return my_alibi(T, n_heads).flip(0)


# --- Elo ---


def my_elo(r_a, r_b, score_a, k):
    expected = 1 / (1 + 10 ** ((r_b - r_a) / 400))
    return r_a + k * (score_a - expected), r_b + k * ((1 - score_a) - (1 - expected))


def elo_only_a(r_a, r_b, score_a, k):
    return my_elo(r_a, r_b, score_a, k)[0], r_b


def elo_flipped(r_a, r_b, score_a, k):
    expected = 1 / (1 + 10 ** ((r_a - r_b) / 400))
    return r_a + k * (score_a - expected), r_b - k * (score_a - expected)


def elo_base_e(r_a, r_b, score_a, k):
    expected = 1 / (1 + math.exp((r_b - r_a) / 400))
    return r_a + k * (score_a - expected), r_b - k * (score_a - expected)


CHECKERS = {
    check_layer_norm: (my_layer_norm, [(layer_norm_unbiased, "C - 1"), (layer_norm_eps_outside, "inside"),
                                       (layer_norm_without_affine, "weight and bias are missing")]),
    check_alibi_bias: (my_alibi, [(alibi_rewarding_distance, "SUBTRACTS"),
                                  (alibi_reversed_slopes, "wrong way")]),
    check_elo_update: (my_elo, [(elo_only_a, "left b unchanged"), (elo_flipped, "wrong way round"),
                                (elo_base_e, "base 10")]),
}

(test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
 test_each_wrong_answer_is_named) = contract(CHECKERS)


def test_layer_norm_agrees_with_pytorch_and_pytorch_is_refused():
    g = torch.Generator().manual_seed(0)
    x, w, b = torch.randn(3, 5, 8, generator=g), torch.randn(8, generator=g), torch.randn(8, generator=g)
    torch.testing.assert_close(my_layer_norm(x, w, b, 1e-5), F.layer_norm(x, (8,), w, b, 1e-5),
                               atol=1e-5, rtol=1e-5)
    with pytest.raises(ExerciseFailed, match="without calling torch.nn.functional.layer_norm"):
        check_layer_norm(layer_norm_by_module)  # nn.LayerNorm calls F.layer_norm
    assert F.layer_norm(x, (8,)).shape == x.shape  # and it works again after the check


def test_alibi_slopes_are_the_papers():
    """Press et al.: for 8 heads the slopes are 1/2, 1/4, ..., 1/256."""
    bias = my_alibi(3, 8)
    assert bias[:, 1, 0].tolist() == [-(2.0 ** -h) for h in range(1, 9)]
    assert bias[:, 0, 2].abs().sum() == 0  # nothing above the diagonal


def test_the_elo_checker_agrees_with_the_package():
    for (a, b), score in [(("A", "B"), 1.0), (("A", "B"), 0.5)]:
        ratings = elo_ratings([(a, b, score)], k=16.0)
        assert my_elo(1000.0, 1000.0, score, 16.0) == pytest.approx((ratings["A"], ratings["B"]))
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.evaluation.agreement.elo_ratings"):
        check_elo_update(lambda r_a, r_b, s, k: tuple(elo_ratings([("A", "B", s)], k=k).values()))
