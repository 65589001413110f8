"""The synthetic source: stationary distribution and entropy rate checked by independent routes
(power iteration, a linear solve, block entropies, a closed form, long samples), and trained
models' cross-entropy sitting above the floor."""

import itertools
import math

import numpy as np
import pytest
import torch

from llm_lessons.evaluation.markov_source import PRESETS, MarkovConfig, MarkovSource
from llm_lessons.ngram import NGramLM


@pytest.fixture(scope="module")
def tiny():
    return MarkovSource(MarkovConfig.preset("tiny"))


def test_stationary_three_ways(tiny):
    M = tiny.state_transitions()
    assert np.allclose(M.sum(1), 1.0)
    pi = tiny.stationary()
    power = np.full(tiny.n_states, 1.0 / tiny.n_states)
    for _ in range(5000):
        power = power @ M
    S = tiny.n_states  # solve pi (M - I) = 0 with sum(pi) = 1 as a least-squares system
    A = np.vstack([(M - np.eye(S)).T, np.ones(S)])
    solved = np.linalg.lstsq(A, np.r_[np.zeros(S), 1.0], rcond=None)[0]
    np.testing.assert_allclose(pi, power, atol=1e-12)
    np.testing.assert_allclose(pi, solved, atol=1e-12)
    np.testing.assert_allclose(pi @ M, pi, atol=1e-14)


def test_two_state_closed_form():
    a, b = 0.1, 0.3  # P(leave state 0), P(leave state 1)
    src = MarkovSource.from_probs("xy", 1, [[1 - a, a], [b, 1 - b]])
    h = lambda p: -p * math.log(p) - (1 - p) * math.log(1 - p)  # noqa: E731
    np.testing.assert_allclose(src.stationary(), [b / (a + b), a / (a + b)], atol=1e-14)
    assert src.entropy_rate() == pytest.approx(b / (a + b) * h(a) + a / (a + b) * h(b), rel=1e-12)
    assert src.entropy_rate(base=2) == pytest.approx(src.entropy_rate() / math.log(2), rel=1e-12)


def test_uniform_rows_give_log_K():
    src = MarkovSource.from_probs("abc", 2, np.full((9, 3), 1 / 3))
    assert src.entropy_rate() == pytest.approx(math.log(3), rel=1e-12)


def test_entropy_rate_is_a_difference_of_block_entropies(tiny):
    """For an order-k chain, H = H(X_1..X_{m+1}) - H(X_1..X_m) for every m >= k, where the
    block probabilities are enumerated from the stationary start and the chain rule."""
    K, k = len(tiny.alphabet), tiny.order
    pi = tiny.stationary()

    def block_entropy(m):
        total = 0.0
        for seq in itertools.product(range(K), repeat=m):
            s = 0
            for a in seq[:k]:
                s = s * K + a
            p = pi[s]
            for a in seq[k:]:
                p *= tiny.probs[s, a]
                s = (s * K + a) % tiny.n_states
            total -= p * math.log(p)
        return total

    for m in (k, k + 1):
        assert block_entropy(m + 1) - block_entropy(m) == pytest.approx(tiny.entropy_rate(), rel=1e-10)


def test_long_sample_log_likelihood_converges_to_the_rate(tiny):
    ids = tiny.sample_ids(200_000, seed=3)
    per_token = -tiny.token_log_probs(ids)
    # standard error from 100 batch means (the chain forgets its start within a few symbols)
    means = per_token[: len(per_token) // 100 * 100].reshape(100, -1).mean(1)
    se = means.std(ddof=1) / 10
    assert abs(per_token.mean() - tiny.entropy_rate()) < 4 * se + 1e-4


def test_sampling_is_seeded_and_stationary(tiny):
    a, b = tiny.sample(1000, seed=1), tiny.sample(1000, seed=1)
    assert a == b and a != tiny.sample(1000, seed=2) and set(a) <= set(tiny.alphabet)
    ids = tiny.sample_ids(100_000, seed=4)
    K = len(tiny.alphabet)
    marginal = tiny.stationary().reshape(-1, K).sum(0)  # P(last symbol of the history = a)
    freq = np.bincount(ids, minlength=K) / len(ids)
    np.testing.assert_allclose(freq, marginal, atol=0.01)


def test_token_log_probs_hand_worked():
    src = MarkovSource.from_probs("ab", 1, [[0.9, 0.1], [0.4, 0.6]])
    assert np.allclose(src.token_log_probs([0, 0, 1, 1, 0]), np.log([0.9, 0.1, 0.6, 0.4]))


def test_models_stay_above_the_floor(tiny):
    """A Kneser–Ney n-gram with the source's memory approaches the floor but (on a long held-out
    sample) stays above the source's own log-loss on that very sample; less memory stays higher."""
    train = torch.tensor(tiny.sample_ids(100_000, seed=5))
    test = tiny.sample_ids(50_000, seed=6)
    true_ce = -tiny.token_log_probs(test).mean()
    H = tiny.entropy_rate()
    ce = {o: NGramLM(o, vocab_size=4).fit(train).cross_entropy(torch.tensor(test)) for o in (1, 2, 3)}
    assert ce[1] > ce[2] > ce[3] > true_ce
    assert ce[3] - H < 0.01  # order k + 1 = 3 has the right memory: within 0.01 nats of the floor
    assert ce[2] - H > 0.05  # one symbol of memory short: clearly above it


@pytest.mark.parametrize("kwargs", [dict(alphabet="a"), dict(alphabet="aab"), dict(order=0),
                                    dict(concentration=0.0), dict(alphabet="abcdefghij", order=7)])
def test_bad_configs_raise(kwargs):
    with pytest.raises(ValueError):
        MarkovConfig(**kwargs)


def test_bad_inputs_raise(tiny):
    with pytest.raises(ValueError, match="preset"):
        MarkovConfig.preset("huge")
    with pytest.raises(ValueError, match="shape"):
        MarkovSource.from_probs("ab", 2, np.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="probability"):
        MarkovSource.from_probs("ab", 1, [[0.5, 0.6], [0.5, 0.5]])
    with pytest.raises(ValueError, match="n must"):
        tiny.sample_ids(1)
    with pytest.raises(ValueError):
        tiny.token_log_probs([0, 1, 7])
    assert set(PRESETS) == {"tiny", "lesson"}
