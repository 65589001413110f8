"""Checkers for chapter 8.4's exercises: how often a model is confidently wrong, how much of a
benchmark its training data already holds, and what a training run costs in FLOPs and energy.

Each is a few lines and each fails quietly when wrong: confidence read from the target's
probability still lies in [0, 1], n-grams that run across document boundaries still give a share
between 0 and 1, and a forward-only FLOP count is still a large number. The answers come from
references written here, not from :mod:`llm_lessons.evaluation.calibration`,
:mod:`llm_lessons.evaluation.contamination` or :func:`llm_lessons.scale.training_flops` (the
functions that are the answer are forbidden while the student's code runs).

>>> def overlap(train_docs, eval_docs, n):
...     seen = {tuple(d[i:i + n]) for d in train_docs for i in range(len(d) - n + 1)}
...     grams = [tuple(d[i:i + n]) for d in eval_docs for i in range(len(d) - n + 1)]
...     return sum(g in seen for g in grams) / len(grams)
>>> check_contamination_rate(overlap)
'check_contamination_rate: all 8 cases passed'
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from llm_lessons.exercises.checking import Case, Mistake, available, random_float, random_int, run_check

# --- confidently wrong ---


def _confident_errors(probs, targets, threshold, confidence="top", compare=">=", per="confident"):
    """(share of predictions that are confident, share of those that are wrong); the flags give
    the usual wrong versions."""
    probs = probs.double()
    top, pred = probs.max(dim=-1)  # (N,) each
    conf = top if confidence == "top" else probs.gather(-1, targets[:, None]).squeeze(-1)
    sure = conf >= threshold if compare == ">=" else conf > threshold
    wrong = sure & (pred != targets)
    n_sure = int(sure.sum())
    if per == "confident":
        rate = int(wrong.sum()) / n_sure if n_sure else 0.0
    else:  # over every prediction
        rate = int(wrong.sum()) / len(targets)
    return n_sure / len(targets), rate


def _distributions(g: torch.Generator, n: int, vocab: int, sharp: float) -> torch.Tensor:
    """(n, vocab) probability rows, some peaked, some flat, without ties at the top."""
    logits = torch.randn(n, vocab, generator=g, dtype=torch.float64) * sharp
    return logits.softmax(-1)


def check_confident_errors(fn: Callable, n_cases: int = 8, seed: int = 0) -> str:
    """``fn(probs, targets, threshold)``: ``probs`` (N, V) holds N next-token distributions,
    ``targets`` (N,) the true tokens. A prediction is the most probable token; it is *confident*
    when that top probability is at least ``threshold``. Return ``(share_confident,
    wrong_when_confident)``: the share of the N predictions that are confident, and the share of
    the confident ones whose top token is not the target (0.0 when none is confident)."""
    g = torch.Generator().manual_seed(seed)
    hand = torch.tensor([[0.9, 0.05, 0.05], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8]],
                        dtype=torch.float64)
    hand_targets = torch.tensor([1, 0, 1, 2])
    cases = [Case((hand, hand_targets, 0.7), _confident_errors(hand, hand_targets, 0.7),
                  "probs [[.9, .05, .05], [.6, .3, .1], [.2, .7, .1], [.1, .1, .8]], targets "
                  "[1, 0, 1, 2], threshold 0.7 (one top probability sits exactly on it)"),
             Case((hand, hand_targets, 0.95), _confident_errors(hand, hand_targets, 0.95),
                  "the same predictions with threshold 0.95: none is confident")]
    while len(cases) < n_cases:
        n, vocab = random_int(g, 5, 40), random_int(g, 3, 12)
        probs = _distributions(g, n, vocab, sharp=random_float(g, 1.0, 4.0))
        targets = torch.randint(0, vocab, (n,), generator=g)
        right = torch.rand(n, generator=g) < 0.5  # about half the targets are the top token
        targets = torch.where(right, probs.argmax(-1), targets)
        threshold = round(random_float(g, 0.3, 0.8), 2)
        cases.append(Case((probs, targets, threshold), _confident_errors(probs, targets, threshold),
                          f"{n} random distributions over {vocab} tokens, threshold {threshold}"))
    mistakes = [
        Mistake("target probability", lambda p, t, c: _confident_errors(p, t, c, confidence="target"),
                "you took the probability of the *target* as the confidence; the model's "
                "confidence is the probability of its own top choice, max over the vocabulary "
                "(the model does not know the target)"),
        Mistake("strictly greater", lambda p, t, c: _confident_errors(p, t, c, compare=">"),
                "a top probability equal to the threshold counts as confident: use >=, not >"),
        Mistake("over all", lambda p, t, c: _confident_errors(p, t, c, per="all"),
                "you divided the confident errors by all N predictions; the error rate when "
                "confident divides by the number of confident predictions"),
    ]
    forbidden = available(("llm_lessons.evaluation.calibration.confidences",
                           "llm_lessons.evaluation.calibration.reliability_bins"))
    return run_check("check_confident_errors", fn, cases, mistakes, forbidden=forbidden)


# --- contamination: the share of evaluation n-grams seen in training ---


def _grams(doc, n):
    return [tuple(doc[i:i + n]) for i in range(len(doc) - n + 1)]


def _overlap(train_docs, eval_docs, n, boundaries="respect", count="all", pool="pooled"):
    """Share of evaluation n-grams found in training; the flags give the usual wrong versions."""
    if boundaries == "respect":
        seen = {g for d in train_docs for g in _grams(list(d), n)}
        per_doc = [_grams(list(d), n) for d in eval_docs]
    else:  # the documents glued into one sequence each
        seen = set(_grams([t for d in train_docs for t in d], n))
        per_doc = [_grams([t for d in eval_docs for t in d], n)]
    if pool == "pooled":
        grams = [g for gs in per_doc for g in gs]
        if count == "distinct":  # each n-gram once, however often the documents repeat it
            grams = list(dict.fromkeys(grams))
        return sum(g in seen for g in grams) / len(grams)
    shares = [sum(g in seen for g in gs) / len(gs) for gs in per_doc if gs]
    return sum(shares) / len(shares)


def check_contamination_rate(fn: Callable, n_cases: int = 8, seed: int = 1) -> str:
    """``fn(train_docs, eval_docs, n)``: each argument a list of documents, each document a list
    of tokens (words or ids). Return the share of all the evaluation n-grams (every window of n
    consecutive tokens within one document, repeats counted, all documents pooled) that occur
    somewhere in the training documents. An n-gram never runs across two documents; a document
    shorter than n has none."""
    g = torch.Generator().manual_seed(seed)
    train = [["to", "be", "or", "not"], ["to", "be", "is", "it"]]
    evaluation = [["be", "or", "not", "to", "be"], ["not", "to", "be", "or"], ["be"]]
    cases = [Case((train, evaluation, 2), _overlap(train, evaluation, 2),
                  "train [[to be or not], [to be is it]], eval [[be or not to be], "
                  "[not to be or], [be]], n = 2 (\"not to\" only exists across the two "
                  "training documents; the last eval document is too short)"),
             Case(([[1, 2, 3, 1, 2, 3]], [[1, 2, 3, 1, 2], [3, 9]], 2),
                  _overlap([[1, 2, 3, 1, 2, 3]], [[1, 2, 3, 1, 2], [3, 9]], 2),
                  "train [[1, 2, 3, 1, 2, 3]], eval [[1, 2, 3, 1, 2], [3, 9]], n = 2 "
                  "(the n-gram 1 2 occurs twice in one evaluation document)")]
    while len(cases) < n_cases:
        n = random_int(g, 2, 5)
        vocab = random_int(g, 3, 7)
        train = [torch.randint(0, vocab, (random_int(g, n, 25),), generator=g).tolist()
                 for _ in range(random_int(g, 2, 5))]
        evaluation = [torch.randint(0, vocab, (random_int(g, n, 15),), generator=g).tolist()
                      for _ in range(random_int(g, 2, 5))]
        evaluation[0] = train[0][: len(evaluation[0])] + evaluation[0]  # one leaked passage
        cases.append(Case((train, evaluation, n), _overlap(train, evaluation, n),
                          f"{len(train)} random training and {len(evaluation)} evaluation "
                          f"documents over {vocab} token ids, n = {n}"))
    mistakes = [
        Mistake("across documents", lambda t, e, n: _overlap(t, e, n, boundaries="join"),
                "your n-grams run across document boundaries (the documents were joined into "
                "one sequence); take the windows of each document separately"),
        Mistake("distinct", lambda t, e, n: _overlap(t, e, n, count="distinct"),
                "you counted each distinct evaluation n-gram once; count every window, repeats "
                "included, as a benchmark's score counts every item"),
        Mistake("mean of documents", lambda t, e, n: _overlap(t, e, n, pool="mean"),
                "you averaged the documents' shares; pool the n-grams of all the documents "
                "first, so a long document weighs more than a short one"),
    ]
    forbidden = available(("llm_lessons.evaluation.contamination.overlap_fraction",
                           "llm_lessons.evaluation.contamination.contaminated",
                           "llm_lessons.evaluation.contamination.text_overlap",
                           "llm_lessons.evaluation.contamination.ngram_hashes"))
    return run_check("check_contamination_rate", fn, cases, mistakes, forbidden=forbidden,
                     atol=1e-9, rtol=1e-9)


# --- the cost of a training run ---

JOULES_PER_KWH = 3.6e6


def _training_cost(n_layer, n_embd, vocab_size, block_size, tokens, flops_per_joule,
                   params="full", passes=6, unit=JOULES_PER_KWH):
    """(parameters, training FLOPs = passes N D, energy in kWh); flags: the usual wrong versions."""
    d = n_embd
    N = 12 * n_layer * d * d
    if params == "full":
        N += vocab_size * d + block_size * d
    elif params == "mlp 4d":  # the MLP counted as d x d twice instead of d x 4d twice
        N = 4 * n_layer * d * d + 2 * n_layer * d * d + vocab_size * d + block_size * d
    flops = passes * N * tokens
    return float(N), float(flops), flops / flops_per_joule / unit


def check_training_cost(fn: Callable, n_cases: int = 8, seed: int = 2) -> str:
    """``fn(n_layer, n_embd, vocab_size, block_size, tokens, flops_per_joule)`` for a GPT-2-style
    decoder (4x MLP, tied embeddings) trained on ``tokens`` tokens by hardware that does
    ``flops_per_joule`` FLOPs per joule. Return ``(N, C, kwh)``: the parameter count
    N = 12 L d^2 + V d + T d (chapter 1's formula, biases and norms left out), the training
    compute C = 6 N D in FLOPs, and the energy C / flops_per_joule in kilowatt-hours
    (1 kWh = 3.6e6 J)."""
    g = torch.Generator().manual_seed(seed)
    cases = [Case((4, 128, 73, 64, 614_400, 2e9), _training_cost(4, 128, 73, 64, 614_400, 2e9),
                  "the book's nano GPT (L=4, d=128, V=73, T=64) on 614,400 tokens at 2e9 FLOP/J"),
             Case((96, 12288, 50257, 2048, 300e9, 6.8e10),
                  _training_cost(96, 12288, 50257, 2048, 300e9, 6.8e10),
                  "GPT-3's shape (L=96, d=12288, V=50257, T=2048) on 300e9 tokens at 6.8e10 FLOP/J")]
    while len(cases) < n_cases:
        L, d = random_int(g, 1, 48), 64 * random_int(g, 1, 64)
        V, T = random_int(g, 50, 60_000), 2 ** random_int(g, 6, 13)
        tokens = float(random_int(g, 1, 1000)) * 10 ** random_int(g, 6, 12)
        efficiency = round(random_float(g, 0.5, 9.0), 1) * 10 ** random_int(g, 9, 12)
        cases.append(Case((L, d, V, T, tokens, efficiency),
                          _training_cost(L, d, V, T, tokens, efficiency),
                          f"L={L}, d={d}, V={V}, T={T}, D={tokens:.3g}, {efficiency:.3g} FLOP/J"))
    mistakes = [
        Mistake("forward only", lambda *a: _training_cost(*a, passes=2),
                "your compute is 2 N D, the forward pass alone; training also runs the backward "
                "pass, about twice the forward's cost, so C = 6 N D"),
        Mistake("no embeddings", lambda *a: _training_cost(*a, params="blocks"),
                "your N leaves out the embeddings: add the token table V d and the position "
                "table T d to the blocks' 12 L d^2 (the output head shares the token table)"),
        Mistake("MLP of width d", lambda *a: _training_cost(*a, params="mlp 4d"),
                "your blocks have 6 d^2 weights; the MLP widens to 4d (d x 4d, then 4d x d: "
                "8 d^2) on top of attention's 4 d^2, so a block holds 12 d^2"),
        Mistake("watt-hours", lambda *a: _training_cost(*a, unit=3.6e3),
                "your energy is in watt-hours: one kilowatt-hour is 1000 Wh = 3.6e6 joules"),
        Mistake("kilojoules", lambda *a: _training_cost(*a, unit=1e3),
                "you divided the joules by 1000; one kilowatt-hour is 3.6e6 joules "
                "(1000 W for 3600 s)"),
    ]
    forbidden = available(("llm_lessons.scale.training_flops", "llm_lessons.scale.gpt_param_count",
                           "llm_lessons.frontiers.scaling.exact_training_flops"))
    return run_check("check_training_cost", fn, cases, mistakes, forbidden=forbidden,
                     atol=0, rtol=1e-9)
