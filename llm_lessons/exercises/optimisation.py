"""Checkers for chapter 3.2's exercises: the learning-rate schedule and gradient-norm clipping.

Both are a few lines in a training loop, and both fail silently when wrong: a schedule off by
one wastes a step at learning rate 0, and clipping each tensor separately changes the direction
of the update. The answers come from references written here, not from
:func:`llm_lessons.training.lr_at` or ``torch.nn.utils.clip_grad_norm_`` (both forbidden).

>>> import math
>>> def schedule(step, peak, warmup, total, low):
...     if step < warmup:
...         return peak * (step + 1) / warmup
...     progress = min(1.0, (step - warmup) / max(1, total - warmup))
...     return low + (peak - low) * (1 + math.cos(math.pi * progress)) / 2
>>> check_lr_schedule(schedule)
'check_lr_schedule: all 16 cases passed'
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from llm_lessons.exercises.checking import Case, Mistake, available, run_check


def _lr(step, peak, warmup, total, low, warm="next", decay="cosine", over="rest"):
    """Warmup then cosine decay, step 0-based; the flags give the usual wrong versions."""
    if step < warmup:
        if warm == "none":
            return peak
        return peak * (step + 1 if warm == "next" else step) / warmup
    span, done = (total - warmup, step - warmup) if over == "rest" else (total, step)
    progress = min(1.0, done / max(1, span))
    if decay == "linear":
        return low + (peak - low) * (1 - progress)
    if decay == "to zero":
        low = 0.0
    return low + (peak - low) * (1 + math.cos(math.pi * progress)) / 2


def check_lr_schedule(fn: Callable, n_cases: int = 16, seed: int = 0) -> str:
    """``fn(step, peak_lr, warmup_steps, max_steps, min_lr)``: the learning rate of optimizer step
    ``step`` (0-based). Warmup climbs linearly and reaches the peak at step warmup_steps - 1
    (``peak * (step + 1) / warmup_steps``); then a half cosine falls from the peak at step
    warmup_steps to ``min_lr`` at step max_steps, and stays there after it."""
    g = torch.Generator().manual_seed(seed)
    fixed = [((0, 1.0, 10, 100, 0.1), "step 0 of a 10-step warmup"),
             ((9, 1.0, 10, 100, 0.1), "the last warmup step"),
             ((10, 3e-3, 10, 100, 3e-4), "the first step after warmup"),
             ((55, 1.0, 10, 100, 0.0), "half way through the decay"),
             ((100, 1.0, 10, 100, 0.1), "step max_steps"),
             ((130, 1.0, 10, 100, 0.1), "after max_steps"),
             ((0, 0.5, 0, 40, 0.05), "no warmup at all, step 0"),
             ((25, 0.5, 0, 40, 0.05), "no warmup at all")]
    cases = [Case(args, _lr(*args), f"{label}: (step, peak, warmup, max_steps, min_lr) = {args}")
             for args, label in fixed]
    while len(cases) < n_cases:
        total = int(torch.randint(20, 400, (), generator=g))
        warmup = int(torch.randint(1, total // 4, (), generator=g))
        step = int(torch.randint(0, total, (), generator=g))
        peak = round(float(torch.rand((), generator=g)) * 5e-3 + 1e-4, 6)
        args = (step, peak, warmup, total, round(peak * 0.1, 7))
        cases.append(Case(args, _lr(*args), f"(step, peak, warmup, max_steps, min_lr) = {args}"))
    mistakes = [
        Mistake("warmup from zero", lambda *a: _lr(*a, warm="this"),
                "your warmup starts at 0 (peak * step / warmup_steps): step 0 then trains with "
                "learning rate 0 and the peak comes one step late. Use (step + 1) / warmup_steps"),
        Mistake("no warmup", lambda *a: _lr(*a, warm="none"),
                "you skipped the warmup: during the first warmup_steps steps the rate must climb "
                "linearly to the peak, not start there"),
        Mistake("to zero", lambda *a: _lr(*a, decay="to zero"),
                "your cosine ends at 0, not at min_lr: decay the distance peak - min_lr and add "
                "min_lr back"),
        Mistake("linear", lambda *a: _lr(*a, decay="linear"),
                "your rate falls along a straight line; the schedule is a half cosine: "
                "min_lr + (peak - min_lr) * (1 + cos(pi * progress)) / 2"),
        Mistake("progress over every step", lambda *a: _lr(*a, over="all"),
                "your cosine's progress counts from step 0 over max_steps, so it has already "
                "fallen when the warmup ends: progress = (step - warmup) / (max_steps - warmup)"),
    ]
    return run_check("check_lr_schedule", fn, cases, mistakes, forbidden=("llm_lessons.training.lr_at",))


def _clip(grads, max_norm, how="global", norm_out="before"):
    """(clipped gradients, total norm); the flags give the usual wrong versions."""
    squares = [float((gr.double() ** 2).sum()) for gr in grads]
    total = math.sqrt(sum(squares))
    if how == "each":
        out = [gr * min(1.0, max_norm / (math.sqrt(s) + 1e-6)) for gr, s in zip(grads, squares, strict=True)]
    else:
        scale = max_norm / (total + 1e-6)
        out = [gr * (scale if how == "always" else min(1.0, scale)) for gr in grads]
    if norm_out == "after":
        total = math.sqrt(sum(float((o.double() ** 2).sum()) for o in out))
    return out, total


def check_clip_grad_norm(fn: Callable, n_cases: int = 12, seed: int = 1) -> str:
    """``fn(grads, max_norm)`` returns ``(clipped, total_norm)``: ``grads`` is a list of tensors
    (one per parameter), ``total_norm`` the L2 norm of all of them together (as if flattened into
    one vector) before clipping; when it exceeds max_norm, every tensor is multiplied by the same
    factor max_norm / total_norm, otherwise the gradients are returned unchanged."""
    g, t = torch.Generator().manual_seed(seed), torch.tensor
    cases = [Case(([t([3.0, 4.0])], 1.0), _clip([t([3.0, 4.0])], 1.0), "one gradient [3, 4], max_norm 1"),
             Case(([t([0.3]), t([[0.4]])], 1.0), _clip([t([0.3]), t([[0.4]])], 1.0),
                  "gradients [0.3] and [[0.4]] (total norm 0.5), max_norm 1: nothing to clip")]
    while len(cases) < n_cases:
        n_tensors = int(torch.randint(2, 5, (), generator=g))
        dims = [int(torch.randint(1, 3, (), generator=g)) for _ in range(n_tensors)]  # 1-D or 2-D
        shapes = [tuple(torch.randint(1, 5, (d,), generator=g).tolist()) for d in dims]
        grads = [torch.randn(s, generator=g) * float(torch.rand((), generator=g) * 4) for s in shapes]
        total = _clip(grads, 1.0)[1]
        max_norm = round(total * float(torch.rand((), generator=g) * 1.6 + 0.2), 3)  # clips about 2 in 3
        if abs(max_norm - total) < 1e-3 * total:  # float32 could decide either way
            continue
        cases.append(Case((grads, max_norm), _clip(grads, max_norm),
                          f"{len(grads)} gradients of shapes {shapes}, total norm {total:.3f}, "
                          f"max_norm {max_norm}"))
    mistakes = [
        Mistake("each", lambda gr, m: _clip(gr, m, how="each"),
                "you clipped each tensor to max_norm separately; the norm is over ALL the "
                "gradients together, and one common factor keeps the update's direction"),
        Mistake("always", lambda gr, m: _clip(gr, m, how="always"),
                "you rescaled gradients that were already below max_norm, making them larger: "
                "clipping only ever shrinks (factor min(1, max_norm / total_norm))"),
        Mistake("norm after", lambda gr, m: _clip(gr, m, norm_out="after"),
                "the clipping looks right but you returned the norm after clipping; return the "
                "total norm before it (what a training log plots to spot spikes)"),
    ]
    forbidden = available(("torch.nn.utils.clip_grad_norm_", "torch.nn.utils.clip_grads_with_norm_",
                           "torch.nn.utils.get_total_norm"))
    return run_check("check_clip_grad_norm", fn, cases, mistakes, forbidden=forbidden)
