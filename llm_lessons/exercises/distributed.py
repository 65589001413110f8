"""Checkers for chapter 8.8's exercises: the full-batch gradient from unequal shards, a ring
reduce-scatter on lists of tensors, and the bytes one data-parallel step sends.

Data parallelism is bookkeeping that fails silently: a plain average of unequal shards trains on
a reweighted batch, a reduce-scatter that leaves the wrong chunk on a rank gives every process a
different model, and a traffic estimate that counts a tied matrix twice sizes the network wrong.
The answers come from references written here; the byte count must not call
:func:`llm_lessons.frontiers.distributed.communication_per_step` (forbidden).

>>> import torch
>>> def combine(grads, sizes):
...     return sum(n * g for g, n in zip(grads, sizes)) / sum(sizes)
>>> check_combine_shard_gradients(combine)
'check_combine_shard_gradients: all 8 cases passed'
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from llm_lessons.exercises.checking import Case, Mistake, random_int, run_check

# --- the full-batch gradient from the shards' mean gradients ---


def _combine(grads, sizes, how="weighted"):
    """sum_i n_i g_i / sum_i n_i in float64, one shard at a time; the flags give wrong versions."""
    total = torch.zeros(grads[0].shape, dtype=torch.float64)
    for g, n in zip(grads, sizes, strict=True):
        total += (1.0 if how in ("mean", "sum") else float(n)) * g.double()
    divisor = {"weighted": float(sum(sizes)), "mean": float(len(grads)), "sum": 1.0,
               "weighted sum": 1.0, "weighted mean": float(len(grads))}[how]
    return (total / divisor).to(grads[0].dtype)


def check_combine_shard_gradients(fn: Callable, n_cases: int = 8, seed: int = 0) -> str:
    """``fn(grads, sizes)``: ``grads[i]`` is the gradient of the *mean* loss over shard i's
    ``sizes[i]`` examples (all tensors of one shape); return the gradient of the mean loss over
    the whole batch, the shards together."""
    g = torch.Generator().manual_seed(seed)
    t = torch.tensor
    fixed = [(([t([2.0, 4.0]), t([6.0, 0.0])], [2, 2]), "two equal shards of 2 examples"),
             (([t([2.0, 4.0]), t([6.0, 0.0])], [1, 3]), "shards of 1 and 3 examples"),
             (([t([[1.0, -1.0], [0.5, 3.0]])], [5]), "one shard (a single process)"),
             (([t([3.0]), t([0.0]), t([-3.0])], [3, 5, 8]), "three shards of 3, 5 and 8")]
    cases = [Case(args, _combine(*args), f"{label}: grads {[a.tolist() for a in args[0]]}, "
                                         f"sizes {args[1]}") for args, label in fixed]
    while len(cases) < n_cases:
        world = random_int(g, 2, 6)
        shape = tuple(torch.randint(1, 4, (random_int(g, 1, 3),), generator=g).tolist())
        grads = [torch.randn(shape, generator=g) for _ in range(world)]
        sizes = [random_int(g, 1, 9) for _ in range(world)]
        cases.append(Case((grads, sizes), _combine(grads, sizes),
                          f"{world} shards of sizes {sizes}, gradients of shape {shape}"))
    mistakes = [
        Mistake("plain mean", lambda gr, n: _combine(gr, n, "mean"),
                "you averaged the shards' gradients as DDP does: that is the full-batch gradient "
                "only when the shards are equal. Weight each shard's gradient by its number of "
                "examples and divide by the total"),
        Mistake("weighted sum", lambda gr, n: _combine(gr, n, "weighted sum"),
                "you weighted each gradient by its shard's size but never divided by the total "
                "number of examples: the loss is a mean over the whole batch"),
        Mistake("weighted mean", lambda gr, n: _combine(gr, n, "weighted mean"),
                "you weighted by the shard sizes, then divided by the number of shards; divide by "
                "the number of examples, sum(sizes)"),
        Mistake("sum", lambda gr, n: _combine(gr, n, "sum"),
                "you added the gradients up: each is already a mean over its shard, so the sum "
                "is too large by about the number of shards"),
    ]
    return run_check("check_combine_shard_gradients", fn, cases, mistakes)


# --- reduce-scatter ---


def _reduce_scatter(tensors, how="right"):
    """Rank r's chunk r (contiguous, n/p elements) of the elementwise sum; flags: wrong versions."""
    p, n = len(tensors), tensors[0].numel()
    size = n // p
    total = torch.zeros(n, dtype=torch.float64)
    for x in tensors:
        total += x.double()
    out = []
    for r in range(p):
        if how == "strided":
            chunk = total[r::p]
        else:
            c = (r + 1) % p if how == "shifted" else r
            chunk = total[c * size:(c + 1) * size]
            if how == "missing own":
                chunk = chunk - tensors[r].double()[c * size:(c + 1) * size]
            if how == "mean":
                chunk = chunk / p
        out.append(chunk.to(tensors[0].dtype))
    return out


def check_reduce_scatter(fn: Callable, n_cases: int = 10, seed: int = 1) -> str:
    """``fn(tensors)``: ``tensors[r]`` is rank r's 1-D gradient, all of length n, n divisible by
    the number of ranks p. Return a list of p tensors: entry r is what rank r holds after a
    reduce-scatter, chunk r of the elementwise *sum* (elements r * n/p up to (r + 1) * n/p)."""
    g = torch.Generator().manual_seed(seed)

    def ranks(rows):
        return [torch.tensor(row, dtype=torch.float32) for row in rows]

    fixed = [(ranks([[1, 2, 3, 4], [10, 20, 30, 40]]), "2 ranks, 4 elements"),
             (ranks([[r * 10 + i for i in range(8)] for r in range(4)]),
              "4 ranks, 8 elements (section 2's example)"),
             (ranks([[1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 0], [-1, -1, -1, -1, -1, -1]]),
              "3 ranks, 6 elements"),
             (ranks([[5, 7, 9]]), "a single rank (nothing to exchange)"),
             (ranks([[1, 0, 0, 0], [0, 2, 0, 0], [0, 0, 3, 0], [0, 0, 0, 4]]),
              "4 ranks, chunks of one element")]
    cases = [Case((ts,), _reduce_scatter(ts), f"{label}: tensors {[x.tolist() for x in ts]}")
             for ts, label in fixed]
    while len(cases) < n_cases:
        p, per_rank = random_int(g, 2, 6), random_int(g, 1, 4)
        ts = [torch.randn(p * per_rank, generator=g) for _ in range(p)]
        cases.append(Case((ts,), _reduce_scatter(ts), f"{p} ranks, tensors of length {p * per_rank}"))
    mistakes = [
        Mistake("mean", lambda ts: _reduce_scatter(ts, "mean"),
                "you divided by the number of ranks: a reduce-scatter sums (DDP divides by the "
                "world size separately, or scales the loss)"),
        Mistake("shifted", lambda ts: _reduce_scatter(ts, "shifted"),
                "rank r holds chunk r + 1, not chunk r: in your ring the chunk each rank "
                "completes is one position off. Start rank r by sending chunk r - 1"),
        Mistake("strided", lambda ts: _reduce_scatter(ts, "strided"),
                "your chunks interleave (every p-th element): chunk r is the contiguous run of "
                "elements r * n/p to (r + 1) * n/p"),
        Mistake("missing own", lambda ts: _reduce_scatter(ts, "missing own"),
                "each chunk lacks its owner's own contribution: a ring of p ranks needs p - 1 "
                "steps, and every rank that receives a chunk adds its own part before passing "
                "it on"),
    ]
    return run_check("check_reduce_scatter", fn, cases, mistakes)


# --- bytes per step ---


def _bytes(model, world, strategy, count="parameters", passes=None, ring=True):
    """Bytes each process sends per step (exact, a float); flags give the usual wrong versions."""
    if count == "state_dict":
        size = sum(v.numel() * v.element_size() for v in model.state_dict().values())
    elif count == "float32":
        size = sum(p.numel() * 4 for p in model.parameters())
    else:
        size = sum(p.numel() * p.element_size() for p in model.parameters())
    passes = passes or {"ddp": 2, "fsdp": 3}
    share = (world - 1) / world if ring else 1.0
    return float(passes[strategy] * share * size)


def _models() -> list[tuple[nn.Module, str]]:
    from llm_lessons.gpt import GPT, GPTConfig  # noqa: PLC0415 (only this checker needs a GPT)

    torch.manual_seed(0)
    tied = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8))
    mlp = nn.Sequential(nn.Linear(6, 4), nn.GELU(), nn.Linear(4, 3, bias=False))
    half = nn.Linear(8, 8).half()
    return [(tied, "a 1-layer GPT whose head is tied to its embedding"),
            (mlp, "a float32 MLP of two Linear layers"),
            (half, "a float16 Linear(8, 8)")]


def check_bytes_per_step(fn: Callable) -> str:
    """``fn(model, world, strategy)``: the bytes each of ``world`` processes sends in one
    optimizer step with ring collectives, ``strategy`` "ddp" (one all-reduce of the gradients)
    or "fsdp" (two all-gathers of the weights, one reduce-scatter of the gradients). Each ring
    pass over S bytes sends (world - 1) / world * S per process; S counts every parameter once
    (a tied matrix once) at its own dtype's size. Exact to within a few bytes."""
    cases = []
    for model, label in _models():
        for world, strategy in ((2, "ddp"), (4, "ddp"), (4, "fsdp"), (8, "fsdp"), (1, "ddp")):
            cases.append(Case((model, world, strategy), _bytes(model, world, strategy),
                              f"{label}, {world} processes, {strategy}"))
    mistakes = [
        Mistake("no ring factor", lambda m, w, s: _bytes(m, w, s, ring=False),
                "you sent the whole tensor in every pass: in a ring each process sends only the "
                "(world - 1) / world of it that the others lack (and nothing when world = 1)"),
        Mistake("one pass", lambda m, w, s: _bytes(m, w, s, passes={"ddp": 1, "fsdp": 3}),
                "you counted an all-reduce as one pass: it is a reduce-scatter then an "
                "all-gather, 2 (world - 1) / world * S"),
        Mistake("fsdp as ddp", lambda m, w, s: _bytes(m, w, s, passes={"ddp": 2, "fsdp": 2}),
                "FSDP sends more than DDP: it all-gathers the weights in the forward pass and "
                "again in the backward pass (it freed them in between), then reduce-scatters the "
                "gradients: three passes"),
        Mistake("tied twice", lambda m, w, s: _bytes(m, w, s, count="state_dict"),
                "you counted the state_dict, where a tied matrix appears under two names: it is "
                "one parameter with one gradient, sent once. Count model.parameters()"),
        Mistake("float32", lambda m, w, s: _bytes(m, w, s, count="float32"),
                "you assumed 4 bytes per number: use each parameter's element_size() (a float16 "
                "weight is 2 bytes)"),
    ]
    return run_check("check_bytes_per_step", fn, cases, mistakes, atol=4.0, rtol=1e-6,
                     forbidden=("llm_lessons.frontiers.distributed.communication_per_step",))
