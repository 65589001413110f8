"""Chapter 6.1's checkers (recall@k and MRR, reciprocal rank fusion, BM25): an independent
solution passes, a stub is "not implemented yet", each plausible wrong answer fails with words
that name its mistake, and the functions that are the answer cannot be used to pass."""

from __future__ import annotations

import math

import pytest
import torch
from checker_contract import contract

from llm_lessons.applications import search
from llm_lessons.applications.search import reciprocal_rank_fusion as imported_rrf
from llm_lessons.exercises.checking import ExerciseFailed
from llm_lessons.exercises.semantic_search import check_bm25, check_recall_and_mrr, check_rrf

# --- recall@k and MRR ---


def my_recall_and_mrr(ranks, k):
    r = ranks.double()
    return float((r <= k).double().mean()), float((1 / r).mean())


def recall_strict(ranks, k):
    r = ranks.double()
    return float((r < k).double().mean()), float((1 / r).mean())


def mrr_of_mean_rank(ranks, k):
    r = ranks.double()
    return float((r <= k).double().mean()), float(1 / r.mean())


def recall_per_k(ranks, k):
    r = ranks.double()
    return float((r <= k).sum() / k), float((1 / r).mean())


def recall_by_package(ranks, k):
    return search.recall_at_k(ranks, k), search.mrr(ranks)


# --- reciprocal rank fusion ---


def my_rrf(a, b, k):
    def rank(s):
        order = torch.argsort(s, descending=True)
        r = torch.empty_like(order)
        r[order] = torch.arange(1, len(s) + 1)
        return r.double()

    return 1 / (k + rank(a)) + 1 / (k + rank(b))


def rrf_sum_of_ranks(a, b, k):
    return (torch.argsort(torch.argsort(-a)) + torch.argsort(torch.argsort(-b)) + 2).double()


def rrf_raw_scores(a, b, k):
    return (a + b).double()


def rrf_argsort(a, b, k):
    return 1 / (k + torch.argsort(-a).double() + 1) + 1 / (k + torch.argsort(-b).double() + 1)


def rrf_zero_based(a, b, k):
    ra, rb = torch.argsort(torch.argsort(-a)), torch.argsort(torch.argsort(-b))
    return 1 / (k + ra.double()) + 1 / (k + rb.double())


def rrf_by_package(a, b, k):
    return search.reciprocal_rank_fusion(a[None], b[None], k=k)[0]


# --- BM25 ---


def my_bm25(query, docs, k1, b):
    n, avgdl = len(docs), sum(map(len, docs)) / len(docs)
    scores = []
    for d in docs:
        s = 0.0
        for w in query:
            tf, df = d.count(w), sum(w in e for e in docs)
            if tf:
                idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
                s += idf * tf / (tf + k1 * (1 - b + b * len(d) / avgdl))
        scores.append(s)
    return torch.tensor(scores)


def bm25_no_length(query, docs, k1, b):
    return my_bm25(query, docs, k1, 0.0)


def bm25_robertson_idf(query, docs, k1, b):
    n, avgdl = len(docs), sum(map(len, docs)) / len(docs)
    out = []
    for d in docs:
        s = 0.0
        for w in query:
            tf, df = d.count(w), sum(w in e for e in docs)
            if tf:
                s += math.log((n - df + 0.5) / (df + 0.5)) * tf / (
                    tf + k1 * (1 - b + b * len(d) / avgdl))
        out.append(s)
    return torch.tensor(out)


def bm25_raw_tf(query, docs, k1, b):
    n = len(docs)
    return torch.tensor([sum(d.count(w) * math.log(1 + (n - sum(w in e for e in docs) + 0.5)
                                                   / (sum(w in e for e in docs) + 0.5))
                             for w in query) for d in docs])


def bm25_by_package(query, docs, k1, b):
    return search.BM25Index(docs, search.BM25Config(k1=k1, b=b)).scores(query)


def bm25_by_bm25s(query, docs, k1, b):
    import bm25s

    model = bm25s.BM25(k1=k1, b=b)
    model.index(docs, show_progress=False)
    return torch.from_numpy(model.get_scores(query))


CASES = {
    check_recall_and_mrr: (my_recall_and_mrr, [
        (recall_strict, "rank < k"),
        (mrr_of_mean_rank, "inverted the mean rank"),
        (recall_per_k, "divided the hits by k"),
        (recall_by_package, "without calling llm_lessons.applications.search.recall_at_k"),
    ]),
    check_rrf: (my_rrf, [
        (rrf_sum_of_ranks, "added the ranks"),
        (rrf_raw_scores, "added the raw scores"),
        (rrf_argsort, "argsort's output as the ranks"),
        (rrf_zero_based, "start at 0"),
        (rrf_by_package, "without calling llm_lessons.applications.search.reciprocal_rank_fusion"),
    ]),
    check_bm25: (my_bm25, [
        (bm25_no_length, "ignore the passage length"),
        (bm25_robertson_idf, "adds 1 inside the log"),
        (bm25_raw_tf, "raw count tf"),
        (bm25_by_package, "without calling llm_lessons.applications.search.BM25Index.scores"),
    ]),
}
(test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
 test_each_wrong_answer_is_named) = contract(CASES)


def test_the_references_match_the_package():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(12, generator=g), torch.randn(12, generator=g)
    assert torch.allclose(my_rrf(a, b, 60), search.reciprocal_rank_fusion(a[None], b[None])[0])
    docs = [["the", "king"], ["the", "crown", "crown"], ["love"]]
    assert torch.allclose(my_bm25(["crown", "the"], docs, 1.5, 0.75).double(),
                          search.BM25Index(docs).scores(["crown", "the"]))
    ranks = torch.tensor([1, 4, 2, 9])
    assert my_recall_and_mrr(ranks, 3) == pytest.approx((search.recall_at_k(ranks, 3),
                                                         search.mrr(ranks)))


def cheat_with_an_imported_rrf(a, b, k):
    return imported_rrf(a[None], b[None], k=k)[0]


def test_a_forbidden_function_held_under_a_global_name_is_caught():
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.applications.search"):
        check_rrf(cheat_with_an_imported_rrf)


def test_bm25s_is_refused_too():
    pytest.importorskip("bm25s")
    with pytest.raises(ExerciseFailed, match="without calling bm25s.BM25.get_scores"):
        check_bm25(bm25_by_bm25s)
