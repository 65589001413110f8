"""Checkers for chapter 7.4's exercises (ONNX export and ONNX Runtime): the bytes a weights file
needs at a given precision, the window lengths a cache-free greedy loop feeds a graph with a
dynamic time axis, and the element-wise tolerance test that says two runtimes agree.

Each answer comes from a reference written here. The third forbids PyTorch's and NumPy's own
``isclose``/``allclose`` (they are the answer); the first two have no package function to forbid
(:func:`llm_lessons.interop.onnx_export.onnx_generate` computes the windows but never returns
them).

>>> def my_window_lengths(prompt_len, max_new_tokens, block_size):
...     return [min(prompt_len + i, block_size) for i in range(max_new_tokens)]
>>> check_window_lengths(my_window_lengths)
'check_window_lengths: all 8 cases passed'
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from llm_lessons.exercises.checking import Case, Mistake, available, random_int, run_check

# --- the bytes of a weights file ---


def _file_bytes(shapes, bits, count="product", unit="bytes", rounding="per tensor"):
    """Bytes of the tensors of ``shapes`` at ``bits`` bits each; flags: the usual wrong versions."""
    sizes = [math.prod(s) if count == "product" else sum(s) for s in shapes]
    if unit == "float32":  # 4 bytes a number whatever the precision
        return sum(4 * n for n in sizes)
    if unit == "bits":
        return sum(n * bits for n in sizes)
    if rounding == "per tensor":  # each tensor starts on a byte boundary
        return sum(-(-n * bits // 8) for n in sizes)
    return -(-sum(n * bits for n in sizes) // 8) if rounding == "total" else sum(n * bits // 8 for n in sizes)


def check_file_bytes(fn: Callable, n_cases: int = 8, seed: int = 0) -> str:
    """``fn(shapes, bits)``: ``shapes`` a list of tensor shapes (tuples of ints), each tensor
    stored once with ``bits`` bits a number (32, 16, 8 or 4), packed, each tensor starting on a
    new byte; return the total number of bytes (an int): the sum over tensors of
    ceil(numel * bits / 8)."""
    g = torch.Generator().manual_seed(seed)
    gpt = [(73, 128), (64, 128)] + [(128,)] * 2 + [(384, 128), (384,), (128, 128), (128,)]
    cases = [Case((gpt, 32), _file_bytes(gpt, 32), "the embeddings and first layers of the "
                  "shipped GPT at 32 bits"),
             Case((gpt, 16), _file_bytes(gpt, 16), "the same tensors at 16 bits"),
             Case(([(3,), (5, 1)], 4), _file_bytes([(3,), (5, 1)], 4),
                  "shapes [(3,), (5, 1)] at 4 bits (3 and 5 numbers: 2 and 3 bytes)"),
             Case(([(7,)], 8), 7, "one tensor of 7 numbers at 8 bits")]
    while len(cases) < n_cases:
        bits = (32, 16, 8, 4)[len(cases) % 4]
        shapes = [tuple(random_int(g, 1, 40) for _ in range(random_int(g, 1, 4)))
                  for _ in range(random_int(g, 2, 6))]
        cases.append(Case((shapes, bits), _file_bytes(shapes, bits),
                          f"{len(shapes)} random shapes at {bits} bits"))
    mistakes = [
        Mistake("bits", lambda s, b: _file_bytes(s, b, unit="bits"),
                "your answer is in bits: a byte holds 8 bits, so divide numel * bits by 8"),
        Mistake("float32", lambda s, b: _file_bytes(s, b, unit="float32"),
                "you counted 4 bytes a number whatever the precision; a number takes bits / 8 "
                "bytes (2 at 16 bits, half a byte at 4)"),
        Mistake("sum of dims", lambda s, b: _file_bytes(s, b, count="sum"),
                "you added the dimensions of each shape; a tensor of shape (a, b) holds a * b "
                "numbers (the product, math.prod)"),
        Mistake("floor", lambda s, b: _file_bytes(s, b, rounding="floor"),
                "you rounded down: a tensor of 3 int4 numbers needs 2 bytes, not 1 (round "
                "numel * bits / 8 up, per tensor)"),
        Mistake("total", lambda s, b: _file_bytes(s, b, rounding="total"),
                "you rounded up once for the whole file; each tensor starts on a new byte, so "
                "round up tensor by tensor"),
    ]
    return run_check("check_file_bytes", fn, cases, mistakes, atol=0, rtol=0)


# --- window lengths of a cache-free greedy loop ---


def _windows(prompt_len, max_new_tokens, block_size, crop=True, start=0):
    """The T of each forward pass; flags: no crop, or counting from the wrong step."""
    lengths = [prompt_len + i + start for i in range(max_new_tokens)]
    return [min(t, block_size) for t in lengths] if crop else lengths


def check_window_lengths(fn: Callable, n_cases: int = 8, seed: int = 1) -> str:
    """``fn(prompt_len, max_new_tokens, block_size)``: a greedy loop without a key-value cache
    runs the graph once per new token, on the last ``block_size`` tokens of everything so far
    (the prompt plus the tokens already generated); return the list of the lengths T of those
    ``max_new_tokens`` inputs, in order (an empty list for 0)."""
    g = torch.Generator().manual_seed(seed)
    cases = [Case((7, 5, 64), _windows(7, 5, 64), "a prompt of 7, 5 new tokens, block 64"),
             Case((62, 5, 64), _windows(62, 5, 64), "a prompt of 62, 5 new tokens, block 64 "
                  "(the window reaches the block size)"),
             Case((100, 3, 64), _windows(100, 3, 64), "a prompt of 100, longer than block 64"),
             Case((3, 0, 8), [], "no new tokens"),
             Case((1, 10, 4), _windows(1, 10, 4), "a prompt of 1, 10 new tokens, block 4")]
    while len(cases) < n_cases:
        block = random_int(g, 4, 33)
        p, n = random_int(g, 1, block + 1), random_int(g, block // 2, 2 * block)
        cases.append(Case((p, n, block), _windows(p, n, block),
                          f"a prompt of {p}, {n} new tokens, block {block}"))
    mistakes = [
        Mistake("no crop", lambda p, n, b: _windows(p, n, b, crop=False),
                "your windows grow past block_size; the position table has block_size rows, so "
                "the loop feeds only the last block_size tokens: T = min(length, block_size)"),
        Mistake("one late", lambda p, n, b: _windows(p, n, b, start=1),
                "your first window already holds one generated token; the first pass sees the "
                "prompt alone (T = prompt_len), and each pass adds one token"),
        Mistake("one early", lambda p, n, b: _windows(p, n, b, start=-1),
                "your first window is one token short; the first pass sees the whole prompt"),
    ]
    return run_check("check_window_lengths", fn, cases, mistakes, atol=0, rtol=0)


# --- the element-wise tolerance test ---


def _close(got, want, atol, rtol, scale="want", absolute=True, use_atol=True):
    """True where |got - want| <= atol + rtol * |want|; flags give the usual wrong versions."""
    diff = (got - want).abs() if absolute else got - want
    ref = want.abs() if scale == "want" else got.abs() if scale == "got" else torch.ones_like(want)
    return diff <= (atol if use_atol else 0.0) + rtol * ref


def _pair(g: torch.Generator, n: int, atol: float, rtol: float):
    """want: logits-like numbers, some near zero; got: want moved by about the tolerance."""
    want = torch.randn(n, generator=g) * 5
    want[: n // 4] *= 1e-6  # near-zero values, where only atol can pass
    move = (torch.rand(n, generator=g) * 4 - 2) * (atol + rtol * want.abs())  # within 2x tolerance
    return want + move, want


def check_close_mask(fn: Callable, n_cases: int = 8, seed: int = 2) -> str:
    """``fn(got, want, atol, rtol)`` for two float tensors of one shape returns the bool tensor
    (same shape) that is True where ``|got - want| <= atol + rtol * |want|``: the tolerance
    grows with the reference ``want`` (not with ``got``), and ``atol`` covers values near zero.
    A NaN is close to nothing."""
    g = torch.Generator().manual_seed(seed)
    got_h = torch.tensor([1e-6, 0.0, 1.00001, 100.5, -3.0, float("nan")])
    want_h = torch.tensor([0.0, 1e-7, 1.0, 100.0, -2.999, 1.0])
    loose_got, loose_want = torch.tensor([2.5, 0.4, 2.9, -1.0]), torch.tensor([1.5, 1.0, 2.0, -1.4])
    cases = [Case((got_h, want_h, 1e-5, 1e-3), _close(got_h, want_h, 1e-5, 1e-3),
                  "got = [1e-6, 0, 1.00001, 100.5, -3, nan], want = [0, 1e-7, 1, 100, -2.999, 1], "
                  "atol 1e-5, rtol 1e-3"),
             Case((loose_got, loose_want, 0.0, 0.5), _close(loose_got, loose_want, 0.0, 0.5),
                  "got = [2.5, 0.4, 2.9, -1], want = [1.5, 1, 2, -1.4], atol 0, rtol 0.5 (a loose "
                  "tolerance: 2.5 is not within half of 1.5)")]
    while len(cases) < n_cases:
        if len(cases) == 2:  # max |difference| < 1e-4 alone, as the notebook checks logits
            atol, rtol = 1e-4, 0.0
        else:
            atol, rtol = 10.0 ** -random_int(g, 3, 7), 10.0 ** -random_int(g, 2, 5)
        got, want = _pair(g, random_int(g, 40, 80), atol, rtol)
        if len(cases) % 3 == 0:
            got, want = got[:24].reshape(6, 4), want[:24].reshape(6, 4)  # 2-D: element-wise
        cases.append(Case((got, want, atol, rtol), _close(got, want, atol, rtol),
                          f"{tuple(got.shape)} logits moved by up to twice atol {atol:g} + rtol "
                          f"{rtol:g} * |want|"))
    mistakes = [
        Mistake("scaled by got", lambda a, b, at, rt: _close(a, b, at, rt, scale="got"),
                "your tolerance grows with |got|; it grows with the reference: atol + rtol * |want| "
                "(otherwise a wildly wrong got widens its own tolerance)"),
        Mistake("no atol", lambda a, b, at, rt: _close(a, b, at, rt, use_atol=False),
                "you dropped atol: near zero rtol * |want| is tiny and nothing passes; add atol "
                "to the tolerance"),
        Mistake("signed", lambda a, b, at, rt: _close(a, b, at, rt, absolute=False),
                "you compared got - want without its absolute value, so any got far below want "
                "passes; use |got - want|"),
        Mistake("atol only", lambda a, b, at, rt: _close(a, b, at, rt, scale="one"),
                "your tolerance ignores the size of want (rtol multiplies |want|, not 1)"),
    ]
    forbidden = available(("torch.isclose", "torch.allclose", "torch.Tensor.isclose",
                           "torch.Tensor.allclose", "numpy.isclose", "numpy.allclose",
                           "torch.testing.assert_close"))
    return run_check("check_close_mask", fn, cases, mistakes, forbidden=forbidden, student=fn)
