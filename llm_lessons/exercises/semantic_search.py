"""Checkers for chapter 6.1's exercises: recall@k and MRR from ranks, reciprocal rank fusion,
and BM25 scores from the formula.

Each is a few lines and each fails quietly when wrong: an off-by-one recall is still a number
between 0 and 1, fused ranks that are summed still order the passages, and BM25 without its
length normalisation still prefers passages that share the query's words. The answers come
from references written here, not from :mod:`llm_lessons.applications.search` (whose
functions are forbidden, with ``bm25s``'s scorer).

>>> def recall_and_mrr(ranks, k):
...     return float((ranks <= k).double().mean()), float((1.0 / ranks.double()).mean())
>>> check_recall_and_mrr(recall_and_mrr)
'check_recall_and_mrr: all 8 cases passed'
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from llm_lessons.exercises.checking import Case, Mistake, available, random_int, run_check

_SEARCH = "llm_lessons.applications.search"

# --- recall@k and MRR ---


def _recall_mrr(ranks, k, hit="<=", mean="reciprocal"):
    r = [int(x) for x in ranks]
    hits = sum(x < k if hit == "<" else x <= k for x in r)
    recall = hits / (k if hit == "per k" else len(r))
    rr = len(r) / sum(r) if mean == "of ranks" else sum(1 / x for x in r) / len(r)
    return recall, rr


def check_recall_and_mrr(fn: Callable, n_cases: int = 8, seed: int = 0) -> str:
    """``fn(ranks, k)`` for a (Q,) integer tensor of ranks (1 = the relevant passage came first)
    returns ``(recall_at_k, mrr)``: the share of queries with rank <= k, and the mean of 1 / rank."""
    g = torch.Generator().manual_seed(seed)
    fixed = [(torch.tensor([1, 3, 2, 10]), 2, "ranks [1, 3, 2, 10], k = 2"),
             (torch.tensor([1, 1, 1]), 1, "ranks [1, 1, 1], k = 1 (always first)"),
             (torch.tensor([7]), 5, "one query at rank 7, k = 5 (a miss)"),
             (torch.tensor([5, 6]), 5, "ranks [5, 6], k = 5 (rank k is a hit)")]
    cases = [Case((r, k), _recall_mrr(r, k), label) for r, k, label in fixed]
    while len(cases) < n_cases:
        q, k = random_int(g, 3, 40), random_int(g, 2, 12)
        r = torch.randint(1, 30, (q,), generator=g)
        cases.append(Case((r, k), _recall_mrr(r, k), f"{q} random ranks in 1..29, k = {k}"))
    mistakes = [
        Mistake("strict", lambda r, k: _recall_mrr(r, k, hit="<"),
                "you counted rank < k; the top k are ranks 1 .. k, so a passage at rank k is a hit "
                "(rank <= k)"),
        Mistake("inverse mean rank", lambda r, k: _recall_mrr(r, k, mean="of ranks"),
                "you inverted the mean rank (1 / mean(rank)); MRR is the mean of the reciprocal "
                "ranks, mean(1 / rank), which one bad rank cannot drag to zero"),
        Mistake("per k", lambda r, k: _recall_mrr(r, k, hit="per k"),
                "you divided the hits by k (that is precision@k with one relevant passage); "
                "recall@k divides by the number of queries"),
    ]
    forbidden = available((f"{_SEARCH}.recall_at_k", f"{_SEARCH}.mrr"))
    return run_check("check_recall_and_mrr", fn, cases, mistakes, forbidden=forbidden)


# --- reciprocal rank fusion ---


def _ranks(scores):
    """1-based rank of each entry, highest score first (the checker's cases have no ties)."""
    s = [float(x) for x in scores]
    order = sorted(range(len(s)), key=lambda i: -s[i])
    out = [0] * len(s)
    for rank, i in enumerate(order, start=1):
        out[i] = rank
    return out


def _rrf(a, b, k, how="reciprocal"):
    ra, rb = _ranks(a), _ranks(b)
    if how == "reciprocal":
        fused = [1 / (k + x) + 1 / (k + y) for x, y in zip(ra, rb, strict=True)]
    elif how == "zero-based":  # with k = 0 the best passage gets 1 / 0 = inf, as in torch
        za, zb = torch.tensor(ra) - 1.0, torch.tensor(rb) - 1.0
        return (1 / (k + za.double()) + 1 / (k + zb.double()))
    elif how == "sum of ranks":
        fused = [float(x + y) for x, y in zip(ra, rb, strict=True)]
    elif how == "argsort":  # the position in the sorted order used as if it were the rank
        oa = sorted(range(len(ra)), key=lambda i: ra[i])
        ob = sorted(range(len(rb)), key=lambda i: rb[i])
        fused = [1 / (k + oa[i] + 1) + 1 / (k + ob[i] + 1) for i in range(len(ra))]
    else:  # the raw scores added
        fused = [float(x) + float(y) for x, y in zip(a, b, strict=True)]
    return torch.tensor(fused, dtype=torch.float64)


def check_rrf(fn: Callable, n_cases: int = 8, seed: int = 0) -> str:
    """``fn(scores_a, scores_b, k)`` for two (N,) score tensors of one query (higher = better)
    returns the (N,) fused scores ``1 / (k + rank_a) + 1 / (k + rank_b)``, ranks 1..N."""
    g = torch.Generator().manual_seed(seed)
    fixed = [(torch.tensor([3.0, 1.0, 2.0]), torch.tensor([0.1, 0.9, 0.5]), 60,
              "scores [3, 1, 2] and [0.1, 0.9, 0.5], k = 60"),
             (torch.tensor([10.0, 0.5, 4.0, 7.0]), torch.tensor([0.2, -0.3, 0.8, 0.1]), 1,
              "scores [10, 0.5, 4, 7] and [0.2, -0.3, 0.8, 0.1], k = 1"),
             (torch.tensor([2.0]), torch.tensor([-1.0]), 60, "one passage, k = 60")]
    cases = [Case((a, b, k), _rrf(a, b, k), label) for a, b, k, label in fixed]
    while len(cases) < n_cases:
        n, k = random_int(g, 4, 15), (0, 1, 10, 60)[len(cases) % 4]
        a, b = torch.randn(n, generator=g) * 5, torch.rand(n, generator=g)
        cases.append(Case((a, b, k), _rrf(a, b, k), f"{n} random passages, k = {k}"))
    mistakes = [
        Mistake("sum of ranks", lambda a, b, k: _rrf(a, b, k, "sum of ranks"),
                "you added the ranks; fusion adds 1 / (k + rank), so a passage ranked first by "
                "one method counts much more than one ranked 50th, and higher means better"),
        Mistake("raw scores", lambda a, b, k: _rrf(a, b, k, "raw scores"),
                "you added the raw scores; BM25's scale (0 to 20 or so) would drown the cosines "
                "(-1 to 1). RRF uses only the ranks: 1 / (k + rank)"),
        Mistake("argsort", lambda a, b, k: _rrf(a, b, k, "argsort"),
                "you used argsort's output as the ranks; argsort gives the passage at each rank, "
                "its inverse gives the rank of each passage (argsort of the argsort)"),
        Mistake("zero-based", lambda a, b, k: _rrf(a, b, k, "zero-based"),
                "your ranks start at 0; the best passage has rank 1, so it scores 1 / (k + 1)"),
    ]
    forbidden = available((f"{_SEARCH}.reciprocal_rank_fusion", f"{_SEARCH}.ranks_from_scores"))
    return run_check("check_rrf", fn, cases, mistakes, forbidden=forbidden, atol=1e-9, rtol=1e-7)


# --- BM25 ---


def _bm25(query, docs, k1, b, idf="lucene", saturate=True):
    n = len(docs)
    avgdl = sum(len(d) for d in docs) / n
    out = []
    for d in docs:
        total = 0.0
        for w in query:
            tf = d.count(w)
            if tf == 0:
                continue
            df = sum(w in e for e in docs)
            ratio = (n - df + 0.5) / (df + 0.5)
            weight = math.log(1 + ratio) if idf == "lucene" else math.log(ratio)
            norm = k1 * (1 - b + b * len(d) / avgdl)
            total += weight * (tf / (tf + norm) if saturate else tf)
        out.append(total)
    return torch.tensor(out, dtype=torch.float64)


def check_bm25(fn: Callable, n_cases: int = 8, seed: int = 0) -> str:
    """``fn(query, docs, k1, b)`` for a list of words and a list of tokenised passages returns
    the (N,) BM25 scores: Σ over the query's words (repeats count) of
    idf · tf / (tf + k1 · (1 - b + b · |d| / avgdl)), idf = ln(1 + (N - df + 0.5) / (df + 0.5))."""
    g = torch.Generator().manual_seed(seed)
    vocab = ["king", "crown", "blood", "night", "sword", "love", "the", "and", "my", "lord"]
    hand_docs = [["the", "king", "the", "crown"], ["my", "lord", "the", "king", "is", "dead"],
                 ["the"], ["love", "love", "love", "and", "blood"]]
    fixed = [(["king"], hand_docs, 1.5, 0.75, "query ['king'] over four short passages"),
             (["the", "love"], hand_docs, 1.5, 0.75,
              "query ['the', 'love'] ('the' is in three of four passages)"),
             (["ghost"], hand_docs, 1.2, 0.75, "a query word no passage holds (all scores 0)"),
             (["love", "love"], hand_docs, 1.5, 1.0, "a repeated query word, b = 1")]
    cases = [Case((q, d, k1, b), _bm25(q, d, k1, b), label) for q, d, k1, b, label in fixed]
    while len(cases) < n_cases:
        n = random_int(g, 3, 9)
        docs = [[vocab[random_int(g, 0, len(vocab))] for _ in range(random_int(g, 1, 12))]
                for _ in range(n)]
        query = [vocab[random_int(g, 0, len(vocab))] for _ in range(random_int(g, 1, 4))]
        cases.append(Case((query, docs, 1.5, 0.75), _bm25(query, docs, 1.5, 0.75),
                          f"{n} random passages, query {query}"))

    def answer(query, docs, k1, b):
        return torch.as_tensor(fn(query, docs, k1, b)).double()

    mistakes = [
        Mistake("no length normalisation", lambda q, d, k1, b: _bm25(q, d, k1, 0.0),
                "your scores ignore the passage length (as if b = 0); the saturation constant is "
                "k1 · (1 - b + b · |d| / avgdl), so a long passage needs more occurrences"),
        Mistake("idf without +1", lambda q, d, k1, b: _bm25(q, d, k1, b, idf="robertson"),
                "your idf is ln((N - df + 0.5) / (df + 0.5)), negative for a word in over half "
                "the passages; the Lucene form adds 1 inside the log: ln(1 + ...)"),
        Mistake("raw tf", lambda q, d, k1, b: _bm25(q, d, k1, b, saturate=False),
                "you multiplied idf by the raw count tf; BM25 saturates it, tf / (tf + k1 · ...), "
                "so the tenth 'love' adds far less than the first"),
    ]
    forbidden = available((f"{_SEARCH}.BM25Index.scores", f"{_SEARCH}.BM25Index.score_matrix",
                           "bm25s.BM25.get_scores", "bm25s.BM25.retrieve"))
    return run_check("check_bm25", answer, cases, mistakes, forbidden=forbidden, atol=1e-9,
                     rtol=1e-7, student=fn)
