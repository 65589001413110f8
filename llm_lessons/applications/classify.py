"""Knowledge extraction as classification (文本分类): which genre a passage of a play comes from.

Shapes use fixed letters: N passages, V vocabulary (words), K classes, B batch, T time
(characters), C channels.

Three classifiers read the same fixed-length passages (64 characters, the tiny BERT's block):

* **multinomial naive Bayes** (多项式朴素贝叶斯) from word counts, written here from the counts:
  with ``n[k, w]`` the count of word w in the training passages of class k, Laplace smoothing
  ``alpha`` and V words, ``log p(w | k) = log (n[k, w] + alpha) - log (sum_w n[k, w] + alpha V)``
  and a passage x scores ``log p(k) + sum_w x[w] log p(w | k)``;
* MiniLM sentence vectors with a logistic regression on top (the notebook, ``scikit-learn``);
* the book's tiny masked LM with a mean-pooled linear head, fine-tuned
  (:mod:`llm_lessons.applications.fine_tuning`).

Passages of one play share its speakers, plot and words, so they are not independent: a test
set of 9 plays is closer to 9 observations than to 200. :func:`cluster_bootstrap_ci` resamples
whole plays (a **cluster bootstrap**, 整群自助法) to give an interval that says so.

>>> X = np.array([[2, 0, 1], [0, 3, 0]])              # (N=2, V=3) word counts
>>> nb = MultinomialNaiveBayes(alpha=1.0).fit(X, np.array([0, 1]))
>>> np.exp(nb.feature_log_prob_).round(3).tolist()   # (2+1)/(3+3), (0+1)/6, (1+1)/6 ...
[[0.5, 0.167, 0.333], [0.167, 0.667, 0.167]]
>>> nb.predict(np.array([[1, 0, 0], [0, 1, 0]])).tolist()
[0, 1]
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from llm_lessons.evaluation.agreement import Interval
from llm_lessons.validation import check_int, check_real

#: The corpus's folders as three genres: the Roman plays are tragedies (the First Folio prints
#: them so); the problem plays and the romances mix genres and are left out.
GENRE_OF_FOLDER = {"comedies": "comedy", "histories": "history", "tragedies": "tragedy",
                   "roman": "tragedy"}
GENRES = ("comedy", "history", "tragedy")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


@dataclass(frozen=True)
class GenreSplit:
    """Plays for training and for testing, disjoint, and each play's genre."""

    train_plays: tuple[str, ...]
    test_plays: tuple[str, ...]
    genre: dict[str, str]


def genre_split(test_per_genre: int = 3, seed: int = 0) -> GenreSplit:
    """Hold out ``test_per_genre`` whole plays of each genre, preferring the plays the shipped
    models never saw (the validation plays of :func:`llm_lessons.data.train_val_split`), then
    seeded picks among the rest.

    >>> s = genre_split()
    >>> len(s.test_plays), set(s.train_plays).isdisjoint(s.test_plays), s.genre["henry-v"]
    (9, True, 'history')
    """
    from llm_lessons.data import play_genres, train_val_split

    genre = {p: GENRE_OF_FOLDER[f] for p, f in play_genres().items() if f in GENRE_OF_FOLDER}
    unseen = set(train_val_split().val_plays)
    rng = np.random.default_rng(seed)
    test = []
    for g in GENRES:
        plays = sorted(p for p in genre if genre[p] == g)
        check_int(test_per_genre, "test_per_genre", low=1, high=len(plays) - 1,
                  reason=f"each genre needs test and training plays ({len(plays)} {g} plays)")
        first = [p for p in plays if p in unseen][:test_per_genre]
        rest = [p for p in plays if p not in first]
        picks = rng.permutation(len(rest))[: test_per_genre - len(first)]
        test += first + [rest[i] for i in sorted(picks)]
    train = tuple(p for p in sorted(genre) if p not in test)
    return GenreSplit(train, tuple(sorted(test)), genre)


def speech_text(dialogue: str) -> str:
    """A play's dialogue without its speaker names (they give the genre away: ``KING HENRY``),
    lines joined by single spaces.

    >>> speech_text("HAMLET:\\nTo be, or not to be\\nthat is\\n\\nOPHELIA:\\nGood my lord,\\n")
    'To be, or not to be that is Good my lord,'
    """
    lines = []
    for block in dialogue.split("\n\n"):
        _, sep, body = block.partition(":\n")
        lines += [ln.strip() for ln in (body if sep else block).split("\n") if ln.strip()]
    return " ".join(lines)


def passages(text: str, n: int, length: int = 64) -> list[str]:
    """``n`` windows of ``length`` characters spread evenly over ``text``, each starting at a
    word (after a space). Deterministic: no random draw, so every machine reads the same ones.

    >>> passages("aa bb cc dd ee ff gg", 2, length=5)
    ['bb cc', 'cc dd']
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    n, length = check_int(n, "n", low=1), check_int(length, "length", low=1)
    span = len(text) - 2 * length
    if span < n:
        raise ValueError(f"a text of {len(text)} characters is too short for {n} passages of "
                         f"{length}")
    out = []
    for i in range(n):
        start = text.find(" ", i * span // n) + 1  # the next word: no passage starts mid-word
        out.append(text[start:start + length])
    return out


def bag_of_words(texts: Sequence[str], vocabulary: Sequence[str] | None = None):
    """Word counts (N, V), a sparse int64 ``scipy.sparse.csr_matrix`` (most of a row is 0), and
    the vocabulary (sorted words of ``texts`` when not given; words outside a given vocabulary
    are dropped). Words: lower-case letters and apostrophes.

    >>> X, vocab = bag_of_words(["To be, or not to be", "not I"])
    >>> vocab, X.toarray().tolist()
    (['be', 'i', 'not', 'or', 'to'], [[2, 0, 1, 1, 2], [0, 1, 1, 0, 0]])
    """
    from scipy.sparse import csr_matrix

    if isinstance(texts, str) or not len(texts):
        raise ValueError("texts must be a non-empty list of strings")
    words = [_WORD.findall(t.lower()) for t in texts]
    vocab = sorted({w for ws in words for w in ws}) if vocabulary is None else list(vocabulary)
    if not vocab:
        raise ValueError("an empty vocabulary: the texts hold no words")
    index = {w: j for j, w in enumerate(vocab)}
    rows = [i for i, ws in enumerate(words) for w in ws if w in index]
    cols = [index[w] for ws in words for w in ws if w in index]
    X = csr_matrix((np.ones(len(rows), dtype=np.int64), (rows, cols)),
                   shape=(len(texts), len(vocab)))  # (N, V); repeated (i, j) pairs are summed
    X.sum_duplicates()
    return X, vocab


def _counts(X, name: str = "X"):
    """X itself (a sparse matrix as CSR) if it is a non-empty (N, V) matrix of counts."""
    sparse = hasattr(X, "tocsr")
    X = X.tocsr() if sparse else np.asarray(X)
    values = X.data if sparse else X
    if X.ndim != 2 or X.shape[0] == 0 or values.dtype.kind not in "iu" or (values < 0).any():
        raise ValueError(f"{name} must be a non-empty (N, V) array of counts (integers >= 0), "
                         f"got shape {X.shape} dtype {values.dtype}")
    return X


class MultinomialNaiveBayes:
    """Multinomial naive Bayes with Laplace (add-``alpha``) smoothing, in log space.

    ``fit(X, y)`` on counts X (N, V) and labels y (N,) in 0..K-1; then ``class_log_prior_`` (K,)
    and ``feature_log_prob_`` (K, V), named as scikit-learn names them.
    """

    def __init__(self, alpha: float = 1.0):
        self.alpha = check_real(alpha, "alpha", low=0.0, low_open=True)

    def fit(self, X, y, n_classes: int | None = None) -> MultinomialNaiveBayes:
        X, y = _counts(X), np.asarray(y)
        if y.shape != (X.shape[0],) or y.dtype.kind not in "iu" or (y < 0).any():
            raise ValueError(f"y must be ({X.shape[0]},) integer labels >= 0, got shape {y.shape}")
        K = int(y.max()) + 1 if n_classes is None else check_int(n_classes, "n_classes", low=1)
        if y.max() >= K:
            raise ValueError(f"label {int(y.max())} is out of range for {K} classes")
        onehot = np.eye(K)[y]  # (N, K)
        n = np.asarray(X.T @ onehot).T  # (V, N) @ (N, K) -> (V, K) -> (K, V): counts per class
        prior = np.bincount(y, minlength=K).astype(np.float64)
        with np.errstate(divide="ignore"):  # a class with no passage has prior 0, log -inf
            self.class_log_prior_ = np.log(prior / prior.sum())
        smoothed = n + self.alpha
        self.feature_log_prob_ = np.log(smoothed) - np.log(smoothed.sum(1, keepdims=True))
        return self

    def joint_log_likelihood(self, X) -> np.ndarray:
        """log p(k) + sum_w x[w] log p(w | k): (N, V) counts -> (N, K) scores."""
        if not hasattr(self, "feature_log_prob_"):
            raise ValueError("fit the classifier before scoring")
        X = _counts(X)
        if X.shape[1] != self.feature_log_prob_.shape[1]:
            raise ValueError(f"X has {X.shape[1]} words, the classifier {self.feature_log_prob_.shape[1]}")
        jll = X @ self.feature_log_prob_.T  # (N, V) @ (V, K) -> (N, K)
        return np.asarray(jll) + self.class_log_prior_

    def predict_log_proba(self, X) -> np.ndarray:
        """log p(k | x), (N, K): the scores normalised over the classes."""
        jll = self.joint_log_likelihood(X)
        top = jll.max(1, keepdims=True)
        return jll - (top + np.log(np.exp(jll - top).sum(1, keepdims=True)))

    def predict(self, X) -> np.ndarray:
        """The highest-scoring class of each passage, (N,)."""
        return self.joint_log_likelihood(X).argmax(1)


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """(K, K) counts: row = true class, column = predicted class.

    >>> confusion_matrix([0, 0, 1, 2], [0, 1, 1, 1], 3).tolist()
    [[1, 1, 0], [0, 1, 0], [0, 1, 0]]
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    K = check_int(n_classes, "n_classes", low=1)
    if y_true.shape != y_pred.shape or y_true.ndim != 1 or not len(y_true):
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must be equal, 1-D, non-empty")
    for y in (y_true, y_pred):
        if y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= K:
            raise ValueError(f"labels must be integers in 0..{K - 1}")
    m = np.zeros((K, K), dtype=np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def macro_f1(confusion) -> float:
    """Mean over classes of F1 = 2PR / (P + R), a class without predictions or examples
    scoring 0: every genre counts the same, however many passages it has.

    >>> round(macro_f1([[1, 1, 0], [0, 1, 0], [0, 1, 0]]), 4)       # F1s 2/3, 1/2, 0
    0.3889
    """
    m = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(m)
    denom = m.sum(0) + m.sum(1)  # predicted + true: 2PR/(P+R) = 2 tp / (predicted + true)
    return float(np.mean(np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)))


def cluster_bootstrap_ci(correct, groups, *, n_boot: int = 2000, level: float = 0.95,
                         seed: int = 0) -> Interval:
    """Accuracy and its percentile-bootstrap interval, resampling whole groups (plays).

    Each draw takes as many groups as there are, with replacement, and pools their passages:
    accuracy = (correct passages of the drawn groups) / (passages of the drawn groups), a group
    drawn twice counting twice.

    >>> ci = cluster_bootstrap_ci([1, 1, 0, 0, 1, 0], ["a", "a", "b", "b", "c", "c"], n_boot=200)
    >>> float(ci.estimate), bool(0.0 <= ci.low <= 0.5 <= ci.high <= 1.0)
    (0.5, True)
    """
    correct, groups = np.asarray(correct, dtype=np.float64), np.asarray(groups)
    if correct.ndim != 1 or groups.shape != correct.shape or not len(correct):
        raise ValueError(f"correct {correct.shape} and groups {groups.shape} must be equal, 1-D, "
                         "non-empty")
    n_boot = check_int(n_boot, "n_boot", low=1)
    level = check_real(level, "level", low=0.0, high=1.0, low_open=True, high_open=True)
    _, which = np.unique(groups, return_inverse=True)
    hits = np.bincount(which, weights=correct)  # (G,) correct passages per group
    sizes = np.bincount(which).astype(np.float64)  # (G,) passages per group
    draws = np.random.default_rng(seed).integers(len(hits), size=(n_boot, len(hits)))
    accuracies = hits[draws].sum(1) / sizes[draws].sum(1)  # (n_boot,)
    low, high = np.quantile(accuracies, [(1 - level) / 2, (1 + level) / 2])
    return Interval(np.asarray(correct.mean()), low, high, level)
