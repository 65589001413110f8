"""Checkers for the exercises on scoring text: chapter 2.2's chain rule (a causal model's log-
probability of a text), chapter 2.3's pseudo-log-likelihood of a masked LM, and chapter 3.3's MLM
loss and masked accuracy.

Shapes: B batch, T positions, V vocabulary. Every answer comes from a reference written here in
float64; :func:`llm_lessons.evaluation.likelihood.corpus_token_nll` and
:func:`llm_lessons.mlm_decoding.pseudo_log_likelihood` are forbidden while the student's code runs.

>>> import torch
>>> def log_prob(logits, ids):
...     logp = logits.log_softmax(dim=-1)                     # (T, V): row t predicts ids[t + 1]
...     return float(logp[torch.arange(len(logits)), ids[1:]].sum())
>>> check_sequence_log_prob(log_prob)
'check_sequence_log_prob: all 12 cases passed'
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from llm_lessons.exercises.checking import Case, Mistake, available, random_int, run_check

NEG_INF = float("-inf")



def _seq_logp(logits, ids, shift=True, norm="vocabulary", reduce="sum"):
    """log p(ids[1:] | ids[0]) from logits (T, V); the flags give the usual wrong versions."""
    z = logits.double()  # (T, V)
    if norm != "none":
        z = z.log_softmax(dim=-1 if norm == "vocabulary" else 0)
    targets = ids[1:] if shift else ids[:-1]  # (T,) row t is the prediction of ids[t + 1]
    total = float(z[torch.arange(len(z)), targets].sum())
    return {"sum": total, "mean": total / len(z), "product": math.exp(total)}[reduce]


def check_sequence_log_prob(fn: Callable, n_cases: int = 12, seed: int = 0) -> str:
    """``fn(logits, ids)``: ids (T + 1,) is a text, logits (T, V) a causal model's outputs for
    the inputs ids[:-1], so row t is the distribution of ids[t + 1]. Returns, as a float, the
    log-probability of the text after its first token (the chain rule):
    log p(ids[1:] | ids[0]) = sum over t of log_softmax(logits[t])[ids[t + 1]].
    ``F.cross_entropy`` (with ``reduction="sum"``, and a minus sign) is a fair answer."""
    g, t = torch.Generator().manual_seed(seed), torch.tensor
    peaked = torch.randn(4, 6, generator=g)
    right = t([3, 0, 5, 5, 2])
    cases = [Case((t([[0.5, -0.5]]), t([1, 0])), _seq_logp(t([[0.5, -0.5]]), t([1, 0])),
                  "T = 1, V = 2: logits [[0.5, -0.5]], ids [1, 0]"),
             Case((torch.zeros(5, 4), t([2, 0, 3, 1, 1, 2])), -5 * math.log(4),
                  "flat logits (all 0), T = 5, V = 4: each token has p = 1/4"),
             Case((peaked + 9 * torch.nn.functional.one_hot(right[1:], 6), right),
                  _seq_logp(peaked + 9 * torch.nn.functional.one_hot(right[1:], 6), right),
                  f"peaked logits that favour the right tokens, ids {right.tolist()}"),
             Case((peaked + 9 * torch.nn.functional.one_hot(right[:-1], 6), right),
                  _seq_logp(peaked + 9 * torch.nn.functional.one_hot(right[:-1], 6), right),
                  f"peaked logits that favour the wrong tokens, ids {right.tolist()}")]
    while len(cases) < n_cases:
        T, V = random_int(g, 1, 13), random_int(g, 2, 21)
        logits = torch.randn(T, V, generator=g) * (0.5 + 2.5 * float(torch.rand((), generator=g)))
        ids = torch.randint(0, V, (T + 1,), generator=g)
        cases.append(Case((logits, ids), _seq_logp(logits, ids), f"T = {T}, V = {V}, ids = {ids.tolist()}"))
    mistakes = [
        Mistake("no shift", lambda z, i: _seq_logp(z, i, shift=False),
                "you scored row t against ids[t], the token the model was given: row t predicts "
                "the NEXT token, so the targets are ids[1:] (shifted by one)"),
        Mistake("raw logits", lambda z, i: _seq_logp(z, i, norm="none"),
                "you summed raw logits: they are scores, not log-probabilities. Apply "
                "log_softmax over the vocabulary (the last dimension) first"),
        Mistake("over positions", lambda z, i: _seq_logp(z, i, norm="positions"),
                "your softmax ran over dim 0, across positions: each row must be a distribution "
                "over the vocabulary, so normalise over the last dimension (dim=-1)"),
        Mistake("product", lambda z, i: _seq_logp(z, i, reduce="product"),
                "you returned the product of the probabilities, exp of the answer: return the "
                "sum of the log-probabilities (a product of many p < 1 underflows to 0)"),
        Mistake("mean", lambda z, i: _seq_logp(z, i, reduce="mean"),
                "you averaged the log-probabilities per token; the chain rule SUMS them: "
                "log p(text) = sum_t log p(x_t+1 | x_<=t)"),
    ]
    return run_check("check_sequence_log_prob", fn, cases, mistakes,
                     forbidden=available(("llm_lessons.evaluation.likelihood.corpus_token_nll",)))


def fake_mlm(V: int, g: torch.Generator, block_size: int = 16) -> Callable[[torch.Tensor], torch.Tensor]:
    """A stand-in masked LM for :func:`check_pseudo_log_likelihood`: ids (B, T) -> logits (B, T, V).

    Position t reads every other position's token and its own; its own token also raises that
    token's logit (a copy, as a trained MLM nearly copies what it can see). So a masked position
    sees only [MASK] there, and scoring a token the model can see reads the answer.
    """
    table = torch.randn(V, 8, generator=g, dtype=torch.float64)  # (V, C) token vectors
    pos = torch.randn(block_size, 8, generator=g, dtype=torch.float64) * 0.5  # (T, C)
    head = torch.randn(8, V, generator=g, dtype=torch.float64)  # (C, V)

    def logits(ids: torch.Tensor) -> torch.Tensor:
        x = table[ids] + pos[: ids.shape[1]]  # (B, T, C)
        others = x.sum(dim=1, keepdim=True) - x  # (B, T, C): every position but t
        copy = 2.0 * torch.nn.functional.one_hot(ids, V)  # (B, T, V)
        return (torch.tanh(0.3 * others + x) @ head + copy).float()  # float32, as a real model

    return logits


def _pll(logits_fn, ids, mask_id, masking="each", ban=True, reduce="sum"):
    """sum_t log p(ids[t] | ids, position t masked); the flags give the usual wrong versions."""
    T = len(ids)
    if masking == "each":
        x = ids.repeat(T, 1)  # (T, T): copy t masks position t
        x[torch.arange(T), torch.arange(T)] = mask_id
    else:  # one pass: the intact text, or every position masked at once
        x = ids[None] if masking == "none" else torch.full((1, T), mask_id)
    z = logits_fn(x).double()  # (B, T, V)
    if ban:  # probabilities over ordinary tokens only; masked_fill: the model's tensor stays intact
        z = z.masked_fill(torch.arange(z.shape[-1]) == mask_id, NEG_INF)
    rows = torch.arange(T) if masking == "each" else torch.zeros(T, dtype=torch.long)
    per_position = z.log_softmax(dim=-1)[rows, torch.arange(T), ids]  # (T,)
    return float(per_position.sum() if reduce == "sum" else per_position.mean())


def check_pseudo_log_likelihood(fn: Callable, n_cases: int = 10, seed: int = 1) -> str:
    """``fn(logits_fn, ids, mask_id)``: the pseudo-log-likelihood of ids (T,) under a masked LM
    ``logits_fn`` (ids (B, T) -> logits (B, T, V)): PLL = sum over t of log p(ids[t] | the text
    with position t replaced by mask_id), p the softmax of row t with the mask_id column left
    out (a distribution over ordinary tokens, as :mod:`llm_lessons.mlm_decoding` scores; the
    texts here hold no other special ids). Mask one position per forward pass (or one batch of
    T copies)."""
    g, t = torch.Generator().manual_seed(seed), torch.tensor
    fixed = [(5, t([2]), 0, "a single token (its only context is [MASK])"),
             (6, t([1, 4, 1, 3]), 0, "mask_id 0"), (6, t([0, 2, 2, 4, 1]), 5, "mask_id V - 1")]
    while len(fixed) < n_cases:
        T, V = random_int(g, 2, 9), random_int(g, 4, 13)
        mask_id = random_int(g, 0, V)
        ids = torch.randint(0, V - 1, (T,), generator=g)
        fixed.append((V, ids + (ids >= mask_id).long(), mask_id, ""))  # ordinary tokens: never mask_id
    cases = []
    for V, ids, mask_id, what in fixed:
        model = fake_mlm(V, g)
        cases.append(Case((model, ids, mask_id), _pll(model, ids, mask_id),
                          f"{what + ', ' if what else ''}V = {V}, mask_id = {mask_id}, ids = {ids.tolist()}"))
    mistakes = [
        Mistake("no masking", lambda m, i, k: _pll(m, i, k, masking="none"),
                "you scored every position on the intact text: the model sees the token it must "
                "predict and reads the answer. Replace position t by mask_id before scoring it"),
        Mistake("all masked", lambda m, i, k: _pll(m, i, k, masking="all"),
                "you masked every position at once: each token must be predicted from all the "
                "OTHER tokens, so mask one position per pass (T passes, or a batch of T copies)"),
        Mistake("mask column", lambda m, i, k: _pll(m, i, k, ban=False),
                "your softmax includes the [MASK] column: [MASK] is never a word of the text, so "
                "set its logit to -inf before the log_softmax (probabilities over ordinary tokens)"),
        Mistake("mean", lambda m, i, k: _pll(m, i, k, reduce="mean"),
                "you averaged over positions; the PLL is the SUM of the log-probabilities"),
    ]
    return run_check("check_pseudo_log_likelihood", fn, cases, mistakes,
                     forbidden=("llm_lessons.mlm_decoding.pseudo_log_likelihood",))


def _batch(g, B, T, V, counts=None, hit_rate=0.0):
    """Logits (B, T, V) and targets (B, T): -100 except at the chosen positions (>= 1 per row);
    about hit_rate of the targets are the argmax, so an accuracy is neither 0 nor 1."""
    logits = torch.randn(B, T, V, generator=g) * 2  # random floats: no ties in an argmax
    if counts is None:
        chosen = torch.rand(B, T, generator=g) < 0.15 + 0.4 * float(torch.rand((), generator=g))
        chosen[torch.arange(B), torch.randint(0, T, (B,), generator=g)] = True  # a row without one: no mean
    else:
        chosen = torch.zeros(B, T, dtype=torch.bool)
        for b, n in enumerate(counts):
            chosen[b, torch.randperm(T, generator=g)[:n]] = True
    guess = torch.randint(0, V, (B, T), generator=g)
    guess = torch.where(torch.rand(B, T, generator=g) < hit_rate, logits.argmax(-1), guess)
    return logits, torch.where(chosen, guess, torch.full_like(guess, -100))


def _batches(g, n_cases, hit_rate):
    """(logits, targets, label): fixed shapes first, then random ones."""
    sizes = [(1, 5, 6, [1], "a single selected position"),
             (2, 6, 7, [1, 4], "rows with 1 and 4 selected positions"),
             (3, 4, 5, [4, 2, 1], "rows with 4, 2 and 1 selected positions (every position in row 0)")]
    while len(sizes) < n_cases:
        sizes.append((random_int(g, 1, 5), random_int(g, 2, 11), random_int(g, 3, 13), None, "random"))
    out = []
    for B, T, V, counts, what in sizes:
        logits, targets = _batch(g, B, T, V, counts, hit_rate)
        out.append((logits, targets, f"{what}, (B, T, V) = {(B, T, V)}, targets = {targets.tolist()}"))
    return out


def _mlm_loss(logits, targets, average="selected"):
    """Mean cross-entropy over the selected positions; the flags give the usual wrong versions."""
    chosen = targets != -100  # (B, T)
    logp = logits.double().log_softmax(dim=-1)  # (B, T, V)
    nll = -logp.gather(-1, targets.clamp(min=0)[..., None]).squeeze(-1)  # (B, T): token 0 stands in
    if average == "clamped":
        return float(nll.mean())
    nll = nll * chosen  # (B, T): 0 where nothing is asked
    return float({"selected": nll.sum() / chosen.sum(), "all": nll.sum() / chosen.numel(),
                  "sum": nll.sum(), "rows": (nll.sum(1) / chosen.sum(1)).mean()}[average])


def check_mlm_loss(fn: Callable, n_cases: int = 12, seed: int = 2) -> str:
    """``fn(logits, targets)``: BERT's masked-LM loss. logits (B, T, V); targets (B, T) hold the
    original token at the selected (masked) positions and -100 elsewhere. Returns the mean
    cross-entropy over the selected positions only, pooled over the batch (every selected
    position weighs the same), as a float or a 0-d tensor. Nothing is forbidden:
    ``F.cross_entropy(..., ignore_index=-100)`` is a fair answer, the line the book's models use."""
    g = torch.Generator().manual_seed(seed)
    cases = [Case((logits, targets), _mlm_loss(logits, targets), label)
             for logits, targets, label in _batches(g, n_cases, 0.0)]
    mistakes = [
        Mistake("all positions", lambda z, y: _mlm_loss(z, y, "all"),
                "you divided by all B * T positions: only the selected ones (targets != -100) are "
                "predictions, so divide by their number; the loss was diluted"),
        Mistake("per sequence", lambda z, y: _mlm_loss(z, y, "rows"),
                "you averaged each sequence first, then the sequences: a row with one masked "
                "token then weighs as much as a row with many. Pool all selected positions"),
        Mistake("sum", lambda z, y: _mlm_loss(z, y, "sum"),
                "you returned the sum over the selected positions; the loss is their MEAN"),
        Mistake("clamped", lambda z, y: _mlm_loss(z, y, "clamped"),
                "you scored the -100 positions as token 0 (clamped): they ask for no prediction. "
                "Leave them out (ignore_index=-100, or select targets != -100)"),
    ]
    return run_check("check_mlm_loss", fn, cases, mistakes)


def _accuracy(logits, targets, over="selected"):
    """Share of selected positions whose argmax is the target; the flags give wrong versions."""
    chosen = targets != -100  # (B, T)
    hits = logits.argmax(dim=-1) == targets  # (B, T)
    if over == "all":
        return float(hits.double().mean())
    if over == "rows":
        return float(((hits & chosen).sum(1) / chosen.sum(1)).double().mean())
    return float((hits & chosen).sum() / chosen.sum())


def check_masked_accuracy(fn: Callable, n_cases: int = 12, seed: int = 3) -> str:
    """``fn(logits, targets)``: with logits (B, T, V) and targets (B, T) as in
    :func:`check_mlm_loss`, the share of the selected positions (targets != -100) whose argmax
    over the vocabulary equals the target, as a float."""
    g = torch.Generator().manual_seed(seed)
    # T != V in most cases: an argmax over the positions (dim 1) then fails loudly, as
    # "your function raised", with shapes that point at the wrong dimension.
    cases = [Case((logits, targets), _accuracy(logits, targets), label)
             for logits, targets, label in _batches(g, n_cases, 0.5)]
    mistakes = [
        Mistake("all positions", lambda z, y: _accuracy(z, y, over="all"),
                "you counted all B * T positions: the unselected ones (target -100) can never "
                "match, so they dilute the accuracy. Count only positions with targets != -100"),
        Mistake("per sequence", lambda z, y: _accuracy(z, y, over="rows"),
                "you averaged per-sequence accuracies: a row with one selected position then "
                "weighs as much as a row with many. Divide all hits by all selected positions"),
    ]
    return run_check("check_masked_accuracy", fn, cases, mistakes)
