"""Positional encodings: telling attention *where* each token is.

Attention alone treats its input as a set (permute the tokens and the outputs are permuted
the same way), so word order must be injected. Three ways, oldest to most used today:

* **sinusoidal** (Vaswani et al., 2017), fixed and added to the token embeddings::

      PE(pos, 2i)   = sin(pos / 10000^(2i / d_model))
      PE(pos, 2i+1) = cos(pos / 10000^(2i / d_model))

* **learned absolute** (GPT-2, BERT): a trainable table with one row per position;
* **rotary, RoPE** (Su et al., 2021; LLaMA and most recent LLMs): rotate each pair of query/key
  coordinates (x_{2i}, x_{2i+1}) by the angle pos * theta_i, theta_i = base^(-2i/hs), so that
  q_m . k_n depends on the positions only through the offset n - m.

Shapes: B batch, T positions, C channels (``d_model``), hs head size.

>>> sinusoidal_encoding(3, 4).round(decimals=3)
tensor([[ 0.0000,  1.0000,  0.0000,  1.0000],
        [ 0.8410,  0.5400,  0.0100,  1.0000],
        [ 0.9090, -0.4160,  0.0200,  1.0000]])
"""

from __future__ import annotations

import torch
from torch import nn


def _check_even(d: int, name: str) -> None:
    if not isinstance(d, int) or d < 2 or d % 2 != 0:
        raise ValueError(f"{name} must be a positive even integer (coordinates come in sin/cos or "
                         f"rotation pairs), got {d!r}")


def inverse_frequencies(d: int, base: float = 10000.0) -> torch.Tensor:
    """The d/2 angular frequencies omega_i = base^(-2i/d), i = 0 .. d/2 - 1 (float64).

    Pair i turns by omega_i radians per position, so its wavelength is 2 pi / omega_i: from
    2 pi positions (i = 0) up to nearly 2 pi * base (the last pair).

    >>> inverse_frequencies(4)
    tensor([1.0000, 0.0100], dtype=torch.float64)
    """
    _check_even(d, "d")
    if base <= 1.0:
        raise ValueError(f"base must be > 1, got {base}")
    return base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)  # (d/2,)


def sinusoidal_encoding(n_positions: int, d_model: int, base: float = 10000.0) -> torch.Tensor:
    """The (n_positions, d_model) sinusoidal table: sin in even columns, cos in odd ones.

    Computed in float64 (large positions times small frequencies lose digits in float32) and
    returned as float32. Any number of positions works: nothing is learned.
    """
    _check_even(d_model, "d_model")
    if n_positions < 0:
        raise ValueError(f"n_positions must be >= 0, got {n_positions}")
    pos = torch.arange(n_positions, dtype=torch.float64)[:, None]  # (T, 1)
    angles = pos * inverse_frequencies(d_model, base)[None, :]  # (T, 1) * (1, C/2) -> (T, C/2)
    pe = torch.stack([angles.sin(), angles.cos()], dim=-1)  # (T, C/2, 2): (sin, cos) per pair
    return pe.reshape(n_positions, d_model).float()  # (T, C/2, 2) -> (T, C), interleaved


class LearnedPositionalEmbedding(nn.Module):
    """A trainable (n_positions, d_model) table added to token embeddings (GPT-2, BERT).

    ``forward(x, start=0)`` adds rows start .. start+T-1 to x (B, T, C); ``start`` is the
    position of x's first token (non-zero when generating with a key-value cache). The table
    has no row beyond ``n_positions - 1``, so longer inputs raise ``ValueError``: a learned
    table cannot extrapolate.

    >>> emb = LearnedPositionalEmbedding(n_positions=4, d_model=2)
    >>> emb(torch.zeros(1, 3, 2)).shape
    torch.Size([1, 3, 2])
    >>> emb(torch.zeros(1, 5, 2))
    Traceback (most recent call last):
    ...
    ValueError: positions 0..4 (x of shape (1, 5, 2), start=0) exceed the table of 4 learned positions (0..3)
    """

    def __init__(self, n_positions: int, d_model: int):
        super().__init__()
        if n_positions < 1 or d_model < 1:
            raise ValueError(f"n_positions and d_model must be >= 1, got {n_positions}, {d_model}")
        self.n_positions, self.d_model = n_positions, d_model
        self.table = nn.Embedding(n_positions, d_model)
        nn.init.normal_(self.table.weight, std=0.02)

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"expected x of shape (B, T, {self.d_model}), got {tuple(x.shape)}")
        T = x.shape[1]
        if start < 0 or start + T > self.n_positions:
            raise ValueError(f"positions {start}..{start + T - 1} (x of shape {tuple(x.shape)}, "
                             f"start={start}) exceed the table of {self.n_positions} learned "
                             f"positions (0..{self.n_positions - 1})")
        pos = torch.arange(start, start + T, device=x.device)  # (T,)
        return x + self.table(pos)  # (B, T, C) + (T, C)


def apply_rope(x: torch.Tensor, positions: torch.Tensor | None = None,
               base: float = 10000.0) -> torch.Tensor:
    """Rotary position embedding: rotate each coordinate pair of x (..., T, hs) by pos * theta_i.

    Pair i is (x[..., 2i], x[..., 2i+1]) and theta_i = base^(-2i/hs), the same frequencies as
    the sinusoidal table. ``positions`` (T,) defaults to 0 .. T-1 (pass offsets when decoding
    with a cache). Apply it to queries and keys, never to values: then
    rope(q, m) . rope(k, n) = q . rope(k, n - m), a function of the offset only. Norms are kept.

    >>> x = torch.tensor([[1.0, 0.0, 1.0, 0.0]] * 2)  # the same vector at positions 0 and 1
    >>> apply_rope(x).round(decimals=3)  # position 1 turns pair 0 by 1 rad, pair 1 by 0.01 rad
    tensor([[1.0000, 0.0000, 1.0000, 0.0000],
            [0.5400, 0.8410, 1.0000, 0.0100]])
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 2:
        raise TypeError("apply_rope expects a floating-point tensor of shape (..., T, hs), got "
                        f"{getattr(x, 'dtype', type(x).__name__)} {tuple(getattr(x, 'shape', ()))}")
    T, hs = x.shape[-2], x.shape[-1]
    if hs % 2 != 0:
        raise ValueError(f"apply_rope needs an even head size (coordinates rotate in pairs), "
                         f"got x of shape {tuple(x.shape)}")
    if positions is None:
        positions = torch.arange(T, device=x.device)
    if positions.shape != (T,):
        raise ValueError(f"positions must have shape (T,) = ({T},) to match x {tuple(x.shape)}, "
                         f"got {tuple(positions.shape)}")
    angles = positions.to(torch.float64)[:, None] * inverse_frequencies(hs, base).to(x.device)  # (T, hs/2)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    pairs = x.unflatten(-1, (hs // 2, 2))  # (..., T, hs) -> (..., T, hs/2, 2)
    a, b = pairs[..., 0], pairs[..., 1]  # each (..., T, hs/2)
    rotated = torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1)  # (..., T, hs/2, 2)
    return rotated.flatten(-2)  # (..., T, hs/2, 2) -> (..., T, hs)
