"""Checkers for the book's coding exercises: your function against the reference, on random inputs.

Each ``check_*`` takes a function you wrote, calls it and the package's reference on many random
inputs (seeded, so a failure repeats), and either returns a short success message or raises
``AssertionError`` describing the first input where they disagree. Exercise stubs in the book
raise ``NotImplementedError``; a checker reports that as "not implemented yet".

>>> import torch
>>> check_causal_mask(lambda T: torch.ones(T, T, dtype=torch.bool).tril())
'check_causal_mask: 6 cases passed'
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from llm_lessons import attention, sampling


def _call(name: str, fn: Callable, *args):
    try:
        return fn(*args)
    except NotImplementedError:
        raise AssertionError(f"{name}: your function is not implemented yet") from None


def _compare(name: str, got, want, case: str, atol: float = 1e-5) -> None:
    got = torch.as_tensor(got)
    want = torch.as_tensor(want)
    if got.shape != want.shape:
        raise AssertionError(f"{name}: on {case}, expected shape {tuple(want.shape)}, got {tuple(got.shape)}")
    if want.dtype == torch.bool or got.dtype == torch.bool:
        ok = torch.equal(got.bool(), want.bool())
    else:
        both_inf = torch.isinf(want) & torch.isinf(got) & (torch.sign(want) == torch.sign(got))
        close = torch.isclose(got.double(), want.double(), atol=atol, rtol=1e-4)
        ok = bool((close | both_inf).all())
    if not ok:
        raise AssertionError(f"{name}: on {case}, your result differs from the reference.\n"
                             f"expected:\n{want}\ngot:\n{got}")


def check_causal_mask(fn: Callable[[int], torch.Tensor]) -> str:
    """``fn(T)`` must return the (T, T) boolean mask, True where query i may attend to key j."""
    sizes = [1, 2, 3, 5, 8, 13]
    for T in sizes:
        _compare("check_causal_mask", _call("check_causal_mask", fn, T), attention.causal_mask(T), f"T={T}")
    return f"check_causal_mask: {len(sizes)} cases passed"


def check_attention(fn: Callable, n_cases: int = 20, seed: int = 0) -> str:
    """``fn(q, k, v)`` must return softmax(q k^T / sqrt(hs)) v for shapes (B, T, hs)."""
    g = torch.Generator().manual_seed(seed)
    for i in range(n_cases):
        B, T, hs = (int(torch.randint(1, 4, (), generator=g)), int(torch.randint(1, 9, (), generator=g)),
                    int(torch.randint(1, 17, (), generator=g)))
        q, k, v = (torch.randn(B, T, hs, generator=g) for _ in range(3))
        want, _ = attention.scaled_dot_product_attention(q, k, v)
        got = _call("check_attention", fn, q, k, v)
        if isinstance(got, tuple):  # accept (out, weights) as well as out alone
            got = got[0]
        _compare("check_attention", got, want, f"case {i} (B={B}, T={T}, hs={hs})")
    return f"check_attention: {n_cases} cases passed"


def check_top_p(fn: Callable, n_cases: int = 50, seed: int = 0) -> str:
    """``fn(logits, p)`` on (V,) logits must keep the smallest set reaching mass p (others -inf)."""
    g = torch.Generator().manual_seed(seed)
    for i in range(n_cases):
        V = int(torch.randint(2, 12, (), generator=g))
        logits = torch.randn(V, generator=g) * 2
        p = float(torch.rand((), generator=g)) * 0.98 + 0.01
        want = sampling.top_p_filter(logits, p)
        got = _call("check_top_p", fn, logits.clone(), p)
        _compare("check_top_p", got, want, f"case {i} (V={V}, p={p:.3f}, logits={logits.tolist()})")
    return f"check_top_p: {n_cases} cases passed"


def check_perplexity(fn: Callable, n_cases: int = 20, seed: int = 0) -> str:
    """``fn(logits, targets)`` with logits (T, V) and targets (T,) must return exp(mean NLL)."""
    g = torch.Generator().manual_seed(seed)
    for i in range(n_cases):
        T, V = int(torch.randint(1, 20, (), generator=g)), int(torch.randint(2, 30, (), generator=g))
        logits = torch.randn(T, V, generator=g)
        targets = torch.randint(0, V, (T,), generator=g)
        nll = -logits.log_softmax(-1)[torch.arange(T), targets]
        want = math.exp(nll.double().mean().item())
        got = float(_call("check_perplexity", fn, logits, targets))
        if not math.isclose(got, want, rel_tol=1e-5):
            raise AssertionError(f"check_perplexity: on case {i} (T={T}, V={V}) expected {want:.6f}, "
                                 f"got {got:.6f}")
    return f"check_perplexity: {n_cases} cases passed"
