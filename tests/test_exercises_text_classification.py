"""Chapter 6.4's checkers (naive Bayes log-scores, cluster-bootstrap accuracies, macro F1): an
independent solution passes, a stub is "not implemented yet", each plausible wrong answer fails
with words that name its mistake, and the functions that are the answer cannot be used to pass."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics
import torch
from checker_contract import contract
from sklearn.naive_bayes import MultinomialNB

from llm_lessons.applications import classify
from llm_lessons.applications.classify import macro_f1 as imported_macro_f1
from llm_lessons.exercises.checking import ExerciseFailed
from llm_lessons.exercises.text_classification import (
    check_cluster_accuracies,
    check_macro_f1,
    check_nb_scores,
)

# --- naive Bayes log-scores ---


def my_nb_scores(X, y, x, alpha):
    K, V = int(y.max()) + 1, X.shape[1]
    onehot = torch.nn.functional.one_hot(y, K).double()  # (N, K)
    n = onehot.T @ X.double()  # (K, V)
    log_p = torch.log(n + alpha) - torch.log(n.sum(1, keepdim=True) + alpha * V)
    log_prior = torch.log(onehot.mean(0))
    return log_prior + log_p @ x.double()


def nb_unsmoothed(X, y, x, alpha):
    K = int(y.max()) + 1
    onehot = torch.nn.functional.one_hot(y, K).double()
    n = onehot.T @ X.double()
    log_p = torch.log(n / n.sum(1, keepdim=True))  # log 0 = -inf for an unseen word
    return torch.log(onehot.mean(0)) + log_p @ x.double()  # 0 * -inf: NaN


def nb_alpha_once(X, y, x, alpha):
    K = int(y.max()) + 1
    onehot = torch.nn.functional.one_hot(y, K).double()
    n = onehot.T @ X.double()
    log_p = torch.log(n + alpha) - torch.log(n.sum(1, keepdim=True) + alpha)
    return torch.log(onehot.mean(0)) + log_p @ x.double()


def nb_without_prior(X, y, x, alpha):
    K = int(y.max()) + 1
    return my_nb_scores(X, y, x, alpha) - torch.log(torch.bincount(y, minlength=K).double() / len(y))


def nb_presence(X, y, x, alpha):
    return my_nb_scores(X, y, (x > 0).long(), alpha)


def nb_by_package(X, y, x, alpha):
    nb = classify.MultinomialNaiveBayes(alpha).fit(X.numpy(), y.numpy())
    return torch.tensor(nb.joint_log_likelihood(x.numpy()[None])[0])


def nb_by_sklearn(X, y, x, alpha):
    nb = MultinomialNB(alpha=alpha).fit(X.numpy(), y.numpy())
    return torch.tensor(nb.predict_joint_log_proba(x.numpy()[None])[0])


# --- cluster-bootstrap accuracies ---


def my_cluster_accuracies(correct, groups, draws):
    G = draws.shape[1]
    hits = torch.zeros(G, dtype=torch.float64).index_add_(0, groups, correct.double())
    sizes = torch.bincount(groups, minlength=G).double()
    return hits[draws].sum(1) / sizes[draws].sum(1)


def resample_passages(correct, groups, draws):
    return correct.double()[draws].mean(1)


def each_play_once(correct, groups, draws):
    out = []
    for row in draws:
        keep = torch.isin(groups, row)
        out.append(correct[keep].double().mean())
    return torch.stack(out)


def mean_of_play_accuracies(correct, groups, draws):
    G = draws.shape[1]
    acc = torch.stack([correct[groups == p].double().mean() for p in range(G)])
    return acc[draws].mean(1)


def by_package(correct, groups, draws):
    ci = classify.cluster_bootstrap_ci(correct.numpy(), groups.numpy(), n_boot=len(draws))
    return torch.full((len(draws),), float(ci.estimate))


# --- macro F1 ---


def my_macro_f1(y_true, y_pred, n_classes):
    scores = []
    for k in range(n_classes):
        tp = int(((y_true == k) & (y_pred == k)).sum())
        total = int((y_true == k).sum()) + int((y_pred == k).sum())
        scores.append(2 * tp / total if total else 0.0)
    return sum(scores) / n_classes


def micro_f1(y_true, y_pred, n_classes):
    return float((y_true == y_pred).double().mean())


def weighted_f1(y_true, y_pred, n_classes):
    return float(sklearn_free_weighted(y_true, y_pred, n_classes))


def sklearn_free_weighted(y_true, y_pred, n_classes):
    total = 0.0
    for k in range(n_classes):
        tp = int(((y_true == k) & (y_pred == k)).sum())
        both = int((y_true == k).sum()) + int((y_pred == k).sum())
        total += (2 * tp / both if both else 0.0) * int((y_true == k).sum())
    return total / len(y_true)


def f1_of_mean_precision_and_recall(y_true, y_pred, n_classes):
    ps, rs = [], []
    for k in range(n_classes):
        tp = int(((y_true == k) & (y_pred == k)).sum())
        pred, true = int((y_pred == k).sum()), int((y_true == k).sum())
        ps.append(tp / pred if pred else 0.0)
        rs.append(tp / true if true else 0.0)
    P, R = np.mean(ps), np.mean(rs)
    return 2 * P * R / (P + R) if P + R else 0.0


def present_classes_only(y_true, y_pred, n_classes):
    present = sorted(set(y_true.tolist()))
    return my_macro_f1(y_true, y_pred, n_classes) * n_classes / len(present)


def f1_by_sklearn(y_true, y_pred, n_classes):
    return sklearn.metrics.f1_score(y_true, y_pred, average="macro", labels=range(n_classes),
                                    zero_division=0)


def f1_by_package(y_true, y_pred, n_classes):
    return classify.macro_f1(classify.confusion_matrix(y_true.numpy(), y_pred.numpy(), n_classes))


# checker -> (a correct solution written here, [(a wrong answer, words its failure must say)])
CASES = {
    check_nb_scores: (my_nb_scores, [
        (nb_unsmoothed, "you did not smooth"),
        (nb_alpha_once, "alpha * V"),
        (nb_without_prior, "left out the prior"),
        (nb_presence, "once per occurrence"),
        (nb_by_package, "without calling llm_lessons.applications.classify.MultinomialNaiveBayes.fit"),
        (nb_by_sklearn, "without calling sklearn.naive_bayes.MultinomialNB.fit"),
    ]),
    check_cluster_accuracies: (my_cluster_accuracies, [
        (resample_passages, "draws as passage indices"),
        (each_play_once, "must count twice"),
        (mean_of_play_accuracies, "averaged the plays' accuracies"),
        (by_package, "without calling llm_lessons.applications.classify.cluster_bootstrap_ci"),
    ]),
    check_macro_f1: (my_macro_f1, [
        (micro_f1, "micro F1"),
        (weighted_f1, "weighted the classes"),
        (f1_of_mean_precision_and_recall, "F1 of the mean precision"),
        (present_classes_only, "only over the classes that occur"),
        (f1_by_sklearn, "without calling sklearn.metrics.f1_score"),
        (f1_by_package, "without calling llm_lessons.applications.classify.macro_f1"),
    ]),
}
(test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
 test_each_wrong_answer_is_named) = contract(CASES)


def test_the_references_match_the_package_and_sklearn():
    g = torch.Generator().manual_seed(0)
    X = torch.poisson(torch.full((30, 12), 0.8), generator=g).long()
    y = torch.randint(3, (30,), generator=g)
    x = torch.poisson(torch.full((12,), 1.0), generator=g).long()
    ours = my_nb_scores(X, y, x, 0.5)
    theirs = classify.MultinomialNaiveBayes(0.5).fit(X.numpy(), y.numpy()).joint_log_likelihood(
        x.numpy()[None])[0]
    np.testing.assert_allclose(ours.numpy(), theirs, atol=1e-9)
    y_pred = torch.randint(3, (30,), generator=g)
    assert my_macro_f1(y, y_pred, 4) == pytest.approx(
        sklearn.metrics.f1_score(y, y_pred, average="macro", labels=range(4), zero_division=0))
    groups = torch.arange(30) % 5
    draws = torch.randint(5, (400, 5), generator=torch.Generator().manual_seed(3))
    accs = my_cluster_accuracies(y == y_pred, groups, draws).numpy()
    ci = classify.cluster_bootstrap_ci((y == y_pred).numpy(), groups.numpy(), n_boot=400)
    assert abs(np.quantile(accs, 0.025) - ci.low) < 0.1 and abs(np.quantile(accs, 0.975) - ci.high) < 0.1


def cheat_with_an_imported_macro_f1(y_true, y_pred, n_classes):
    return imported_macro_f1(classify.confusion_matrix(y_true.numpy(), y_pred.numpy(), n_classes))


def test_a_forbidden_function_held_under_a_global_name_is_caught():
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.applications.classify.macro_f1"):
        check_macro_f1(cheat_with_an_imported_macro_f1)
