"""Checkers for chapter 8.7's exercises: absmax quantization per output channel, group-wise
dequantization, and unpacking two int4 codes from each byte.

All three are a few lines each and all three fail quietly when wrong: a scale taken over the
wrong axis still gives small integers, tiled scales still give a matrix of the right shape, and
a nibble read without its sign still decodes to numbers in range. The answers come from
references written here, not from :func:`llm_lessons.frontiers.quantization.quantize` or
:func:`~llm_lessons.frontiers.quantization.dequantize` (both forbidden, with PyTorch's own
quantizers). There is no package function that unpacks int4, so the third forbids nothing.

>>> def dequantize_groups(q, scale, group_size):
...     return q.float() * scale.float().repeat_interleave(group_size, dim=1)
>>> check_dequantize_groups(dequantize_groups)
'check_dequantize_groups: all 8 cases passed'
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from llm_lessons.exercises.checking import Case, Mistake, available, random_int, run_check


def _weights(g: torch.Generator, out_features: int, in_features: int) -> torch.Tensor:
    """A random (out, in) float32 weight with a few outliers, as trained matrices have."""
    w = torch.randn(out_features, in_features, generator=g) * 0.05
    for _ in range(max(1, out_features // 4)):
        i, j = random_int(g, 0, out_features), random_int(g, 0, in_features)
        w[i, j] = (0.3 + float(torch.rand((), generator=g))) * (1 if j % 2 else -1)
    return w


# --- absmax quantization per output channel ---


def _absmax(w, bits, over="row", levels="symmetric", rounding="nearest", magnitude="abs"):
    """(q int8, scale (out,) float32); the flags give the usual wrong versions."""
    Q = 2 ** (bits - 1) - (1 if levels == "symmetric" else 0)
    low, high = (-Q, Q) if levels == "symmetric" else (-Q, Q - 1)  # "full": the int8 range, -128 .. 127
    w = w.float()
    size = w.abs() if magnitude == "abs" else w
    if over == "row":
        scale = size.amax(dim=1) / Q  # (out,)
    elif over == "column":
        scale = size.amax(dim=0) / Q  # (in,)
    else:  # the whole tensor, reported once per row
        scale = size.amax().expand(w.shape[0]) / Q  # (out,)
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)  # a zero row keeps scale 1
    per_weight = scale[None, :] if over == "column" else scale[:, None]  # (1, in) or (out, 1)
    x = w / per_weight
    x = torch.round(x) if rounding == "nearest" else torch.trunc(x)
    return x.clamp(low, high).to(torch.int8), scale


def check_absmax_per_channel(fn: Callable, n_cases: int = 10, seed: int = 0) -> str:
    """``fn(w, bits)`` for a float weight ``w`` of shape (out, in) and ``bits`` 8 or 4 returns
    ``(q, scale)``: with Q = 2**(bits-1) - 1 (127 or 7), ``scale[i] = max_j |w[i, j]| / Q`` (shape
    (out,); a row of zeros gets scale 1) and ``q[i, j] = round(w[i, j] / scale[i])``, integers in
    [-Q, Q] (int8). A scale returned as (out, 1) is accepted."""
    g = torch.Generator().manual_seed(seed)
    hand = torch.tensor([[0.6, -1.0, 0.25, 0.1], [0.0, 0.0, 0.0, 0.0], [2.0, 0.5, -0.3, 1.0]])
    cases = [Case((hand, 4), _absmax(hand, 4), "w = [[0.6, -1, 0.25, 0.1], [0, 0, 0, 0], "
                  "[2, 0.5, -0.3, 1]] at 4 bits (the row of zeros keeps scale 1; 0 / 0 is NaN)"),
             Case((hand[2:] * -1, 8), _absmax(hand[2:] * -1, 8),
                  "w = [[-2, -0.5, 0.3, -1]] at 8 bits (the largest |w| is negative)")]
    while len(cases) < n_cases:
        out_features, in_features = random_int(g, 2, 9), random_int(g, 3, 17)
        if out_features == in_features:
            continue
        bits = (8, 4)[len(cases) % 2]
        w = _weights(g, out_features, in_features)
        cases.append(Case((w, bits), _absmax(w, bits),
                          f"a random ({out_features}, {in_features}) weight with outliers at {bits} bits"))

    def answer(w, bits):  # the scale as a flat (out,) tensor, whatever shape it came in
        q, scale = fn(w, bits)
        scale = torch.as_tensor(scale)
        if scale.numel() == 1:  # one scale for the whole tensor, or a one-row weight
            return q, scale.reshape(1).expand(w.shape[0])
        return q, scale.reshape(-1) if scale.dim() == 2 and 1 in scale.shape else scale

    mistakes = [
        Mistake("tensor", lambda w, b: _absmax(w, b, over="tensor"),
                "you used one scale for the whole matrix (its largest |w| anywhere); per channel "
                "means one scale per output row: the largest |w| of row i, over the columns"),
        Mistake("column", lambda w, b: _absmax(w, b, over="column"),
                "your scales are per input column (max over dim 0); a channel is an output row: "
                "take the max over dim 1, one scale per row"),
        Mistake("2**(bits-1)", lambda w, b: _absmax(w, b, levels="full"),
                "you divided by 2**(bits-1) (128 or 8); the book's grid is symmetric, -Q .. Q with "
                "Q = 2**(bits-1) - 1, so the largest |w| maps to exactly +-127 (or +-7)"),
        Mistake("truncate", lambda w, b: _absmax(w, b, rounding="truncate"),
                "you truncated toward zero (a cast to int8 does that); round to the nearest "
                "integer with torch.round first, so no weight moves by more than half a step"),
        Mistake("signed max", lambda w, b: _absmax(w, b, magnitude="signed"),
                "your scale is the largest *signed* value of the row, so a row whose biggest "
                "weight is negative gets clipped; use the largest absolute value, w.abs()"),
    ]
    forbidden = available(("llm_lessons.frontiers.quantization.quantize", "torch.quantize_per_channel",
                           "torch.quantize_per_tensor"))
    return run_check("check_absmax_per_channel", answer, cases, mistakes, forbidden=forbidden,
                     atol=1e-7, rtol=1e-5, student=fn)


# --- group-wise dequantization ---


def _dequantize_groups(q, scale, group_size, spread="interleave", op="multiply"):
    """(out, in) float32 from q (out, in) and scale (out, in // G); flags: the wrong versions."""
    out_features, in_features = q.shape
    scale = scale.float()
    if spread == "interleave":  # scale[i, k] -> columns k*G .. k*G + G - 1
        per_weight = scale[:, :, None].expand(-1, -1, group_size).reshape(out_features, in_features)
    elif spread == "tile":  # scale[i, k] -> columns k, k + n_groups, ...
        per_weight = scale.repeat(1, group_size)
    else:  # the first group's scale for the whole row
        per_weight = scale[:, :1].expand(out_features, in_features)
    return q.float() * per_weight if op == "multiply" else q.float() / per_weight


def check_dequantize_groups(fn: Callable, n_cases: int = 8, seed: int = 1) -> str:
    """``fn(q, scale, group_size)``: ``q`` holds the integers of an (out, in) weight (int8),
    ``scale`` (out, in // group_size) one float per group of ``group_size`` consecutive columns
    of a row; return the float32 weight ``w[i, j] = scale[i, j // group_size] * q[i, j]``."""
    g = torch.Generator().manual_seed(seed)
    q_hand = torch.tensor([[1, -2, 3, 7], [-7, 0, 5, 4]], dtype=torch.int8)
    s_hand = torch.tensor([[0.5, 0.1], [2.0, 0.01]])
    cases = [Case((q_hand, s_hand, 2), _dequantize_groups(q_hand, s_hand, 2),
                  "q = [[1, -2, 3, 7], [-7, 0, 5, 4]], scale = [[0.5, 0.1], [2, 0.01]], group_size 2")]
    shapes = [(3, 8, 8, 4), (4, 6, 1, 8), (2, 12, 3, 4), (5, 16, 4, 8), (3, 32, 8, 8), (2, 64, 16, 4),
              (6, 20, 5, 8)]
    for out_features, in_features, group_size, bits in shapes[: n_cases - 1]:
        Q = 2 ** (bits - 1) - 1
        q = torch.randint(-Q, Q + 1, (out_features, in_features), generator=g).to(torch.int8)
        scale = torch.rand(out_features, in_features // group_size, generator=g) * 0.05 + 1e-3
        label = (f"a ({out_features}, {in_features}) int{bits} weight, group_size {group_size}"
                 + (" (each weight its own scale)" if group_size == 1 else "")
                 + (" (one group per row)" if group_size == in_features else ""))
        cases.append(Case((q, scale, group_size), _dequantize_groups(q, scale, group_size), label))
    mistakes = [
        Mistake("tile", lambda q, s, G: _dequantize_groups(q, s, G, spread="tile"),
                "you tiled the scales (scale.repeat): scale[i, k] belongs to the G *consecutive* "
                "columns k*G .. k*G + G - 1, so each scale must repeat in place "
                "(repeat_interleave along dim 1)"),
        Mistake("row", lambda q, s, G: _dequantize_groups(q, s, G, spread="row"),
                "you used the first group's scale for the whole row; every group of G columns "
                "has its own scale"),
        Mistake("divide", lambda q, s, G: _dequantize_groups(q, s, G, op="divide"),
                "you divided by the scale; quantization divided (q = round(w / s)), so "
                "dequantization multiplies: w = s * q"),
    ]
    forbidden = available(("llm_lessons.frontiers.quantization.dequantize",))
    return run_check("check_dequantize_groups", fn, cases, mistakes, forbidden=forbidden,
                     atol=1e-7, rtol=1e-5)


# --- unpacking int4 ---


def _unpack(packed, order="low first", sign="twos", layout="interleave"):
    """(out, 2 * bytes) int8 codes from uint8 bytes; the flags give the usual wrong versions."""
    b = packed.to(torch.int16)
    low, high = b & 0xF, (b >> 4) & 0xF
    if order == "high first":
        low, high = high, low
    if sign == "twos":
        low, high = low - 16 * (low >= 8), high - 16 * (high >= 8)
    elif sign == "offset":
        low, high = low - 8, high - 8
    if layout == "interleave":  # (out, bytes, 2) -> (out, 2 * bytes)
        codes = torch.stack([low, high], dim=-1).reshape(packed.shape[0], -1)
    else:
        codes = torch.cat([low, high], dim=1)
    return codes.to(torch.int8)


def _pack(q):
    """The reference packing, to build cases: column 2j in the low nibble, 2j + 1 in the high."""
    nibble = q.to(torch.int16) & 0xF  # two's complement: -1 -> 0xF
    return (nibble[:, 0::2] | (nibble[:, 1::2] << 4)).to(torch.uint8)


def check_unpack_int4(fn: Callable, n_cases: int = 8, seed: int = 2) -> str:
    """``fn(packed)``: ``packed`` (out, n) uint8 holds two 4-bit codes per byte; return the
    (out, 2n) int8 integers. Column 2j comes from the low nibble of byte j (``b & 0xF``), column
    2j + 1 from its high nibble (``b >> 4``); each nibble is a 4-bit two's-complement number
    (0x0 .. 0x7 are 0 .. 7, 0x8 .. 0xF are -8 .. -1)."""
    g = torch.Generator().manual_seed(seed)
    every = torch.arange(-8, 8, dtype=torch.int8)[None, :]  # all 16 codes once
    cases = [Case((_pack(every),), every.clone(), "every code -8 .. 7 once (bytes "
                  f"{_pack(every)[0].tolist()})"),
             Case((torch.tensor([[0x1F]], dtype=torch.uint8),), torch.tensor([[-1, 1]], dtype=torch.int8),
                  "one byte 0x1F: low nibble 0xF = -1, high nibble 0x1 = 1")]
    while len(cases) < n_cases:
        out_features, n_bytes = random_int(g, 1, 6), random_int(g, 2, 9)
        q = torch.randint(-8, 8, (out_features, 2 * n_bytes), generator=g).to(torch.int8)
        cases.append(Case((_pack(q),), q, f"random ({out_features}, {n_bytes}) bytes"))
    mistakes = [
        Mistake("no sign", lambda p: _unpack(p, sign="none"),
                "your codes run 0 .. 15: a nibble is a two's-complement number, so 0x8 .. 0xF "
                "mean -8 .. -1 (subtract 16 from every nibble >= 8)"),
        Mistake("offset", lambda p: _unpack(p, sign="offset"),
                "you subtracted 8 from every nibble (an offset code); these are two's complement: "
                "0x0 .. 0x7 stay 0 .. 7 and only 0x8 .. 0xF become -8 .. -1"),
        Mistake("high first", lambda p: _unpack(p, order="high first"),
                "your pairs are swapped: the *low* nibble (b & 0xF) is column 2j and the high "
                "nibble (b >> 4) is column 2j + 1"),
        Mistake("concatenate", lambda p: _unpack(p, layout="concatenate"),
                "you put all the low nibbles first and all the high nibbles after them; interleave "
                "them: byte j gives columns 2j and 2j + 1"),
    ]
    return run_check("check_unpack_int4", fn, cases, mistakes, atol=0, rtol=0)
