"""κ against scikit-learn, α against the krippendorff package, Bradley–Terry against logistic
regression and simulated truth, Elo by hand, bootstrap coverage by simulation."""

import krippendorff
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import cohen_kappa_score

from llm_lessons.evaluation.agreement import (
    bootstrap_ci,
    bradley_terry,
    cohen_kappa,
    elo_ratings,
    krippendorff_alpha,
)


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_kappa_matches_sklearn(weights):
    rng = np.random.default_rng(0)
    for _ in range(100):
        a = rng.integers(1, 6, 40)
        b = np.clip(a + rng.integers(-2, 3, 40), 1, 5)
        expected = cohen_kappa_score(a, b, weights=weights)
        assert cohen_kappa(a, b, weights) == pytest.approx(expected, abs=1e-12)
    labels = [0, 1, 2, 3, 4, 5]  # explicit labels, some never used: their positions set the weights
    a, b = rng.integers(1, 4, 30), rng.integers(1, 4, 30)
    assert cohen_kappa(a, b, weights, labels) == pytest.approx(
        cohen_kappa_score(a, b, weights=weights, labels=labels), abs=1e-12)


def test_kappa_hand_worked():
    # 10 items: both say yes 4, both no 3, a yes/b no 2, a no/b yes 1 -> p_o = .7
    a = ["y"] * 6 + ["n"] * 4
    b = ["y"] * 4 + ["n"] * 2 + ["n"] * 3 + ["y"]
    p_e = 0.6 * 0.5 + 0.4 * 0.5
    assert cohen_kappa(a, b) == pytest.approx((0.7 - p_e) / (1 - p_e))
    # quadratic weights: a 1-vs-3 disagreement costs 4x a 1-vs-2 one
    assert cohen_kappa([1, 2, 3], [1, 2, 2], "quadratic") > cohen_kappa([1, 2, 3], [1, 2, 1], "quadratic")


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_alpha_matches_krippendorff_with_missing_values(level):
    rng = np.random.default_rng(1)
    for _ in range(40):
        truth = rng.integers(1, 6, 30)
        data = np.clip(truth + rng.integers(-1, 2, (4, 30)), 1, 5).astype(float)
        data[rng.random(data.shape) < 0.25] = np.nan
        expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
        assert krippendorff_alpha(data, level) == pytest.approx(expected, abs=1e-10)


def test_alpha_two_raters_nominal_is_close_to_kappa():
    """With two raters and no missing values α and κ differ only by a small-sample factor."""
    rng = np.random.default_rng(2)
    a = rng.integers(0, 3, 2000)
    b = np.where(rng.random(2000) < 0.7, a, rng.integers(0, 3, 2000))
    assert krippendorff_alpha([a, b]) == pytest.approx(cohen_kappa(a, b), abs=2e-3)


def _design(votes, systems):
    """Bradley–Terry as logistic regression: x = e_a - e_b, y = 1 if a won (ties: half weight each)."""
    X, y, w = [], [], []
    for a, b, s in votes:
        x = np.zeros(len(systems))
        x[systems.index(a)], x[systems.index(b)] = 1.0, -1.0
        for label, weight in ((1, s), (0, 1 - s)):
            if weight:
                X.append(x), y.append(label), w.append(weight)
                X.append(-x), y.append(1 - label), w.append(weight)  # symmetric: no intercept needed
    return np.array(X), np.array(y), np.array(w)


def test_bradley_terry_equals_logistic_regression_mle():
    rng = np.random.default_rng(3)
    systems = ["A", "B", "C", "D"]
    theta = np.array([0.8, 0.2, -0.3, -0.7])
    votes = []
    for _ in range(600):
        i, j = rng.choice(4, 2, replace=False)
        p = 1 / (1 + np.exp(theta[j] - theta[i]))
        votes.append((systems[i], systems[j], 0.5 if rng.random() < 0.1 else float(rng.random() < p)))
    bt = bradley_terry(votes)
    X, y, w = _design(votes, systems)
    lr = LogisticRegression(C=np.inf, fit_intercept=False, tol=1e-12, max_iter=10_000)
    lr.fit(X, y, sample_weight=w)
    coef = lr.coef_[0] - lr.coef_[0].mean()  # same normalisation: mean 0
    np.testing.assert_allclose(bt.theta, coef, atol=1e-5)
    assert bt.theta.mean() == pytest.approx(0, abs=1e-12)


def test_bradley_terry_recovers_simulated_strengths():
    rng = np.random.default_rng(4)
    theta = np.array([1.0, 0.5, 0.0, -0.5, -1.0])
    names = [f"s{i}" for i in range(5)]
    votes = []
    for _ in range(5000):
        i, j = rng.choice(5, 2, replace=False)
        win = rng.random() < 1 / (1 + np.exp(theta[j] - theta[i]))
        votes.append((names[i], names[j]) if win else (names[j], names[i]))
    bt = bradley_terry(votes)
    np.testing.assert_allclose(bt.theta, theta, atol=0.1)
    assert bt.win_prob("s0", "s4") == pytest.approx(1 / (1 + np.exp(-2.0)), abs=0.03)
    elo = bt.elo_scale()
    assert elo["s0"] - elo["s4"] == pytest.approx(400 * (bt["s0"] - bt["s4"]) / np.log(10))


def test_bootstrap_interval_covers_the_truth_at_its_level():
    rng = np.random.default_rng(5)
    hits = 0
    for rep in range(200):
        x = rng.normal(2.0, 1.0, 40)
        ci = bootstrap_ci(x, np.mean, n_boot=300, seed=rep)
        hits += ci.low <= 2.0 <= ci.high
    assert 0.88 <= hits / 200 <= 0.99  # nominal 0.95; the percentile bootstrap runs slightly narrow


def test_bootstrap_is_seeded_and_handles_vector_statistics():
    votes = ([("A", "B")] * 30 + [("B", "A")] * 20 + [("B", "C")] * 25 + [("C", "B")] * 15
             + [("C", "A")] * 10 + [("A", "C")] * 20)

    def stat(v):
        return bradley_terry(v, ["A", "B", "C"], tol=1e-8).theta

    first = bootstrap_ci(votes, stat, n_boot=100, seed=7)
    again = bootstrap_ci(votes, stat, n_boot=100, seed=7)
    np.testing.assert_array_equal(first.low, again.low)
    assert first.estimate.shape == first.low.shape == (3,)
    assert np.all(first.low <= first.estimate) and np.all(first.estimate <= first.high)


def test_bootstrap_bradley_terry_covers_simulated_strengths():
    rng = np.random.default_rng(6)
    theta = np.array([0.6, 0.1, -0.7])
    names = ["A", "B", "C"]
    covered = total = 0
    for rep in range(20):
        votes = []
        for _ in range(300):
            i, j = rng.choice(3, 2, replace=False)
            win = rng.random() < 1 / (1 + np.exp(theta[j] - theta[i]))
            votes.append((names[i], names[j]) if win else (names[j], names[i]))
        ci = bootstrap_ci(votes, lambda v: bradley_terry(v, names, tol=1e-8).theta, n_boot=100, seed=rep)
        covered += int(np.sum((ci.low <= theta) & (theta <= ci.high)))
        total += 3
    assert covered / total >= 0.85


def test_elo_by_hand_and_order_dependence():
    # A (1000) beats B (1000): +8 with k=16. Then B beats A: expected score of B is
    # 1 / (1 + 10^(16/400)) = 0.4770, so B gains 16 * 0.5230 = 8.37.
    r = elo_ratings([("A", "B"), ("B", "A")])
    e_b = 1 / (1 + 10 ** (16 / 400))
    assert r["B"] == pytest.approx(992 + 16 * (1 - e_b))
    assert sum(r.values()) == pytest.approx(2000)  # every update moves points from one to the other
    r2 = elo_ratings([("B", "A"), ("A", "B")])
    assert r2["A"] != pytest.approx(r["A"])  # the same votes in another order: other ratings
    averaged = elo_ratings([("A", "B"), ("B", "A")], orders=50, seed=0)
    assert sum(averaged.values()) == pytest.approx(2000)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="different numbers of items"):
        cohen_kappa([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="empty"):
        cohen_kappa([], [])
    with pytest.raises(ValueError, match="weights"):
        cohen_kappa([1, 2], [1, 2], weights="cubic")
    with pytest.raises(ValueError, match="undefined"):
        cohen_kappa([1, 1], [1, 1])
    with pytest.raises(ValueError, match="not among labels"):
        cohen_kappa([1, 2], [1, 3], labels=[1, 2])
    with pytest.raises(ValueError, match="at least 2 raters"):
        krippendorff_alpha([[1, 2, 3]])
    with pytest.raises(ValueError, match="two or more ratings"):
        krippendorff_alpha([[1, np.nan], [np.nan, 2]])
    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha([[1, 2], [1, 2]], "cardinal")
    with pytest.raises(ValueError, match="unknown system 'Z'"):
        bradley_terry([("A", "B"), ("Z", "A")], systems=["A", "B"])
    with pytest.raises(ValueError, match="no votes"):
        bradley_terry([])
    with pytest.raises(ValueError, match="prior > 0"):
        bradley_terry([("A", "B"), ("A", "B")])  # B never wins: its MLE strength is -infinity
    assert bradley_terry([("A", "B"), ("A", "B")], prior=1.0).win_prob("A", "B") == pytest.approx(2.5 / 3)
    with pytest.raises(ValueError, match="score of 0, 0.5 or 1"):
        bradley_terry([("A", "B", 0.7)])
    with pytest.raises(ValueError, match="no data"):
        bootstrap_ci([], np.mean)
