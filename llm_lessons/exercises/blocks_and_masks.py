"""Checkers for three pieces of a Transformer that are easy to get almost right: chapter 4.1's
attention mask for a right-padded batch, chapter 3.1's feed-forward network (the MLP of every
block) and chapter 5's measurement of how much longer the scaled token vectors are than the
position vectors they are added to (the listing's defect 6: positions drowned out).

Shapes: B batch, T positions, C channels, V vocabulary. The answers come from references written
here; :func:`llm_lessons.attention.causal_mask` and :func:`llm_lessons.attention.padding_mask`
are forbidden while the student's code runs (together they are the first answer).

>>> import torch
>>> def keep(lengths, T):
...     i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]   # (T, 1) queries, (1, T) keys
...     return (j <= i) & (j < lengths[:, None, None])                # (T, T) & (B, 1, T) -> (B, T, T)
>>> check_padding_mask(keep)
'check_padding_mask: all 10 cases passed'
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from llm_lessons.exercises.checking import Case, Mistake, random_int, run_check
from llm_lessons.exercises.model_arithmetic import gelu
from llm_lessons.positional import sinusoidal_encoding

MASK_ANSWERS = ("llm_lessons.attention.causal_mask", "llm_lessons.attention.padding_mask")



def _keep(lengths, T, combine="and", on="keys", causal=True, padding=True, side="right"):
    """(B, T, T) True where query i may attend to key j; the flags give the usual wrong versions."""
    pos = torch.arange(T)
    if side == "right":
        real = pos[None, :] < lengths[:, None]  # (B, T) the first lengths[b] tokens are real
    else:
        real = pos[None, :] >= T - lengths[:, None]  # (B, T) the last lengths[b] tokens
    pad = real[:, None, :] if on == "keys" else real[:, :, None]  # (B, 1, T) columns or (B, T, 1) rows
    if not padding:
        pad = torch.ones(len(lengths), 1, 1, dtype=torch.bool)
    lower = pos[None, :] <= pos[:, None]  # (T, T) key j <= query i
    if not causal:
        lower = torch.ones(T, T, dtype=torch.bool)
    both = lower & pad if combine == "and" else lower | pad  # (B, T, T)
    return both.expand(len(lengths), T, T).clone()


def check_padding_mask(fn: Callable, n_cases: int = 10, seed: int = 0) -> str:
    """``fn(lengths, T)``: lengths (B,) long, 1 <= lengths[b] <= T, sequences right-padded to T
    (the real tokens first, then [PAD]). Returns the (B, T, T) bool keep-mask: True where query i
    of sequence b may attend to key j, i.e. j <= i (causal) AND j < lengths[b] (a real key). A
    padded query's row keeps its causal keys among the real tokens, so no row is empty.

    lengths = [2], T = 3 -> [[[1, 0, 0], [1, 1, 0], [1, 1, 0]]] (key 2 is [PAD]: column 2 is 0)."""
    g, t = torch.Generator().manual_seed(seed), torch.tensor
    fixed = [(t([2]), 3, "the worked example"), (t([1]), 1, "a single token"),
             (t([4, 4]), 4, "no padding at all (the plain causal mask)"),
             (t([1, 5]), 5, "one sequence of a single real token"), (t([3, 1, 6, 2]), 6, "four lengths")]
    cases = [Case((lengths, T), _keep(lengths, T), f"{what}: lengths = {lengths.tolist()}, T = {T}")
             for lengths, T, what in fixed]
    while len(cases) < n_cases:
        B, T = random_int(g, 1, 5), random_int(g, 2, 10)
        lengths = torch.randint(1, T + 1, (B,), generator=g)
        lengths[0] = random_int(g, 1, T)  # at least one padded sequence
        cases.append(Case((lengths, T), _keep(lengths, T), f"lengths = {lengths.tolist()}, T = {T}"))
    mistakes = [
        Mistake("or", lambda n, T: _keep(n, T, combine="or"),
                "you combined the two masks with OR: a key must pass BOTH tests (not in the future "
                "AND not [PAD]), so combine them with & (logical and)"),
        Mistake("rows", lambda n, T: _keep(n, T, on="queries"),
                "you hid the padded QUERIES (rows) instead of the padded KEYS (columns): nobody may "
                "attend to a [PAD] token, so index the padding by the key j, the last dimension. "
                "A padded query's row keeps its real keys (its output is simply never used)"),
        Mistake("no causal", lambda n, T: _keep(n, T, causal=False),
                "your mask hides [PAD] but not the future: query i still sees the real keys j > i. "
                "AND it with the causal mask (j <= i)"),
        Mistake("no padding", lambda n, T: _keep(n, T, padding=False),
                "you returned the causal mask for every sequence and ignored lengths: the keys at "
                "j >= lengths[b] are [PAD] and must be hidden too"),
        Mistake("left padding", lambda n, T: _keep(n, T, side="left"),
                "you took the LAST lengths[b] tokens as the real ones (left padding); the batch is "
                "right-padded: the real tokens are the first ones, j < lengths[b]"),
    ]
    return run_check("check_padding_mask", fn, cases, mistakes, forbidden=MASK_ANSWERS)


def _mlp(x, w1, b1, w2, b2, act="gelu", biases=(True, True), act_out=False):
    """GELU(x w1^T + b1) w2^T + b2 in float64; the flags give the usual wrong versions."""
    def nonlinear(h):  # exercise 3.1.7's reference; "tanh" is GPT-2's approximation
        return gelu(h, {"gelu": "exact"}.get(act, act))

    x, w1, b1, w2, b2 = (a.double() for a in (x, w1, b1, w2, b2))
    h = nonlinear(x @ w1.T + (b1 if biases[0] else 0))  # (B, T, C) @ (C, 4C) -> (B, T, 4C)
    y = h @ w2.T + (b2 if biases[1] else 0)  # (B, T, 4C) @ (4C, C) -> (B, T, C)
    return (nonlinear(y) if act_out else y).float()


def check_mlp(fn: Callable, n_cases: int = 10, seed: int = 1) -> str:
    """``fn(x, w1, b1, w2, b2)``: the feed-forward network of a Transformer block, applied to
    every position. x (B, T, C); w1 (4C, C), b1 (4C,), w2 (C, 4C), b2 (C,) in nn.Linear's layout
    (out_features, in_features), so a layer is x @ w.T + b. Returns (B, T, C):
    GELU(x w1^T + b1) w2^T + b2, with the exact GELU(h) = h * Phi(h) = h (1 + erf(h / sqrt 2)) / 2.

    C = 1, x = [[[1]]], w1 = [[1], [-1], [2], [0]], b1 = 0, w2 = [[1, 1, 1, 1]], b2 = [0.5]:
    hidden GELU([1, -1, 2, 0]) = [0.841, -0.159, 1.954, 0]; output 0.841 - 0.159 + 1.954 + 0.5 = 3.137."""
    g, t = torch.Generator().manual_seed(seed), torch.tensor
    worked = (t([[[1.0]]]), t([[1.0], [-1.0], [2.0], [0.0]]), torch.zeros(4), torch.ones(1, 4), t([0.5]))
    cases = [Case(worked, _mlp(*worked), "the worked example (C = 1)")]
    shapes = [(1, 1, 2, "x = 0: the output is GELU(b1) w2^T + b2"), (2, 3, 4, ""), (1, 5, 8, "")]
    while len(cases) < n_cases:
        B, T, C, what = shapes.pop(0) if shapes else (
            random_int(g, 1, 4), random_int(g, 1, 7), random_int(g, 1, 13), "")
        x = torch.zeros(B, T, C) if what else torch.randn(B, T, C, generator=g) * 1.5
        # Hidden values of a few units: where ReLU, both GELUs and no GELU at all part company.
        w1, w2 = torch.randn(4 * C, C, generator=g), torch.randn(C, 4 * C, generator=g) / math.sqrt(C)
        b1, b2 = torch.randn(4 * C, generator=g), torch.randn(C, generator=g)
        args = (x, w1, b1, w2, b2)
        cases.append(Case(args, _mlp(*args), f"{what + ', ' if what else ''}x of shape {(B, T, C)}"))
    mistakes = [
        Mistake("relu", lambda *a: _mlp(*a, act="relu"),
                "you used ReLU (max(0, h)); the block's non-linearity is GELU, h * Phi(h), which "
                "is smooth and lets small negative values through: 0.5 * h * (1 + erf(h / sqrt(2)))"),
        Mistake("tanh GELU", lambda *a: _mlp(*a, act="tanh"),
                "you used GELU's tanh approximation (GPT-2's, F.gelu(h, approximate='tanh')); this "
                "exercise asks for the exact GELU: 0.5 * h * (1 + erf(h / sqrt(2)))"),
        Mistake("no biases", lambda *a: _mlp(*a, biases=(False, False)),
                "you left out both biases: each nn.Linear computes x @ w.T + b, so add b1 after the "
                "first layer and b2 after the second"),
        Mistake("no b1", lambda *a: _mlp(*a, biases=(False, True)),
                "you left out b1: add it to x @ w1.T BEFORE the GELU"),
        Mistake("no b2", lambda *a: _mlp(*a, biases=(True, False)),
                "you left out b2: add it to the second layer's output, h @ w2.T + b2"),
        Mistake("GELU twice", lambda *a: _mlp(*a, act_out=True),
                "you applied GELU after the second layer too: the non-linearity sits only between "
                "the two layers; the output goes on, unbounded, into the residual stream"),
    ]
    return run_check("check_mlp", fn, cases, mistakes, atol=1e-4)


def _ratio(table, pe, scale, scaled=True, power=1, how="rows", inverted=False):
    """Mean row norm of table * scale over that of pe; the flags give the usual wrong versions."""
    tok, pos = table.double() * (scale if scaled else 1.0), pe.double()
    lengths = {"rows": lambda m: (m ** 2).sum(dim=1) ** (power / 2),  # (V,) or (T,) row norms
               "columns": lambda m: (m ** 2).sum(dim=0).sqrt(),  # (C,) one norm per channel
               "mean vector": lambda m: m.mean(dim=0).norm()[None],  # the norm of the mean row
               "whole": lambda m: m.norm()[None]}[how]  # one Frobenius norm
    ratio = float(lengths(tok).mean() / lengths(pos).mean())
    return 1 / ratio if inverted else ratio


def check_norm_ratio(fn: Callable, n_cases: int = 10, seed: int = 2) -> str:
    """``fn(table, pe, scale)``: table (V, C) token embeddings, pe (T, C) position vectors, scale
    a float (the listing multiplies token vectors by sqrt(d_model)). Returns, as a float, the
    mean L2 length of the scaled token vectors (the rows of table * scale) over the mean L2
    length of the position vectors (the rows of pe): the notebook's token/position ratio.

    table = [[3, 4], [0, 1]], scale 2: lengths 10 and 2, mean 6; pe = [[1, 0], [0, 1]]: mean 1;
    the ratio is 6."""
    g, t = torch.Generator().manual_seed(seed), torch.tensor
    worked = (t([[3.0, 4.0], [0.0, 1.0]]), t([[1.0, 0.0], [0.0, 1.0]]), 2.0)
    C = 64  # the listing as written: nn.Embedding's N(0, 1) rows times sqrt(64), sinusoidal positions
    listing = (torch.randn(30, C, generator=g), sinusoidal_encoding(32, C), math.sqrt(C))
    cases = [Case(worked, _ratio(*worked), "the worked example"),
             Case(listing, _ratio(*listing), "the listing's sizes: V = 30, T = 32, C = 64, scale 8")]
    while len(cases) < n_cases:
        V, T, C = random_int(g, 2, 20), random_int(g, 2, 20), 2 * random_int(g, 1, 9)
        table = torch.randn(V, C, generator=g) * float(torch.rand((), generator=g) * 2 + 0.1)
        table += torch.randn(C, generator=g)  # a common offset: the mean row is not near 0
        pe = sinusoidal_encoding(T, C) + 0.3 * torch.randn(T, C, generator=g)
        scale = round(float(torch.rand((), generator=g)) * 4 + 0.5, 3)
        cases.append(Case((table, pe, scale), _ratio(table, pe, scale),
                          f"table (V, C) = {(V, C)}, pe (T, C) = {(T, C)}, scale {scale}"))
    mistakes = [
        Mistake("no scale", lambda *a: _ratio(*a, scaled=False),
                "you left out scale: the listing multiplies every token vector by sqrt(d_model) "
                "before adding the positions, so measure table * scale"),
        Mistake("squared", lambda *a: _ratio(*a, power=2),
                "you compared squared lengths (sums of squares): take the square root of each "
                "row's sum of squares, the L2 norm, before averaging"),
        Mistake("norm of the mean", lambda *a: _ratio(*a, how="mean vector"),
                "you took the length of the MEAN vector; average the lengths instead: the mean of "
                "the row norms (opposite directions cancel in a mean vector)"),
        Mistake("inverted", lambda *a: _ratio(*a, inverted=True),
                "your ratio is upside down: divide the tokens' mean length by the positions' "
                "(a large ratio means the positions are drowned out)"),
        Mistake("whole matrix", lambda *a: _ratio(*a, how="whole"),
                "you took one norm of each whole matrix, which grows with its number of rows: take "
                "one norm per row (dim=1), then average them"),
        Mistake("columns", lambda *a: _ratio(*a, how="columns"),
                "you took the norms over dim 0, one per channel: each ROW is a vector (a token or "
                "a position), so take the norm over dim=1, then average over the rows"),
    ]
    return run_check("check_norm_ratio", fn, cases, mistakes)
