"""Semantic search (6.1): rank passages for a query by BM25 word overlap, by the cosine of
MiniLM sentence embeddings, or by both fused, and measure the ranking on labelled queries.

Shapes use fixed letters: Q queries, N passages, C channels (384 for MiniLM), k results.

* **BM25** (Robertson and Zaragoza, 2009), in the Lucene form ``bm25s`` uses by default: a
  passage d scores, for a query q of words t,

      score(q, d) = Σ_{t in q}  idf(t) · tf(t, d) / (tf(t, d) + k1 · (1 - b + b · |d| / avgdl))
      idf(t) = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))

  (Robertson's original multiplies by k1 + 1, a constant that changes no ranking).
* **Dense retrieval**: cos(q, d) of unit-length embeddings, a matrix product (Q, C) @ (C, N).
* **Reciprocal rank fusion** (Cormack et al., 2009): each method ranks every passage 1, 2, ...;
  the fused score of d is Σ_m 1 / (k + rank_m(d)), with k = 60.
* Metrics from the rank of the relevant passage (1 = first; a tie counts against the method):
  recall@k is the share of queries whose passage is in the top k, MRR the mean of 1 / rank.

>>> docs = [words("To be, or not to be"), words("The rest is silence")]
>>> scores = BM25Index(docs).scores(words("silence"))      # (N,)
>>> rank_of_relevant(scores[None], torch.tensor([1])).tolist()
[1]
>>> ranks = torch.tensor([1, 3, 2, 10])
>>> recall_at_k(ranks, 2), round(mrr(ranks), 4)
(0.5, 0.4833)
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from llm_lessons.tokenizers import WordTokenizer
from llm_lessons.validation import check_int, check_real

_WORD = re.compile(r"\w")


def words(text: str) -> list[str]:
    """The lowercased words of ``text`` (the book's word tokenizer, punctuation and spaces dropped).

    >>> words("Speak, speak! I'll go no further.")
    ['speak', 'speak', "i'll", 'go', 'no', 'further']
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return [w.lower() for w in WordTokenizer.tokenize(text) if _WORD.match(w)]


@dataclass(frozen=True)
class BM25Config:
    """BM25's two knobs: ``k1`` saturates repeated words, ``b`` normalises for passage length."""

    k1: float = 1.5
    b: float = 0.75

    def __post_init__(self):
        check_real(self.k1, "k1", low=0.0, kind_error=ValueError)
        check_real(self.b, "b", low=0.0, high=1.0, kind_error=ValueError)


class BM25Index:
    """Inverted index over tokenised passages; ``scores(query_words)`` -> (N,) float64 BM25 scores."""

    def __init__(self, docs: Sequence[Sequence[str]], config: BM25Config | None = None):
        if isinstance(docs, str) or len(docs) == 0:
            raise ValueError("BM25Index needs a non-empty list of tokenised passages (lists of words)")
        if any(isinstance(d, str) or not all(isinstance(w, str) for w in d) for d in docs):
            raise TypeError("each passage must be a list of words (str), e.g. words(text)")
        self.config = config or BM25Config()
        self.n_docs = len(docs)
        self.lengths = torch.tensor([len(d) for d in docs], dtype=torch.float64)  # (N,)
        avgdl = float(self.lengths.mean())
        if avgdl == 0:
            raise ValueError("every passage is empty: nothing to index")
        k1, b = self.config.k1, self.config.b
        self.norm = k1 * (1 - b + b * self.lengths / avgdl)  # (N,) the length-normalised k1
        self.postings: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for word, pairs in _postings(docs).items():
            ids, tfs = zip(*pairs, strict=True)
            self.postings[word] = (torch.tensor(ids), torch.tensor(tfs, dtype=torch.float64))

    def idf(self, word: str) -> float:
        """ln(1 + (N - df + 0.5) / (df + 0.5)): positive even for a word in every passage."""
        df = len(self.postings[word][0]) if word in self.postings else 0
        return math.log(1 + (self.n_docs - df + 0.5) / (df + 0.5))

    def scores(self, query: Sequence[str]) -> torch.Tensor:
        """(N,) BM25 score of every passage; a query word repeated counts once per occurrence."""
        if isinstance(query, str):
            raise TypeError("query must be a list of words, e.g. words('the rest is silence')")
        out = torch.zeros(self.n_docs, dtype=torch.float64)
        for word in query:
            if word in self.postings:
                ids, tf = self.postings[word]
                out[ids] += self.idf(word) * tf / (tf + self.norm[ids])
        return out

    def score_matrix(self, queries: Sequence[Sequence[str]]) -> torch.Tensor:
        """(Q, N): one row of scores per query."""
        if len(queries) == 0:
            raise ValueError("no queries to score")
        return torch.stack([self.scores(q) for q in queries])


def _postings(docs: Sequence[Sequence[str]]) -> dict[str, list[tuple[int, int]]]:
    table: dict[str, list[tuple[int, int]]] = {}
    for i, doc in enumerate(docs):
        for word, tf in sorted(Counter(doc).items()):
            table.setdefault(word, []).append((i, tf))
    return table


def embed_by_length(encoder, texts: Sequence[str]) -> torch.Tensor:
    """(B, C) ``encoder.embed(texts)``, computed shortest text first so that each batch pads to
    similar lengths (several times faster on a CPU), then put back in the order given."""
    if isinstance(texts, str) or len(texts) == 0:
        raise ValueError("texts must be a non-empty list of str")
    order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), i))
    vectors = encoder.embed([texts[i] for i in order])  # (B, C) in length order
    out = torch.empty_like(vectors)
    out[torch.tensor(order)] = vectors
    return out


def cosine_scores(queries: torch.Tensor, passages: torch.Tensor) -> torch.Tensor:
    """(Q, C) and (N, C) embeddings -> (Q, N) cosine similarities (rows normalised here)."""
    for name, x in (("queries", queries), ("passages", passages)):
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[0] == 0:
            raise ValueError(f"{name} must be a (rows, C) tensor with rows >= 1, got "
                             f"{getattr(x, 'shape', type(x).__name__)}")
    if queries.shape[1] != passages.shape[1]:
        raise ValueError(f"queries {tuple(queries.shape)} and passages {tuple(passages.shape)} "
                         "differ in channels C")
    q = torch.nn.functional.normalize(queries.double(), dim=-1)
    p = torch.nn.functional.normalize(passages.double(), dim=-1)
    return q @ p.T  # (Q, C) @ (C, N) -> (Q, N)


def _scores_2d(scores, name: str = "scores") -> torch.Tensor:
    if not isinstance(scores, torch.Tensor) or scores.dim() != 2 or 0 in scores.shape:
        raise ValueError(f"{name} must be a non-empty (Q, N) tensor, got "
                         f"{getattr(scores, 'shape', type(scores).__name__)}")
    if not torch.isfinite(scores).all():
        raise ValueError(f"{name} holds NaN or inf")
    return scores


def rank_of_relevant(scores: torch.Tensor, relevant: torch.Tensor) -> torch.Tensor:
    """(Q, N) scores and (Q,) relevant passage ids -> (Q,) ranks, 1 = best.

    A passage that ties with the relevant one is counted as ranked above it (pessimistic), so a
    method that scores everything 0 gets rank N, not rank 1.
    """
    scores = _scores_2d(scores)
    if not isinstance(relevant, torch.Tensor) or relevant.shape != (scores.shape[0],) or (
            relevant.dtype.is_floating_point or relevant.dtype == torch.bool):
        raise ValueError(f"relevant must be a (Q,) = ({scores.shape[0]},) integer tensor, got "
                         f"{getattr(relevant, 'shape', relevant)}")
    if len(relevant) and (relevant.min() < 0 or relevant.max() >= scores.shape[1]):
        raise ValueError(f"relevant ids must be in [0, {scores.shape[1] - 1}]")
    mine = scores.gather(1, relevant[:, None])  # (Q, 1)
    return (scores >= mine).sum(1)  # itself included: rank = 1 + passages scoring at least as high


def _ranks_1d(ranks) -> torch.Tensor:
    if not isinstance(ranks, torch.Tensor) or ranks.dim() != 1 or len(ranks) == 0:
        raise ValueError(f"ranks must be a non-empty (Q,) tensor, got {getattr(ranks, 'shape', ranks)}")
    if ranks.dtype.is_floating_point or ranks.dtype == torch.bool or ranks.min() < 1:
        raise ValueError("ranks must be integers >= 1 (1 = the relevant passage came first)")
    return ranks


def recall_at_k(ranks: torch.Tensor, k: int) -> float:
    """Share of queries whose relevant passage is among the top ``k`` (rank <= k)."""
    k = check_int(k, "k", low=1)
    return float((_ranks_1d(ranks) <= k).double().mean())


def mrr(ranks: torch.Tensor) -> float:
    """Mean reciprocal rank: the mean of 1 / rank (1 if always first, about 0 if never found)."""
    return float((1.0 / _ranks_1d(ranks).double()).mean())


def ranks_from_scores(scores: torch.Tensor) -> torch.Tensor:
    """(Q, N) scores -> (Q, N) ordinal ranks 1..N per row (ties broken by passage id)."""
    order = torch.sort(_scores_2d(scores), dim=1, descending=True, stable=True).indices  # (Q, N)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(1, scores.shape[1] + 1).expand_as(order))
    return ranks


def reciprocal_rank_fusion(*scores: torch.Tensor, k: int = 60) -> torch.Tensor:
    """Fuse (Q, N) score matrices of several methods: Σ_m 1 / (k + rank_m) -> (Q, N) float64.

    Only ranks enter, so BM25's unbounded scores and cosines in [-1, 1] need no calibration.
    """
    k = check_int(k, "k", low=0)
    if len(scores) < 1:
        raise ValueError("reciprocal_rank_fusion needs at least one score matrix")
    shapes = {tuple(s.shape) if isinstance(s, torch.Tensor) else None for s in scores}
    if len(shapes) != 1:
        raise ValueError(f"all score matrices must have the same (Q, N) shape, got {shapes}")
    return sum(1.0 / (k + ranks_from_scores(s).double()) for s in scores)


def top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """(Q, N) -> (Q, k) ids of the best ``k`` passages per query, best first (brute force)."""
    scores = _scores_2d(scores)
    k = check_int(k, "k", low=1, high=scores.shape[1], reason="at most the number of passages")
    return torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]


def faiss_search(passages: torch.Tensor, queries: torch.Tensor, k: int,
                 index: str = "flat") -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` by inner product with a faiss index: ``"flat"`` (exact, ``IndexFlatIP``) or
    ``"hnsw"`` (approximate graph search, ``IndexHNSWFlat``: 32 links a node, 64 candidates).

    Embeddings should be unit length, so the inner product is the cosine. Returns (Q, k) scores
    and (Q, k) ids.
    """
    import faiss  # noqa: PLC0415 (only this function needs faiss)

    cosine_scores(queries, passages)  # the same shape checks
    k = check_int(k, "k", low=1, high=passages.shape[0], reason="at most the number of passages")
    C = passages.shape[1]
    if index == "flat":
        ix = faiss.IndexFlatIP(C)
    elif index == "hnsw":
        ix = faiss.IndexHNSWFlat(C, 32, faiss.METRIC_INNER_PRODUCT)
        ix.hnsw.efSearch = max(64, k)  # candidates kept while walking the graph: recall vs time
    else:
        raise ValueError(f"index must be 'flat' or 'hnsw', got {index!r}")
    ix.add(passages.detach().float().contiguous().numpy())
    found, ids = ix.search(queries.detach().float().contiguous().numpy(), k)
    return torch.from_numpy(found), torch.from_numpy(ids).long()


@dataclass(frozen=True)
class QuerySet:
    """Labelled queries: ``queries[i]`` is answered by passage ``relevant[i]`` of the index."""

    name: str
    queries: list[str]
    relevant: torch.Tensor  # (Q,) passage ids


@dataclass(frozen=True)
class SearchCorpus:
    """Passages (speeches of at least ``min_lines`` lines, cut to ``max_lines``) and two query sets.

    * ``ict`` — the inverse cloze task (Lee et al., 2019): one line (of >= 4 words, said once in
      the passage) is taken out of it and becomes the query; the passage keeps its other lines
      only, so the answer never contains the query's text.
    * ``reply`` — a short reply (1 or 2 lines, too short to be a passage itself) is the query;
      the speech it answers is the relevant passage.
    """

    passages: list[str]
    plays: list[str]
    ict: QuerySet
    reply: QuerySet


def search_corpus(plays: dict[str, str], min_lines: int = 3, max_lines: int = 6,
                  n_ict: int = 400, n_reply: int = 400, seed: int = 0) -> SearchCorpus:
    """Build passages and both query sets from dialogue texts (the book's ``SPEAKER:\\nlines``)."""
    min_lines = check_int(min_lines, "min_lines", low=3, reason="a passage keeps >= 2 lines in ICT")
    max_lines = check_int(max_lines, "max_lines", low=min_lines)
    n_ict, n_reply = check_int(n_ict, "n_ict", low=1), check_int(n_reply, "n_reply", low=1)
    if not isinstance(plays, dict) or not plays:
        raise ValueError("plays must be a non-empty dict {name: dialogue text}")
    lines, owner, replies = [], [], []
    for play, text in plays.items():
        previous = None  # id of the passage just before, if the speech before was one
        for block in text.split("\n\n"):
            body = block.partition(":\n")[2].strip("\n").split("\n")
            if len(body) >= min_lines:
                previous = len(lines)
                lines.append(body[:max_lines])
                owner.append(play)
            else:
                if previous is not None and len(" ".join(body).split()) >= 3:
                    replies.append((" ".join(body), previous))
                previous = None
    g = torch.Generator().manual_seed(seed)
    def long_lines(ls):  # lines of >= 4 words said once in the passage: candidate queries
        return [j for j, x in enumerate(ls) if len(x.split()) >= 4 and ls.count(x) == 1]

    candidates = [i for i, ls in enumerate(lines) if long_lines(ls)]
    if not candidates or not replies:
        raise ValueError("too little dialogue for both query sets: pass more or longer plays")
    chosen = sorted(candidates[j] for j in torch.randperm(len(candidates), generator=g)[:n_ict].tolist())
    ict_queries = []
    for i in chosen:
        options = long_lines(lines[i])
        j = options[int(torch.randint(len(options), (), generator=g))]
        ict_queries.append(lines[i][j])
        lines[i] = lines[i][:j] + lines[i][j + 1:]  # the answer never holds the query line
    picked = sorted(torch.randperm(len(replies), generator=g)[:n_reply].tolist())
    return SearchCorpus(
        passages=["\n".join(ls) for ls in lines], plays=owner,
        ict=QuerySet("inverse cloze", ict_queries, torch.tensor(chosen)),
        reply=QuerySet("reply", [replies[i][0] for i in picked],
                       torch.tensor([replies[i][1] for i in picked])))
