"""One check per concept, shared by every module, so the same bad input gets the same message.

Shapes use fixed letters: B batch, T time, V vocabulary.

Each helper returns the checked value (converted where that loses nothing) or raises a
``TypeError`` (wrong kind of thing) / ``ValueError`` (right kind, out of range) that names the
argument and the range expected. Nothing is coerced silently: ``1.7`` is not a token id,
``True`` is not a count, ``"no"`` is not a boolean.

>>> check_int(3, "batch_size", low=1)
3
>>> check_int(0, "batch_size", low=1)
Traceback (most recent call last):
...
ValueError: batch_size must be an int >= 1, got 0
>>> check_real(0.5, "top_p", low=0.0, high=1.0, low_open=True)
0.5
>>> token_ids([1, 2], "ids", vocab_size=3)
[1, 2]
>>> token_ids([1.7], "ids")
Traceback (most recent call last):
...
TypeError: ids must be integer token ids, got 1.7 (float) at position 0
"""

from __future__ import annotations

import math
import numbers

import torch

__all__ = ["check_bool", "check_int", "check_real", "check_temperature", "check_probability",
           "check_batch_size", "token_ids", "check_token_tensor", "check_logits"]

INT_DTYPES = (torch.int64, torch.int32)


def _is_int(value) -> bool:
    # numpy and 0-d integer tensors are fine; bool is an int to Python but never a count here
    if isinstance(value, bool) or (isinstance(value, torch.Tensor) and value.dtype == torch.bool):
        return False
    if isinstance(value, torch.Tensor):
        return value.dim() == 0 and not value.is_floating_point() and not value.is_complex()
    return isinstance(value, numbers.Integral)


def check_bool(value, name: str) -> bool:
    """``value`` if it is a real bool: ``"no"`` or ``1`` would otherwise read as True.

    >>> check_bool(False, "bias")
    False
    """
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return value


def check_int(value, name: str, *, low: int | None = None, high: int | None = None,
              reason: str = "") -> int:
    """``value`` as an int in [low, high] (either bound optional); floats and bools refused.
    ``reason`` says why the range is what it is.

    >>> check_int(2.0, "top_k", low=1)
    Traceback (most recent call last):
    ...
    ValueError: top_k must be an int >= 1, got 2.0 (float)
    >>> check_int(0, "start", low=1, high=4, reason="token 0 has no context")
    Traceback (most recent call last):
    ...
    ValueError: start must be an int in [1, 4] (token 0 has no context), got 0
    """
    if high is None:
        expected = "" if low is None else f" >= {low}"
    else:
        expected = f" <= {high}" if low is None else f" in [{low}, {high}]"
    if reason:
        expected += f" ({reason})"
    # a ValueError even for 1.5 or True: the book's convention for every count and size
    if not _is_int(value):
        raise ValueError(f"{name} must be an int{expected}, got {value!r} ({type(value).__name__})")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be an int{expected}, got {value}")
    return value


def check_real(value, name: str, *, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False,
               kind_error: type[Exception] = TypeError) -> float:
    """``value`` as a finite float in the interval given (open ends with ``*_open``). A value
    that is no number at all raises ``kind_error`` (a caller whose every bad knob has always
    been a ValueError passes ValueError).

    >>> check_real(float("nan"), "lr", low=0.0, low_open=True)
    Traceback (most recent call last):
    ...
    ValueError: lr must be a finite number > 0.0, got nan
    """
    lo = "" if low is None else f"{'>' if low_open else '>='} {low}"
    hi = "" if high is None else f"{'<' if high_open else '<='} {high}"
    expected = " and ".join(s for s in (lo, hi) if s)
    expected = f" {expected}" if expected else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise kind_error(f"{name} must be a finite number{expected}, got {value!r} "
                         f"({type(value).__name__})")
    value = float(value)
    ok = math.isfinite(value)
    ok = ok and (low is None or (value > low if low_open else value >= low))
    ok = ok and (high is None or (value < high if high_open else value <= high))
    if not ok:
        raise ValueError(f"{name} must be a finite number{expected}, got {value}")
    return value


def check_temperature(value, name: str = "temperature", *, allow_zero: bool = True) -> float:
    """A sampling temperature: finite, > 0 (or >= 0 where 0 means greedy)."""
    return check_real(value, name, low=0.0, low_open=not allow_zero)


def check_probability(value, name: str, *, allow_zero: bool = True, allow_one: bool = True) -> float:
    """A probability in [0, 1] (ends excluded on request)."""
    return check_real(value, name, low=0.0, high=1.0, low_open=not allow_zero, high_open=not allow_one)


def check_batch_size(value, name: str = "batch_size") -> int:
    """A batch size: an int >= 1 (a batch of 0 rows computes nothing and crashes deep in torch)."""
    return check_int(value, name, low=1)


def token_ids(ids, name: str = "ids", vocab_size: int | None = None, *,
              kind_error: type[Exception] = TypeError) -> list[int]:
    """A sequence of token ids as a list of ints, each >= 0 and, if given, < vocab_size.

    A str is refused (``"123"`` is text, not ids), and so is any float, even 1.0: such ids
    raise ``kind_error`` (a ValueError for callers whose ids were always checked like counts).
    One id, such as a mask id, is checked as a list of one.

    >>> token_ids(torch.tensor([0, 2]), vocab_size=3)
    [0, 2]
    >>> token_ids([-1], "mask_id")
    Traceback (most recent call last):
    ...
    ValueError: token id -1 at position 0 of mask_id is negative: ids index the vocabulary from 0
    """
    if isinstance(ids, (str, bytes)):
        raise kind_error(f"{name} must be token ids, got a {type(ids).__name__}: encode the text first")
    if isinstance(ids, torch.Tensor):
        if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
            raise kind_error(f"{name} must be integer token ids, got a tensor of dtype {ids.dtype}")
        if ids.dim() > 1:
            raise ValueError(f"{name} must be a 1-D sequence of token ids, got shape {tuple(ids.shape)}")
        out = ids.reshape(-1).tolist()
    else:
        try:
            items = list(ids)
        except TypeError:
            raise TypeError(f"{name} must be a sequence of token ids, got {type(ids).__name__}") from None
        out = []
        for pos, i in enumerate(items):
            if not _is_int(i):
                raise kind_error(f"{name} must be integer token ids, got {i!r} ({type(i).__name__}) "
                                 f"at position {pos}")
            out.append(int(i))
    for pos, i in enumerate(out):
        if vocab_size is not None and not 0 <= i < vocab_size:
            raise ValueError(f"token id {i} at position {pos} of {name} is outside the vocabulary "
                             f"range(0, {vocab_size})")
        if i < 0:
            raise ValueError(f"token id {i} at position {pos} of {name} is negative: ids index the "
                             "vocabulary from 0")
    return out


def check_token_tensor(idx, name: str = "idx", vocab_size: int | None = None, *,
                       dims: tuple | None = (2,), min_batch: int = 1,
                       ignore_index: int | None = None) -> torch.Tensor:
    """An integer tensor of ids with ``dim()`` in ``dims``, at least one position (and, for 2-D,
    ``min_batch`` rows), every id in range(vocab_size); ``ignore_index`` (e.g. -100) passes.
    ``dims=None`` takes any shape, an empty one included (a batch of ids of any layout).

    >>> check_token_tensor(torch.tensor([[1, -100]]), "targets", 3, ignore_index=-100).shape
    torch.Size([1, 2])
    >>> check_token_tensor(torch.zeros(0, 4, dtype=torch.long), "idx", 3)
    Traceback (most recent call last):
    ...
    ValueError: idx must have shape (B, T) with B >= 1 and T >= 1, got (0, 4)
    """
    if not isinstance(idx, torch.Tensor) or idx.dtype not in INT_DTYPES:
        got = idx.dtype if isinstance(idx, torch.Tensor) else type(idx).__name__
        raise TypeError(f"{name} must be an integer tensor (torch.long) of token ids, got {got}")
    shape = {1: "(T,)", 2: "(B, T)"}
    if dims is not None and (idx.dim() not in dims or idx.shape[-1] == 0
                             or (idx.dim() == 2 and idx.shape[0] < min_batch)):
        want = " or ".join(shape.get(d, f"{d}-D") for d in dims)
        rows = f" with B >= {min_batch} and T >= 1" if 2 in dims else " with T >= 1"
        raise ValueError(f"{name} must have shape {want}{rows}, got {tuple(idx.shape)}")
    if vocab_size is not None:
        valid = idx if ignore_index is None else idx[idx != ignore_index]
        if valid.numel() and (int(valid.min()) < 0 or int(valid.max()) >= vocab_size):
            extra = "" if ignore_index is None else f" or {ignore_index} (ignored)"
            raise ValueError(f"{name} must hold ids in range(0, {vocab_size}){extra}, got ids from "
                             f"{int(valid.min())} to {int(valid.max())}")
    return idx


def check_logits(logits, name: str = "logits") -> torch.Tensor:
    """Logits (..., V) a distribution can be made from: floating, no NaN, no +inf, and no row
    that is -inf everywhere (-inf alone is fine: a removed token).

    >>> check_logits(torch.tensor([0.0, float("nan")]))
    Traceback (most recent call last):
    ...
    ValueError: logits contain NaN or +inf: no probability distribution can be formed
    """
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        got = logits.dtype if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise TypeError(f"{name} must be a floating-point tensor (..., V), got {got}")
    if logits.dim() < 1 or logits.shape[-1] == 0:
        raise ValueError(f"{name} must have shape (..., V) with V >= 1, got {tuple(logits.shape)}")
    if torch.isnan(logits).any() or torch.isposinf(logits).any():
        raise ValueError(f"{name} contain NaN or +inf: no probability distribution can be formed")
    if not (logits > float("-inf")).any(dim=-1).all():
        raise ValueError(f"a row of {name} is entirely -inf: every token was removed")
    return logits
