"""Checkers for chapter 7.3's exercises: when compiling pays off, gradient accumulation, and
the slice of the global batch each data-parallel process trains on.

The tools of 7.3 trade one cost for another, and the bookkeeping is where mistakes hide: a
compile that is never amortised, accumulated micro-batches whose gradient is k times too large,
processes that all train on the same windows. The answers come from references written here;
the batch slice must not call :func:`llm_lessons.frontiers.distributed.sharded` (forbidden).

>>> import math
>>> def break_even(compile_s, eager_s, compiled_s):
...     saved = eager_s - compiled_s
...     return math.ceil(compile_s / saved) if saved > 0 else math.inf
>>> check_break_even_steps(break_even)
'check_break_even_steps: all 9 cases passed'
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from llm_lessons.exercises.checking import Case, Mistake, random_float, random_int, run_check

# --- break-even steps of a compile ---


def _break_even(compile_s, eager_s, compiled_s, how="right"):
    """The fewest whole steps n with compile_s + n * compiled_s <= n * eager_s (inf if never)."""
    saved = eager_s - compiled_s
    if how == "no compile time":
        return 0 if saved > 0 else math.inf
    if how == "wrong way":
        return saved / compile_s
    if how == "over compiled step":
        return math.ceil(compile_s / compiled_s)
    if saved <= 0:
        return math.inf
    if how == "floor":
        return math.floor(compile_s / saved)
    # the integer search guards the ceiling against float error (3.0000000001 -> 4 is wrong)
    n = math.ceil(compile_s / saved)
    while n > 0 and compile_s + (n - 1) * compiled_s <= (n - 1) * eager_s:
        n -= 1
    while compile_s + n * compiled_s > n * eager_s:
        n += 1
    return n


def check_break_even_steps(fn: Callable, n_cases: int = 9, seed: int = 0) -> str:
    """``fn(compile_s, eager_s, compiled_s)``: compiling costs ``compile_s`` seconds once, then
    each step takes ``compiled_s`` instead of ``eager_s``. Return the fewest whole steps after
    which the compiled run has taken no longer in total, or ``math.inf`` if it never catches up."""
    g = torch.Generator().manual_seed(seed)
    fixed = [((30.0, 0.05, 0.04), "30 s to compile, 50 ms -> 40 ms a step"),
             ((10.0, 0.5, 0.3), "10 s to compile, 0.5 s -> 0.3 s a step"),
             ((7.0, 0.2, 0.2), "no step is faster"),
             ((5.0, 0.1, 0.12), "the compiled step is slower"),
             ((12.0, 2.0, 1.0), "an exact multiple: 12 s / 1 s saved")]
    cases = [Case(args, _break_even(*args), label) for args, label in fixed]
    while len(cases) < n_cases:
        eager = random_float(g, 0.01, 1.0)
        args = (random_float(g, 1.0, 60.0), eager, eager * random_float(g, 0.3, 0.95))
        label = f"compile {args[0]:.1f} s, steps {args[1]:.3f} s -> {args[2]:.3f} s"
        cases.append(Case(args, _break_even(*args), label))
    mistakes = [
        Mistake("no compile time", lambda *a: _break_even(*a, how="no compile time"),
                "you left out the compile time: the compiled run starts that many seconds behind"),
        Mistake("wrong way", lambda *a: _break_even(*a, how="wrong way"),
                "you divided the wrong way round: the steps needed are the compile time divided "
                "by the time saved per step"),
        Mistake("over compiled step", lambda *a: _break_even(*a, how="over compiled step"),
                "you divided the compile time by the compiled step time: divide by the time "
                "*saved* per step, eager minus compiled"),
        Mistake("floor", lambda *a: _break_even(*a, how="floor"),
                "you rounded down: after that many steps the compiled run is still behind. "
                "Round up (the fewest whole steps)"),
    ]
    return run_check("check_break_even_steps", fn, cases, mistakes, atol=0.0, rtol=1e-9)


# --- gradient accumulation ---


def _accumulate(model, x, y, micro, how="right"):
    """Gradients (one per parameter) of the mean loss over the whole batch, from ``micro``
    equal micro-batches; the flags give the usual wrong versions."""
    for p in model.parameters():
        p.grad = None
    parts = list(zip(x.chunk(micro), y.chunk(micro), strict=True))
    for xm, ym in parts:
        if how.startswith("last only"):
            for p in model.parameters():
                p.grad = None  # zero_grad inside the loop
        _, loss = model(xm, ym)
        (loss if how in ("undivided", "last only, undivided") else loss / len(parts)).backward()
    grads = [p.grad.detach().clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = None
    return grads


class _Tiny(nn.Module):
    """A two-layer next-token model: idx (B, T) -> logits (B, T, V) and the mean loss."""

    block_size = 6

    def __init__(self, vocab: int, width: int):
        super().__init__()
        self.emb, self.out = nn.Embedding(vocab, width), nn.Linear(width, vocab)

    def forward(self, idx, targets=None):
        logits = self.out(torch.tanh(self.emb(idx)))  # (B, T, C) -> (B, T, V)
        loss = None if targets is None else nn.functional.cross_entropy(
            logits.flatten(0, 1), targets.flatten())  # (B*T, V) against (B*T,)
        return logits, loss


def check_accumulated_gradients(fn: Callable, n_cases: int = 6, seed: int = 1) -> str:
    """``fn(model, x, y, micro_batches)``: x and y are (B, T) with B divisible by
    ``micro_batches``; ``model(x, y)`` returns (logits, mean loss). Run the batch as
    ``micro_batches`` equal micro-batches, one backward each, and return the list of
    accumulated gradients (``p.grad`` of every parameter, in ``model.parameters()`` order):
    they must equal the gradient of the mean loss over the whole batch."""
    g = torch.Generator().manual_seed(seed)
    cases = []
    for i, (batch, micro) in enumerate([(4, 1), (4, 2), (6, 3), (8, 4), (6, 2), (8, 8)][:n_cases]):
        torch.manual_seed(seed * 100 + i)  # the model's initial weights
        vocab = random_int(g, 3, 8)
        model = _Tiny(vocab, random_int(g, 2, 6))
        x = torch.randint(vocab, (batch, 6), generator=g)
        y = torch.randint(vocab, (batch, 6), generator=g)
        cases.append(Case((model, x, y, micro), _accumulate(model, x, y, micro),
                          f"batch {batch} as {micro} micro-batches"))
    mistakes = [
        Mistake("undivided", lambda *a: _accumulate(*a, how="undivided"),
                "your gradients are micro_batches times too large: each micro-batch's loss is "
                "a mean over its own windows, so divide it by the number of micro-batches "
                "before backward"),
        *[Mistake(how, lambda *a, how=how: _accumulate(*a, how=how),
                  "you kept only the last micro-batch's gradient: zero the gradients once, "
                  "before the first micro-batch, and let backward add into p.grad")
          for how in ("last only", "last only, undivided")],
    ]
    return run_check("check_accumulated_gradients", fn, cases, mistakes, atol=1e-6, rtol=1e-4)


# --- each process's slice of the global batch ---


def _windows(data, batch_size, block_size, seed):
    """B random windows and their shifted targets, drawn as random_windows draws them."""
    generator = torch.Generator().manual_seed(seed)
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)  # (B,)
    rows = starts[:, None] + torch.arange(block_size + 1)  # (B, T + 1)
    return data[rows][:, :-1], data[rows][:, 1:]


def _slice(data, batch_size, block_size, seed, rank, world, how="right"):
    if how == "own draw":  # every process draws B windows from the same seed: identical batches
        return _windows(data, batch_size, block_size, seed)
    x, y = _windows(data, batch_size * world, block_size, seed)  # (W*B, T) each
    if how == "strided":
        return x[rank::world], y[rank::world]
    return x[rank * batch_size:(rank + 1) * batch_size], y[rank * batch_size:(rank + 1) * batch_size]


def check_process_batch(fn: Callable, seed: int = 2) -> str:
    """``fn(data, batch_size, block_size, seed, rank, world)``: the windows process ``rank`` of
    ``world`` trains on. Every process draws the same global batch of ``world * batch_size``
    windows with ``random_windows`` from ``torch.Generator().manual_seed(seed)`` and keeps its
    contiguous slice, rows ``rank * batch_size`` up to ``(rank + 1) * batch_size``: return
    ``(x, y)``, each (batch_size, block_size)."""
    g = torch.Generator().manual_seed(seed)
    data = torch.randint(50, (400,), generator=g)
    settings = [(2, 4, 0, 0, 2), (2, 4, 0, 1, 2), (3, 5, 7, 2, 4), (4, 3, 1, 0, 1), (1, 8, 5, 3, 4)]
    cases = [Case((data, b, t, s, r, w), _slice(data, b, t, s, r, w),
                  f"batch_size {b}, block_size {t}, seed {s}, rank {r} of {w}")
             for b, t, s, r, w in settings]
    mistakes = [
        Mistake("own draw", lambda *a: _slice(*a, how="own draw"),
                "every process drew batch_size windows from the same seed, so all processes "
                "train on the same windows: draw world * batch_size windows, then keep your slice"),
        Mistake("strided", lambda *a: _slice(*a, how="strided"),
                "you took every world-th window: the slice is the contiguous rows "
                "rank * batch_size to (rank + 1) * batch_size"),
    ]
    return run_check("check_process_batch", fn, cases, mistakes,
                     forbidden=["llm_lessons.frontiers.distributed.sharded"])
