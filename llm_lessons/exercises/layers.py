"""Checkers for chapters 3.1 and 4.2's layer exercises: layer normalisation, and ALiBi's
distance penalty (a position method that adds no vector at all).

Shapes: B batch, T positions, C channels, nh heads. The answers come from references written
here; ``F.layer_norm`` is forbidden while the student's code runs.

>>> import torch
>>> def layer_norm(x, weight, bias, eps):
...     mean = x.mean(-1, keepdim=True)
...     var = ((x - mean) ** 2).mean(-1, keepdim=True)
...     return (x - mean) / torch.sqrt(var + eps) * weight + bias
>>> check_layer_norm(layer_norm)
'check_layer_norm: all 10 cases passed'
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from llm_lessons.exercises.checking import Case, Mistake, run_check

LAYER_NORM_ANSWERS = ("torch.nn.functional.layer_norm", "torch.layer_norm")


def _layer_norm(x, weight, bias, eps, unbiased=False, eps_outside=False, dim=-1, affine=True):
    x = x.double()
    mean = x.mean(dim, keepdim=True)
    var = x.var(dim, keepdim=True, unbiased=unbiased)
    spread = var.sqrt() + eps if eps_outside else (var + eps).sqrt()
    out = (x - mean) / spread
    return (out * weight.double() + bias.double() if affine else out).float()


def check_layer_norm(fn: Callable, n_cases: int = 10, seed: int = 0) -> str:
    """``fn(x, weight, bias, eps)``: layer normalisation of x (..., C) over its last dimension,
    as in every Transformer block: subtract each vector's mean, divide by sqrt(variance + eps),
    with the variance averaged over C (not C - 1), then scale by weight (C,) and shift by bias (C,)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.tensor
    cases = [Case((t([[1.0, 2.0, 3.0]]), torch.ones(3), torch.zeros(3), 1e-5),
                  _layer_norm(t([[1.0, 2.0, 3.0]]), torch.ones(3), torch.zeros(3), 1e-5),
                  "x = [[1, 2, 3]], weight 1, bias 0, eps 1e-5"),
             Case((t([[5.0, 5.0, 5.0, 5.0]]), torch.ones(4), torch.zeros(4), 1e-5), torch.zeros(1, 4),
                  "a constant vector (variance 0: eps keeps it finite)")]
    shapes = [(2, 4), (3, 2, 8), (1, 1, 2), (4, 16)]
    while len(cases) < n_cases:
        shape = shapes[len(cases) % len(shapes)]
        x = torch.randn(shape, generator=g) * 3 + 1
        weight, bias = torch.randn(shape[-1], generator=g), torch.randn(shape[-1], generator=g)
        eps = [1e-5, 0.5, 2.0][len(cases) % 3]  # large eps cases tell where it goes
        cases.append(Case((x, weight, bias, eps), _layer_norm(x, weight, bias, eps),
                          f"x of shape {shape}, eps {eps}"))
    mistakes = [
        Mistake("unbiased", lambda *a: _layer_norm(*a, unbiased=True),
                "you divided the squared deviations by C - 1 (torch.var's default, unbiased=True); "
                "layer norm averages them over C: use unbiased=False or ((x - mean) ** 2).mean(-1)"),
        Mistake("eps outside", lambda *a: _layer_norm(*a, eps_outside=True),
                "you added eps after the square root; it goes inside: sqrt(variance + eps)"),
        Mistake("dim 0", lambda *a: _layer_norm(*a, dim=0),
                "you normalised over the first dimension (across the batch, as batch norm does); "
                "layer norm normalises each vector over its own last dimension"),
        Mistake("no affine", lambda *a: _layer_norm(*a, affine=False),
                "the normalisation is right but weight and bias are missing: multiply by weight, "
                "then add bias (they let each channel choose its own scale and offset)"),
    ]
    return run_check("check_layer_norm", fn, cases, mistakes, forbidden=LAYER_NORM_ANSWERS, atol=1e-4)


def _alibi(T, n_heads, sign=-1.0, first_slope_one=False, reverse=False):
    heads = torch.arange(0 if first_slope_one else 1, n_heads + (0 if first_slope_one else 1),
                         dtype=torch.float64)
    slopes = 2.0 ** (-8.0 * heads / n_heads)  # (nh,) a geometric sequence
    if reverse:
        slopes = slopes.flip(0)
    pos = torch.arange(T, dtype=torch.float64)
    distance = (pos[:, None] - pos[None, :]).clamp(min=0)  # (T, T) i - j, 0 above the diagonal
    return (sign * slopes[:, None, None] * distance).float()  # (nh, T, T)


def check_alibi_bias(fn: Callable[[int, int], torch.Tensor]) -> str:
    """``fn(T, n_heads)``: ALiBi's biases (nh, T, T). Head h (counted from 1) has the slope
    m_h = 2^(-8h / nh); the score of query i and key j <= i gets -m_h (i - j) added, so farther
    keys are penalised, steeply in the first heads and gently in the last; above the diagonal
    the bias is 0 (the causal mask hides those keys anyway)."""
    sizes = [(1, 1), (3, 1), (4, 2), (5, 8), (8, 4), (16, 16)]
    cases = [Case((T, nh), _alibi(T, nh), f"T = {T}, n_heads = {nh}") for T, nh in sizes]
    mistakes = [
        Mistake("positive", lambda T, nh: _alibi(T, nh, sign=1.0),
                "your bias grows with the distance, so the farthest key would win: ALiBi SUBTRACTS "
                "m_h (i - j), a penalty for distance"),
        Mistake("slope from 0", lambda T, nh: _alibi(T, nh, first_slope_one=True),
                "your first head has slope 1: heads are counted from 1, m_h = 2^(-8h / nh) for "
                "h = 1 .. nh, so the first slope is 2^(-8 / nh) and the last 2^-8"),
        Mistake("reversed", lambda T, nh: _alibi(T, nh, reverse=True),
                "your slopes run the wrong way: head 1 has the steepest slope 2^(-8 / nh), and "
                "each later head a gentler one"),
    ]
    return run_check("check_alibi_bias", fn, cases, mistakes)
