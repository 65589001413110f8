"""Chapter 7.2's checkers (one BPE training step, characters per token, a split by whole plays):
an independent solution passes, a stub is "not implemented yet", each plausible wrong answer
fails with words that name its mistake, the references agree with the package's BPE training
and split rule, and the functions that are the answer cannot be used to pass."""

from __future__ import annotations

import pytest
from checker_contract import contract

from llm_lessons.exercises import tokenizer_tools as tt
from llm_lessons.exercises.checking import ExerciseFailed
from llm_lessons.exercises.tokenizer_tools import (
    check_bpe_step,
    check_chars_per_token,
    check_split_by_play,
)
from llm_lessons.tokenizers import BPETokenizer, merge_pair, pair_counts

# --- one BPE training step ---


def my_bpe_step(words):
    counts = {}
    for tokens, n in words.items():
        for i in range(len(tokens) - 1):
            pair = (tokens[i], tokens[i + 1])
            counts[pair] = counts.get(pair, 0) + n
    best = max(counts.values())
    pair = min(p for p, c in counts.items() if c == best)
    merged = {}
    for tokens, n in words.items():
        out, i = [], 0
        while i < len(tokens):
            if tokens[i:i + 2] == pair:
                out.append(pair[0] + pair[1])
                i += 2
            else:
                out.append(tokens[i])
                i += 1
        merged[tuple(out)] = n
    return pair, merged


def bpe_step_across_words(words):
    stream = tuple(t for w in words for t in w)
    pair, _ = my_bpe_step({stream: 1})  # pairs across word boundaries counted too
    return pair, my_merge(words, pair)


def my_merge(words, pair):
    return {tuple(_merge(list(w), pair)): n for w, n in words.items()}


def _merge(tokens, pair):
    out, i = [], 0
    while i < len(tokens):
        if tuple(tokens[i:i + 2]) == pair:
            out.append(pair[0] + pair[1])
            i += 2
        else:
            out.append(tokens[i])
            i += 1
    return out


def bpe_step_unweighted(words):
    pair, _ = my_bpe_step(dict.fromkeys(words, 1))
    return pair, my_merge(words, pair)


def bpe_step_with_str_count(words):
    counts = {}  # occurrences as str.count finds them: "aaa" holds "aa" once
    for tokens, n in words.items():
        for pair in set(zip(tokens, tokens[1:], strict=False)):
            counts[pair] = counts.get(pair, 0) + (len(tokens) - len(_merge(list(tokens), pair))) * n
    best = max(counts.values())
    pair = min(p for p, c in counts.items() if c == best)
    return pair, my_merge(words, pair)


def bpe_step_first_seen(words):
    counts = {}
    for tokens, n in words.items():
        for i in range(len(tokens) - 1):
            pair = (tokens[i], tokens[i + 1])
            counts[pair] = counts.get(pair, 0) + n
    pair = max(counts, key=counts.get)  # the first of the tied pairs
    return pair, my_merge(words, pair)


def bpe_step_with_the_package(words):
    from collections import Counter

    counts = Counter()
    for tokens, n in words.items():
        pair_counts(tokens, counts, weight=n)
    best = max(counts.values())
    pair = min(p for p, c in counts.items() if c == best)
    return pair, {tuple(merge_pair(w, pair, pair[0] + pair[1])): n for w, n in words.items()}


# --- characters per token ---


def my_chars_per_token(texts, encode):
    return sum(len(t) for t in texts) / sum(len(encode(t)) for t in texts)


def chars_per_token_mean(texts, encode):
    ratios = [len(t) / len(encode(t)) for t in texts if t]
    return sum(ratios) / len(ratios)


def tokens_per_char(texts, encode):
    return sum(len(encode(t)) for t in texts) / sum(len(t) for t in texts)


def bytes_per_token(texts, encode):
    return sum(len(t.encode()) for t in texts) / sum(len(encode(t)) for t in texts)


# --- a split by whole plays ---


def my_split(rows, val_fraction):
    size = {}
    for r in rows:
        size[r["play"]] = size.get(r["play"], 0) + len(r["text"])
    total, val, taken = sum(size.values()), set(), 0
    for play in sorted(size)[:-1]:
        if taken >= val_fraction * total:
            break
        val.add(play)
        taken += size[play]
    return [r for r in rows if r["play"] not in val], [r for r in rows if r["play"] in val]


def split_rows(rows, val_fraction):
    cut = len(rows) - max(1, round(val_fraction * len(rows)))
    return rows[:cut], rows[cut:]


def split_counting_rows(rows, val_fraction):
    _, val = my_split([{"play": r["play"], "text": "x"} for r in rows], val_fraction)
    return _keep(rows, val)


def _keep(rows, val_rows):
    val = {r["play"] for r in val_rows}
    return [r for r in rows if r["play"] not in val], [r for r in rows if r["play"] in val]


def split_into_every_play(rows, val_fraction):
    size = {}
    for r in rows:
        size[r["play"]] = size.get(r["play"], 0) + len(r["text"])
    val, taken = set(), 0
    for play in sorted(size):
        if taken >= val_fraction * sum(size.values()):
            break
        val.add(play)
        taken += size[play]
    return [r for r in rows if r["play"] not in val], [r for r in rows if r["play"] in val]


def split_with_the_package(rows, val_fraction):
    from llm_lessons.data import train_val_split

    train_val_split(val_fraction=val_fraction)
    return my_split(rows, val_fraction)


CHECKERS = {
    check_bpe_step: (my_bpe_step, [(bpe_step_across_words, "across word boundaries"),
                                   (bpe_step_unweighted, "each distinct word once"),
                                   (bpe_step_with_str_count, "as str.count does"),
                                   (bpe_step_first_seen, "the pair seen first")]),
    check_chars_per_token: (my_chars_per_token, [(chars_per_token_mean, "averaged each text"),
                                                 (tokens_per_char, "tokens per character"),
                                                 (bytes_per_token, "UTF-8 bytes")]),
    check_split_by_play: (my_split, [(split_rows, "split the rows, not the plays"),
                                     (split_counting_rows, "number of rows"),
                                     (split_into_every_play, "leave at least one play")]),
}

(test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
 test_each_wrong_answer_is_named) = contract(CHECKERS)


@pytest.mark.parametrize("seed", range(5))
def test_the_bpe_step_reference_is_the_packages_first_merge(seed):
    """On byte words the reference's first merge is BPETokenizer.train's (ties: smallest pair)."""
    words = tt._word_lists(__import__("torch").Generator().manual_seed(seed))
    text = " ".join("".join(w) for w, n in words.items() for _ in range(n))
    tok = BPETokenizer("whitespace").train(text, vocab_size=257)
    # the same words as byte ids, each with its count (spaces are chunks of their own)
    as_ids = {tuple(bytes("".join(w), "ascii")): n for w, n in words.items()}
    as_ids[(32,)] = 1
    pair, _ = tt._bpe_step(as_ids)
    assert list(tok.merges) == [pair]


def test_the_split_reference_matches_the_book_rule_on_the_corpus_sizes():
    """train_val_split takes shuffled plays until they hold val_fraction of the characters: the
    reference, given the plays in that shuffled order (renamed to sort that way), picks the same."""
    from llm_lessons.data import load_plays, train_val_split

    split = train_val_split()
    plays = load_plays()
    order = list(split.val_plays) + sorted(split.train_plays)
    rows = [{"play": f"{i:02d}", "text": plays[p]} for i, p in enumerate(order)]
    _, val = tt._split(rows, 0.1)
    assert [r["play"] for r in val] == [f"{i:02d}" for i in range(len(split.val_plays))]


def test_the_answers_are_refused():
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.tokenizers.merge_pair"):
        check_bpe_step(bpe_step_with_the_package)
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.data.train_val_split"):
        check_split_by_play(split_with_the_package)
    assert merge_pair([1, 1, 1], (1, 1), 2) == [2, 1]  # put back afterwards
