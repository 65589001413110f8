"""A synthetic text source whose entropy rate is known exactly: a random order-k Markov chain.

Shapes use fixed letters: K alphabet size, S = K**k states (the last k symbols), V = K.

No model can beat the source that generated its data: on a long sample, the cross-entropy of
*any* model is at least the source's **entropy rate**

    H = -sum_s pi(s) sum_a P(a | s) log P(a | s)        (nats per symbol)

where s runs over the k-symbol histories, P(a | s) is the chance that symbol a follows history
s, and pi is the stationary distribution of histories. On real text H is unknown; here it is
computed exactly, which gives the floor a model's loss can approach but never cross (on
average: a finite sample fluctuates around it).

Every row P(· | s) is drawn from a Dirichlet distribution; a small ``concentration`` makes rows
peaked (predictable text, low H), a large one makes them near-uniform (H close to log K). All
entries are positive, so every history can reach every other: the stationary distribution is
unique and sampling from it gives a stationary text.

>>> src = MarkovSource(MarkovConfig(alphabet="ab", order=1, concentration=1.0, seed=0))
>>> src.n_states, round(float(src.stationary().sum()), 12)
(2, 1.0)
>>> 0 < src.entropy_rate() < math.log(2)
True
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from llm_lessons.configs import Presets
from llm_lessons.validation import check_int

#: ``tiny``: 4 symbols, order 2 (16 histories), for tests; ``lesson``: 6 symbols, order 2
#: (36 histories, peaked rows): a trigram or a small GPT can learn it in seconds on a CPU.
PRESETS: dict[str, dict] = {
    "tiny": dict(alphabet="abcd", order=2, concentration=0.5, seed=0),
    "lesson": dict(alphabet="abcdef", order=2, concentration=0.3, seed=7),
}


@dataclass(frozen=True)
class MarkovConfig(Presets):
    """A source: its alphabet (distinct characters), memory ``order`` k, Dirichlet
    ``concentration`` of each transition row, and the ``seed`` that draws the rows."""

    family: ClassVar[str] = "Markov"
    presets: ClassVar[dict[str, dict]] = PRESETS

    alphabet: str = "abcd"
    order: int = 2
    concentration: float = 0.5
    seed: int = 0

    def __post_init__(self):
        if not isinstance(self.alphabet, str) or len(self.alphabet) < 2 or \
                len(set(self.alphabet)) != len(self.alphabet):
            raise ValueError(f"alphabet must be a str of at least 2 distinct characters, "
                             f"got {self.alphabet!r}")
        check_int(self.order, "order", low=1)
        if len(self.alphabet) ** self.order > 1_000_000:
            raise ValueError(f"{len(self.alphabet)}**{self.order} histories is too many (limit 1e6)")
        if not (isinstance(self.concentration, (int, float)) and self.concentration > 0):
            raise ValueError(f"concentration must be > 0, got {self.concentration!r}")


class MarkovSource:
    """An order-k Markov chain over characters; ``probs[s, a] = P(a | history s)``, (S, K).

    A history s = (x_1, ..., x_k) is numbered in base K, oldest symbol first, so the history
    after s and a is ``(s * K + a) % S``.
    """

    def __init__(self, config: MarkovConfig, probs: np.ndarray | None = None):
        self.config = config
        self.alphabet, self.order = config.alphabet, config.order
        K = len(self.alphabet)
        self.n_states = K ** self.order
        if probs is None:
            rng = np.random.default_rng(config.seed)
            probs = rng.dirichlet(np.full(K, float(config.concentration)), size=self.n_states)
        probs = np.asarray(probs, dtype=np.float64)
        if probs.shape != (self.n_states, K):
            raise ValueError(f"probs must have shape (S, K) = ({self.n_states}, {K}), got {probs.shape}")
        if (probs < 0).any() or not np.allclose(probs.sum(1), 1.0, atol=1e-12):
            raise ValueError("each row of probs must be a probability distribution (>= 0, sums to 1)")
        self.probs = probs / probs.sum(1, keepdims=True)
        self._pi: np.ndarray | None = None

    @classmethod
    def from_probs(cls, alphabet: str, order: int, probs) -> MarkovSource:
        """A source with given transition rows (S, K) instead of random ones."""
        return cls(MarkovConfig(alphabet=alphabet, order=order), np.asarray(probs, dtype=np.float64))

    def state_transitions(self) -> np.ndarray:
        """(S, S) matrix M[s, s'] = P(next history s' | history s), zero unless s' extends s."""
        S, K = self.n_states, len(self.alphabet)
        M = np.zeros((S, S))
        nxt = (np.arange(S)[:, None] * K + np.arange(K)[None, :]) % S  # (S, K) next history
        np.add.at(M, (np.repeat(np.arange(S), K), nxt.ravel()), self.probs.ravel())
        return M

    def stationary(self) -> np.ndarray:
        """(S,) stationary distribution pi = pi M: the eigenvector of M^T for eigenvalue 1."""
        if self._pi is None:  # computed once: an eigen-decomposition is O(S^3)
            values, vectors = np.linalg.eig(self.state_transitions().T)
            v = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
            self._pi = v / v.sum()
        return self._pi.copy()

    def entropy_rate(self, base: float = math.e) -> float:
        """H = -sum_s pi(s) sum_a P(a|s) log P(a|s), in nats (``base=2``: bits) per symbol."""
        p = self.probs
        h_rows = -(p * np.log(np.where(p > 0, p, 1.0))).sum(1)  # (S,) entropy of each row
        return float(self.stationary() @ h_rows) / math.log(base)

    def sample_ids(self, n: int, seed: int = 0) -> np.ndarray:
        """(n,) symbol ids: the first k drawn from pi (a stationary start), then the chain."""
        n = check_int(n, "n", low=self.order, reason="the source's order")
        rng = np.random.default_rng(seed)
        K, S = len(self.alphabet), self.n_states
        pi = self.stationary().clip(min=0)  # round-off can leave -1e-17
        s = int(rng.choice(S, p=pi / pi.sum()))
        first = [(s // K ** (self.order - 1 - j)) % K for j in range(self.order)]  # base-K digits
        out = first + [0] * (n - self.order)
        cdf = np.cumsum(self.probs, axis=1).tolist()  # (S, K); plain lists: a fast Python loop
        u = rng.random(n).tolist()
        for t in range(self.order, n):
            a = min(bisect.bisect_right(cdf[s], u[t]), K - 1)  # inverse-CDF draw from P(. | s)
            out[t] = a
            s = (s * K + a) % S
        return np.array(out, dtype=np.int64)

    def sample(self, n: int, seed: int = 0) -> str:
        """A text of n characters drawn from the source."""
        return "".join(self.alphabet[i] for i in self.sample_ids(n, seed))

    def token_log_probs(self, ids) -> np.ndarray:
        """(n - k,) log P(x_t | x_{t-k:t}) under the true source, for t = k..n-1."""
        x = np.asarray(ids, dtype=np.int64)
        K, k = len(self.alphabet), self.order
        if x.ndim != 1 or len(x) <= k or x.min() < 0 or x.max() >= K:
            raise ValueError(f"ids must be 1-D, longer than order {k}, with values in range(0, {K})")
        states = np.zeros(len(x) - k, dtype=np.int64)
        for j in range(k):  # history of x[t] is x[t-k..t-1], oldest digit first
            states = states * K + x[j:len(x) - k + j]
        return np.log(self.probs[states, x[k:]])
