"""Checkers for chapter 6.5's exercises: the characters a prompt may not use, a multiple-choice
answer by log-likelihood, and the word overlap of an output with its input.

Each is a few lines, and each has a wrong version that looks right on an easy case: a list of
unknown characters with repeats, a choice scored per character instead of in total (the sum is
what 6.5 reports; the per-character mean is the harness's ``acc_norm``, a different measure),
an overlap measured in the wrong direction. The answers come from references written here;
:func:`llm_lessons.evaluation.multiple_choice.multiple_choice_scores` and the tokenizer's
``encode`` are forbidden (no package function computes the overlap, so the third forbids nothing).

>>> def unknown(text, chars):
...     return sorted(set(text) - set(chars))
>>> check_unknown_characters(unknown)
'check_unknown_characters: all 8 cases passed'
"""

from __future__ import annotations

import re
from collections.abc import Callable

import torch

from llm_lessons.exercises.checking import Case, Mistake, random_int, run_check

# --- characters outside the vocabulary ---


def _unknown(text, chars, distinct=True, fold=False):
    vocab = {c.lower() for c in chars} if fold else set(chars)
    found = [c for c in text if (c.lower() if fold else c) not in vocab]
    return sorted(set(found)) if distinct else sorted(found)


def check_unknown_characters(fn: Callable, seed: int = 0) -> str:
    """``fn(text, chars)``: the characters of ``text`` that are not in the vocabulary ``chars``
    (a list of single characters), each once, sorted; ``[]`` when the model can read it all."""
    g = torch.Generator().manual_seed(seed)
    vocab = list("\n !',-.:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
    hand = [
        (("Traduire en français : le roi", vocab), "'Traduire en français : le roi' (a cedilla)"),
        (("What is 1 + 1?", vocab), "'What is 1 + 1?' (digits and '+', twice)"),
        (("ROMEO:\nBut soft!", vocab), "a line the model can read: []"),
        (("", vocab), "an empty text"),
        (("abc", list("ABC")), "'abc' with an upper-case vocabulary (case matters)"),
    ]
    cases = [Case(args, _unknown(*args), label) for args, label in hand]
    pool = "abcXYZ 12+=é"
    while len(cases) < 8:
        text = "".join(pool[random_int(g, 0, len(pool))] for _ in range(random_int(g, 5, 15)))
        cases.append(Case((text, vocab), _unknown(text, vocab), f"random text {text!r}"))
    mistakes = [
        Mistake("repeats", lambda t, c: _unknown(t, c, distinct=False),
                "your list repeats a character each time it occurs; give each unknown character once"),
        Mistake("case-folded", lambda t, c: _unknown(t, c, fold=True),
                "you compared lower-cased characters; the vocabulary is case-sensitive ('a' and 'A' "
                "are different tokens)"),
    ]
    forbidden = ("llm_lessons.tokenizers.CharTokenizer.encode",)
    return run_check("check_unknown_characters", fn, cases, mistakes, forbidden=forbidden)


# --- a multiple-choice answer by log-likelihood ---


def _pick(logprobs, how="sum"):
    if how == "sum":
        scores = [float(lp.sum()) for lp in logprobs]
    elif how == "mean":
        scores = [float(lp.mean()) for lp in logprobs]
    elif how == "max":
        scores = [float(lp.max()) for lp in logprobs]
    else:  # argmin of the sum
        scores = [-float(lp.sum()) for lp in logprobs]
    return max(range(len(scores)), key=lambda i: (scores[i], -i))  # the first maximum


def check_pick_choice(fn: Callable, seed: int = 1) -> str:
    """``fn(logprobs)``: ``logprobs[k]`` is a 1-D tensor of the log-probabilities the model gave
    to each character of choice k (after the question). Return the index of the choice with the
    largest total log-probability (the first one on a tie)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.tensor
    cases = [
        Case(([t([-1.0, -0.1, -0.1]), t([-2.0])],), _pick([t([-1.0, -0.1, -0.1]), t([-2.0])]),
             "a long likely choice against a short unlikely one"),
        Case(([t([-0.5]), t([-0.5])],), 0, "a tie: the first choice"),
        Case(([t([-3.0, -0.01]), t([-1.0, -1.0]), t([-2.5])],),
             _pick([t([-3.0, -0.01]), t([-1.0, -1.0]), t([-2.5])]), "three choices"),
    ]
    while len(cases) < 8:
        choices = [-torch.rand(random_int(g, 1, 6), generator=g, dtype=torch.float64) * 3
                   for _ in range(random_int(g, 2, 6))]
        cases.append(Case((choices,), _pick(choices), f"{len(choices)} random choices"))
    mistakes = [
        Mistake("mean", lambda lp: _pick(lp, "mean"),
                "you averaged per character (that is acc_norm); the answer here is the choice "
                "with the largest *total* log-probability, the sum"),
        Mistake("max", lambda lp: _pick(lp, "max"),
                "you took each choice's single best character; score the whole choice: the sum "
                "of all its characters' log-probabilities"),
        Mistake("argmin", lambda lp: _pick(lp, "argmin"),
                "you picked the least likely choice: log-probabilities are negative, the best "
                "choice has the sum closest to 0 (the largest)"),
    ]
    forbidden = ("llm_lessons.evaluation.multiple_choice.multiple_choice_scores",
                 "llm_lessons.evaluation.multiple_choice.multiple_choice_accuracy")
    return run_check("check_pick_choice", fn, cases, mistakes, forbidden=forbidden)


# --- word overlap of an output with its input ---



def _overlap(output, source, direction="output", fold=True, distinct=False):
    prep = (lambda s: s.lower()) if fold else (lambda s: s)
    out = re.findall(r"[A-Za-z']+", prep(output))
    src = re.findall(r"[A-Za-z']+", prep(source))
    if direction == "source":
        out, src = src, out
    if distinct:
        out = sorted(set(out))
    if not out:
        return 0.0
    known = set(src)
    return sum(w in known for w in out) / len(out)


def check_word_overlap(fn: Callable, seed: int = 2) -> str:
    """``fn(output, source)``: the share of the output's words (runs of letters and
    apostrophes, lower-cased, every occurrence counted) that also occur among the source's
    words; 0.0 for an output with no words."""
    g = torch.Generator().manual_seed(seed)
    hand = [
        (("the the king", "The king is dead"), "'the the king' against 'The king is dead'"),
        (("And the so the so", "Once more unto the breach"), "a loop of common words"),
        (("", "anything"), "an empty output"),
        (("Rumour speaks", "loud Rumour speaks? I, from the orient"), "a copy of two source words"),
        (("o'er the sea", "O'er the hills"), "apostrophes and capitals"),
    ]
    cases = [Case(args, _overlap(*args), label) for args, label in hand]
    words = ["the", "king", "The", "sea", "so", "and", "night", "Night"]
    while len(cases) < 9:
        out = " ".join(words[random_int(g, 0, 8)] for _ in range(random_int(g, 2, 8)))
        src = " ".join(words[random_int(g, 0, 8)] for _ in range(random_int(g, 1, 6)))
        cases.append(Case((out, src), _overlap(out, src), f"output {out!r}, source {src!r}"))
    mistakes = [
        Mistake("recall", lambda o, s: _overlap(o, s, direction="source"),
                "you measured the share of the *source's* words found in the output; the question "
                "is how much of the output comes from the source"),
        Mistake("case", lambda o, s: _overlap(o, s, fold=False),
                "you compared words with their capitals; lower-case both texts first ('The' and "
                "'the' are the same word)"),
        Mistake("distinct", lambda o, s: _overlap(o, s, distinct=True),
                "you counted each distinct output word once; count every occurrence, so that a "
                "loop of 'the the the' weighs what it weighs"),
    ]
    return run_check("check_word_overlap", fn, cases, mistakes)
