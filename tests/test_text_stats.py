"""distinct-n and repetition rate against nltk's n-grams; loop detection on constructed loops."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nltk.util import ngrams as nltk_ngrams

from llm_lessons.evaluation.text_stats import distinct_n, find_loop, ngrams, repetition_rate

words = st.lists(st.sampled_from("abcd"), min_size=0, max_size=30)


@settings(max_examples=200, deadline=None)
@given(samples=st.lists(words, min_size=1, max_size=4), n=st.integers(1, 4))
def test_against_nltk(samples, n):
    pooled = [g for s in samples for g in nltk_ngrams(s, n)]
    assert ngrams(samples[0], n) == list(nltk_ngrams(samples[0], n))
    assert distinct_n(samples, n) == (len(set(pooled)) / len(pooled) if pooled else 0.0)
    own = list(nltk_ngrams(samples[0], n))
    repeats = sum(g in own[:i] for i, g in enumerate(own))  # occurred earlier in the same sample
    assert repetition_rate(samples[0], n) == pytest.approx(repeats / len(own) if own else 0.0)


def test_hand_worked():
    assert distinct_n(["to be or not to be".split()], 2) == pytest.approx(4 / 5)
    assert repetition_rate("aaaa", 1) == 0.75 and repetition_rate("abcd", 2) == 0.0
    assert distinct_n([[]], 2) == 0.0
    with pytest.raises(TypeError, match="list of samples"):
        distinct_n("abc", 1)
    with pytest.raises(ValueError, match="n must be"):
        ngrams("abc", 0)


@pytest.mark.parametrize("cycle,repeats", [("ab", 5), ("the cat ", 3), ("x", 12), ("abcabd", 4)])
def test_find_loop_on_constructed_loops(cycle, repeats):
    rng = random.Random(len(cycle))
    prefix = "".join(rng.choice("pqrs") for _ in range(15))  # letters the cycles never use
    period, start = find_loop(prefix + cycle * repeats)
    assert period == len(cycle) and start == len(prefix)


def test_find_loop_rejects_non_loops():
    rng = random.Random(0)
    text = [rng.randrange(50) for _ in range(200)]
    assert find_loop(text, min_span=10) is None
    assert find_loop("hall") is None  # "ll" is two items, not three repeats
    assert find_loop("halll") == (1, 2)
    assert find_loop("halll", min_span=4) is None
    assert find_loop("abababab", max_period=1) is None
    with pytest.raises(ValueError, match="min_repeats"):
        find_loop("aaa", min_repeats=1)
