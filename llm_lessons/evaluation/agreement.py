"""Agreement between raters, and rankings from pairwise votes: κ, α, Bradley–Terry, Elo, bootstrap.

Human evaluation yields two kinds of data, and each has its statistics:

* **ratings** (a Likert score per rater and item): do the raters agree more than chance would?
  Cohen's κ for two raters, κ = (p_o - p_e) / (1 - p_e), optionally weighted so that a 4
  against a 5 counts as a smaller disagreement than a 1 against a 5; Krippendorff's α for any
  number of raters, missing ratings and nominal/ordinal/interval/ratio scales,
  α = 1 - D_observed / D_expected.
* **pairwise votes** ("A is better than B"): the Bradley–Terry model
  P(i beats j) = p_i / (p_i + p_j) = σ(θ_i - θ_j) turns them into strengths θ (log p), fitted by
  maximum likelihood; Elo is the online, order-dependent cousin used for chess and chatbots.

Uncertainty of any of these comes from :func:`bootstrap_ci` (percentile bootstrap, seeded).

>>> cohen_kappa([1, 1, 2, 2], [1, 2, 2, 2])          # p_o = 3/4, p_e = 2/4 * 1/4 + 2/4 * 3/4
0.5
>>> bt = bradley_terry([("A", "B"), ("A", "B"), ("B", "A")])   # A wins 2 of 3
>>> round(bt.win_prob("A", "B"), 6)
0.666667
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

LEVELS = ("nominal", "ordinal", "interval", "ratio")


def _pair_arrays(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"rater arrays must be 1-D, got shapes {a.shape} and {b.shape}")
    if len(a) != len(b):
        raise ValueError(f"the two raters rated different numbers of items: {len(a)} vs {len(b)}")
    if len(a) == 0:
        raise ValueError("no ratings: both rater arrays are empty")
    return a, b


def cohen_kappa(a, b, weights: str | None = None, labels: Sequence | None = None) -> float:
    """Cohen's κ between two raters' labels of the same items (scikit-learn's convention).

    ``weights`` None counts every disagreement as 1; ``"linear"`` as |i - j| and
    ``"quadratic"`` as (i - j)², where i, j are the positions of the two labels in ``labels``
    (default: the sorted labels either rater used). κ = 1 - Σ w·O / Σ w·E, with O the observed
    confusion counts and E the counts expected if the raters labelled independently.

    >>> cohen_kappa([1, 2, 3], [1, 2, 3]), cohen_kappa([1, 2], [2, 1])
    (1.0, -1.0)
    """
    a, b = _pair_arrays(a, b)
    cats = np.unique(np.concatenate([a, b])) if labels is None else np.asarray(list(labels))
    index = {c.item() if hasattr(c, "item") else c: i for i, c in enumerate(cats)}
    unknown = {x for x in np.concatenate([a, b]).tolist() if x not in index}
    if unknown:
        raise ValueError(f"ratings {sorted(unknown, key=str)} are not among labels {cats.tolist()}")
    K = len(cats)
    observed = np.zeros((K, K))  # (K, K) confusion counts: rater a's label x rater b's label
    np.add.at(observed, ([index[x] for x in a.tolist()], [index[x] for x in b.tolist()]), 1)
    expected = np.outer(observed.sum(1), observed.sum(0)) / observed.sum()  # (K,) x (K,) -> (K, K)
    i, j = np.indices((K, K))
    if weights is None:
        w = (i != j).astype(float)
    elif weights == "linear":
        w = np.abs(i - j).astype(float)
    elif weights == "quadratic":
        w = (i - j).astype(float) ** 2
    else:
        raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
    chance = float((w * expected).sum())
    if chance == 0:
        raise ValueError("κ is undefined: both raters used one and the same label for every item "
                         "(no disagreement is expected by chance)")
    return 1.0 - float((w * observed).sum()) / chance


def _delta2(values: np.ndarray, counts: np.ndarray, level: str) -> np.ndarray:
    """Squared distance δ²(c, k) between the sorted values (K,) on the given scale: (K, K)."""
    c, k = values[:, None], values[None, :]  # (K, 1), (1, K)
    if level == "nominal":
        return (c != k).astype(float)
    if level == "interval":
        return (c - k) ** 2
    if level == "ratio":
        total = c + k
        return np.divide((c - k) ** 2, total ** 2, out=np.zeros_like(total * 1.0), where=total != 0)
    cum = np.concatenate([[0.0], np.cumsum(counts)])  # ordinal: the mass between c and k
    lo, hi = np.minimum.outer(np.arange(len(values)), np.arange(len(values))), \
        np.maximum.outer(np.arange(len(values)), np.arange(len(values)))
    between = cum[hi + 1] - cum[lo]  # n_c + ... + n_k, inclusive
    return (between - (counts[lo] + counts[hi]) / 2) ** 2


def krippendorff_alpha(data, level: str = "nominal") -> float:
    """Krippendorff's α for data (R raters, U units), ``np.nan`` where a rater gave no rating.

    Units with fewer than two ratings cannot show (dis)agreement and are left out. From the
    coincidence matrix o_ck (pairs of values c, k given to the same unit, each unit weighted
    1 / (m_u - 1) for its m_u ratings) and n_c = Σ_k o_ck, n = Σ n_c:
    α = 1 - (n - 1) Σ o_ck δ²_ck / Σ n_c n_k δ²_ck.

    >>> krippendorff_alpha([[1, 2, 3, 3], [1, 2, 3, 3]])          # perfect agreement
    1.0
    >>> round(krippendorff_alpha([[1, 1, np.nan], [1, 2, 2]]), 4)  # third unit: one rating only
    0.0
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    x = np.asarray(data, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] == 0:
        raise ValueError(f"data must be (raters, units) with at least 2 raters and 1 unit, "
                         f"got shape {x.shape}")
    x = x[:, (~np.isnan(x)).sum(0) >= 2]  # (R, U') pairable units only
    if x.shape[1] == 0:
        raise ValueError("no unit has two or more ratings: α needs pairs of ratings of the same unit")
    values = np.unique(x[~np.isnan(x)])
    K = len(values)
    onehot = (x[..., None] == values).astype(float)  # (R, U, K): which value each rating is
    per_unit = onehot.sum(0)  # (U, K) counts of each value in each unit
    m = per_unit.sum(1)  # (U,) ratings per unit
    pairs = per_unit[:, :, None] * per_unit[:, None, :] - np.eye(K) * per_unit[:, :, None]  # (U, K, K)
    o = (pairs / (m - 1)[:, None, None]).sum(0)  # (K, K) coincidences, ordered pairs i != j
    n_c = o.sum(1)
    n = n_c.sum()
    d2 = _delta2(values, n_c, level)
    expected = float((np.outer(n_c, n_c) * d2).sum())
    if expected == 0:
        raise ValueError("α is undefined: every rating has the same value (no variation to agree on)")
    return float(1.0 - (n - 1) * float((o * d2).sum()) / expected)


def _votes(votes, systems: Sequence[str] | None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(systems, wins (S, S), games (S, S)) from (a, b) or (a, b, score_of_a) votes."""
    if isinstance(votes, (str, bytes)) or len(votes) == 0:
        raise ValueError("no votes: need at least one pairwise comparison")
    named = sorted({s for v in votes for s in v[:2]}) if systems is None else list(systems)
    index = {s: i for i, s in enumerate(named)}
    wins = np.zeros((len(named), len(named)))  # wins[i, j]: how often i beat j (ties count 1/2)
    for n, vote in enumerate(votes):
        if len(vote) not in (2, 3):
            raise ValueError(f"votes[{n}] = {vote!r}: expected (winner, loser) or (a, b, score_of_a)")
        a, b = vote[0], vote[1]
        score = 1.0 if len(vote) == 2 else float(vote[2])
        for s in (a, b):
            if s not in index:
                raise ValueError(f"votes[{n}] names unknown system {s!r}; known systems: {named}")
        if a == b or score not in (0.0, 0.5, 1.0):
            raise ValueError(f"votes[{n}] = {vote!r}: two different systems and a score of 0, 0.5 or 1")
        wins[index[a], index[b]] += score
        wins[index[b], index[a]] += 1.0 - score
    return named, wins, wins + wins.T


def _strongly_connected(wins: np.ndarray) -> bool:
    def reach(adj):
        seen, todo = {0}, [0]
        while todo:
            i = todo.pop()
            for j in np.nonzero(adj[i])[0].tolist():
                if j not in seen:
                    seen.add(j)
                    todo.append(j)
        return len(seen) == len(adj)
    return reach(wins > 0) and reach(wins.T > 0)


@dataclass(frozen=True)
class BradleyTerry:
    """Fitted Bradley–Terry strengths: ``theta[i]`` = log p_i, normalised to mean 0."""

    systems: tuple[str, ...]
    theta: np.ndarray
    iterations: int

    def __getitem__(self, system: str) -> float:
        return float(self.theta[self.systems.index(system)])

    def win_prob(self, a: str, b: str) -> float:
        """P(a beats b) = σ(θ_a - θ_b)."""
        return float(1.0 / (1.0 + np.exp(self[b] - self[a])))

    def elo_scale(self, base: float = 1000.0, scale: float = 400.0) -> dict[str, float]:
        """The strengths on Elo's scale: base + scale · θ / ln 10 (a 400-point gap is 10:1 odds)."""
        return {s: base + scale * float(t) / np.log(10)
                for s, t in zip(self.systems, self.theta, strict=True)}


def bradley_terry(votes, systems: Sequence[str] | None = None, *, prior: float = 0.0,
                  tol: float = 1e-10, max_iter: int = 100_000) -> BradleyTerry:
    """Maximum-likelihood Bradley–Terry strengths by Hunter's (2004) MM algorithm.

    Each vote is ``(winner, loser)`` or ``(a, b, score_of_a)`` with score 1, 0 or 0.5 (a tie,
    half a win each). The update p_i ← W_i / Σ_j n_ij / (p_i + p_j) (W_i wins, n_ij games)
    raises the likelihood every step. The maximum exists only if every system beat, directly
    or through others, every other: otherwise pass ``prior`` > 0, that many virtual games
    between every pair split evenly, which shrinks the strengths toward each other.
    """
    named, wins, games = _votes(votes, systems)
    if prior < 0:
        raise ValueError(f"prior must be >= 0, got {prior}")
    S = len(named)
    off = 1.0 - np.eye(S)
    wins, games = wins + prior / 2 * off, games + prior * off
    if S < 2:
        raise ValueError(f"need at least two systems, got {named}")
    if not _strongly_connected(wins):
        raise ValueError("no maximum-likelihood strengths: some group of systems never beat the rest "
                         "(or was never compared with it); pass prior > 0")
    p = np.ones(S)
    W = wins.sum(1)
    iterations, done = 0, False
    while not done and iterations < max_iter:
        new = W / (games / (p[:, None] + p[None, :])).sum(1)  # (S, S) -> (S,)
        new /= np.exp(np.log(new).mean())  # geometric mean 1: θ has mean 0
        done = np.max(np.abs(np.log(new) - np.log(p))) < tol
        p, iterations = new, iterations + 1
    return BradleyTerry(tuple(named), np.log(p), iterations)


def elo_ratings(votes, systems: Sequence[str] | None = None, *, k: float = 16.0, base: float = 1000.0,
                scale: float = 400.0, orders: int = 0, seed: int = 0) -> dict[str, float]:
    """Elo ratings after playing the votes in order: R_a += k (S_a - E_a), where
    E_a = 1 / (1 + 10^((R_b - R_a) / scale)) is a's expected score and S_a its actual one.

    Elo depends on the order of the votes; ``orders`` > 0 averages the final ratings over that
    many random orders (seeded), a common way to remove that dependence.

    >>> elo_ratings([("A", "B")])                       # equal ratings: expected score 1/2
    {'A': 1008.0, 'B': 992.0}
    """
    named, _, _ = _votes(votes, systems)
    triples = [(v[0], v[1], 1.0 if len(v) == 2 else float(v[2])) for v in votes]

    def play(sequence):
        r = dict.fromkeys(named, float(base))
        for a, b, s in sequence:
            e = 1.0 / (1.0 + 10 ** ((r[b] - r[a]) / scale))
            r[a], r[b] = r[a] + k * (s - e), r[b] - k * (s - e)
        return r

    if orders == 0:
        return play(triples)
    rng = np.random.default_rng(seed)
    runs = [play([triples[i] for i in rng.permutation(len(triples))]) for _ in range(orders)]
    return {s: float(np.mean([r[s] for r in runs])) for s in named}


@dataclass(frozen=True)
class Interval:
    """A statistic and its percentile-bootstrap confidence interval (arrays for vector statistics)."""

    estimate: np.ndarray
    low: np.ndarray
    high: np.ndarray
    level: float


def bootstrap_ci(data: Sequence, statistic: Callable, *, n_boot: int = 1000, level: float = 0.95,
                 seed: int = 0) -> Interval:
    """Percentile bootstrap: resample ``data`` (rows, with replacement) ``n_boot`` times, recompute
    ``statistic`` (a float or an array), and take the (1 - level)/2 and (1 + level)/2 quantiles.

    >>> ci = bootstrap_ci([1.0, 2.0, 3.0, 4.0], np.mean, n_boot=200)
    >>> float(ci.estimate), bool(1.0 <= ci.low < 2.5 < ci.high <= 4.0)
    (2.5, True)
    """
    if len(data) == 0:
        raise ValueError("no data to bootstrap")
    if not 0 < level < 1 or n_boot < 1:
        raise ValueError(f"need 0 < level < 1 and n_boot >= 1, got level={level}, n_boot={n_boot}")
    rows = np.arange(len(data))
    is_array = isinstance(data, np.ndarray)
    take = (lambda idx: data[idx]) if is_array else (lambda idx: [data[i] for i in idx])
    rng = np.random.default_rng(seed)
    draws = np.array([np.asarray(statistic(take(rng.choice(rows, len(rows))))) for _ in range(n_boot)])
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return Interval(np.asarray(statistic(take(rows))), lo, hi, level)
