"""Chapter 6.2's checkers (fitting a passage into the window, targets that score only the
continuation, a paired bootstrap): an independent solution passes, a stub is "not implemented
yet", each plausible wrong answer fails with words that name its mistake, and the functions that
are the answer cannot be used to pass. The checkers' references agree with the package."""

from __future__ import annotations

import pytest
import torch
from checker_contract import contract

from llm_lessons.applications import rag
from llm_lessons.applications.rag import fit_window as imported_fit_window
from llm_lessons.exercises.checking import ExerciseFailed
from llm_lessons.exercises.retrieval_augmented import (
    check_continuation_targets,
    check_fit_window,
    check_paired_bootstrap,
)

# --- fitting the passage into the window ---


def my_fit(passage, prompt, continuation, size):
    room = size - len(continuation)
    head = (passage + prompt)[max(len(passage + prompt) - room, 0):] if room > 0 else ""
    return head + continuation


def fit_from_the_right(passage, prompt, continuation, size):
    return (passage + prompt + continuation)[:size]


def fit_keeping_the_passage_start(passage, prompt, continuation, size):
    room = max(size - len(prompt) - len(continuation), 0)
    return (passage[:room] + prompt + continuation)[-size:]


def fit_one_too_many(passage, prompt, continuation, size):
    return (passage + prompt + continuation)[-size - 1:]


def fit_by_package(passage, prompt, continuation, size):
    return rag.fit_window(passage, prompt, continuation, size)


# --- targets ---


def my_targets(window, n_scored):
    targets = torch.full((len(window) - 1,), -100, dtype=window.dtype)
    for t in range(len(window) - 1 - n_scored, len(window) - 1):
        targets[t] = window[t + 1]
    return window[:-1], targets


def targets_scoring_everything(window, n_scored):
    return window[:-1], window[1:]


def targets_unshifted(window, n_scored):
    targets = window[:-1].clone()
    targets[: len(targets) - n_scored] = -100
    return window[:-1], targets


def targets_one_short(window, n_scored):
    targets = window[1:].clone()
    targets[: len(targets) - n_scored + 1] = -100
    return window[:-1], targets


def targets_by_package(window, n_scored):
    return rag.continuation_targets(window, n_scored)


# --- paired bootstrap ---


def my_bootstrap(a, b, rows):
    d = (a - b).double()
    means = torch.stack([d[r].mean() for r in rows])
    low, high = torch.quantile(means, torch.tensor([0.025, 0.975], dtype=torch.float64))
    return d.mean().item(), low.item(), high.item()


def bootstrap_b_minus_a(a, b, rows):
    return my_bootstrap(b, a, rows)


def bootstrap_90(a, b, rows):
    d = (a - b).double()
    low, high = torch.quantile(d[rows].mean(1), torch.tensor([0.05, 0.95], dtype=torch.float64))
    return d.mean().item(), low.item(), high.item()


def bootstrap_of_single_probes(a, b, rows):
    d = (a - b).double()
    low, high = torch.quantile(d[rows].flatten(), torch.tensor([0.025, 0.975], dtype=torch.float64))
    return d.mean().item(), low.item(), high.item()


def bootstrap_by_package(a, b, rows):
    return rag.paired_difference(a, b, n_boot=len(rows))


CASES = {
    check_fit_window: (my_fit, [
        (fit_from_the_right, "the continuation (the part being scored) was cut"),
        (fit_keeping_the_passage_start, "kept the *start* of the passage"),
        (fit_one_too_many, "size + 1 characters"),
        (fit_by_package, "without calling llm_lessons.applications.rag.fit_window"),
    ]),
    check_continuation_targets: (my_targets, [
        (targets_scoring_everything, "score the context too"),
        (targets_unshifted, "not shifted"),
        (targets_one_short, "n_scored - 1 positions"),
        (targets_by_package, "without calling llm_lessons.applications.rag.continuation_targets"),
    ]),
    check_paired_bootstrap: (my_bootstrap, [
        (bootstrap_b_minus_a, "your difference is b - a"),
        (bootstrap_90, "holds 90%"),
        (bootstrap_of_single_probes, "spread of single probes' differences"),
        (bootstrap_by_package, "without calling llm_lessons.applications.rag.paired_difference"),
    ]),
}
(test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
 test_each_wrong_answer_is_named) = contract(CASES)


def test_the_references_match_the_package():
    g = torch.Generator().manual_seed(0)
    for size in (5, 12, 40):
        assert my_fit("passage text", "the prompt", "cont", size) == rag.fit_window(
            "passage text", "the prompt", "cont", size)
    window = torch.randint(0, 70, (20,), generator=g)
    for n in (1, 7, 19):
        mine, theirs = my_targets(window, n), rag.continuation_targets(window, n)
        assert all(torch.equal(x, y) for x, y in zip(mine, theirs, strict=True))


def cheat_with_an_imported_fit(passage, prompt, continuation, size):
    return imported_fit_window(passage, prompt, continuation, size)


def test_a_forbidden_function_held_under_a_global_name_is_caught():
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.applications.rag.fit_window"):
        check_fit_window(cheat_with_an_imported_fit)
