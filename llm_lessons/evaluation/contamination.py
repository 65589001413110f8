"""Data contamination: how much of an evaluation text already occurs in the training text?

A model that saw its test text in training is graded on memory, not on generalisation. The
usual check (GPT-3 used 13-word windows; character work often uses 50-character ones) counts
the evaluation n-grams that also occur in the training data. Here every n-gram of a sequence
of integer ids becomes one 64-bit rolling hash,

    h(x_i..x_{i+n-1}) = sum_j (x_{i+j} + 1) * B^(n-1-j)   mod 2^64,

computed for all windows at once with n vectorised multiply-adds (numpy's uint64 arithmetic
wraps modulo 2^64), so millions of windows take a fraction of a second. Two different n-grams
share a hash with probability about 2^-64 per pair: negligible for a teaching corpus, and the
tests check the hashed answer against an exact set of tuples.

N-grams never cross document boundaries: each document's windows are hashed separately.

>>> overlap_fraction([[1, 2, 3, 4, 5]], [[9, 2, 3, 4, 8]], n=3)   # windows 923, 234, 348
0.3333333333333333
>>> round(text_overlap("to be or not to be", "not to be is it", n=3, unit="word"), 4)
0.3333
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from llm_lessons.validation import check_int

BASE = np.uint64(0x9E3779B97F4A7C15)  # an odd 64-bit constant (the golden-ratio multiplier)
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)*")


def _docs(docs, what: str) -> list[np.ndarray]:
    if isinstance(docs, (str, np.ndarray)) or not isinstance(docs, Sequence) or not docs:
        raise TypeError(f"{what} must be a non-empty list of id sequences (one per document)")
    out = []
    for i, d in enumerate(docs):
        a = np.asarray(d)
        if a.ndim != 1 or (a.size and not np.issubdtype(a.dtype, np.integer)) or (a.size and a.min() < 0):
            raise ValueError(f"{what}[{i}] must be a 1-D sequence of non-negative integer ids")
        out.append(a.astype(np.uint64))
    return out


def ngram_hashes(ids, n: int) -> np.ndarray:
    """(len(ids) - n + 1,) uint64 hash of every n-gram window of one id sequence.

    >>> h = ngram_hashes([5, 6, 5, 6], 2)
    >>> len(h), bool(h[0] == h[2]), bool(h[0] == h[1])
    (3, True, False)
    """
    n = check_int(n, "n", low=1)
    x = _docs([ids], "ids")[0] + np.uint64(1)  # +1: id 0 must still contribute to the hash
    m = len(x) - n + 1
    if m <= 0:
        return np.zeros(0, dtype=np.uint64)
    h = np.zeros(m, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(n):  # Horner's rule, all windows at once: h = h * B + x[i + j]
            h = h * BASE + x[j:j + m]
    return h


def _all_hashes(docs, n: int, what: str) -> np.ndarray:
    arrays = [ngram_hashes(d, n) for d in _docs(docs, what)]
    return np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.uint64)


def contaminated(train_docs, eval_docs, n: int) -> list[np.ndarray]:
    """For each evaluation document, a bool array: does its i-th n-gram occur in training?"""
    table = np.sort(_all_hashes(train_docs, n, "train_docs"))  # sorted: membership by binary search
    if len(table) == 0:
        return [np.zeros(max(0, len(d) - n + 1), dtype=bool) for d in _docs(eval_docs, "eval_docs")]
    out = []
    for d in _docs(eval_docs, "eval_docs"):
        h = ngram_hashes(d, n)
        pos = np.searchsorted(table, h).clip(max=len(table) - 1)
        out.append(table[pos] == h)
    return out


def overlap_fraction(train_docs, eval_docs, n: int) -> float:
    """Fraction of the evaluation n-grams (all documents pooled) found in the training data."""
    flags = contaminated(train_docs, eval_docs, n)
    total = sum(len(f) for f in flags)
    if total == 0:
        raise ValueError(f"the evaluation documents have no {n}-gram: each is shorter than n={n}")
    return sum(int(f.sum()) for f in flags) / total


def words(text: str) -> list[str]:
    """Lower-cased words without punctuation (the normalisation contamination checks use).

    >>> words("O Romeo, Romeo! wherefore art thou Romeo?")[:3]
    ['o', 'romeo', 'romeo']
    """
    return _WORD.findall(text.lower())


def _to_ids(texts: Sequence[str], unit: str, vocab: dict) -> list[list[int]]:
    if unit == "char":  # code points, straight from the UTF-32 bytes
        return [np.frombuffer(t.encode("utf-32-le"), dtype=np.uint32) for t in texts]
    return [[vocab.setdefault(w, len(vocab)) for w in words(t)] for t in texts]


def text_overlap(train, evaluation, n: int, unit: str = "word") -> float:
    """:func:`overlap_fraction` of texts (a str or a list of documents) in ``"word"`` or
    ``"char"`` n-grams."""
    if unit not in ("word", "char"):
        raise ValueError(f"unit must be 'word' or 'char', got {unit!r}")
    train = [train] if isinstance(train, str) else list(train)
    evaluation = [evaluation] if isinstance(evaluation, str) else list(evaluation)
    if not all(isinstance(t, str) for t in train + evaluation):
        raise TypeError("train and evaluation must be str or lists of str")
    vocab: dict[str, int] = {}
    return overlap_fraction(_to_ids(train, unit, vocab), _to_ids(evaluation, unit, vocab), n)
