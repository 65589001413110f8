"""Checkers for chapter 8.9's exercises (a CPU speedrun): Muon's Newton–Schulz iteration, the
time to a target loss from a race's evaluations, and one step of Muon.

Muon steps a weight matrix along the semi-orthogonal matrix nearest its momentum. Five steps of
X <- a X + (b A + c A^2) X, A = X X^T, from X = G / ||G||_F push every singular value into about
[0.7, 1.2]. A worked case: for G = [[3, 0], [0, 4]], ||G||_F = 5, so steps = 0 gives
[[0.6, 0], [0, 0.8]]; one step maps each singular value s to a s + b s^3 + c s^5, here 0.6 ->
1.1933 and 0.8 -> 0.9765. The exercises:

- ``check_newton_schulz``: ``my_newton_schulz(G, steps)``, the iteration on a matrix;
- ``check_time_to_target``: ``my_time_to_target(steps, val_losses, wall, target)``, the step and
  seconds of the first evaluation at or below the target;
- ``check_muon_update``: ``my_muon_update(param, grad, buf, lr, momentum, weight_decay,
  nesterov)``, one step of :class:`~llm_lessons.frontiers.muon.MuonAdamW`'s Muon group.

The answers come from the package (:func:`~llm_lessons.frontiers.muon.newton_schulz` and the
optimizer itself) and from a reference written here; while the student's code runs,
``newton_schulz`` is forbidden in the first exercise and the optimizers' ``step`` in the third
(where calling ``newton_schulz`` is allowed: the exercise is the step around it).

>>> import torch
>>> def ns(G, steps):
...     X = G.T if G.shape[0] > G.shape[1] else G
...     X = X / X.norm().clamp(min=1e-7)
...     for _ in range(steps):
...         A = X @ X.T
...         X = 3.4445 * X + (-4.7750 * A + 2.0315 * A @ A) @ X
...     return X.T if G.shape[0] > G.shape[1] else X
>>> ns(torch.tensor([[3.0, 0.0], [0.0, 4.0]], dtype=torch.float64), 1).diagonal()
tensor([1.1933, 0.9765], dtype=torch.float64)
>>> check_newton_schulz(ns)
'check_newton_schulz: all 12 cases passed'
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from llm_lessons.exercises.checking import (
    Case,
    ExerciseFailed,
    Mistake,
    available,
    random_float,
    random_int,
    run_check,
)
from llm_lessons.frontiers.muon import NS_COEFFICIENTS, MuonAdamW, muon_lr_ratio, newton_schulz

# --- the Newton–Schulz iteration ---


def _ns(G, steps, coefficients=NS_COEFFICIENTS, norm="frobenius", back=True):
    """The iteration written out in float64; the flags give the usual wrong versions."""
    a, b, c = coefficients
    tall = G.shape[0] > G.shape[1]
    X = G.T.double() if tall else G.double()  # (m, n) -> wide (min, max)
    size = X.norm() if norm == "frobenius" else torch.linalg.matrix_norm(X, 2)
    X = X / size.clamp(min=1e-7)
    for _ in range(steps):
        A = X @ X.T  # (min, min)
        X = a * X + (b * A + c * A @ A) @ X
    return X.T if tall and back else X


def _guarded(exercise: str, fn: Callable) -> Callable:
    """``fn`` with the failures of this exercise said in words: a product whose shapes do not
    fit (X^T X where X X^T belongs), and a result with inf or NaN (no normalisation, or a zero
    norm divided by)."""

    def student(G, steps):
        try:
            X = fn(G, steps)
        except RuntimeError as error:
            if "shape" not in str(error) and "size" not in str(error):
                raise
            raise ExerciseFailed(
                f"{exercise}, G of shape {tuple(G.shape)}: your function raised RuntimeError: "
                f"{error}. A product does not fit the shapes: on the wide orientation X (m, n), "
                "m <= n, A = X X^T is (m, m) and multiplies X from the left, "
                "X <- a X + (b A + c A^2) X (X^T X is (n, n): it fits only on the right)") from error
        if isinstance(X, torch.Tensor) and X.is_floating_point() and not bool(X.isfinite().all()):
            if not bool(G.any()):
                raise ExerciseFailed(
                    f"{exercise}, a zero matrix: your result has NaN: the Frobenius norm is 0, "
                    "so clamp it before dividing, X = G / max(||G||_F, eps) with eps = 1e-7")
            raise ExerciseFailed(
                f"{exercise}, G of shape {tuple(G.shape)}, steps = {steps}: your result has inf "
                "or NaN: did you divide G by its Frobenius norm first? The iteration maps a "
                "singular value in (0, 1] into about [0.7, 1.2], but one above about 1.3 grows "
                "like s^5 at every step")
        return X

    return student


def check_newton_schulz(fn: Callable, n_cases: int = 12, seed: int = 0) -> str:
    """``fn(G, steps)``: G a float (m, n) matrix, steps >= 0. Return the (m, n) matrix of
    ``steps`` Newton–Schulz iterations: X = G / ||G||_F (the norm clamped at eps = 1e-7, so a
    zero matrix gives zeros), then steps times X <- a X + (b A + c A^2) X, A = X X^T,
    (a, b, c) = (3.4445, -4.7750, 2.0315). Work on the wide orientation: transpose a tall G
    (m > n) first, so A is the smaller Gram matrix, and transpose the result back. For
    G = [[3, 0], [0, 4]] and steps = 1: [[1.1933, 0], [0, 0.9765]]. The inputs are float64
    and the tolerance 1e-6, so dividing by ||G||_F + eps (the original Muon code) passes too."""
    g = torch.Generator().manual_seed(seed)

    def t(rows):
        return torch.tensor(rows, dtype=torch.float64)

    def randn(m, n, scale=1.0):
        return torch.randn(m, n, generator=g, dtype=torch.float64) * scale

    u, v = randn(6, 1), randn(1, 4)
    fixed = [((t([[3.0, 0.0], [0.0, 4.0]]), 1), "G = [[3, 0], [0, 4]], steps = 1"),
             ((randn(3, 8), 5), "a wide (3, 8) matrix, steps = 5"),
             ((randn(8, 3, 10.0), 5), "a tall (8, 3) matrix, steps = 5"),
             ((randn(5, 5), 5), "a square (5, 5) matrix, steps = 5"),
             ((randn(4, 6, 3.0), 0), "steps = 0: the normalised matrix"),
             ((randn(7, 2), 1), "a tall (7, 2) matrix, steps = 1"),
             ((torch.zeros(3, 5, dtype=torch.float64), 5), "a zero (3, 5) matrix"),
             ((u @ v, 5), "a rank-1 (6, 4) matrix u v^T")]
    while len(fixed) < n_cases:
        m, n, steps = random_int(g, 1, 13), random_int(g, 1, 13), random_int(g, 0, 7)
        scale = 10 ** random_float(g, 0, 2)
        fixed.append(((randn(m, n, scale), steps), f"random ({m}, {n}), steps = {steps}"))
    cases = [Case(args, newton_schulz(*args), label) for args, label in fixed]
    mistakes = [
        Mistake("reversed", lambda G, s: _ns(G, s, NS_COEFFICIENTS[::-1]),
                "your coefficients are in the wrong order: a = 3.4445 multiplies X, b = -4.7750 "
                "multiplies A X and c = 2.0315 multiplies A^2 X (each singular value s becomes "
                "a s + b s^3 + c s^5)"),
        Mistake("not transposed back", lambda G, s: _ns(G, s, back=False),
                "for a tall G you returned the wide orientation: transpose the result back, so it "
                "has G's shape (m, n)"),
        Mistake("spectral", lambda G, s: _ns(G, s, norm="spectral"),
                "you divided by the largest singular value: the iteration starts from "
                "G / ||G||_F, the Frobenius norm sqrt(sum of squares), G.norm()"),
    ]
    return run_check("check_newton_schulz", _guarded("check_newton_schulz", fn), cases, mistakes,
                     forbidden=("llm_lessons.frontiers.muon.newton_schulz",), atol=1e-7, rtol=1e-6,
                     student=fn)


# --- the time to a target loss ---


def _time_to_target(steps, losses, wall, target, how="first"):
    """(step, seconds) of the first evaluation with loss <= target, else (None, None); the flags
    give the usual wrong versions."""
    hits = [i for i, loss in enumerate(losses) if (loss < target if how == "strict" else loss <= target)]
    if not hits:
        return (steps[-1], wall[-1]) if how == "last if none" and steps else (None, None)
    i = hits[-1] if how == "last" else hits[0]
    return {"index": (i, wall[i]), "earlier": (steps[i], wall[i - 1])}.get(how, (steps[i], wall[i]))


def check_time_to_target(fn: Callable, n_cases: int = 12, seed: int = 1) -> str:
    """``fn(steps, val_losses, wall, target)``: three lists of one length, one entry per
    evaluation of a race: the step, the validation loss and the wall seconds since the start.
    Return ``(step, seconds)`` of the *first* evaluation whose loss is at or below ``target``
    (``<=``), or ``(None, None)`` when none is. For steps [50, 100, 150], losses [2.5, 1.9, 1.8],
    wall [1.0, 2.1, 3.3] and target 2.0: (100, 2.1)."""
    g = torch.Generator().manual_seed(seed)
    fixed = [(([50, 100, 150], [2.5, 1.9, 1.8], [1.0, 2.1, 3.3], 2.0), "the worked example"),
             (([50, 100, 150], [2.5, 2.0, 1.8], [1.0, 2.1, 3.3], 2.0), "a loss exactly at the target"),
             (([50, 100, 150, 200], [2.4, 1.95, 2.05, 1.9], [0.9, 1.8, 2.8, 3.7], 2.0),
              "below, back above, below again"),
             (([10, 20, 30], [3.0, 2.6, 2.2], [0.5, 1.0, 1.6], 2.0), "never reached"),
             (([100], [1.5], [4.2], 2.0), "a single evaluation, already below"),
             (([25, 50, 75], [2.9, 2.5, 1.99], [0.7, 1.3, 2.0], 2.0), "reached at the last evaluation"),
             (([], [], [], 2.0), "no evaluations at all")]
    while len(fixed) < n_cases:
        n, every = random_int(g, 2, 12), 25 * random_int(g, 1, 5)
        loss, seconds, losses, wall = random_float(g, 2.2, 4.0), 0.0, [], []
        for _ in range(n):  # a noisy descent: it may cross the target, bounce back, cross again
            loss = round(loss - random_float(g, -0.1, 0.3), 2)
            seconds = round(seconds + random_float(g, 0.5, 2.0), 3)
            losses.append(loss)
            wall.append(seconds)
        target = losses[random_int(g, 0, n)] if random_int(g, 0, 2) else round(random_float(g, 1.5, 2.5), 2)
        fixed.append((([every * (k + 1) for k in range(n)], losses, wall, target), "random"))
    cases = [Case(args, _time_to_target(*args), f"{label}: steps {args[0]}, val_losses {args[1]}, "
                  f"wall {args[2]}, target {args[3]}") for args, label in fixed]
    mistakes = [
        Mistake("strict", lambda *a: _time_to_target(*a, how="strict"),
                "you compared with <: a loss exactly at the target has reached it, so use <= "
                "(race stops when val_loss <= target)"),
        Mistake("last", lambda *a: _time_to_target(*a, how="last"),
                "you returned the last evaluation at or below the target: the race ends at the "
                "first one, even if the loss rises above the target again later"),
        Mistake("index", lambda *a: _time_to_target(*a, how="index"),
                "you returned the evaluation's position in the lists: return the training step "
                "stored there, steps[i]"),
        Mistake("earlier", lambda *a: _time_to_target(*a, how="earlier"),
                "your seconds come from the evaluation before: the lists are parallel, so the "
                "time of evaluation i is wall[i]"),
        Mistake("last if none", lambda *a: _time_to_target(*a, how="last if none"),
                "when no evaluation reaches the target you returned the last one: return "
                "(None, None), as a race that never got there has no time"),
    ]
    return run_check("check_time_to_target", fn, cases, mistakes, atol=1e-9, rtol=1e-9)


# --- one step of Muon ---


def _muon_step(param, grad, buf, lr, momentum, weight_decay, nesterov):
    """The package's optimizer, one step from ``buf``: the checker's oracle."""
    p = torch.nn.Parameter(param.clone())
    p.grad = grad.clone()
    optimizer = MuonAdamW([{"params": [p], "muon": True}], lr=lr, weight_decay=weight_decay,
                          momentum=momentum, nesterov=nesterov)
    optimizer.state[p]["momentum_buffer"] = buf.clone()
    optimizer.step()
    return p.detach().clone(), optimizer.state[p]["momentum_buffer"].clone()


def _muon(param, grad, buf, lr, momentum, weight_decay, nesterov, decay="before", ratio="rows/cols",
          use_nesterov=True, buffer="lerp"):
    """One Muon step written out; the flags give the usual wrong versions."""
    if buffer == "lerp":
        buf = momentum * buf + (1 - momentum) * grad
    elif buffer == "no 1 - m":
        buf = momentum * buf + grad
    else:  # "reversed": the new gradient kept at weight momentum
        buf = (1 - momentum) * buf + momentum * grad
    u = grad + momentum * (buf - grad) if nesterov and use_nesterov else buf
    rows, cols = param.shape
    scale = {"rows/cols": muon_lr_ratio(param.shape), "none": 1.0,
             "cols/rows": math.sqrt(max(1.0, cols / rows))}[ratio]
    if decay == "before":
        param = param * (1 - lr * weight_decay)
    new = param - lr * scale * newton_schulz(u)
    if decay == "after":
        new = new * (1 - lr * weight_decay)
    return new, buf


MUON_ANSWERS = ("llm_lessons.frontiers.muon.MuonAdamW.step", "torch.optim.Muon.step")


def check_muon_update(fn: Callable, n_cases: int = 10, seed: int = 2) -> str:
    """``fn(param, grad, buf, lr, momentum, weight_decay, nesterov)``: one step of Muon on a 2-D
    float32 weight (rows, cols) with gradient ``grad`` and momentum buffer ``buf`` (same shape).
    Return ``(new_param, new_buf)``:
    param <- param (1 - lr weight_decay); buf <- momentum buf + (1 - momentum) grad;
    u = grad + momentum (buf - grad) if nesterov else buf;
    param <- param - lr sqrt(max(1, rows / cols)) newton_schulz(u), with
    :func:`llm_lessons.frontiers.muon.newton_schulz` (5 steps) allowed. The answer is
    ``MuonAdamW``'s own step, compared to rtol 1e-5."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0):
        return torch.randn(*shape, generator=g) * scale

    shapes = [(8, 3), (3, 8), (5, 5), (12, 4), (6, 6), (4, 10)]
    hyper = [(0.02, 0.95, 0.0, True, "first step (buf = 0), no weight decay"),
             (0.02, 0.95, 0.1, True, "weight_decay 0.1, Nesterov"),
             (0.05, 0.9, 0.1, False, "weight_decay 0.1, no Nesterov"),
             (0.02, 0.95, 0.5, True, "a tall weight, weight_decay 0.5"),
             (0.01, 0.8, 0.0, False, "no Nesterov, no weight decay"),
             (0.03, 0.95, 0.2, True, "a wide weight, Nesterov")]
    fixed = []
    for k, ((rows, cols), (lr, m, wd, nesterov, label)) in enumerate(zip(shapes, hyper, strict=True)):
        buf = torch.zeros(rows, cols) if k == 0 else randn(rows, cols, scale=0.5)
        fixed.append(((randn(rows, cols), randn(rows, cols), buf, lr, m, wd, nesterov),
                      f"({rows}, {cols}), lr {lr}, momentum {m}: {label}"))
    while len(fixed) < n_cases:
        rows, cols = random_int(g, 2, 13), random_int(g, 2, 13)
        lr, m = round(random_float(g, 0.005, 0.05), 4), [0.9, 0.95, 0.98][random_int(g, 0, 3)]
        wd, nesterov = [0.0, 0.1, 0.3][random_int(g, 0, 3)], bool(random_int(g, 0, 2))
        fixed.append(((randn(rows, cols), randn(rows, cols, scale=0.1), randn(rows, cols, scale=0.05),
                       lr, m, wd, nesterov), f"random ({rows}, {cols}), lr {lr}, momentum {m}, "
                                             f"weight_decay {wd}, nesterov {nesterov}"))
    cases = [Case(args, _muon_step(*args), label) for args, label in fixed]
    mistakes = [
        Mistake("no nesterov", lambda *a: _muon(*a, use_nesterov=False),
                "with nesterov=True you orthogonalised the buffer itself: Nesterov looks ahead, "
                "u = grad + momentum (buf - grad) (grad.lerp(buf, momentum)), with the new buf"),
        Mistake("no ratio", lambda *a: _muon(*a, ratio="none"),
                "your step on a tall weight is too small: scale it by sqrt(max(1, rows / cols)), "
                "since an orthogonal update of a tall matrix has smaller entries"),
        Mistake("ratio inverted", lambda *a: _muon(*a, ratio="cols/rows"),
                "your scale is the wrong way round: sqrt(max(1, rows / cols)) grows for a tall "
                "weight (rows > cols) and is 1 for a wide one"),
        Mistake("decay after", lambda *a: _muon(*a, decay="after"),
                "you applied the weight decay after the update: shrink the weight first, "
                "param * (1 - lr * weight_decay), then subtract the orthogonalised step"),
        Mistake("no decay", lambda *a: _muon(*a, decay="none"),
                "you left out the weight decay: multiply the weight by 1 - lr * weight_decay "
                "before the step (decoupled, as in AdamW)"),
        Mistake("no 1 - m", lambda *a: _muon(*a, buffer="no 1 - m"),
                "your momentum buffer adds the whole gradient, buf = momentum buf + grad: Muon's "
                "is an average, buf = momentum buf + (1 - momentum) grad (buf.lerp(grad, "
                "1 - momentum))"),
        Mistake("momentum reversed", lambda *a: _muon(*a, buffer="reversed"),
                "your buffer keeps (1 - momentum) of the old buffer: it keeps momentum of it, "
                "buf = momentum buf + (1 - momentum) grad"),
    ]
    return run_check("check_muon_update", fn, cases, mistakes, forbidden=available(MUON_ANSWERS),
                     atol=1e-6, rtol=1e-5)
