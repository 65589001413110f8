"""The Transformer block: attention and an MLP, each wrapped in a residual connection and a norm.

Shapes use fixed letters: B batch, T time (positions), C channels (``n_embd``).

Two ways to place the LayerNorm (Xiong et al., 2020, "On Layer Normalization in the
Transformer Architecture")::

    pre-norm  (GPT-2, the default):  x = x + Attn(LN1(x));   x = x + MLP(LN2(x))
    post-norm (original, BERT):      x = LN1(x + Attn(x));   x = LN2(x + MLP(x))

Pre-norm keeps an untouched residual path from input to output, which is why deep pre-norm
stacks train without learning-rate warmup tricks; post-norm is what the 2017 paper and BERT use.
A block maps (B, T, C) to (B, T, C), so blocks stack:

>>> block = Block(n_embd=8, n_head=2)
>>> block(torch.zeros(2, 5, 8)).shape
torch.Size([2, 5, 8])
>>> sum(p.numel() for p in block.parameters()) == 12 * 8 * 8 + 13 * 8   # 12C^2 + 13C
True
"""

from __future__ import annotations

import torch
from torch import nn

from llm_lessons.attention import KVCache, MultiHeadAttention

#: The MLP's non-linearity. GPT-2 uses GELU's tanh approximation ("gelu_new" in Hugging Face);
#: BERT uses the exact erf form.
ACTIVATIONS = {"gelu_tanh": lambda: nn.GELU(approximate="tanh"), "gelu": lambda: nn.GELU(),
               "relu": lambda: nn.ReLU()}


class MLP(nn.Module):
    """Position-wise feed-forward network: Linear C→4C, GELU, Linear 4C→C, dropout.

    It acts on every position separately (attention is the only place positions mix).

    >>> MLP(n_embd=4)(torch.ones(1, 3, 4)).shape
    torch.Size([1, 3, 4])
    """

    def __init__(self, n_embd: int, dropout: float = 0.0, bias: bool = True,
                 activation: str = "gelu_tanh", expansion: int = 4):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose from {sorted(ACTIVATIONS)}")
        self.fc = nn.Linear(n_embd, expansion * n_embd, bias=bias)
        self.act = ACTIVATIONS[activation]()
        self.proj = nn.Linear(expansion * n_embd, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(self.act(self.fc(x))))  # (B, T, C) -> (B, T, 4C) -> (B, T, C)


class Block(nn.Module):
    """One Transformer layer: multi-head self-attention then an MLP, with residuals and norms.

    ``causal=True`` (a decoder, GPT) lets position t see only positions <= t; ``causal=False``
    (an encoder, BERT) sees both sides. ``norm_first`` picks pre-norm (True, the default) or
    post-norm (False). ``forward`` takes an optional boolean attention ``mask`` (True = may
    attend, e.g. from :func:`llm_lessons.attention.padding_mask`) and an optional ``cache``
    (:class:`llm_lessons.attention.KVCache`) that is extended in place with this call's keys
    and values.

    >>> x = torch.randn(1, 4, 8)
    >>> post = Block(8, 2, norm_first=False)
    >>> post(x).std(dim=-1).mean().item() > 0.9   # post-norm ends with a LayerNorm: unit scale
    True
    """

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, bias: bool = True,
                 causal: bool = True, norm_first: bool = True, activation: str = "gelu_tanh",
                 norm_eps: float = 1e-5, fused: bool = True):
        super().__init__()
        self.norm_first = norm_first
        self.ln_1 = nn.LayerNorm(n_embd, eps=norm_eps, bias=bias)
        self.attn = MultiHeadAttention(n_embd, n_head, causal=causal, dropout=dropout, bias=bias,
                                       fused=fused)
        self.ln_2 = nn.LayerNorm(n_embd, eps=norm_eps, bias=bias)
        self.mlp = MLP(n_embd, dropout=dropout, bias=bias, activation=activation)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                cache: KVCache | None = None) -> torch.Tensor:
        """x: (B, T, C) -> (B, T, C)."""
        if self.norm_first:
            x = x + self.attn(self.ln_1(x), mask=mask, cache=cache)
            return x + self.mlp(self.ln_2(x))
        x = self.ln_1(x + self.attn(x, mask=mask, cache=cache))
        return self.ln_2(x + self.mlp(x))
