"""A mixture-of-experts feed-forward layer: a router sends each token to k of E SwiGLU experts.

Shapes use fixed letters: B batch, T time, C channels, N = B*T tokens, E experts, k experts
per token.

A dense model spends all its feed-forward parameters on every token. A **mixture of experts**
(Shazeer et al., 2017; Switch Transformer, 2021; Mixtral, 2024) keeps E feed-forward layers but
runs only k of them per token, chosen by a learned router: E times the parameters for about
k times the compute. Mixtral's rule, used here:

1. router logits ``r = x W_r`` (N, E); probabilities ``p = softmax(r)``;
2. the k most probable experts, their probabilities renormalised to sum to 1;
3. the output is the weighted sum of those k experts' outputs.

Left alone, a router collapses onto a few experts (the ones chosen early get trained, so they
get chosen more). The **load-balancing loss** (Switch Transformer, eq. 4–6) pushes back:
``E * sum_e f_e P_e``, with f_e the share of the N*k assignments that went to expert e and P_e
its mean router probability. A uniform router gives k (its minimum for the hard counts);
one that sends everything to the same k experts gives E.

>>> moe = MoEFeedForward(n_embd=8, hidden=16, n_expert=4, top_k=2)
>>> y, aux = moe(torch.randn(2, 3, 8)), moe.aux_loss
>>> y.shape, moe.router_logits.shape     # every token's logits over the 4 experts
(torch.Size([2, 3, 8]), torch.Size([6, 4]))
>>> load_balancing_loss(torch.zeros(6, 4), top_k=2)   # P uniform: k, however the ties fall
tensor(2.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from llm_lessons.frontiers.layers import SwiGLU


def route(router_logits: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, E) logits -> the chosen experts (N, k) and their weights (N, k), which sum to 1.

    >>> idx, w = route(torch.tensor([[0.0, 2.0, 1.0]]), top_k=2)
    >>> idx.tolist(), [round(v, 4) for v in w[0].tolist()]   # e^2 / (e^2 + e^1) = 0.7311
    ([[1, 2]], [0.7311, 0.2689])
    """
    probs = F.softmax(router_logits.float(), dim=-1)  # (N, E), in float32 whatever the input
    weights, experts = probs.topk(top_k, dim=-1)  # (N, k) each
    return experts, weights / weights.sum(dim=-1, keepdim=True)


def load_balancing_loss(router_logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """``E * sum_e f_e * P_e`` over the rows of (N, E) router logits (stack several layers' rows
    to pool them, as Mixtral does)."""
    N, E = router_logits.shape
    probs = F.softmax(router_logits.float(), dim=-1)  # (N, E)
    chosen = probs.topk(top_k, dim=-1).indices  # (N, k)
    f = F.one_hot(chosen, E).sum(dim=(0, 1)).float() / N  # (E,): assignments per token, sums to k
    P = probs.mean(dim=0)  # (E,): mean router probability
    return E * (f * P).sum()


class MoEFeedForward(nn.Module):
    """``forward(x)``: (B, T, C) -> (B, T, C) through k of ``n_expert`` SwiGLU experts per token.

    After each call, ``router_logits`` (N, E) and ``aux_loss`` (this layer's load-balancing
    loss) hold what the router did; ``load`` (E,) is each expert's share of the assignments.
    """

    def __init__(self, n_embd: int, hidden: int, n_expert: int, top_k: int = 2, dropout: float = 0.0):
        super().__init__()
        if not 1 <= top_k <= n_expert:
            raise ValueError(f"top_k must be between 1 and n_expert ({n_expert}), got {top_k}")
        self.n_expert, self.top_k = n_expert, top_k
        self.router = nn.Linear(n_embd, n_expert, bias=False)
        self.experts = nn.ModuleList(SwiGLU(n_embd, hidden) for _ in range(n_expert))
        self.dropout = nn.Dropout(dropout)
        self.router_logits: torch.Tensor | None = None
        self.aux_loss: torch.Tensor | None = None

    @property
    def load(self) -> torch.Tensor:
        """Each expert's share of the last call's token-to-expert assignments (E,), sums to 1."""
        chosen, _ = route(self.router_logits.detach(), self.top_k)
        return F.one_hot(chosen, self.n_expert).sum(dim=(0, 1)).float() / chosen.numel()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        flat = x.reshape(B * T, C)  # (B, T, C) -> (N, C): routing is per token
        self.router_logits = self.router(flat)  # (N, E)
        self.aux_loss = load_balancing_loss(self.router_logits, self.top_k)
        chosen, weights = route(self.router_logits, self.top_k)  # (N, k) each
        out = torch.zeros_like(flat)
        for e, expert in enumerate(self.experts):
            rows, slot = torch.where(chosen == e)  # the tokens sent to expert e, and in which slot
            if rows.numel():  # an expert nobody chose costs nothing
                y = expert(flat[rows]) * weights[rows, slot, None].to(flat.dtype)  # (n_e, C)
                out.index_add_(0, rows, y)
        return self.dropout(out.view(B, T, C))  # (N, C) -> (B, T, C)
