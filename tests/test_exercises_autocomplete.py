"""Chapter 6.3's checkers (keystrokes saved, top-k completions of a bigram character model, the
median speed-up of a cache): an independent solution passes, a stub is "not implemented yet",
each plausible wrong answer fails with words that name its mistake, and the package functions
that are the answer cannot be used to pass."""

from __future__ import annotations

import statistics

import pytest
import torch
from checker_contract import contract

from llm_lessons.applications import autocomplete
from llm_lessons.applications.autocomplete import median_speedup as imported_median_speedup
from llm_lessons.exercises.autocomplete import (
    check_median_speedup,
    check_saved_keystrokes,
    check_top_k_completions,
)
from llm_lessons.exercises.checking import ExerciseFailed

# --- keystrokes saved ---


def my_saved(word, offers):
    for p in range(min(len(offers), len(word))):
        if word[p:] in offers[p]:
            return max(0, len(word) - p - 1)
    return 0


def saved_without_accept_key(word, offers):
    for p in range(min(len(offers), len(word))):
        if word[p:] in offers[p]:
            return len(word) - p
    return 0


def saved_at_last_offer(word, offers):
    best = 0
    for p in range(min(len(offers), len(word))):
        if word[p:] in offers[p]:
            best = max(0, len(word) - p - 1)
    return best


def saved_whole_word(word, offers):
    for p in range(min(len(offers), len(word))):
        if word in offers[p]:
            return max(0, len(word) - p - 1)
    return 0


def saved_by_package(word, offers):
    return autocomplete.saved_keystrokes(word, offers)


# --- top-k completions ---


def my_top_k(P, chars, last, candidates, k):
    ends = torch.tensor([not c.isalpha() for c in chars])
    index = {c: i for i, c in enumerate(chars)}
    scores = {}
    for word in candidates:
        ids = [index[last]] + [index[c] for c in word]
        logp = sum(torch.log(P[a, b]) for a, b in zip(ids[:-1], ids[1:], strict=True))
        scores[word] = float(logp + torch.log(P[ids[-1], ends].sum()))
    return sorted(candidates, key=lambda w: (-scores[w], w))[:k]


def top_k_letters_only(P, chars, last, candidates, k):
    index = {c: i for i, c in enumerate(chars)}
    scores = {}
    for word in candidates:
        ids = [index[last]] + [index[c] for c in word]
        scores[word] = float(sum(torch.log(P[a, b]) for a, b in zip(ids[:-1], ids[1:], strict=True)))
    return sorted(candidates, key=lambda w: (-scores[w], w))[:k]


def top_k_space_only(P, chars, last, candidates, k):
    index = {c: i for i, c in enumerate(chars)}
    scores = {}
    for word in candidates:
        ids = [index[last]] + [index[c] for c in word] + [index[" "]]
        scores[word] = float(sum(torch.log(P[a, b]) for a, b in zip(ids[:-1], ids[1:], strict=True)))
    return sorted(candidates, key=lambda w: (-scores[w], w))[:k]


def top_k_ascending(P, chars, last, candidates, k):
    return my_top_k(P, chars, last, candidates, len(candidates))[::-1][:k]


def top_k_by_package(P, chars, last, candidates, k):
    autocomplete.suggest_words(None, None, last, k)  # the package answers a GPT, not this table
    return candidates[:k]


# --- median speed-up ---


def my_speedup(cached, uncached):
    ratios = [statistics.median(uncached[:, p].tolist()) / statistics.median(cached[:, p].tolist())
              for p in range(cached.shape[1])]
    return statistics.median(ratios)


def speedup_of_means(cached, uncached):
    return statistics.median((uncached.mean(dim=0) / cached.mean(dim=0)).tolist())


def speedup_lower_median(cached, uncached):
    return float((uncached.median(dim=0).values / cached.median(dim=0).values).median())


def speedup_inverted(cached, uncached):
    return 1 / my_speedup(cached, uncached)


def speedup_pooled(cached, uncached):
    return statistics.median(uncached.flatten().tolist()) / statistics.median(cached.flatten().tolist())


def speedup_by_package(cached, uncached):
    return autocomplete.median_speedup(cached, uncached)


CASES = {
    check_saved_keystrokes: (my_saved, [
        (saved_without_accept_key, "the key that accepts"),
        (saved_at_last_offer, "*last* prefix length"),
        (saved_whole_word, "the rest of the word"),
        (saved_by_package, "without calling llm_lessons.applications.autocomplete.saved_keystrokes"),
    ]),
    check_top_k_completions: (my_top_k, [
        (top_k_letters_only, "must also *end*"),
        (top_k_space_only, "a space only"),
        (top_k_ascending, "increasing probability"),
        (top_k_by_package, "without calling llm_lessons.applications.autocomplete.suggest_words"),
    ]),
    check_median_speedup: (my_speedup, [
        (speedup_of_means, "averaged the repeats"),
        (speedup_inverted, "upside down"),
        (speedup_pooled, "pooled every prompt"),
        (speedup_lower_median, "lower middle value"),
        (speedup_by_package, "without calling llm_lessons.applications.autocomplete.median_speedup"),
    ]),
}
(test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
 test_each_wrong_answer_is_named) = contract(CASES)


def test_the_references_match_the_package():
    # the checkers' conventions are the package's: first offer, one accepting key, medians
    assert my_saved("question", [["the"], ["uestion"]]) == autocomplete.saved_keystrokes(
        "question", [["the"], ["uestion"]]) == 6
    g = torch.Generator().manual_seed(0)
    cached, uncached = torch.rand(5, 4, generator=g) + 0.1, torch.rand(5, 4, generator=g) + 0.1
    assert my_speedup(cached, uncached) == pytest.approx(autocomplete.median_speedup(cached, uncached))


def cheat_with_an_imported_speedup(cached, uncached):
    return imported_median_speedup(cached, uncached)  # bound before the check


def test_a_forbidden_function_held_under_a_global_name_is_caught():
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.applications.autocomplete"):
        check_median_speedup(cheat_with_an_imported_speedup)
