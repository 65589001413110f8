"""Checkers for chapter 8.2's exercises: RMSNorm, the SwiGLU feed-forward layer, and the
key/value heads repeated for grouped-query attention.

Shapes: B batch, T positions, C channels, H the feed-forward width, nh query heads, nkv
key/value heads, hs head size. All three are one or two lines, and all three fail quietly when
wrong: a normalisation that also subtracts the mean still gives vectors of size about 1, swapped
gate and up projections still give the right shape, and heads repeated in the wrong order still
give nh heads. The answers come from references written here; ``RMSNorm`` (the book's and
PyTorch's) and the book's ``SwiGLU`` are forbidden while the student's code runs. Repeating heads
has no package function of its own (it is one line inside
:class:`~llm_lessons.frontiers.gqa.GroupedQueryAttention`), so the third forbids nothing.

>>> def rms_norm(x, weight, eps):
...     return x / torch.sqrt((x ** 2).mean(-1, keepdim=True) + eps) * weight
>>> check_rms_norm(rms_norm)
'check_rms_norm: all 10 cases passed'
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from llm_lessons.exercises.checking import Case, Mistake, available, run_check

RMS_NORM_ANSWERS = ("llm_lessons.frontiers.layers.RMSNorm", "torch.nn.RMSNorm",
                    "torch.nn.functional.rms_norm", "torch.rms_norm")

# --- RMSNorm ---


def _rms_norm(x, weight, eps, centre=False, eps_outside=False, dim=-1, gain=True):
    """The reference in float64; the flags give the usual wrong versions."""
    x = x.double()
    if centre:  # LayerNorm's first step, which RMSNorm drops
        x = x - x.mean(dim, keepdim=True)
    ms = (x ** 2).mean(dim, keepdim=True)
    rms = ms.sqrt() + eps if eps_outside else (ms + eps).sqrt()
    out = x / rms
    return (out * weight.double() if gain else out).float()


def check_rms_norm(fn: Callable, n_cases: int = 10, seed: int = 0) -> str:
    """``fn(x, weight, eps)``: RMSNorm of x (..., C) over its last dimension: divide each vector
    by the root of its mean square plus eps, ``x / sqrt(mean(x**2) + eps)``, then multiply by
    the gain ``weight`` (C,). No mean is subtracted and there is no bias."""
    g = torch.Generator().manual_seed(seed)
    t = torch.tensor
    cases = [Case((t([[3.0, -4.0]]), torch.ones(2), 0.0), t([[0.6 * 2 ** 0.5, -0.8 * 2 ** 0.5]]),
                  "x = [[3, -4]], weight 1, eps 0 (mean square 12.5)"),
             Case((t([[5.0, 5.0, 5.0, 5.0]]), t([1.0, 2.0, 3.0, 4.0]), 1e-5),
                  _rms_norm(t([[5.0, 5.0, 5.0, 5.0]]), t([1.0, 2.0, 3.0, 4.0]), 1e-5),
                  "a constant vector [5, 5, 5, 5] (its mean is all of it; RMSNorm keeps it)"),
             Case((torch.zeros(1, 3), torch.ones(3), 1e-5), torch.zeros(1, 3),
                  "a vector of zeros (eps keeps it finite)")]
    shapes = [(2, 4), (3, 2, 8), (1, 1, 2), (4, 16)]
    while len(cases) < n_cases:
        shape = shapes[len(cases) % len(shapes)]
        x = torch.randn(shape, generator=g) * 2 + 1.5  # a mean away from 0 tells centring apart
        weight = torch.rand(shape[-1], generator=g) + 0.5
        eps = [1e-5, 0.5, 2.0][len(cases) % 3]  # large eps cases tell where it goes
        cases.append(Case((x, weight, eps), _rms_norm(x, weight, eps), f"x of shape {shape}, eps {eps}"))
    mistakes = [
        Mistake("centred", lambda *a: _rms_norm(*a, centre=True),
                "you subtracted the mean first: that is LayerNorm (without its bias); RMSNorm "
                "only divides by the root mean square, sqrt(mean(x**2) + eps)"),
        Mistake("eps outside", lambda *a: _rms_norm(*a, eps_outside=True),
                "you added eps after the square root; it goes inside: sqrt(mean(x**2) + eps)"),
        Mistake("dim 0", lambda *a: _rms_norm(*a, dim=0),
                "you averaged over the first dimension; each vector is normalised over its own "
                "channels, the last dimension: mean(-1, keepdim=True)"),
        Mistake("no gain", lambda *a: _rms_norm(*a, gain=False),
                "you left out the gain: multiply the normalised vector by weight, channel by channel"),
    ]
    return run_check("check_rms_norm", fn, cases, mistakes, forbidden=available(RMS_NORM_ANSWERS),
                     atol=1e-5, rtol=1e-4)


# --- SwiGLU ---


def _swiglu(x, w_gate, w_up, w_down, act="silu", order="gate"):
    """down(act(gate(x)) * up(x)) with nn.Linear's (out, in) weights; flags: wrong versions."""
    x = x.double()
    gate, up = x @ w_gate.double().T, x @ w_up.double().T  # (..., C) -> (..., H) each
    if order == "up":  # the two projections swapped
        gate, up = up, gate
    if act == "silu":
        hidden = gate * torch.sigmoid(gate) * up
    elif act == "sigmoid":  # the original GLU
        hidden = torch.sigmoid(gate) * up
    elif act == "after":  # the activation on the product
        prod = gate * up
        hidden = prod * torch.sigmoid(prod)
    else:  # no gate: an ungated SiLU MLP through gate's weights
        hidden = gate * torch.sigmoid(gate)
    return (hidden @ w_down.double().T).float()  # (..., H) -> (..., C)


def check_swiglu(fn: Callable, n_cases: int = 8, seed: int = 1) -> str:
    """``fn(x, w_gate, w_up, w_down)``: the SwiGLU feed-forward layer on x (..., C), with the
    weights in ``nn.Linear``'s layout: ``w_gate`` and ``w_up`` (H, C), ``w_down`` (C, H). Return
    ``down(silu(gate(x)) * up(x))``, i.e. ``(silu(x @ w_gate.T) * (x @ w_up.T)) @ w_down.T``
    with ``silu(z) = z * sigmoid(z)``; no biases."""
    g = torch.Generator().manual_seed(seed)
    eye = torch.eye(2)
    x_hand = torch.tensor([[1.0, -2.0]])
    cases = [Case((x_hand, eye, 2 * eye, eye), _swiglu(x_hand, eye, 2 * eye, eye),
                  "x = [[1, -2]], gate = I, up = 2I, down = I: [silu(1) * 2, silu(-2) * -4]")]
    shapes = [((3, 4), 6), ((2, 3, 8), 12), ((1, 2), 3), ((5, 16), 8), ((2, 2, 6), 16), ((4, 1), 2),
              ((3, 10), 20)]
    for shape, hidden in shapes[: n_cases - 1]:
        C = shape[-1]
        x = torch.randn(shape, generator=g) * 2
        w_gate, w_up = torch.randn(hidden, C, generator=g), torch.randn(hidden, C, generator=g)
        w_down = torch.randn(C, hidden, generator=g) / hidden ** 0.5
        cases.append(Case((x, w_gate, w_up, w_down), _swiglu(x, w_gate, w_up, w_down),
                          f"x of shape {shape}, hidden width {hidden}"))
    mistakes = [
        Mistake("swapped", lambda *a: _swiglu(*a, order="up"),
                "you passed the up projection through SiLU and multiplied by the gate: gate and "
                "up are swapped; SiLU goes on x @ w_gate.T, the up projection stays linear"),
        Mistake("sigmoid", lambda *a: _swiglu(*a, act="sigmoid"),
                "you used sigmoid(gate) * up, the original GLU; SwiGLU's gate is SiLU, "
                "gate * sigmoid(gate)"),
        Mistake("after", lambda *a: _swiglu(*a, act="after"),
                "you applied SiLU to the product; it goes on the gate alone: "
                "silu(x @ w_gate.T) * (x @ w_up.T)"),
        Mistake("no up", lambda *a: _swiglu(*a, act="ungated"),
                "you left out the up projection: the gated layer multiplies silu(gate(x)) by "
                "up(x), element by element, before the down projection"),
    ]
    forbidden = available(("llm_lessons.frontiers.layers.SwiGLU",))
    return run_check("check_swiglu", fn, cases, mistakes, forbidden=forbidden, atol=1e-4, rtol=1e-4)


# --- repeating key/value heads ---


def _repeat_kv(k, n_head, order="interleave", times="group"):
    """(B, nkv, T, hs) -> (B, nh, T, hs); flags: the usual wrong versions."""
    B, nkv, T, hs = k.shape
    group = n_head // nkv if times == "group" else nkv
    if order == "interleave":  # query head h reads key/value head h // group
        index = torch.arange(nkv * group) // group
    else:  # tiled: query head h reads key/value head h % nkv
        index = torch.arange(nkv * group) % nkv
    return k[:, index]


def check_repeat_kv(fn: Callable, n_cases: int = 8, seed: int = 2) -> str:
    """``fn(k, n_head)``: k (B, nkv, T, hs) holds the keys (or values) of nkv heads; return
    (B, n_head, T, hs) where query head h gets key/value head ``h // (n_head // nkv)``: heads
    0 .. g-1 share head 0, the next g share head 1, ... (g = n_head // nkv)."""
    g = torch.Generator().manual_seed(seed)
    labelled = torch.arange(2.0)[None, :, None, None].expand(1, 2, 1, 1)  # head e holds e
    cases = [Case((labelled.clone(), 4), _repeat_kv(labelled, 4),
                  "2 key/value heads holding 0 and 1, 4 query heads: [0, 0, 1, 1]")]
    shapes = [(2, 2, 3, 4, 8), (1, 3, 5, 2, 6), (2, 4, 2, 4, 4), (1, 1, 4, 2, 4), (3, 2, 1, 2, 4),
              (1, 4, 3, 8, 8), (2, 2, 2, 2, 2)]  # (B, nkv, T, hs, nh)
    for B, nkv, T, hs, nh in shapes[: n_cases - 1]:
        k = torch.randn(B, nkv, T, hs, generator=g)
        label = f"k of shape {(B, nkv, T, hs)}, {nh} query heads"
        label += {1: " (one key/value head: multi-query)", nh: " (as many as the queries: unchanged)"
                  }.get(nkv, "")
        cases.append(Case((k, nh), _repeat_kv(k, nh), label))
    mistakes = [
        Mistake("tiled", lambda k, n: _repeat_kv(k, n, order="tile"),
                "your heads are in the wrong order: k.repeat (or expand then reshape with the "
                "copies first) tiles them 0, 1, 0, 1; query heads 0 .. g-1 share head 0, so each "
                "head must repeat in place: repeat_interleave(g, dim=1) gives 0, 0, 1, 1"),
        Mistake("times nkv", lambda k, n: _repeat_kv(k, n, times="nkv"),
                "you repeated each head n_kv_head times; repeat it g = n_head // n_kv_head times, "
                "the size of its group of query heads"),
    ]
    return run_check("check_repeat_kv", fn, cases, mistakes, atol=0, rtol=0)
