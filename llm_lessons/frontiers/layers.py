"""The two layers a modern decoder swaps in: RMSNorm for LayerNorm, SwiGLU for the GELU MLP.

Shapes use fixed letters: B batch, T time, C channels (``n_embd``), H the feed-forward width.

**RMSNorm** (Zhang & Sennrich, 2019) keeps LayerNorm's rescaling and drops its re-centring and
bias: ``x / sqrt(mean(x**2) + eps) * g``. One reduction instead of two, and no mean to subtract;
at Llama's scale that is a few per cent of the step, and quality is the same.

**SwiGLU** (Shazeer, 2020) is a *gated* feed-forward layer: one projection, passed through
SiLU, multiplies another element by element, and a third projects back:
``down(silu(gate(x)) * up(x))``. Three matrices instead of two, so Llama shrinks the hidden
width from 4C to about (2/3)(4C) to keep the parameter count of GPT-2's MLP.

>>> x = torch.tensor([[3.0, -4.0]])          # mean square (9 + 16) / 2 = 12.5
>>> RMSNorm(2, eps=0.0)(x)                    # divided by sqrt(12.5) = 3.5355
tensor([[ 0.8485, -1.1314]], grad_fn=<MulBackward0>)
>>> swiglu_hidden(128)                        # (2/3) * 512 = 341.3, rounded up to a multiple of 32
352
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from llm_lessons.validation import check_int, check_real


class RMSNorm(nn.Module):
    """Root-mean-square normalisation over the last dimension, with a learned gain (init 1).

    Computed in float32 whatever the input's dtype (a sum of squares overflows or loses digits
    in half precision), then cast back, as Llama does; ``torch.nn.RMSNorm`` is the same function.
    """

    def __init__(self, n_embd: int, eps: float = 1e-5):
        super().__init__()
        check_int(n_embd, "n_embd", low=1)
        check_real(eps, "eps", low=0.0)
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n_embd))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., C) -> (..., C)."""
        if x.shape[-1] != self.weight.shape[0]:
            raise ValueError(f"RMSNorm over {self.weight.shape[0]} channels got x of shape {tuple(x.shape)}")
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)  # (..., C)
        return self.weight * normed.to(x.dtype)


def swiglu_hidden(n_embd: int, multiple_of: int = 32) -> int:
    """Llama's hidden width for SwiGLU: (2/3)(4C) rounded *up* to a multiple of ``multiple_of``.

    Three C x H matrices then hold about as many parameters as GPT-2's two C x 4C ones.
    """
    check_int(n_embd, "n_embd", low=1)
    check_int(multiple_of, "multiple_of", low=1)
    hidden = int(2 * 4 * n_embd / 3)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


class SwiGLU(nn.Module):
    """The gated feed-forward layer: (B, T, C) -> (B, T, C) through a hidden width H.

    ``gate`` and ``up`` map C -> H, ``down`` maps H -> C; no biases (as in Llama). SiLU is
    ``x * sigmoid(x)``: smooth, and close to ReLU away from 0.
    """

    def __init__(self, n_embd: int, hidden: int | None = None, dropout: float = 0.0):
        super().__init__()
        hidden = swiglu_hidden(n_embd) if hidden is None else hidden
        check_int(hidden, "hidden", low=1)
        self.gate = nn.Linear(n_embd, hidden, bias=False)
        self.up = nn.Linear(n_embd, hidden, bias=False)
        self.down = nn.Linear(hidden, n_embd, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, C) -> (B, T, C)."""
        return self.dropout(self.down(F.silu(self.gate(x)) * self.up(x)))  # (B, T, H) -> (B, T, C)
