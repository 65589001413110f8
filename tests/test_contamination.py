"""Hashed n-gram overlap checked against exact sets of tuples, planted copies and hand cases."""

import numpy as np
import pytest

from llm_lessons.evaluation.contamination import (
    contaminated,
    ngram_hashes,
    overlap_fraction,
    text_overlap,
    words,
)


def naive_flags(train_docs, eval_docs, n):
    seen = {tuple(d[i:i + n]) for d in train_docs for i in range(len(d) - n + 1)}
    return [np.array([tuple(d[i:i + n]) in seen for i in range(len(d) - n + 1)], dtype=bool)
            for d in eval_docs]


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_hashed_overlap_equals_exact_sets(n):
    rng = np.random.default_rng(n)
    train = [rng.integers(0, 4, size=rng.integers(0, 300)).tolist() for _ in range(5)]
    evals = [rng.integers(0, 4, size=rng.integers(0, 80)).tolist() for _ in range(7)]
    got, want = contaminated(train, evals, n), naive_flags(train, evals, n)
    assert all(np.array_equal(g, w) for g, w in zip(got, want, strict=True))


def test_no_collisions_among_many_distinct_ngrams():
    x = np.random.default_rng(0).integers(0, 50, size=200_000)
    h = ngram_hashes(x, 6)
    distinct = len({tuple(x[i:i + 6]) for i in range(len(x) - 5)})
    assert len(np.unique(h)) == distinct and len(h) == len(x) - 5


def test_planted_documents_are_found_exactly():
    rng = np.random.default_rng(1)
    evals = [rng.integers(0, 10_000, size=500).tolist() for _ in range(6)]
    train = [rng.integers(0, 10_000, size=20_000).tolist()]
    train[0][7000:7000] = evals[2] + evals[5]  # two evaluation documents copied into training
    flags = contaminated(train, evals, 13)
    assert [f.mean() for f in flags] == [0, 0, 1, 0, 0, 1]
    assert overlap_fraction(train, evals, 13) == pytest.approx(2 / 6)


def test_windows_do_not_cross_document_boundaries():
    assert overlap_fraction([[1, 2], [3, 4]], [[2, 3]], 2) == 0.0
    assert overlap_fraction([[1, 2, 3, 4]], [[2, 3]], 2) == 1.0
    assert overlap_fraction([[0, 0, 1]], [[0, 1]], 2) == 1.0  # id 0 counts (hashed as 1)
    assert overlap_fraction([[0, 1]], [[1, 0]], 2) == 0.0


def test_word_normalisation():
    assert words("To be, or NOT to be: that's it") == ["to", "be", "or", "not", "to", "be", "that's", "it"]
    assert text_overlap("To be, or NOT to be", "to be or not", 4, "word") == 1.0
    assert text_overlap(["abcdef"], ["xbcdy", "cdef"], 3, "char") == pytest.approx(3 / 5)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="n must"):
        ngram_hashes([1, 2, 3], 0)
    with pytest.raises(ValueError, match="shorter than n"):
        overlap_fraction([[1, 2, 3]], [[1, 2]], 3)
    with pytest.raises(TypeError):
        contaminated("abc", [[1]], 1)
    with pytest.raises(ValueError, match="non-negative"):
        contaminated([[1, -2]], [[1]], 1)
    with pytest.raises(ValueError, match="unit"):
        text_overlap("a b", "a b", 1, unit="token")
    with pytest.raises(TypeError):
        text_overlap(["a", 3], "a", 1)
