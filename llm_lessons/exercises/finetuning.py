"""Checkers for chapter 8.5's exercises: how many numbers LoRA trains, the adapted layer's
forward pass, and merging the update into the weight.

Shapes: B batch, a Linear maps ``in`` to ``out`` with weight W (out x in); the adapter has rank
r, A (r x in) and B (out x r), and adds ``(alpha / r) B A`` to W. The answers come from
references written here in float64; :class:`llm_lessons.frontiers.lora.LoRALinear` and the
package's ``add_lora``, ``merge_lora`` and ``trainable_parameters`` are forbidden while the
student's code runs: they are the answer.

>>> def count(n_layer, n_embd, r, targets):
...     shapes = {"attn.qkv": (n_embd, 3 * n_embd), "attn.proj": (n_embd, n_embd),
...               "mlp.fc": (n_embd, 4 * n_embd), "mlp.proj": (4 * n_embd, n_embd)}
...     return n_layer * sum(r * sum(shapes[t]) for t in targets)
>>> check_lora_count(count)
'check_lora_count: all 10 cases passed'
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from llm_lessons.exercises.checking import Case, ExerciseFailed, Mistake, random_int, run_check

#: The book GPT's Linear layers as (in, out), for a width C: the names ``add_lora`` matches.
TARGET_NAMES = ("attn.qkv", "attn.proj", "mlp.fc", "mlp.proj")
FORBIDDEN = ("llm_lessons.frontiers.lora.LoRALinear", "llm_lessons.frontiers.lora.add_lora",
             "llm_lessons.frontiers.lora.merge_lora", "llm_lessons.frontiers.lora.unmerge_lora",
             "llm_lessons.frontiers.lora.trainable_parameters")


def _shapes(C: int, qkv_outputs: int = 3) -> dict[str, tuple[int, int]]:
    return {"attn.qkv": (C, qkv_outputs * C), "attn.proj": (C, C), "mlp.fc": (C, 4 * C),
            "mlp.proj": (4 * C, C)}


def _count(n_layer, n_embd, r, targets, per="both", layers=True, qkv_outputs=3):
    """LoRA's trainable numbers in the book's GPT; the flags give the usual wrong versions."""
    shapes = _shapes(n_embd, qkv_outputs)
    total = 0
    for name in targets:
        n_in, n_out = shapes[name]
        total += {"both": r * (n_in + n_out), "A only": r * n_in, "product": r * n_in * n_out,
                  "full": n_in * n_out}[per]
    return total * (n_layer if layers else 1)


def check_lora_count(fn: Callable, n_cases: int = 10, seed: int = 0) -> str:
    """``fn(n_layer, n_embd, r, targets)``: how many numbers LoRA of rank r trains in the book's
    GPT when it adapts the Linear layers named in ``targets`` (a list drawn from "attn.qkv"
    (C -> 3C), "attn.proj" (C -> C), "mlp.fc" (C -> 4C) and "mlp.proj" (4C -> C)) in each of the
    n_layer blocks: A (r x in) and B (out x r) per adapted layer, r (in + out) numbers, and
    nothing else (the base model is frozen). For the shipped nano GPT (4 layers, C = 128), r = 4
    on ["attn.qkv", "attn.proj"]: 4 * (4 * 512 + 4 * 256) = 12288."""
    g = torch.Generator().manual_seed(seed)
    fixed = [((4, 128, 4, ["attn.qkv", "attn.proj"]), "the nano GPT, attention only"),
             ((4, 128, 8, list(TARGET_NAMES)), "the nano GPT, every Linear of every block"),
             ((12, 768, 8, ["attn.qkv"]), "GPT-2 small's fused query-key-value matrices"),
             ((1, 1, 1, ["mlp.proj"]), "one layer of width 1, rank 1"),
             ((3, 64, 2, []), "no target at all")]
    cases = [Case(args, _count(*args), f"{what}: (n_layer, n_embd, r, targets) = {args}")
             for args, what in fixed]
    while len(cases) < n_cases:
        n_embd = 16 * random_int(g, 1, 33)
        chosen = [t for t in TARGET_NAMES if random_int(g, 0, 2)] or ["mlp.fc"]
        args = (random_int(g, 1, 13), n_embd, 2 ** random_int(g, 0, 5), chosen)
        cases.append(Case(args, _count(*args), f"(n_layer, n_embd, r, targets) = {args}"))
    mistakes = [
        Mistake("product", lambda *a: _count(*a, per="product"),
                "you counted r * in * out per matrix, r full-size copies; LoRA's two factors hold "
                "r * in (A) + out * r (B) numbers: r (in + out)"),
        Mistake("A only", lambda *a: _count(*a, per="A only"),
                "you counted A (r x in) but not B (out x r): both factors train, r (in + out)"),
        Mistake("one layer", lambda *a: _count(*a, layers=False),
                "your count is one block's: every one of the n_layer blocks has its own adapters"),
        Mistake("qkv as C -> C", lambda *a: _count(*a, qkv_outputs=1),
                "attn.qkv is one fused matrix C -> 3C (query, key and value side by side), so its "
                "adapter has r (C + 3C) numbers, not r (C + C)"),
        Mistake("full", lambda *a: _count(*a, per="full"),
                "you counted the adapted matrices' own weights (in x out): that is full "
                "fine-tuning of those matrices; LoRA trains r (in + out) per matrix"),
    ]
    return run_check("check_lora_count", fn, cases, mistakes, forbidden=FORBIDDEN)


def _forward(x, W, b, A, B, alpha, scale="alpha / r", with_bias=True, order="BA"):
    """The adapted Linear in float64; the flags give the usual wrong versions."""
    r = A.shape[0]
    factor = {"alpha / r": alpha / r, "alpha": alpha, "none": 1.0, "r / alpha": r / alpha}[scale]
    x, W, b, A, B = (t.double() for t in (x, W, b, A, B))
    base = x @ W.T + (b if with_bias else 0.0)
    update = B @ A if order == "BA" else (B @ A).T  # (out, in); "AB" only fits square W
    return (base + factor * (x @ update.T)).float()


def _adapter_cases(g: torch.Generator, n_cases: int, with_x: bool) -> list[Case]:
    t = torch.tensor
    fixed_x, fixed_W, fixed_b = t([[1.0, 2.0]]), t([[1.0, 0.0], [0.0, 1.0]]), t([0.5, -0.5])
    fixed_A, fixed_B = t([[1.0, 1.0]]), t([[2.0], [0.0]])
    cases = []

    def add(x, W, b, A, B, alpha, label):
        if with_x:
            cases.append(Case((x, W, b, A, B, alpha), _forward(x, W, b, A, B, alpha), label))
        else:
            cases.append(Case((W, A, B, alpha), _merge(W, A, B, alpha), label))

    add(fixed_x, fixed_W, fixed_b, fixed_A, fixed_B, 1.0,
        "W = I (2 x 2), b = [0.5, -0.5], A = [[1, 1]], B = [[2], [0]], alpha = 1, r = 1")
    B0 = torch.zeros(3, 2)
    add(torch.randn(2, 4, generator=g), torch.randn(3, 4, generator=g), torch.randn(3, generator=g),
        torch.randn(2, 4, generator=g), B0, 4.0, "B = 0, as at the start of training: the base layer")
    shapes = [(5, 5, 2), (8, 3, 1), (6, 12, 4), (4, 4, 4), (16, 8, 3)]  # (in, out, r)
    while len(cases) < n_cases:
        n_in, n_out, r = shapes[len(cases) % len(shapes)]
        batch = (random_int(g, 1, 4),) if len(cases) % 2 else (2, random_int(g, 1, 5))
        alpha = float(2 ** random_int(g, 0, 6))
        add(torch.randn(*batch, n_in, generator=g), torch.randn(n_out, n_in, generator=g),
            torch.randn(n_out, generator=g), torch.randn(r, n_in, generator=g),
            torch.randn(n_out, r, generator=g), alpha,
            f"x of shape {(*batch, n_in)}, W ({n_out} x {n_in}), r = {r}, alpha = {alpha:g}")
    return cases


def check_lora_forward(fn: Callable, n_cases: int = 10, seed: int = 1) -> str:
    """``fn(x, W, b, A, B, alpha)``: the output of a Linear layer (weight W (out x in), bias b
    (out,)) adapted by LoRA, for x (..., in): ``x W^T + b + (alpha / r) x A^T B^T``, with A
    (r x in), B (out x r) and the rank r read off A's first dimension."""
    cases = _adapter_cases(torch.Generator().manual_seed(seed), n_cases, with_x=True)
    mistakes = [
        Mistake("alpha", lambda *a: _forward(*a, scale="alpha"),
                "you scaled the update by alpha; LoRA scales it by alpha / r, so that changing the "
                "rank does not change the size of the update's starting steps as much"),
        Mistake("no scaling", lambda *a: _forward(*a, scale="none"),
                "you added x A^T B^T without its scale: multiply the update by alpha / r"),
        Mistake("r / alpha", lambda *a: _forward(*a, scale="r / alpha"),
                "you scaled the update by r / alpha, upside down: the factor is alpha / r"),
        Mistake("no bias", lambda *a: _forward(*a, with_bias=False),
                "the update is right but the base layer's bias is missing: the frozen layer is "
                "x W^T + b, and LoRA adds to all of it"),
        Mistake("transposed", lambda *a: _forward(*a, order="AB"),
                "your update is transposed (it only fits because W is square here): the update "
                "to W (out x in) is B A, applied as x A^T B^T (first down to r numbers, then up)"),
    ]
    return run_check("check_lora_forward", fn, cases, mistakes, forbidden=FORBIDDEN)


def _merge(W, A, B, alpha, scale="alpha / r", order="BA", sign=1.0):
    r = A.shape[0]
    factor = {"alpha / r": alpha / r, "alpha": alpha, "none": 1.0}[scale]
    update = B.double() @ A.double()  # (out, r) @ (r, in) -> (out, in)
    if order == "AB":
        update = update.T
    return (W.double() + sign * factor * update).float()


def check_lora_merge(fn: Callable, n_cases: int = 10, seed: int = 2) -> str:
    """``fn(W, A, B, alpha)``: the merged weight of a LoRA-adapted Linear, one matrix (out x in)
    that computes what the base layer plus its adapter compute: ``W + (alpha / r) B A``, with A
    (r x in), B (out x r) and r read off A. W itself must not change (return a new tensor)."""
    cases = _adapter_cases(torch.Generator().manual_seed(seed), n_cases, with_x=False)
    mistakes = [
        Mistake("alpha", lambda *a: _merge(*a, scale="alpha"),
                "you added alpha B A; the update is (alpha / r) B A, the same scale as the forward"),
        Mistake("no scaling", lambda *a: _merge(*a, scale="none"),
                "you added B A without its scale alpha / r: the merged layer would not compute "
                "what the adapted one did"),
        Mistake("transposed", lambda *a: _merge(*a, order="AB"),
                "you added (B A)^T (it only fits because W is square here): W is (out x in) and "
                "so is B A, with B (out x r) on the left"),
        Mistake("unmerge", lambda *a: _merge(*a, sign=-1.0),
                "you subtracted the update: that is unmerging; merging adds (alpha / r) B A"),
    ]

    def without_touching_W(W, A, B, alpha):
        kept = W.clone()
        merged = fn(W, A, B, alpha)
        if not torch.equal(W, kept):
            raise ExerciseFailed("check_lora_merge: your function changed W in place; return a "
                                 "new tensor (W.clone() first, or W + update)")
        return merged

    return run_check("check_lora_merge", without_touching_W, cases, mistakes, forbidden=FORBIDDEN,
                     student=fn)
