"""Checkers for chapter 6.4's exercises: naive Bayes log-scores with Laplace smoothing, the
accuracies of a cluster bootstrap, and the macro-averaged F1.

All three fail quietly when wrong: scores without smoothing still rank most passages, a
bootstrap that resamples passages still gives an interval (a narrower one), and the accuracy
passed off as a macro F1 is still a number between 0 and 1. The answers come from references
written here, not from :mod:`llm_lessons.applications.classify` or scikit-learn (both
forbidden where they hold the answer).

>>> def macro(y_true, y_pred, n_classes):
...     f1 = []
...     for k in range(n_classes):
...         tp = ((y_pred == k) & (y_true == k)).sum().item()
...         both = (y_pred == k).sum().item() + (y_true == k).sum().item()
...         f1.append(2 * tp / both if both else 0.0)
...     return sum(f1) / n_classes
>>> check_macro_f1(macro)
'check_macro_f1: all 8 cases passed'
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from llm_lessons.exercises.checking import Case, Mistake, available, random_int, run_check

# --- naive Bayes log-scores ---


def _nb_scores(X, y, x, alpha, smoothing="laplace", prior="passages", counts="counts"):
    """(K,) float64 log p(k) + sum_w x[w] log p(w | k); the flags give the usual wrong versions."""
    X, x = X.double(), x.double()
    K, V = int(y.max()) + 1, X.shape[1]
    n = torch.stack([X[y == k].sum(0) for k in range(K)])  # (K, V) word counts per class
    if smoothing == "laplace":
        p = (n + alpha) / (n.sum(1, keepdim=True) + alpha * V)
    elif smoothing == "alpha once":  # the denominator smoothed by alpha, not alpha * V
        p = (n + alpha) / (n.sum(1, keepdim=True) + alpha)
    else:  # none
        p = n / n.sum(1, keepdim=True)
    if prior == "passages":
        log_prior = torch.log(torch.bincount(y, minlength=K).double() / len(y))
    elif prior == "words":  # share of the training words instead of the passages
        log_prior = torch.log(n.sum(1) / n.sum())
    else:
        log_prior = torch.zeros(K, dtype=torch.float64)
    x = (x > 0).double() if counts == "presence" else x
    logp = torch.log(p)  # (K, V), -inf where a count is 0 without smoothing
    # (K, V) @ (V,) -> (K,); unsmoothed, 0 * -inf makes a NaN, read as the -inf it stands for
    return (log_prior + logp @ x).nan_to_num(nan=-math.inf, neginf=-math.inf)


def check_nb_scores(fn: Callable, n_cases: int = 8, seed: int = 0) -> str:
    """``fn(X, y, x, alpha)``: ``X`` (N, V) int64 word counts of N training passages, ``y`` (N,)
    their classes 0 .. K-1 (every class present), ``x`` (V,) the counts of a new passage and
    ``alpha`` > 0. Return the (K,) float64 scores ``log p(k) + sum_w x[w] log p(w | k)``, with
    ``p(k)`` the share of training *passages* in class k and
    ``p(w | k) = (n[k, w] + alpha) / (sum_w n[k, w] + alpha * V)``."""
    g = torch.Generator().manual_seed(seed)
    X_hand = torch.tensor([[2, 1, 0], [0, 0, 1], [1, 0, 0]])
    y_hand = torch.tensor([0, 1, 0])
    x_hand = torch.tensor([1, 0, 2])
    cases = [Case((X_hand, y_hand, x_hand, 1.0), _nb_scores(X_hand, y_hand, x_hand, 1.0),
                  "X = [[2, 1, 0], [0, 0, 1], [1, 0, 0]], y = [0, 1, 0], x = [1, 0, 2], alpha 1 "
                  "(class 0 never saw word 2)")]
    while len(cases) < n_cases:
        N, V, K = random_int(g, 4, 12), random_int(g, 3, 9), random_int(g, 2, 5)
        y = torch.cat([torch.arange(K), torch.randint(K, (N,), generator=g)])  # every class
        X = torch.poisson(torch.full((len(y), V), 0.6), generator=g).long()
        x = torch.poisson(torch.full((V,), 1.2), generator=g).long()
        alpha = (1.0, 0.5, 2.0)[len(cases) % 3]
        cases.append(Case((X, y, x, alpha), _nb_scores(X, y, x, alpha),
                          f"random counts, {len(y)} passages, V = {V}, K = {K}, alpha {alpha}"))
    mistakes = [
        Mistake("no smoothing", lambda X, y, x, a: _nb_scores(X, y, x, a, smoothing="none"),
                "you did not smooth: a word a class never saw gets probability 0 and log -inf; "
                "add alpha to every count, n[k, w] + alpha"),
        Mistake("alpha once", lambda X, y, x, a: _nb_scores(X, y, x, a, smoothing="alpha once"),
                "your denominator adds alpha once; alpha was added to each of the V words, so "
                "the total grows by alpha * V (else p(w | k) does not sum to 1 over the words)"),
        Mistake("no prior", lambda X, y, x, a: _nb_scores(X, y, x, a, prior="none"),
                "you left out the prior: add log p(k), the log of the share of training passages "
                "in class k"),
        Mistake("word prior", lambda X, y, x, a: _nb_scores(X, y, x, a, prior="words"),
                "your prior is the share of training *words* in each class; p(k) counts passages "
                "(a class of long passages is not more likely for it)"),
        Mistake("presence", lambda X, y, x, a: _nb_scores(X, y, x, a, counts="presence"),
                "you counted each word of x once; the multinomial model multiplies p(w | k) once "
                "per occurrence: weight log p(w | k) by the count x[w]"),
    ]
    forbidden = available(("llm_lessons.applications.classify.MultinomialNaiveBayes.fit",
                           "llm_lessons.applications.classify.MultinomialNaiveBayes.joint_log_likelihood",
                           "sklearn.naive_bayes.MultinomialNB.fit"))

    def answer(X, y, x, alpha):  # NaN (0 * log 0 in a matrix product) reads as the -inf it came from
        return torch.as_tensor(fn(X, y, x, alpha)).double().nan_to_num(nan=-math.inf, neginf=-math.inf)

    return run_check("check_nb_scores", answer, cases, mistakes, forbidden=forbidden,
                     atol=1e-9, rtol=1e-9, student=fn)


# --- the accuracies of a cluster bootstrap ---


def _cluster_accuracies(correct, groups, draws, how="pool"):
    """(B,) float64 accuracy of each resample of whole plays; flags: the wrong versions."""
    c = correct.double()
    if how == "passages":  # the draws read as passage indices
        return c[draws].mean(1)
    G = draws.shape[1]
    hits = torch.stack([c[groups == p].sum() for p in range(G)])  # (G,)
    sizes = torch.stack([(groups == p).sum() for p in range(G)]).double()  # (G,)
    if how == "pool":
        return hits[draws].sum(1) / sizes[draws].sum(1)
    if how == "unique":  # a play drawn twice counted once
        chosen = torch.stack([torch.isin(torch.arange(G), row) for row in draws]).double()  # (B, G)
        return (chosen @ hits) / (chosen @ sizes)
    return (hits / sizes)[draws].mean(1)  # the mean of the drawn plays' accuracies


def check_cluster_accuracies(fn: Callable, n_cases: int = 7, seed: int = 1) -> str:
    """``fn(correct, groups, draws)``: ``correct`` (N,) bool, whether each test passage was
    classified right; ``groups`` (N,) int64, its play 0 .. G-1; ``draws`` (B, G) int64, B
    resamples of G plays drawn with replacement. Return the (B,) float64 accuracy of each
    resample: the correct passages of its plays over all their passages, a play drawn twice
    counting twice."""
    g = torch.Generator().manual_seed(seed)
    correct = torch.tensor([True, True, True, False, False, True, False, False, False, False])
    groups = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    draws = torch.tensor([[0, 0, 1], [2, 1, 1], [0, 1, 2]])
    cases = [Case((correct, groups, draws), _cluster_accuracies(correct, groups, draws),
                  "plays of 4, 2 and 4 passages, draws [[0, 0, 1], [2, 1, 1], [0, 1, 2]]")]
    while len(cases) < n_cases:
        G, B = random_int(g, 3, 8), random_int(g, 2, 7)
        sizes = torch.randint(2, 9, (G,), generator=g)
        groups = torch.repeat_interleave(torch.arange(G), sizes)
        rates = torch.rand(G, generator=g)[groups]  # each play its own accuracy
        correct = torch.rand(len(groups), generator=g) < rates
        draws = torch.randint(G, (B, G), generator=g)
        cases.append(Case((correct, groups, draws), _cluster_accuracies(correct, groups, draws),
                          f"{G} plays of {sizes.tolist()} passages, {B} draws"))
    mistakes = [
        Mistake("passages", lambda c, gr, d: _cluster_accuracies(c, gr, d, how="passages"),
                "you used the draws as passage indices; they are plays: take every passage of "
                "each drawn play (resampling single passages is the bootstrap that is too narrow)"),
        Mistake("unique", lambda c, gr, d: _cluster_accuracies(c, gr, d, how="unique"),
                "a play drawn twice must count twice (sampling with replacement); you counted "
                "each drawn play once, as torch.isin or a set does"),
        Mistake("mean of plays", lambda c, gr, d: _cluster_accuracies(c, gr, d, how="mean"),
                "you averaged the plays' accuracies; pool their passages instead (correct "
                "passages over all passages), so a long play weighs more than a short one"),
    ]
    forbidden = available(("llm_lessons.applications.classify.cluster_bootstrap_ci",))

    def answer(correct, groups, draws):
        return torch.as_tensor(fn(correct, groups, draws)).double()

    return run_check("check_cluster_accuracies", answer, cases, mistakes, forbidden=forbidden,
                     atol=1e-9, rtol=1e-9, student=fn)


# --- macro-averaged F1 ---


def _macro_f1(y_true, y_pred, K, how="macro"):
    """The macro F1 (a class without examples or predictions scores 0); flags: wrong versions."""
    tp = torch.tensor([((y_pred == k) & (y_true == k)).sum().item() for k in range(K)], dtype=torch.float64)
    pred = torch.tensor([(y_pred == k).sum().item() for k in range(K)], dtype=torch.float64)
    true = torch.tensor([(y_true == k).sum().item() for k in range(K)], dtype=torch.float64)
    if how == "micro":
        return float(tp.sum() / len(y_true))
    safe = lambda a, b: torch.where(b > 0, a / b.clamp(min=1), torch.zeros_like(a))  # noqa: E731
    p, r = safe(tp, pred), safe(tp, true)
    if how == "f1 of means":
        P, R = p.mean(), r.mean()
        return float(2 * P * R / (P + R)) if P + R > 0 else 0.0
    f1 = safe(2 * tp, pred + true)
    if how == "weighted":
        return float((f1 * true).sum() / true.sum())
    if how == "present":
        return float(f1[true > 0].mean())
    return float(f1.mean())


def check_macro_f1(fn: Callable, n_cases: int = 8, seed: int = 2) -> str:
    """``fn(y_true, y_pred, n_classes)``: two (N,) int64 tensors of classes 0 .. n_classes-1.
    Return the macro F1 as a float: the mean over all ``n_classes`` classes of
    F1 = 2PR / (P + R) (precision P, recall R of that class), a class with no true and no
    predicted passage, or with no correct one, scoring 0."""
    g = torch.Generator().manual_seed(seed)
    y_hand, p_hand = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2]), torch.tensor([0, 0, 0, 1, 1, 0, 1, 1])
    cases = [Case((y_hand, p_hand, 3), _macro_f1(y_hand, p_hand, 3),
                  "y_true = [0, 0, 0, 0, 1, 1, 2, 2], y_pred = [0, 0, 0, 1, 1, 0, 1, 1], 3 classes "
                  "(class 2 is never predicted)"),
             Case((y_hand[:6], p_hand[:6], 4), _macro_f1(y_hand[:6], p_hand[:6], 4),
                  "4 classes, of which 2 and 3 occur nowhere")]
    while len(cases) < n_cases:
        K, N = random_int(g, 2, 6), random_int(g, 8, 40)
        weights = torch.rand(K, generator=g) + 0.2 * torch.arange(K)  # unbalanced classes
        y_true = torch.multinomial(weights, N, replacement=True, generator=g)
        noise = torch.randint(K, (N,), generator=g)
        y_pred = torch.where(torch.rand(N, generator=g) < 0.6, y_true, noise)
        cases.append(Case((y_true, y_pred, K), _macro_f1(y_true, y_pred, K),
                          f"{N} random labels of {K} unbalanced classes"))
    mistakes = [
        Mistake("micro", lambda y, p, K: _macro_f1(y, p, K, how="micro"),
                "that is the micro F1, the accuracy: with one label per passage it pools every "
                "class. Macro computes F1 for each class and averages them, each class weighing "
                "the same"),
        Mistake("weighted", lambda y, p, K: _macro_f1(y, p, K, how="weighted"),
                "you weighted the classes' F1 by their number of true passages (scikit-learn's "
                "'weighted'); macro gives every class the same weight, 1 / n_classes"),
        Mistake("f1 of means", lambda y, p, K: _macro_f1(y, p, K, how="f1 of means"),
                "you took the F1 of the mean precision and the mean recall; compute F1 for each "
                "class first, then average the F1s"),
        Mistake("present", lambda y, p, K: _macro_f1(y, p, K, how="present"),
                "you averaged only over the classes that occur in y_true; average over all "
                "n_classes, an absent class scoring 0"),
    ]
    forbidden = available(("llm_lessons.applications.classify.macro_f1", "sklearn.metrics.f1_score",
                           "sklearn.metrics.precision_recall_fscore_support"))
    return run_check("check_macro_f1", fn, cases, mistakes, forbidden=forbidden, atol=1e-9,
                     rtol=1e-9)
