"""Chapter 6.1's search toolkit against independent oracles: BM25 against the maintained
``bm25s`` library, faiss's exact index against brute force, ranks and metrics against hand-worked
cases, and the labelled query sets against the promises that make them non-circular."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from llm_lessons.applications.search import (
    BM25Config,
    BM25Index,
    cosine_scores,
    embed_by_length,
    faiss_search,
    mrr,
    rank_of_relevant,
    ranks_from_scores,
    recall_at_k,
    reciprocal_rank_fusion,
    search_corpus,
    top_k,
    words,
)
from llm_lessons.data import load_plays

PLAYS = {"macbeth": load_plays(["macbeth"])["macbeth"]}


@pytest.fixture(scope="module")
def corpus():
    return search_corpus(PLAYS, n_ict=50, n_reply=50, seed=0)


@pytest.mark.parametrize(("k1", "b"), [(1.5, 0.75), (1.2, 0.0), (2.0, 1.0)])
def test_bm25_equals_bm25s(corpus, k1, b):
    bm25s = pytest.importorskip("bm25s")
    docs = [words(p) for p in corpus.passages]
    oracle = bm25s.BM25(k1=k1, b=b)  # Lucene's BM25, the library's default method
    oracle.index(docs, show_progress=False)
    ours = BM25Index(docs, BM25Config(k1=k1, b=b))
    queries = [words(q) for q in corpus.ict.queries[:20]] + [["the", "the", "king"], ["zzz"]]
    for q in queries:
        theirs = torch.from_numpy(oracle.get_scores(q)).double()
        assert torch.allclose(ours.scores(q), theirs, atol=1e-5), q


def test_bm25_hand_worked():
    docs = [["a", "b"], ["a"], ["c", "c", "c", "d"]]
    ix = BM25Index(docs, BM25Config(k1=1.0, b=0.0))
    idf_c = np.log(1 + (3 - 1 + 0.5) / (1 + 0.5))
    want = torch.tensor([0.0, 0.0, idf_c * 3 / (3 + 1)], dtype=torch.float64)
    assert torch.allclose(ix.scores(["c"]), want)
    assert torch.equal(ix.scores(["nothing"]), torch.zeros(3, dtype=torch.float64))
    assert ix.idf("a") > 0  # in 2 of 3 passages and still positive (the +1 inside the log)


def test_words_uses_the_books_tokenizer():
    assert words("Speak, speak! I'll go no further.") == ["speak", "speak", "i'll", "go", "no",
                                                           "further"]


def test_cosine_scores_match_torch():
    g = torch.Generator().manual_seed(0)
    q, p = torch.randn(4, 8, generator=g), torch.randn(6, 8, generator=g)
    want = F.cosine_similarity(q[:, None, :].double(), p[None, :, :].double(), dim=-1)
    assert torch.allclose(cosine_scores(q, p), want, atol=1e-12)


def test_rank_counts_ties_against_the_method():
    scores = torch.tensor([[0.0, 0.0, 0.0], [0.2, 0.9, 0.5], [1.0, 1.0, 0.0]])
    assert rank_of_relevant(scores, torch.tensor([0, 2, 1])).tolist() == [3, 2, 2]


def test_metrics_hand_worked():
    ranks = torch.tensor([1, 3, 2, 10])
    assert recall_at_k(ranks, 2) == 0.5 and recall_at_k(ranks, 10) == 1.0
    assert mrr(ranks) == pytest.approx((1 + 1 / 3 + 1 / 2 + 1 / 10) / 4)


def test_ranks_and_fusion_hand_worked():
    a = torch.tensor([[3.0, 1.0, 2.0]])
    b = torch.tensor([[0.1, 0.9, 0.5]])
    assert ranks_from_scores(a).tolist() == [[1, 3, 2]]
    fused = reciprocal_rank_fusion(a, b, k=60)
    want = torch.tensor([[1 / 61 + 1 / 63, 1 / 63 + 1 / 61, 1 / 62 + 1 / 62]], dtype=torch.float64)
    assert torch.allclose(fused, want)
    # ranks are argsort's inverse: the oracle is numpy's double argsort
    g = torch.Generator().manual_seed(1)
    s = torch.randn(5, 30, generator=g)
    want = np.argsort(np.argsort(-s.numpy(), axis=1, kind="stable"), axis=1) + 1
    assert np.array_equal(ranks_from_scores(s).numpy(), want)


def test_faiss_flat_equals_brute_force_and_hnsw_recalls():
    pytest.importorskip("faiss")
    g = torch.Generator().manual_seed(0)
    p = F.normalize(torch.randn(500, 32, generator=g), dim=-1)
    q = F.normalize(torch.randn(40, 32, generator=g), dim=-1)
    scores, ids = faiss_search(p, q, k=10, index="flat")
    assert torch.equal(ids, top_k(cosine_scores(q, p), 10))
    assert torch.allclose(scores.double(), cosine_scores(q, p).gather(1, ids), atol=1e-5)
    _, approx = faiss_search(p, q, k=10, index="hnsw")
    found = (approx[:, :, None] == ids[:, None, :]).any(-1).float().mean()
    assert found >= 0.9


def test_query_sets_are_not_circular(corpus):
    assert len(corpus.ict.queries) == 50 and len(corpus.reply.queries) == 50
    for q, i in zip(corpus.ict.queries, corpus.ict.relevant.tolist(), strict=True):
        assert q not in corpus.passages[i].split("\n") and len(q.split()) >= 4
        assert len(corpus.passages[i].split("\n")) >= 2
    assert not set(corpus.reply.queries) & set(corpus.passages)
    again = search_corpus(PLAYS, n_ict=50, n_reply=50, seed=0)
    assert again.ict.queries == corpus.ict.queries
    assert torch.equal(again.reply.relevant, corpus.reply.relevant)


def test_embed_by_length_puts_rows_back_in_order():
    class Fake:  # each text's vector depends on the text only, never on its batch
        def embed(self, texts):
            return torch.tensor([[len(t), sum(map(ord, t))] for t in texts], dtype=torch.float64)

    texts = ["a longer text", "b", "mid text", "zz"]
    assert torch.equal(embed_by_length(Fake(), texts), Fake().embed(texts))


@pytest.mark.parametrize(("call", "words_in_error"), [
    (lambda: BM25Index([]), "non-empty"),
    (lambda: BM25Index(["a string, not words"]), "list of words"),
    (lambda: BM25Index([[], []]), "empty"),
    (lambda: BM25Index([["a"]]).scores("a"), "list of words"),
    (lambda: BM25Config(k1=-1.0), "k1"),
    (lambda: BM25Config(b=1.5), "b"),
    (lambda: words(3), "str"),
    (lambda: cosine_scores(torch.ones(2, 3), torch.ones(2, 4)), "channels"),
    (lambda: cosine_scores(torch.ones(3), torch.ones(2, 3)), "(rows, C)"),
    (lambda: rank_of_relevant(torch.ones(2, 3), torch.tensor([0, 3])), "[0, 2]"),
    (lambda: rank_of_relevant(torch.ones(2, 3), torch.tensor([0.0, 1.0])), "integer"),
    (lambda: rank_of_relevant(torch.tensor([[float("nan")]]), torch.tensor([0])), "NaN"),
    (lambda: recall_at_k(torch.tensor([1, 2]), 0), "k must be"),
    (lambda: recall_at_k(torch.tensor([0, 2]), 1), ">= 1"),
    (lambda: mrr(torch.tensor([], dtype=torch.long)), "non-empty"),
    (lambda: top_k(torch.ones(2, 3), 4), "at most the number of passages"),
    (lambda: reciprocal_rank_fusion(torch.ones(2, 3), torch.ones(3, 2)), "same (Q, N)"),
    (lambda: reciprocal_rank_fusion(), "at least one"),
    (lambda: faiss_search(torch.ones(3, 2), torch.ones(1, 2), 2, index="ivf"), "'flat' or 'hnsw'"),
    (lambda: embed_by_length(None, []), "non-empty"),
    (lambda: search_corpus({}), "non-empty"),
    (lambda: search_corpus(PLAYS, min_lines=2), "min_lines"),
])
def test_bad_input_is_refused_with_a_clear_message(call, words_in_error):
    with pytest.raises((ValueError, TypeError), match=None) as error:
        call()
    assert words_in_error in str(error.value), str(error.value)
