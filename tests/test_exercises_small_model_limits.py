"""Chapter 6.5's checkers (unknown characters, a multiple-choice pick by log-likelihood, word
overlap): an independent solution passes, a stub is "not implemented yet", each plausible wrong
answer fails with words that name its mistake, and the functions that are the answer cannot be
used to pass."""

from __future__ import annotations

import re

import pytest
import torch
from checker_contract import contract

from llm_lessons.evaluation import multiple_choice
from llm_lessons.exercises.checking import ExerciseFailed
from llm_lessons.exercises.small_model_limits import (
    check_pick_choice,
    check_unknown_characters,
    check_word_overlap,
)
from llm_lessons.tokenizers import CharTokenizer

# --- unknown characters ---


def my_unknown(text, chars):
    vocab = set(chars)
    return sorted({c for c in text if c not in vocab})


def unknown_with_repeats(text, chars):
    return sorted(c for c in text if c not in chars)


def unknown_case_folded(text, chars):
    vocab = {c.lower() for c in chars}
    return sorted({c for c in text if c.lower() not in vocab})


def unknown_by_encoding(text, chars):
    CharTokenizer("".join(chars)).encode(text)
    return []


# --- pick a choice ---


def my_pick(logprobs):
    totals = torch.stack([lp.double().sum() for lp in logprobs])
    return int(torch.argmax(totals))  # torch.argmax returns the first maximum


def pick_mean(logprobs):
    return int(torch.argmax(torch.stack([lp.double().mean() for lp in logprobs])))


def pick_best_character(logprobs):
    return int(torch.argmax(torch.stack([lp.double().max() for lp in logprobs])))


def pick_argmin(logprobs):
    return int(torch.argmin(torch.stack([lp.double().sum() for lp in logprobs])))


def pick_by_package(logprobs):
    multiple_choice.multiple_choice_scores(None, None, "", ["a", "b"])
    return 0


# --- word overlap ---


def words(text):
    return re.findall(r"[a-z']+", text.lower())


def my_overlap(output, source):
    out, known = words(output), set(words(source))
    return sum(w in known for w in out) / len(out) if out else 0.0


def overlap_recall(output, source):
    return my_overlap(source, output)


def overlap_case_sensitive(output, source):
    out, known = re.findall(r"[A-Za-z']+", output), set(re.findall(r"[A-Za-z']+", source))
    return sum(w in known for w in out) / len(out) if out else 0.0


def overlap_distinct(output, source):
    out, known = set(words(output)), set(words(source))
    return len(out & known) / len(out) if out else 0.0


CASES = {
    check_unknown_characters: (my_unknown, [
        (unknown_with_repeats, "repeats a character"),
        (unknown_case_folded, "case-sensitive"),
        (unknown_by_encoding, "without calling llm_lessons.tokenizers.CharTokenizer.encode"),
    ]),
    check_pick_choice: (my_pick, [
        (pick_mean, "*total* log-probability"),
        (pick_best_character, "single best character"),
        (pick_argmin, "least likely choice"),
        (pick_by_package, "without calling llm_lessons.evaluation.multiple_choice.multiple_choice_scores"),
    ]),
    check_word_overlap: (my_overlap, [
        (overlap_recall, "*source's* words"),
        (overlap_case_sensitive, "lower-case both texts"),
        (overlap_distinct, "every occurrence"),
    ]),
}
(test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
 test_each_wrong_answer_is_named) = contract(CASES)


def test_the_unknown_characters_are_what_the_tokenizer_refuses():
    tok = CharTokenizer("abc ")
    for text in ["abd", "a b c", "xyz"]:
        unknown = my_unknown(text, tok.chars)
        if unknown:
            with pytest.raises(ValueError, match=repr(unknown[0]) if len(unknown) == 1 else "not in"):
                tok.encode(text)
        else:
            assert tok.decode(tok.encode(text)) == text


def test_the_pick_is_the_harness_pred():
    # the checker's answer is multiple_choice_scores' `pred`: the sum of the choice's log-probs
    scores = multiple_choice.ChoiceScores((-3.0, -1.5, -2.0), (3, 1, 1), (3, 1, 1))
    assert my_pick([torch.tensor([-1.0, -2.0]), torch.tensor([-1.5]), torch.tensor([-2.0])]) == scores.pred


def test_a_forbidden_method_is_refused():
    with pytest.raises(ExerciseFailed, match="without calling"):
        check_unknown_characters(unknown_by_encoding)
