"""Checkers for chapter 5's exercises: the two fixes the article's listing needs most, the mask
``nn.MultiheadAttention`` expects and the test that proves a model does not read the future.

Shapes: B batch, T positions, V vocabulary. The answers come from references written here;
PyTorch's own ``generate_square_subsequent_mask`` is forbidden while the student's code runs.

>>> import torch
>>> check_subsequent_mask(lambda T: torch.full((T, T), float("-inf")).triu(1))
'check_subsequent_mask: all 6 cases passed'
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from llm_lessons.exercises.checking import Case, Mistake, available, run_check

MASK_ANSWERS = ("torch.nn.Transformer.generate_square_subsequent_mask",
                "torch.nn.modules.transformer._generate_square_subsequent_mask")


def _subsequent(T: int, diagonal: int = 1, lower: bool = False) -> torch.Tensor:
    blocked = torch.ones(T, T, dtype=torch.bool).triu(diagonal)  # (T, T) True above the diagonal
    if lower:
        blocked = blocked.T
    return torch.zeros(T, T).masked_fill(blocked, float("-inf"))


def check_subsequent_mask(fn: Callable[[int], torch.Tensor]) -> str:
    """``fn(T)``: the (T, T) ``attn_mask`` that makes ``nn.MultiheadAttention`` causal. The module
    ADDS a float mask to the attention scores, so: 0.0 where query i may see key j (j <= i) and
    -inf above the diagonal. (A bool mask means the opposite of ours in chapter 4: True = blocked;
    one with True exactly above the diagonal is accepted too.)"""
    cases = [Case((T,), _subsequent(T), f"T = {T}") for T in (1, 2, 3, 4, 7, 12)]
    mistakes = [
        # A bool answer is compared as bool and a float one as its non-zeros, so one mistake
        # covers tril as True/False and as 1.0/0.0.
        Mistake("allowed marked", lambda T: torch.ones(T, T, dtype=torch.bool).tril(),
                "you marked where a query MAY attend (True or 1, the convention of chapter 4's "
                "causal_mask); nn.MultiheadAttention reads a bool attn_mask the other way round, "
                "True = blocked, and ADDS a float one to the scores, where 1 and 0 block nothing. "
                "Put 0.0 where attention is allowed and -inf above the diagonal"),
        Mistake("lower", lambda T: _subsequent(T, lower=True),
                "your -inf sits below the diagonal: row i is the query, so block the columns "
                "j > i (above the diagonal: triu with diagonal=1)"),
        Mistake("diagonal", lambda T: _subsequent(T, diagonal=0),
                "you blocked the diagonal too: each token may attend to itself, and the first "
                "row would be all -inf, a softmax of nothing (NaN). Use triu(diagonal=1)"),
    ]
    return run_check("check_subsequent_mask", fn, cases, mistakes, forbidden=available(MASK_ANSWERS))


def fake_model(kind: str, V: int, g: torch.Generator) -> Callable[[torch.Tensor], torch.Tensor]:
    """A stand-in language model for :func:`check_future_leak`: ids (B, T) -> logits (B, T, V).

    kind: ``"causal"`` (position t reads tokens 0..t), ``"next"`` (also reads token t + 1, a leak
    of one step), ``"all"`` (reads every token: no mask) or ``"last"`` (causal, except that
    position 0 also reads the last token: a leak that only a far change finds).
    """
    table = torch.randn(V, 8, generator=g, dtype=torch.float64)  # (V, C) token vectors
    head = torch.randn(8, V, generator=g, dtype=torch.float64)  # (C, V)

    def logits(ids: torch.Tensor) -> torch.Tensor:
        x = table[ids]  # (B, T, C)
        if kind == "all":
            h = x.mean(dim=1, keepdim=True).expand_as(x)  # (B, T, C) every position sees all
        else:
            h = x.cumsum(dim=1)  # (B, T, C) position t sums tokens 0..t
            if kind == "next":
                h = h + torch.cat([x[:, 1:], torch.zeros_like(x[:, :1])], dim=1)
            if kind == "last":
                h = torch.cat([h[:, :1] + x[:, -1:], h[:, 1:]], dim=1)
        return torch.tanh(h) @ head  # (B, T, V)

    return logits


def _leak(logits_fn, ids, t, changed="from t", compared="before t"):
    V = logits_fn(ids[:, :1]).shape[-1]
    other = ids.clone()
    lo, hi = {"from t": (t, None), "only t": (t, t + 1), "after t": (t + 1, None)}[changed]
    other[:, lo:hi] = (other[:, lo:hi] + 1) % V  # a different token at each changed position
    stop = {"before t": slice(0, t), "up to t": slice(0, t + 1), "t - 1": slice(t - 1, t)}[compared]
    return float((logits_fn(ids)[:, stop] - logits_fn(other)[:, stop]).abs().max())


def check_future_leak(fn: Callable, seed: int = 2) -> str:
    """``fn(logits_fn, ids, t)``: the largest change of the logits at positions 0 .. t - 1 when
    every token at positions t, t + 1, ... is replaced by ``(token + 1) % V`` (V is the logits'
    last dimension). ``logits_fn`` maps ids (B, T) to logits (B, T, V); ids is (B, T) and
    0 < t < T. A causal model gives 0: later tokens never move earlier predictions."""
    g = torch.Generator().manual_seed(seed)
    cases = []
    for kind, sizes in {"causal": [(1, 4, 1), (2, 8, 5), (3, 6, 5)], "next": [(2, 6, 3), (1, 9, 1)],
                        "all": [(2, 5, 2), (1, 7, 6)], "last": [(2, 8, 2), (1, 6, 4)]}.items():
        for B, T, t in sizes:
            V = int(torch.randint(4, 12, (), generator=g))
            model, ids = fake_model(kind, V, g), torch.randint(0, V, (B, T), generator=g)
            cases.append(Case((model, ids, t), _leak(model, ids, t),
                              f"a {kind!r} model (see fake_model), ids of shape {(B, T)}, t = {t}"))
    mistakes = [
        Mistake("position t compared", lambda m, i, t: _leak(m, i, t, compared="up to t"),
                "you compared position t as well: its own input changed, so its logits may change "
                "even in a causal model. Only the positions before t must not move (0 .. t - 1)"),
        Mistake("only token t", lambda m, i, t: _leak(m, i, t, changed="only t"),
                "you changed only the token at position t: a model may leak from any later "
                "position (position 0 reading the last token, say). Change every token from t on"),
        Mistake("only after t", lambda m, i, t: _leak(m, i, t, changed="after t"),
                "you changed the tokens after t but not the one at t: a leak of a single step "
                "(position t - 1 reading token t) goes unnoticed. Change positions t, t + 1, ..."),
        Mistake("only t - 1", lambda m, i, t: _leak(m, i, t, compared="t - 1"),
                "you compared only position t - 1: a leak into an earlier position (0, say) goes "
                "unnoticed. Take the largest change over all positions 0 .. t - 1"),
    ]
    return run_check("check_future_leak", fn, cases, mistakes, atol=1e-6, rtol=1e-5)
