"""Diversity and repetition of generated text: distinct-n, repetition rate, loop detection.

Plain Python on sequences of hashable items (characters, words or token ids), so the same
functions measure a character model's and a word model's output.

* distinct-n (Li et al., 2016): unique n-grams / all n-grams, pooled over a *set* of samples;
  low means the samples say the same things (low diversity across samples).
* repetition rate (rep-n, Welleck et al., 2019): the share of a sample's n-grams that already
  occurred earlier in the *same* sample; high means the text repeats itself.
* loops: a sample whose tail is one short cycle repeated (greedy decoding's failure mode).

>>> distinct_n(["abab", "abcd"], 2)   # bigrams ab ba ab | ab bc cd: 4 unique of 6
0.6666666666666666
>>> repetition_rate("abcabcabc", 3)   # 7 trigrams, abc bca cab new, 4 repeats
0.5714285714285714
>>> find_loop("Once upon a time the cat the cat the cat the cat", min_span=12)  # " the cat" from 16
(8, 16)
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from llm_lessons.validation import check_int


def ngrams(seq: Sequence[Hashable], n: int) -> list[tuple]:
    """All contiguous n-grams of seq, in order.

    >>> ngrams("abc", 2)
    [('a', 'b'), ('b', 'c')]
    """
    n = check_int(n, "n", low=1)
    return [tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)]


def distinct_n(samples: Sequence[Sequence[Hashable]], n: int) -> float:
    """Unique n-grams over all n-grams, pooled across samples (0.0 if there are none)."""
    if isinstance(samples, str):
        raise TypeError("distinct_n takes a list of samples; wrap a single string in a list")
    grams = [g for s in samples for g in ngrams(s, n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def repetition_rate(sample: Sequence[Hashable], n: int) -> float:
    """Share of the sample's n-grams that repeat an earlier n-gram of the same sample."""
    grams = ngrams(sample, n)
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def find_loop(seq: Sequence[Hashable], min_repeats: int = 3, min_span: int = 1,
              max_period: int | None = None) -> tuple[int, int] | None:
    """Detect a sequence that ends in a repeated cycle: ``(period, start)`` or None.

    ``period`` is the smallest p such that the tail from ``start`` on satisfies
    seq[i] == seq[i + p], and that periodic tail covers at least ``min_repeats`` periods and
    ``min_span`` items (so "ll" at the end of "hall" is no loop). ``start`` is where the
    cycle begins: how long the text lasted before it got stuck.
    """
    min_repeats = check_int(min_repeats, "min_repeats", low=2)
    min_span = check_int(min_span, "min_span", low=1)
    n = len(seq)
    longest = n // min_repeats if max_period is None else min(max_period, n // min_repeats)
    for p in range(1, longest + 1):
        i = n - p - 1  # walk back while the item p ahead matches
        while i >= 0 and seq[i] == seq[i + p]:
            i -= 1
        span = n - (i + 1)
        if span >= max(min_repeats * p, min_span):
            return p, i + 1
    return None
