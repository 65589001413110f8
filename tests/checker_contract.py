"""What every exercise checker promises, as three tests any checker table can reuse.

A table maps each checker to (a correct solution written in the test, [(a plausible wrong
answer, words its failure must contain), ...]). ``contract(table)`` returns the three tests:
the solution passes quickly, a stub is "not implemented yet", and each wrong answer fails with
words that name its mistake (at least two wrong answers per checker).
"""

from __future__ import annotations

import re
import time

import pytest

from llm_lessons.exercises import ExerciseFailed


def contract(table: dict):
    ids = [checker.__name__ for checker in table]

    @pytest.mark.parametrize("checker", table, ids=ids)
    def test_an_independent_solution_passes_quickly(checker):
        start = time.perf_counter()
        assert re.search(r": all \d+ \w+ passed", checker(table[checker][0]))
        assert time.perf_counter() - start < 2.0, "a check must stay quick (it runs in class)"

    @pytest.mark.parametrize("checker", table, ids=ids)
    def test_a_stub_is_not_implemented_yet(checker):
        def stub(*args):
            raise NotImplementedError

        with pytest.raises(ExerciseFailed, match="not implemented yet"):
            checker(stub)

    @pytest.mark.parametrize("checker", table, ids=ids)
    def test_each_wrong_answer_is_named(checker):
        wrong_answers = table[checker][1]
        assert len(wrong_answers) >= 2, "every checker needs two plausible wrong answers tested"
        for wrong, words in wrong_answers:
            with pytest.raises(ExerciseFailed) as failure:
                checker(wrong)
            assert words in str(failure.value), (words, str(failure.value))

    return (test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
            test_each_wrong_answer_is_named)
