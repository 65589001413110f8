"""Scaling laws: training compute counted exactly, Chinchilla's parametric fit, IsoFLOP minima.

Letters: N parameters, D training tokens, C training FLOPs, L loss (nats per token), and for the
model's shape C_ (channels, ``n_embd``), T context, V vocabulary.

**Compute.** A training step costs about 6 FLOPs per parameter per token: 2 for the forward
multiply-adds, 4 for the backward (a gradient for the activations and one for the weights).
:func:`exact_training_flops` counts the matrix products of the book's GPT one by one instead
(6ND itself is :func:`llm_lessons.scale.training_flops`, chapter 1's estimate), including
what 6ND leaves out: attention's scores and weighted sums, 4 T C_ per token per layer, which
matter for small models with long contexts (about 8% of the nano model's compute).

**The fit** (Hoffmann et al., 2022, approach 3): ``L(N, D) = E + A / N^alpha + B / D^beta``. E is
the loss of a perfect model (the text's own entropy); the two terms are what a finite model and
finite data cost. Fitted in log space with a Huber loss (robust to the odd bad run) from a grid of
starting points, because the surface has flat valleys. Minimising L under C = 6ND gives the
compute-optimal split ``N_opt ~ C^(beta/(alpha+beta))``, ``D_opt ~ C^(alpha/(alpha+beta))``.

**The ladder.** :func:`train_point` trains one run of an IsoFLOP ladder (a fresh GPT, its own
schedule ending at its token budget, a fixed validation set); ``scripts/scaling_sweep.py`` runs
25 of them for notebook 8.1 and ships the results in ``resources/scaling_sweep.csv``.

>>> law = ScalingLaw(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)   # Chinchilla's own fit
>>> N, D = law.compute_optimal(5.76e23)                                # Chinchilla's budget
>>> f"{N:.2e} parameters, {D:.2e} tokens"
'3.22e+10 parameters, 2.98e+12 tokens'
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np


def forward_flops_per_token(n_layer: int, n_embd: int, block_size: int, vocab_size: int) -> int:
    """Matrix-product FLOPs (2 per multiply-add) of one token's forward pass through the book's GPT.

    Per layer: q, k, v (2 C_ 3C_), output projection (2 C_ C_), MLP (2 C_ 4C_, twice), and attention
    against T keys: scores q.k and the weighted sum of values (2 T C_ each; a causal mask hides
    half of them, but a dense kernel computes them all). Then the output head (2 C_ V). Embedding
    lookups, norms, softmax and GELU are not matrix products and are left out, as in 6ND.
    """
    C_, T = n_embd, block_size
    per_layer = 2 * C_ * 3 * C_ + 2 * C_ * C_ + 2 * (2 * C_ * 4 * C_) + 2 * (2 * T * C_)
    return n_layer * per_layer + 2 * C_ * vocab_size


def exact_training_flops(n_layer: int, n_embd: int, block_size: int, vocab_size: int, tokens: int) -> int:
    """Exact matrix-product FLOPs of training on ``tokens`` tokens: 3 forward passes' worth (the
    backward pass computes two products for every one of the forward's)."""
    return 3 * tokens * forward_flops_per_token(n_layer, n_embd, block_size, vocab_size)


@dataclass(frozen=True)
class ScalingLaw:
    """``L(N, D) = E + A / N**alpha + B / D**beta`` and what follows from it."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float

    def loss(self, N, D):
        return self.E + self.A / np.asarray(N, dtype=float) ** self.alpha + self.B / np.asarray(
            D, dtype=float) ** self.beta

    def compute_optimal(self, C: float) -> tuple[float, float]:
        """(N, D) with 6ND = C and the least predicted loss (setting dL/dN = 0 along C = 6ND)."""
        a, b = self.alpha, self.beta
        G = (a * self.A / (b * self.B)) ** (1.0 / (a + b))
        N = G * (C / 6.0) ** (b / (a + b))
        return N, C / (6.0 * N)

    def tokens_per_parameter(self, C: float) -> float:
        N, D = self.compute_optimal(C)
        return D / N


def _objective(params: np.ndarray, logN: np.ndarray, logD: np.ndarray, logL: np.ndarray,
               delta: float) -> tuple[float, np.ndarray]:
    """The summed Huber loss of the log-space residuals, and its gradient in (a, b, e, alpha, beta)."""
    a, b, e, alpha, beta = params
    # log of E + A N^-alpha + B D^-beta with log A = a, log B = b, log E = e: a stable logsumexp
    terms = np.stack([a - alpha * logN, b - beta * logD, np.full_like(logN, e)])  # (3, runs)
    peak = terms.max(axis=0)
    pred = peak + np.log(np.exp(terms - peak).sum(axis=0))  # (runs,)
    w = np.exp(terms - pred)  # (3, runs): d pred / d term, a softmax over the three terms
    r = pred - logL
    small = np.abs(r) <= delta
    loss = np.where(small, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta)).sum()
    slope = np.where(small, r, delta * np.sign(r))  # d huber / d pred
    grad = np.array([(slope * w[0]).sum(), (slope * w[1]).sum(), (slope * w[2]).sum(),
                     -(slope * w[0] * logN).sum(), -(slope * w[1] * logD).sum()])
    return float(loss), grad


def fit_scaling_law(N, D, L, delta: float = 1e-3, starts=None) -> ScalingLaw:
    """Chinchilla's fit: minimise the Huber loss of log-space residuals with L-BFGS from every
    point of a grid of 243 starting values (exponents 0, 1, 2; log A and log B 0, 10, 20; log E
    -1, 0, 1), and keep the best.

    ``starts`` replaces the grid by an explicit list of (log A, log B, log E, alpha, beta).
    """
    from scipy.optimize import minimize  # noqa: PLC0415 (only the fit needs scipy)

    N, D, L = (np.asarray(x, dtype=float) for x in (N, D, L))
    if not (N.shape == D.shape == L.shape) or N.ndim != 1:
        raise ValueError(f"N, D and L must be 1-d and of one length, got {N.shape}, {D.shape}, {L.shape}")
    if len(N) < 5:
        raise ValueError(f"five parameters need at least five runs, got {len(N)}")
    if (N <= 0).any() or (D <= 0).any() or (L <= 0).any():
        raise ValueError("N, D and L must all be positive (the fit works with their logarithms)")
    logs = (np.log(N), np.log(D), np.log(L), delta)
    if starts is None:
        starts = itertools.product([0.0, 10.0, 20.0], [0.0, 10.0, 20.0], [-1.0, 0.0, 1.0],
                                   [0.0, 1.0, 2.0], [0.0, 1.0, 2.0])
    best = None
    for start in starts:
        result = minimize(_objective, np.array(start, dtype=float), args=logs, method="L-BFGS-B", jac=True,
                          options={"ftol": 1e-15, "gtol": 1e-11, "maxiter": 5000})
        if best is None or result.fun < best.fun:
            best = result
    a, b, e, alpha, beta = best.x
    return ScalingLaw(E=math.exp(e), A=math.exp(a), B=math.exp(b), alpha=float(alpha), beta=float(beta))


def isoflop_minimum(N, L) -> tuple[float, float]:
    """The size with the least loss at one compute budget: a parabola in log N through the runs
    (Chinchilla's approach 2), and its vertex (N_opt, L_min). Needs a minimum inside the runs."""
    x, y = np.log(np.asarray(N, dtype=float)), np.asarray(L, dtype=float)
    if len(x) < 3:
        raise ValueError(f"a parabola needs at least three sizes, got {len(x)}")
    c2, c1, c0 = np.polyfit(x, y, 2)
    if c2 <= 0:
        raise ValueError("the losses do not curve upward in log N: no minimum between the sizes run")
    x_min = -c1 / (2 * c2)
    if not x.min() <= x_min <= x.max():
        raise ValueError(f"the fitted minimum (N = {math.exp(x_min):.3g}) lies outside the sizes run")
    return math.exp(x_min), float(c0 - c1**2 / (4 * c2))


def bootstrap_fits(N, D, L, n_boot: int = 200, seed: int = 0, delta: float = 1e-3) -> list[ScalingLaw]:
    """Refit on ``n_boot`` resamples of the runs (with replacement), each started from the full
    fit: the spread of the exponents is their uncertainty given these runs."""
    N, D, L = (np.asarray(x, dtype=float) for x in (N, D, L))
    full = fit_scaling_law(N, D, L, delta)
    start = [(math.log(full.A), math.log(full.B), math.log(full.E), full.alpha, full.beta)]
    rng = np.random.default_rng(seed)
    fits = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(N), len(N))
        fits.append(fit_scaling_law(N[pick], D[pick], L[pick], delta, starts=start))
    return fits


def train_point(n_layer: int, n_embd: int, tokens: int, train_ids, val_ids, *, vocab_size: int,
                block_size: int = 64, batch_size: int = 16, lr: float = 3e-3,
                val_tokens: int = 32_768, seed: int = 0, device=None) -> dict:
    """Train one rung of a scaling ladder: a fresh GPT of this shape on ``tokens`` training tokens
    (rounded down to whole batches), with its own warmup + cosine schedule ending exactly there,
    then its loss on a fixed validation set: the whole windows of the first ``val_tokens``
    validation tokens. Heads of 16 channels; no dropout (each token is seen about once).

    Returns the shape, N (``num_params``), D (tokens trained on), both FLOP counts (6ND and
    :func:`exact_training_flops`), the validation loss and the seconds it took.
    """
    import time  # noqa: PLC0415

    from llm_lessons.gpt import GPT, GPTConfig  # noqa: PLC0415
    from llm_lessons.reproducibility import set_seed  # noqa: PLC0415
    from llm_lessons.training import TrainConfig, evaluate, train  # noqa: PLC0415

    steps = tokens // (batch_size * block_size)
    if steps < 1:
        raise ValueError(f"{tokens} tokens make no whole batch of {batch_size} x {block_size}")
    set_seed(seed)  # the initial weights
    model = GPT(GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer,
                          n_head=max(1, n_embd // 16), n_embd=n_embd, dropout=0.0)).to(device or "cpu")
    config = TrainConfig(max_steps=steps, batch_size=batch_size, lr=lr,
                         warmup_steps=max(1, min(100, steps // 10)), eval_interval=steps,
                         eval_batches=1, eval_batch_size=8, seed=seed, progress=False)
    start = time.perf_counter()
    train(model, train_ids, val_ids, config)
    seconds = time.perf_counter() - start
    D = steps * batch_size * block_size
    N = model.num_params()
    return dict(n_layer=n_layer, n_embd=n_embd, N=N, D=D, steps=steps, flops_6nd=6 * N * D,
                flops_exact=exact_training_flops(n_layer, n_embd, block_size, vocab_size, D),
                val_loss=evaluate(model, val_ids[:val_tokens + 1], block_size), seconds=seconds)
