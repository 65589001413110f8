"""Muon: momentum, then the update matrix orthogonalised by a Newton–Schulz iteration.

Adam scales every weight's step by that weight's own gradient history. Muon (Jordan et al.,
2024) treats a weight *matrix* as one object: it keeps a momentum of the gradient G, as SGD
does, and steps along the closest semi-orthogonal matrix to it, U V^T where G = U S V^T, so
every direction the gradient spans moves by the same amount, however small its singular value.
An SVD per matrix per step would be slow; five steps of a quintic Newton–Schulz iteration,

    X <- a X + (b A + c A^2) X,   A = X X^T,   (a, b, c) = (3.4445, -4.7750, 2.0315),

push every singular value of X = G / ||G||_F into roughly [0.7, 1.2] with matrix products only.

Muon is only for the hidden matrices of the blocks. The embedding (a lookup table, not a linear
map of its input), the tied output head and the vectors (norm gains, biases) keep AdamW: the
same split as the speedrun records that made Muon known. :class:`MuonAdamW` is one optimizer
holding both kinds of groups, so the book's :func:`~llm_lessons.training.train` drives it as
it drives AdamW: it multiplies each group's ``lr_scale`` into the scheduled learning rate.

PyTorch's own ``torch.optim.Muon`` (torch >= 2.9) is the oracle of the Muon groups
(``tests/test_speedrun.py``); here the iteration runs in float32, as it does there on the
book's CPUs only up to rounding (PyTorch iterates in bfloat16).

>>> X = newton_schulz(torch.randn(8, 16, generator=torch.Generator().manual_seed(0)))
>>> s = torch.linalg.svdvals(X)
>>> bool(s.min() > 0.5) and bool(s.max() < 1.3)   # every direction about the same length
True
"""

from __future__ import annotations

import math

import torch
from torch import nn

from llm_lessons.training import decay_groups
from llm_lessons.validation import check_int, check_real

#: The quintic iteration's coefficients, chosen to make the slope at 0 as steep as possible.
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
#: Muon's learning rate in the book's recipe (chapter 3.2), the record table's choice (8.9).
MUON_LR = 0.04


def newton_schulz(G: torch.Tensor, steps: int = 5, coefficients=NS_COEFFICIENTS,
                  eps: float = 1e-7) -> torch.Tensor:
    """An approximately semi-orthogonal matrix with G's singular vectors, for G (m, n), or for
    each matrix of a stack (k, m, n) at once (one batched product instead of k small ones).

    The iteration works on the wide orientation (m <= n), so X X^T is the smaller Gram matrix.
    """
    if not isinstance(G, torch.Tensor) or G.dim() not in (2, 3):
        raise ValueError(f"newton_schulz needs a matrix (m, n) or a stack (k, m, n), got "
                         f"{tuple(G.shape) if isinstance(G, torch.Tensor) else type(G).__name__}")
    check_int(steps, "steps", low=0, high=99)
    a, b, c = coefficients
    tall = G.shape[-2] > G.shape[-1]
    X = G.mT if tall else G  # (k, m, n) with m <= n
    X = X / X.norm(dim=(-2, -1), keepdim=True).clamp(min=eps)  # Frobenius >= spectral norm
    batched = X.dim() == 3
    X = X if batched else X[None]  # (m, n) -> (1, m, n)
    for _ in range(steps):
        A = X @ X.mT  # (k, m, m)
        B = torch.baddbmm(A, A, A, beta=b, alpha=c)  # b A + c A^2
        X = torch.baddbmm(X, B, X, beta=a)  # a X + B X
    X = X if batched else X[0]
    return X.mT if tall else X


def muon_lr_ratio(shape: torch.Size) -> float:
    """Muon's per-matrix scale sqrt(max(1, rows / cols)): a tall matrix's orthogonal update has
    smaller entries, so it takes a larger step ("original" in ``torch.optim.Muon``)."""
    return math.sqrt(max(1.0, shape[0] / shape[1]))


class MuonAdamW(torch.optim.Optimizer):
    """Muon for the groups marked ``muon=True``, AdamW (decoupled decay) for the others.

    A Muon group steps: buf <- m buf + (1 - m) g; u = g + m (buf - g) (Nesterov) or buf;
    p <- p (1 - lr wd) - lr sqrt(max(1, rows/cols)) NS(u). An AdamW group steps exactly as
    ``torch.optim.AdamW`` does. Build one with :func:`muon_optimizer`.
    """

    def __init__(self, groups, lr: float = 1e-3, betas=(0.9, 0.99), eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.95, nesterov: bool = True,
                 ns_steps: int = 5):
        check_real(lr, "lr", low=0.0, low_open=True)
        check_real(momentum, "momentum", low=0.0, high=1.0, high_open=True)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        momentum=momentum, nesterov=nesterov, ns_steps=ns_steps, muon=False,
                        lr_scale=1.0)
        super().__init__(groups, defaults)
        for group in self.param_groups:
            if group["muon"] and any(p.dim() != 2 for p in group["params"]):
                raise ValueError("a Muon group may hold only 2-D weight matrices")

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, wd = group["lr"], group["weight_decay"]
            params = [p for p in group["params"] if p.grad is not None]
            if params and wd:
                torch._foreach_mul_(params, 1 - lr * wd)  # decoupled weight decay, as in AdamW
            if group["muon"]:
                self._muon_step(params, group)
            else:
                self._adamw_step(params, group)
        return loss

    def _muon_step(self, params: list[torch.Tensor], group: dict) -> None:
        by_shape: dict[torch.Size, list[torch.Tensor]] = {}
        for p in params:  # matrices of one shape are orthogonalised together
            by_shape.setdefault(p.shape, []).append(p)
        m = group["momentum"]
        for shape, same in by_shape.items():
            grads = torch.stack([p.grad for p in same])  # (k, rows, cols)
            bufs = [self.state[p].setdefault("momentum_buffer", torch.zeros_like(p)) for p in same]
            buf = torch.stack(bufs).lerp_(grads, 1 - m)  # buf <- m buf + (1 - m) g
            for b, new in zip(bufs, buf, strict=True):
                b.copy_(new)
            u = grads.lerp_(buf, m) if group["nesterov"] else buf  # Nesterov: g + m (buf - g)
            update = newton_schulz(u, group["ns_steps"])
            step = -group["lr"] * muon_lr_ratio(shape)
            torch._foreach_add_(same, list(update.unbind(0)), alpha=step)

    def _adamw_step(self, params: list[torch.Tensor], group: dict) -> None:
        (b1, b2), eps = group["betas"], group["eps"]
        for p in params:
            state = self.state[p]
            if not state:  # the step count is a tensor, as in torch.optim.AdamW
                state["step"] = torch.tensor(0.0)
                state["exp_avg"], state["exp_avg_sq"] = torch.zeros_like(p), torch.zeros_like(p)
            state["step"] += 1
            t = float(state["step"])
            g, mean, sq = p.grad, state["exp_avg"], state["exp_avg_sq"]
            mean.lerp_(g, 1 - b1)
            sq.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (sq.sqrt() / math.sqrt(1 - b2**t)).add_(eps)
            p.addcdiv_(mean, denom, value=-group["lr"] / (1 - b1**t))


def muon_optimizer(model: nn.Module, lr: float, muon_lr: float = MUON_LR, weight_decay: float = 0.1,
                   betas=(0.9, 0.99), momentum: float = 0.95) -> MuonAdamW:
    """Muon (at ``muon_lr``) for the 2-D weights inside ``model.blocks``; AdamW at ``lr`` for the
    rest (embeddings and tied head with weight decay, vectors without).

    The Muon group's ``lr_scale = muon_lr / lr`` keeps the ratio when a schedule sets ``lr``.
    """
    blocks = {id(p) for p in model.blocks.parameters()}
    params = [p for p in model.parameters() if p.requires_grad]
    hidden = [p for p in params if p.dim() == 2 and id(p) in blocks]
    taken = {id(p) for p in hidden}
    rest = [p for p in params if id(p) not in taken]  # AdamW's, split as make_optimizer splits
    groups = [{"params": hidden, "muon": True, "lr": muon_lr, "lr_scale": muon_lr / lr},
              *decay_groups(rest, weight_decay)]
    return MuonAdamW([g for g in groups if g["params"]], lr=lr, betas=betas,
                     weight_decay=weight_decay, momentum=momentum)
