"""Checkers for chapter 7.2's exercises: one BPE training step on a word list, the compression
of a tokenizer in characters per token, and a split of a corpus by whole plays.

Every answer comes from a reference written here, never from the package's
:class:`~llm_lessons.tokenizers.BPETokenizer`, its ``pair_counts`` and ``merge_pair``, or
:func:`llm_lessons.data.train_val_split` (all forbidden while the student's code runs).

>>> def split(rows, val_fraction):
...     plays = sorted({r["play"] for r in rows})
...     size = {p: sum(len(r["text"]) for r in rows if r["play"] == p) for p in plays}
...     val, total = [], sum(size.values())
...     for p in plays[:-1]:                  # never every play
...         if sum(size[q] for q in val) >= val_fraction * total:
...             break
...         val.append(p)
...     return ([r for r in rows if r["play"] not in val], [r for r in rows if r["play"] in val])
>>> check_split_by_play(split)
'check_split_by_play: all 10 cases passed'
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from llm_lessons.exercises.checking import Case, Mistake, random_int, run_check

# --- one BPE training step ---

BPE_STEP_ANSWERS = ("llm_lessons.tokenizers.pair_counts", "llm_lessons.tokenizers.merge_pair",
                    "llm_lessons.tokenizers.BPETokenizer.train")


def _join(tokens: tuple, pair: tuple, backwards: bool = False) -> tuple:
    """Every non-overlapping occurrence of ``pair`` joined, scanning left to right (or not)."""
    seq = list(tokens[::-1]) if backwards else list(tokens)
    a, b = pair[::-1] if backwards else pair
    out, i = [], 0
    while i < len(seq):
        if i + 1 < len(seq) and seq[i] == a and seq[i + 1] == b:
            out.append(pair[0] + pair[1])
            i += 2
        else:
            out.append(seq[i])
            i += 1
    return tuple(out[::-1] if backwards else out)


def _bpe_step(words: dict, across=False, unweighted=False, nonoverlapping=False, first_seen=False,
              backwards=False):
    """(the pair merged, the words after the merge); the flags give the usual wrong versions."""
    counts: dict[tuple, int] = {}
    stream = [t for w in words for t in w] if across else None
    for tokens, n in ([(tuple(stream), 1)] if across else words.items()):
        for pair in dict.fromkeys(zip(tokens, tokens[1:], strict=False)):  # distinct, in order
            k = (len(tokens) - len(_join(tokens, pair)) if nonoverlapping  # str.count-like
                 else sum(p == pair for p in zip(tokens, tokens[1:], strict=False)))
            counts[pair] = counts.get(pair, 0) + k * (1 if unweighted else n)
    best = max(counts.values())
    tied = [p for p in counts if counts[p] == best]
    pair = tied[0] if first_seen else min(tied)
    return pair, {_join(w, pair, backwards): n for w, n in words.items()}


def _word_lists(g: torch.Generator) -> dict:
    letters = "abcd"[: random_int(g, 2, 5)]
    words: dict[tuple, int] = {}
    for _ in range(random_int(g, 2, 6)):
        length = random_int(g, 1, 7)
        word = tuple(letters[i] for i in torch.randint(0, len(letters), (length,), generator=g))
        words[word] = random_int(g, 1, 6)
    if all(len(w) < 2 for w in words):
        words[("a", "b")] = 1
    return words


def check_bpe_step(fn: Callable, n_cases: int = 14, seed: int = 0) -> str:
    """``fn(words)``: words maps each word, a tuple of its current tokens, to how often it
    occurs, e.g. ``{("l", "o", "w"): 5, ("l", "o", "w", "e", "r"): 2}``. Count every adjacent
    pair inside each word (every position: ("a", "a", "a") holds ("a", "a") twice), times the
    word's count; never across two words. Return ``(pair, merged)``: the most frequent pair (ties:
    the smallest, ``min`` of the tied pairs) and a new dict whose words have every occurrence of
    the pair joined into one token, left to right (("a", "a", "a") -> ("aa", "a"))."""
    g = torch.Generator().manual_seed(seed)
    fixed = [{("l", "o", "w"): 5, ("l", "o", "w", "e", "r"): 2, ("n", "e", "w", "e", "s", "t"): 6},
             {("a", "a", "a"): 3, ("a", "b"): 5},  # (a, a) 6 times, (a, b) 5
             {("a", "b"): 1, ("b", "a"): 1},  # one each: the smallest pair, (a, b)
             {("b", "a"): 2, ("c", "a"): 2, ("x",): 9},  # a tie, and a one-token word
             {("a", "b"): 1, ("c", "a", "b"): 1, ("a",): 1}]
    while len(fixed) < n_cases:
        fixed.append(_word_lists(g))
    cases = [Case((words,), _bpe_step(words), f"words = {words}") for words in fixed]
    mistakes = [
        Mistake("across words", lambda w: _bpe_step(w, across=True),
                "you counted pairs across word boundaries (the words joined into one stream): "
                "BPE counts pairs inside each word only, times that word's count"),
        Mistake("unweighted", lambda w: _bpe_step(w, unweighted=True),
                "you counted each distinct word once: multiply its pairs by how often the word "
                "occurs (its value in the dict)"),
        Mistake("non-overlapping", lambda w: _bpe_step(w, nonoverlapping=True),
                "you counted ('a', 'a') once in ('a', 'a', 'a'), as str.count does: count every "
                "position, as the book and tokenizers do; only the MERGE skips overlaps"),
        Mistake("first seen", lambda w: _bpe_step(w, first_seen=True),
                "your tie went to the pair seen first: break ties with the smallest pair, "
                "min() of the tied pairs, as the book breaks them with the smallest ids"),
        Mistake("right to left", lambda w: _bpe_step(w, backwards=True),
                "you merged from the right: ('a', 'a', 'a') must become ('aa', 'a'); scan left "
                "to right and skip both tokens of a joined pair"),
    ]
    return run_check("check_bpe_step", fn, cases, mistakes, forbidden=BPE_STEP_ANSWERS)


# --- characters per token ---


def _words_encoder(text: str) -> list[str]:
    """A word-and-space tokenizer: 'to be' -> ['to', ' ', 'be']."""
    import re  # noqa: PLC0415

    return re.findall(r"\w+|\s+|[^\w\s]", text)


def _pairs_encoder(text: str) -> list[str]:
    """Two characters per token: 'abcde' -> ['ab', 'cd', 'e']."""
    return [text[i:i + 2] for i in range(0, len(text), 2)]


ENCODERS = {"list (one token per character)": list, "words and spaces": _words_encoder,
            "two characters per token": _pairs_encoder}


def _chars_per_token(texts, encode, mean=False, inverted=False, in_bytes=False):
    sizes = [(len(t.encode("utf-8")) if in_bytes else len(t), len(encode(t))) for t in texts]
    if mean:
        ratios = [c / n for c, n in sizes if n]
        return sum(ratios) / len(ratios)
    chars, tokens = sum(c for c, _ in sizes), sum(n for _, n in sizes)
    return tokens / chars if inverted else chars / tokens


def check_chars_per_token(fn: Callable, n_cases: int = 10, seed: int = 0) -> str:
    """``fn(texts, encode)``: texts a list of str, encode a function from a str to its list of
    tokens. Return the compression over the whole list: all characters (``len``, not UTF-8
    bytes) divided by all tokens, a float; ``["to be", "or"]`` with word tokens is 7 / 4 = 1.75
    (not the mean of 5 / 3 and 2 / 1). An empty text adds nothing."""
    g = torch.Generator().manual_seed(seed)
    fixed = [(["to be", "or"], "words and spaces"), (["abcde"], "two characters per token"),
             (["Now — the hour", "", "so"], "words and spaces"),
             (["a", "long line of some words here"], "words and spaces"),
             (["x—y", "abc"], "list (one token per character)")]
    pool = ["To be, or not to be", "O", "Now, fair Hippolyta", "a — b", "", "Hark!", "word"]
    while len(fixed) < n_cases:
        texts = [pool[random_int(g, 0, len(pool))] for _ in range(random_int(g, 1, 5))]
        if not "".join(texts):
            texts.append("Anon")
        fixed.append((texts, list(ENCODERS)[random_int(g, 0, len(ENCODERS))]))
    cases = [Case((texts, ENCODERS[name]), _chars_per_token(texts, ENCODERS[name]),
                  f"texts = {texts}, encode = {name}") for texts, name in fixed]
    mistakes = [
        Mistake("mean", lambda t, e: _chars_per_token(t, e, mean=True),
                "you averaged each text's ratio: divide ALL characters by ALL tokens, so a long "
                "text counts as much as its length"),
        Mistake("inverted", lambda t, e: _chars_per_token(t, e, inverted=True),
                "you returned tokens per character: compression is characters per token (above "
                "1 for any tokenizer that joins characters)"),
        Mistake("bytes", lambda t, e: _chars_per_token(t, e, in_bytes=True),
                "you counted UTF-8 bytes ('—' is 3 of them): count characters with len(text)"),
    ]
    return run_check("check_chars_per_token", fn, cases, mistakes)


# --- a split by whole plays ---

SPLIT_ANSWERS = ("llm_lessons.data.train_val_split",)


def _split(rows, val_fraction, by_rows=False, strict=False, count_rows=False, allow_all=False):
    """(train rows, validation rows); the flags give the usual wrong versions."""
    if by_rows:  # rows, not plays: a play's speeches land on both sides
        cut = len(rows) - max(1, round(val_fraction * len(rows)))
        return list(rows[:cut]), list(rows[cut:])
    plays = sorted({r["play"] for r in rows})
    size = {p: sum(1 if count_rows else len(r["text"]) for r in rows if r["play"] == p)
            for p in plays}
    total, val, taken = sum(size.values()), set(), 0
    for p in plays if allow_all else plays[:-1]:
        if (taken > val_fraction * total) if strict else (taken >= val_fraction * total):
            break
        val.add(p)
        taken += size[p]
    return [r for r in rows if r["play"] not in val], [r for r in rows if r["play"] in val]


def _rows(g: torch.Generator) -> list[dict]:
    names = ["hamlet", "lear", "macbeth", "othello", "tempest", "twelfth-night"]
    plays = names[: random_int(g, 2, len(names) + 1)]
    rows = [{"play": p, "text": "x" * random_int(g, 1, 40)} for p in plays
            for _ in range(random_int(g, 1, 5))]
    order = torch.randperm(len(rows), generator=g).tolist()
    return [rows[i] for i in order]  # plays interleaved, as a shuffled dataset holds them


def check_split_by_play(fn: Callable, n_cases: int = 10, seed: int = 0) -> str:
    """``fn(rows, val_fraction)``: rows a list of dicts with "play" and "text". Validation takes
    whole plays in sorted-name order, one at a time, while the plays taken so far hold fewer than
    ``val_fraction`` of all characters (so at least one play, and never every play). Return
    ``(train_rows, val_rows)``, each in the order of ``rows``; no play is on both sides."""
    g = torch.Generator().manual_seed(seed)
    row = lambda p, n: {"play": p, "text": "y" * n}  # noqa: E731
    fixed = [([row("b", 10), row("a", 5), row("a", 5), row("c", 80)], 0.1),  # a holds exactly 10%
             ([row("a", 1), row("b", 1)], 0.9),  # never both plays
             ([row("a", 3), row("b", 1), row("b", 1), row("b", 1), row("c", 50)], 0.05),
             ([row("c", 2), row("a", 90), row("b", 4), row("a", 1)], 0.5),
             ([row("a", 50), *[row("b", 1)] * 5, row("c", 50)], 0.4)]  # few rows, many chars
    while len(fixed) < n_cases:
        fixed.append((_rows(g), round(0.05 + 0.5 * float(torch.rand((), generator=g)), 2)))
    cases = [Case((rows, f), _split(rows, f), f"val_fraction = {f}, rows as (play, characters) = "
                  f"{[(r['play'], len(r['text'])) for r in rows]}")
             for rows, f in fixed]
    mistakes = [
        Mistake("rows", lambda r, f: _split(r, f, by_rows=True),
                "you split the rows, not the plays: one play's speeches then sit in both splits "
                "(leakage); move whole plays"),
        Mistake("strict", lambda r, f: _split(r, f, strict=True),
                "you kept taking plays while they held AT MOST the fraction: stop as soon as "
                "they hold at least val_fraction of the characters"),
        Mistake("rows counted", lambda r, f: _split(r, f, count_rows=True),
                "you measured each play by its number of rows: the fraction is of characters, "
                "the sum of len(text)"),
        Mistake("all plays", lambda r, f: _split(r, f, allow_all=True),
                "every play went to validation: leave at least one play for training"),
    ]
    return run_check("check_split_by_play", fn, cases, mistakes, forbidden=SPLIT_ANSWERS)
