"""The checkers of chapters 2.1 and 2.4 (Kneser–Ney's continuation probability, byte fallback,
the entropy rate of a Markov chain, multiple choice by log-likelihood): an independent solution
passes, a stub is "not implemented yet", each plausible wrong answer fails with words that name
its mistake, the references agree with the package, and the package functions that are the
answer cannot be used to pass."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from checker_contract import contract

from llm_lessons.evaluation.markov_source import MarkovConfig, MarkovSource
from llm_lessons.evaluation.multiple_choice import ChoiceScores
from llm_lessons.exercises.checking import ExerciseFailed
from llm_lessons.exercises.text_models import (
    _choose,
    _entropy_rate,
    _fallback,
    _p_cont,
    _random_chain,
    check_byte_fallback,
    check_continuation_prob,
    check_entropy_rate,
    check_multiple_choice,
)
from llm_lessons.ngram import NGramCounts
from llm_lessons.tokenizers import BPETokenizer

# --- Kneser–Ney's continuation probability ---


def my_p_cont(counts):
    V = counts.shape[0]
    left_neighbours = [sum(1 for v in range(V) if counts[v, w] > 0) for w in range(V)]
    return torch.tensor(left_neighbours, dtype=torch.float64) / sum(left_neighbours)


def p_cont_by_frequency(counts):
    column = counts.sum(dim=0).double()
    return column / column.sum()


def p_cont_of_followers(counts):
    followers = (counts > 0).sum(dim=1).double()
    return followers / (counts > 0).sum()


def p_cont_over_v(counts):
    return (counts > 0).sum(dim=0).double() / counts.shape[0]


# --- byte fallback ---


def my_byte_fallback(text, vocab):
    tokens = []
    for ch in text:
        if ch in vocab:
            tokens.append(ch)
        else:
            tokens.extend("<0x" + hex(b)[2:].zfill(2).upper() + ">" for b in bytes(ch, "utf-8"))
    return tokens


def fallback_code_point(text, vocab):
    return [ch if ch in vocab else f"<0x{ord(ch):02X}>" for ch in text]


def fallback_lower_case(text, vocab):
    out = []
    for ch in text:
        out += [ch] if ch in vocab else [f"<0x{b:02x}>" for b in ch.encode()]
    return out


def fallback_dropping(text, vocab):
    return [ch for ch in text if ch in vocab]


def fallback_utf16(text, vocab):
    out = []
    for ch in text:
        out += [ch] if ch in vocab else [f"<0x{b:02X}>" for b in ch.encode("utf-16")]
    return out


# --- the entropy rate ---


def my_entropy_rate(P):
    P = np.asarray(P, dtype=np.float64)
    values, vectors = np.linalg.eig(P.T)  # pi P = pi: pi is a left eigenvector, eigenvalue 1
    pi = np.real(vectors[:, np.argmin(np.abs(values - 1))])
    pi = pi / pi.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(P > 0, P * np.log(P), 0.0)
    return float(-(pi * terms.sum(axis=1)).sum())


def entropy_rate_uniform(P):
    P = np.asarray(P)
    return float(-np.where(P > 0, P * np.log(np.where(P > 0, P, 1)), 0).sum(1).mean())


def entropy_rate_bits(P):
    return my_entropy_rate(P) / math.log(2)


def entropy_of_pi(P):
    P = np.asarray(P, dtype=np.float64)
    A = np.vstack([P.T - np.eye(len(P)), np.ones(len(P))])  # pi P = pi and sum(pi) = 1
    pi = np.linalg.lstsq(A, np.r_[np.zeros(len(P)), 1.0], rcond=None)[0]
    return float(-(pi[pi > 0] * np.log(pi[pi > 0])).sum())


def entropy_rate_with_source(P):
    K = len(P)
    return MarkovSource.from_probs("abcdefghij"[:K], 1, np.asarray(P)).entropy_rate()


# --- multiple choice ---


def my_multiple_choice(token_logprobs, n_chars):
    totals = np.array([sum(lp) for lp in token_logprobs])
    return int(np.argmax(totals)), int(np.argmax(totals / np.array(n_chars)))  # np.argmax: first max


def choice_per_token(token_logprobs, n_chars):
    totals = [sum(lp) for lp in token_logprobs]
    means = [s / len(lp) for s, lp in zip(totals, token_logprobs, strict=True)]
    return int(np.argmax(totals)), int(np.argmax(means))


def choice_argmin(token_logprobs, n_chars):
    totals = np.array([sum(lp) for lp in token_logprobs])
    return int(np.argmin(totals)), int(np.argmin(totals / np.array(n_chars)))


def choice_swapped(token_logprobs, n_chars):
    return my_multiple_choice(token_logprobs, n_chars)[::-1]


def choice_with_package(token_logprobs, n_chars):
    scores = ChoiceScores(tuple(sum(lp) for lp in token_logprobs), tuple(n_chars), tuple(n_chars))
    return scores.pred, scores.pred_norm


CHECKERS = {
    check_continuation_prob: (my_p_cont, [(p_cont_by_frequency, "how OFTEN w follows"),
                                          (p_cont_of_followers, "FOLLOW w"),
                                          (p_cont_over_v, "divided by V")]),
    check_byte_fallback: (my_byte_fallback, [(fallback_code_point, "Unicode code point"),
                                             (fallback_lower_case, "lower case"),
                                             (fallback_dropping, "dropped the characters"),
                                             (fallback_utf16, "UTF-16")]),
    check_entropy_rate: (my_entropy_rate, [(entropy_rate_uniform, "uniform pi"),
                                           (entropy_rate_bits, "in bits"),
                                           (entropy_of_pi, "entropy of pi")]),
    check_multiple_choice: (my_multiple_choice, [(choice_per_token, "number of TOKENS"),
                                                 (choice_argmin, "smallest score"),
                                                 (choice_swapped, "swapped")]),
}

(test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
 test_each_wrong_answer_is_named) = contract(CHECKERS)


@pytest.mark.parametrize("seed", range(4))
def test_the_continuation_reference_agrees_with_ngram_counts(seed):
    """p_cont(w) is NGramCounts' N1+(• w) over the number of bigram types, counted from a text."""
    g = torch.Generator().manual_seed(seed)
    V = 7
    ids = torch.randint(0, V, (40,), generator=g)
    counts = torch.zeros(V, V, dtype=torch.long)
    counts.index_put_((ids[:-1], ids[1:]), torch.ones(39, dtype=torch.long), accumulate=True)
    package = NGramCounts(ids, max_order=2, vocab_size=V)
    want = package.cont[1][:V].double() / package.total[False, 0]  # the trailing 0 is rank -1's
    torch.testing.assert_close(_p_cont(counts), want)
    assert float(want.sum()) == pytest.approx(1.0)


def test_the_continuation_reference_matches_the_ngram_docstring():
    """NGramLM's docstring: text [0, 1, 0, 2, 0, 1] has P_cont(1) = 1/4 (bigram types 01 10 02 20)."""
    counts = torch.tensor([[0, 2, 1], [1, 0, 0], [1, 0, 0]])
    assert _p_cont(counts)[1].item() == pytest.approx(0.25)


def test_byte_fallback_uses_the_bytes_of_byte_level_bpe():
    """With an empty vocab, the byte tokens are exactly an untrained BPETokenizer's ids (UTF-8)."""
    text = "aaab 🙂 语言\n"
    assert _fallback(text, set()) == [f"<0x{i:02X}>" for i in BPETokenizer().encode(text)]
    assert _fallback("a中", {"a"}) == ["a", "<0xE4>", "<0xB8>", "<0xAD>"]


@pytest.mark.parametrize("preset", ["tiny", "lesson"])
def test_the_entropy_rate_reference_agrees_with_markov_source(preset):
    """An order-k source is a chain on its K**k histories: the same H as MarkovSource.entropy_rate."""
    source = MarkovSource(MarkovConfig.preset(preset))
    P = torch.from_numpy(source.state_transitions())  # (S, S) history -> next history
    assert _entropy_rate(P) == pytest.approx(source.entropy_rate(), rel=1e-9)
    order1 = MarkovSource(MarkovConfig(alphabet="abc", order=1, concentration=0.7, seed=3))
    assert _entropy_rate(torch.from_numpy(order1.probs)) == pytest.approx(order1.entropy_rate(), rel=1e-9)
    assert entropy_rate_with_source(order1.probs) == pytest.approx(order1.entropy_rate(), rel=1e-12)


def test_the_random_chains_are_ergodic_and_their_powers_converge():
    """Non-negative rows that sum to 1, and aperiodic: a student may find pi by iterating pi P."""
    g = torch.Generator().manual_seed(0)
    for K in (2, 3, 5, 6, 6):
        P = _random_chain(g, K)
        assert (P >= 0).all() and torch.allclose(P.sum(1), torch.ones(K, dtype=torch.float64))
        power = torch.linalg.matrix_power(P, 5000)  # every row tends to pi
        torch.testing.assert_close(power, power[:1].expand(K, K))
        assert entropy_of_pi(P) == pytest.approx(float(-(power[0] * power[0].log()).sum()))


def test_the_markov_source_is_refused():
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.evaluation.markov_source"):
        check_entropy_rate(entropy_rate_with_source)
    assert MarkovSource(MarkovConfig.preset("tiny")).entropy_rate() > 0  # put back afterwards


def test_the_multiple_choice_reference_agrees_with_choice_scores():
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        K = int(torch.randint(2, 6, (), generator=g))
        logprobs = [(-torch.rand(int(torch.randint(1, 6, (), generator=g)), generator=g)).tolist()
                    for _ in range(K)]
        n_chars = torch.randint(1, 20, (K,), generator=g).tolist()
        assert _choose(logprobs, n_chars) == choice_with_package(logprobs, n_chars)
    assert _choose([[-1.0], [-1.0]], [1, 1]) == choice_with_package([[-1.0], [-1.0]], [1, 1]) == (0, 0)


def test_choice_scores_is_refused():
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.evaluation.multiple_choice.Choice"):
        check_multiple_choice(choice_with_package)
    assert ChoiceScores((-1.0, -0.5), (1, 1), (1, 1)).pred == 1  # put back afterwards
