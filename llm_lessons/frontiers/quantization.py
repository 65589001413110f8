"""Post-training weight quantization: int8 and int4 weights with absmax scales per tensor, per
output channel, or per group of input columns.

Shapes use fixed letters: a Linear's weight is (out, in); G is the group size along ``in``.

A weight stored as a float32 costs 4 bytes. Quantization stores an integer q in [-Q, Q] (Q = 127
for 8 bits, 7 for 4 bits) and one float **scale** s per block of weights, and uses ``s * q`` in
place of the weight. *Absmax* picks ``s = max|w| / Q`` for each block, so the largest weight maps
to ±Q exactly and rounding moves every weight by at most s / 2. The block decides the error:

- **per tensor**: one s for the whole matrix; one outlier makes s large for everyone;
- **per channel**: one s per output row, the usual choice for int8;
- **per group**: one s per G consecutive inputs of a row (G = 32, 64, 128), what int4 needs,
  since with only 15 levels a row's outliers would flatten all the rest.

Storage: 4 bits pack two to a byte; each scale adds 2 bytes (float16), i.e. 16/G bits per weight.
:func:`storage_bytes` counts that packed format; :class:`QuantizedLinear` keeps each integer in
an int8 in memory, for clarity, and dequantizes the whole matrix at every call (a real kernel
multiplies the integers directly, which is where the speed comes from).

>>> w = torch.tensor([[0.6, -1.0, 0.25, 0.1]])
>>> q, s = quantize(w, bits=4, scheme="channel")
>>> q.tolist(), round(s.item(), 4)        # s = 1.0 / 7: 0.6 / s = 4.2 rounds to 4
([[4, -7, 2, 1]], 0.1429)
>>> [round(v, 3) for v in dequantize(q, s, "channel")[0].tolist()]   # each within s / 2 of w
[0.571, -1.0, 0.286, 0.143]
"""

from __future__ import annotations

import torch
from torch import nn

from llm_lessons.validation import check_int

SCHEMES = ("tensor", "channel", "group")


def _levels(bits: int) -> int:
    if bits not in (4, 8):
        raise ValueError(f"bits must be 4 or 8, got {bits}")
    return 2 ** (bits - 1) - 1  # symmetric: -Q .. Q, the code -Q-1 left unused


def _blocks(w: torch.Tensor, scheme: str, group_size: int) -> torch.Tensor:
    """w (out, in) viewed so that each block is one row of the result."""
    if w.dim() != 2:
        raise ValueError(f"quantize expects a (out, in) weight matrix, got shape {tuple(w.shape)}")
    if scheme == "tensor":
        return w.reshape(1, -1)  # (out, in) -> (1, out*in)
    if scheme == "channel":
        return w  # (out, in): a row per output channel
    if scheme == "group":
        check_int(group_size, "group_size", low=1)
        if w.shape[1] % group_size:
            raise ValueError(f"group_size {group_size} must divide the input width {w.shape[1]}")
        return w.reshape(-1, group_size)  # (out, in) -> (out*in/G, G)
    raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")


def quantize(w: torch.Tensor, bits: int = 8, scheme: str = "channel",
             group_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Integers q (same shape as w, int8) and scales s (one per block, float32): w ≈ s * q."""
    Q = _levels(bits)
    blocks = _blocks(w.detach().float(), scheme, group_size)
    scale = blocks.abs().amax(dim=1, keepdim=True) / Q  # (blocks, 1)
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)  # an all-zero block stays zero
    q = torch.round(blocks / scale).clamp(-Q, Q).to(torch.int8)  # round half to even, as PyTorch does
    return q.reshape(w.shape), scale.squeeze(1)


def dequantize(q: torch.Tensor, scale: torch.Tensor, scheme: str = "channel",
               group_size: int = 64) -> torch.Tensor:
    """The float weight ``s * q`` that the quantized layer computes with."""
    blocks = _blocks(q.float(), scheme, group_size)
    return (blocks * scale[:, None]).reshape(q.shape)


def storage_bytes(shape: tuple[int, int], bits: int, scheme: str, group_size: int = 64) -> int:
    """Bytes to store a quantized (out, in) weight: the packed integers plus float16 scales."""
    out_features, in_features = shape
    scales = {"tensor": 1, "channel": out_features, "group": out_features * in_features // group_size}[scheme]
    return (out_features * in_features * bits + 7) // 8 + 2 * scales


class QuantizedLinear(nn.Module):
    """A Linear whose weight is stored as integers and scales and dequantized when used."""

    def __init__(self, linear: nn.Linear, bits: int = 8, scheme: str = "channel", group_size: int = 64):
        super().__init__()
        self.bits, self.scheme, self.group_size = bits, scheme, group_size
        q, scale = quantize(linear.weight, bits, scheme, group_size)
        self.register_buffer("q", q)
        self.register_buffer("scale", scale)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = dequantize(self.q, self.scale, self.scheme, self.group_size).to(x.dtype)
        return nn.functional.linear(x, w, self.bias)

    def storage_bytes(self) -> int:
        return storage_bytes(tuple(self.q.shape), self.bits, self.scheme, self.group_size)


def quantize_model(model: nn.Module, bits: int = 8, scheme: str = "channel", group_size: int = 64,
                   skip: tuple[str, ...] = ("lm_head",)) -> dict[str, int]:
    """Replace every ``nn.Linear`` (but those named in ``skip``: the GPT's head is tied to its
    embedding, which stays in float) by a QuantizedLinear, in place.

    Returns ``{"float_bytes": ..., "quantized_bytes": ...}`` for the replaced weights.
    """
    names = [n for n, m in model.named_modules()
             if isinstance(m, nn.Linear) and n.rsplit(".", 1)[-1] not in skip]
    if not names:
        raise ValueError("the model has no nn.Linear to quantize")
    sizes = {"float_bytes": 0, "quantized_bytes": 0}
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        linear = getattr(parent, child)
        layer = QuantizedLinear(linear, bits, scheme, group_size)
        sizes["float_bytes"] += linear.weight.numel() * linear.weight.element_size()
        sizes["quantized_bytes"] += layer.storage_bytes()
        setattr(parent, child, layer)
    return sizes
