"""The checkers of the padding mask (4.1), the block's MLP (3.1) and the token/position length
ratio (5): an independent solution passes, a stub is "not implemented yet", each plausible wrong
answer fails with words that name its mistake, and the references agree with the package."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from checker_contract import contract

from llm_lessons.attention import causal_mask, padding_mask
from llm_lessons.exercises.blocks_and_masks import check_mlp, check_norm_ratio, check_padding_mask
from llm_lessons.exercises.checking import ExerciseFailed
from llm_lessons.positional import sinusoidal_encoding
from llm_lessons.transformer import MLP

# --- the padding mask ---


def my_padding_mask(lengths, T):
    B = len(lengths)
    keep = torch.zeros(B, T, T, dtype=torch.bool)
    for b in range(B):
        for i in range(T):
            keep[b, i, : min(i + 1, int(lengths[b]))] = True  # keys 0 .. i, but only real ones
    return keep


def _real(lengths, T):
    return torch.arange(T)[None, :] < lengths[:, None]  # (B, T)


def mask_with_or(lengths, T):
    return torch.ones(T, T).tril().bool() | _real(lengths, T)[:, None, :]


def mask_on_queries(lengths, T):
    return torch.ones(T, T).tril().bool() & _real(lengths, T)[:, :, None]


def mask_without_causal(lengths, T):
    return _real(lengths, T)[:, None, :].expand(len(lengths), T, T)


def mask_left_padded(lengths, T):
    real = torch.arange(T)[None, :] >= T - lengths[:, None]
    return torch.ones(T, T).tril().bool() & real[:, None, :]


def mask_from_the_package(lengths, T):
    return causal_mask(T) & padding_mask(_real(lengths, T))[:, 0]


# --- the MLP ---


def my_mlp(x, w1, b1, w2, b2):
    return F.linear(F.gelu(F.linear(x, w1, b1)), w2, b2)


def mlp_relu(x, w1, b1, w2, b2):
    return F.linear(F.relu(F.linear(x, w1, b1)), w2, b2)


def mlp_tanh_gelu(x, w1, b1, w2, b2):
    return F.linear(F.gelu(F.linear(x, w1, b1), approximate="tanh"), w2, b2)


def mlp_without_biases(x, w1, b1, w2, b2):
    return F.gelu(x @ w1.T) @ w2.T


def mlp_gelu_twice(x, w1, b1, w2, b2):
    return F.gelu(my_mlp(x, w1, b1, w2, b2))


def mlp_by_module(x, w1, b1, w2, b2):
    mlp = MLP(x.shape[-1], activation="gelu")
    with torch.no_grad():
        for layer, (w, b) in ((mlp.fc, (w1, b1)), (mlp.proj, (w2, b2))):
            layer.weight.copy_(w)
            layer.bias.copy_(b)
        return mlp(x)


# --- the token/position ratio ---


def my_ratio(table, pe, scale):
    tokens = torch.linalg.vector_norm(scale * table, dim=-1)  # (V,)
    positions = torch.linalg.vector_norm(pe, dim=-1)  # (T,)
    return (tokens.mean() / positions.mean()).item()


def ratio_without_scale(table, pe, scale):
    return my_ratio(table, pe, 1.0)


def ratio_of_squares(table, pe, scale):
    return ((scale * table) ** 2).sum(1).mean().item() / (pe**2).sum(1).mean().item()


def ratio_of_mean_vectors(table, pe, scale):
    return ((scale * table).mean(0).norm() / pe.mean(0).norm()).item()


def ratio_inverted(table, pe, scale):
    return 1 / my_ratio(table, pe, scale)


CHECKERS = {
    check_padding_mask: (my_padding_mask, [(mask_with_or, "with OR"), (mask_on_queries, "QUERIES (rows)"),
                                           (mask_without_causal, "not the future"),
                                           (mask_left_padded, "left padding")]),
    check_mlp: (my_mlp, [(mlp_relu, "you used ReLU"), (mlp_tanh_gelu, "tanh approximation"),
                         (mlp_without_biases, "both biases"), (mlp_gelu_twice, "after the second layer")]),
    check_norm_ratio: (my_ratio, [(ratio_without_scale, "left out scale"), (ratio_of_squares, "squared"),
                                  (ratio_of_mean_vectors, "MEAN vector"), (ratio_inverted, "upside down")]),
}

(test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
 test_each_wrong_answer_is_named) = contract(CHECKERS)


def test_the_padding_mask_is_the_packages_masks_combined_and_they_are_refused():
    lengths = torch.tensor([3, 1, 5])
    assert torch.equal(my_padding_mask(lengths, 5), mask_from_the_package(lengths, 5))
    assert my_padding_mask(lengths, 5).any(dim=-1).all()  # no empty row: softmax stays defined
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.attention.causal_mask"):
        check_padding_mask(mask_from_the_package)
    assert causal_mask(2).sum() == 3  # and it works again after the check


def test_the_mlp_checker_agrees_with_the_packages_mlp():
    """The reference is the book's MLP with the exact GELU; using that module is a fair answer."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, generator=g)
    w1, b1 = torch.randn(16, 4, generator=g), torch.randn(16, generator=g)
    w2, b2 = torch.randn(4, 16, generator=g), torch.randn(4, generator=g)
    torch.testing.assert_close(my_mlp(x, w1, b1, w2, b2), mlp_by_module(x, w1, b1, w2, b2))
    assert "all 10 cases passed" in check_mlp(mlp_by_module)


def test_the_ratio_tells_the_listing_from_the_fix():
    """Notebook 5's claim: the listing's N(0, 1) embedding times sqrt(64) drowns the positions
    (ratio > 10); the fix, std 64 ** -0.5, brings it near 1 (ratio < 2)."""
    g = torch.Generator().manual_seed(0)
    table, pe = torch.randn(65, 64, generator=g), sinusoidal_encoding(32, 64)
    assert my_ratio(table, pe, math.sqrt(64)) > 10
    assert my_ratio(table * 64**-0.5, pe, math.sqrt(64)) < 2
    assert my_ratio(torch.tensor([[3.0, 4.0], [0.0, 1.0]]), torch.eye(2), 2.0) == pytest.approx(6.0)
