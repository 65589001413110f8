"""Classification of 6.4: naive Bayes from counts against scikit-learn's MultinomialNB, the
bag of words against CountVectorizer, the confusion matrix and macro F1 against sklearn.metrics,
the cluster bootstrap against a loop written here, the split and the passages by their
invariants, the BERT classifier's head and fine-tuning on a task it must learn, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.metrics import confusion_matrix as sk_confusion
from sklearn.metrics import f1_score
from sklearn.naive_bayes import MultinomialNB

from llm_lessons.applications.classify import (
    GENRES,
    MultinomialNaiveBayes,
    bag_of_words,
    cluster_bootstrap_ci,
    confusion_matrix,
    genre_split,
    macro_f1,
    passages,
    speech_text,
)
from llm_lessons.applications.fine_tuning import BertClassifier, FineTuneConfig, fine_tune, predict
from llm_lessons.bert import BertConfig, MaskedLM
from llm_lessons.data import load_plays, play_genres, train_val_split

TEXTS = ["To be, or not to be, that is the question", "My lord, the king is dead",
         "Good my lord, how does your honour", "If music be the food of love, play on",
         "Now is the winter of our discontent", "O Romeo, Romeo, wherefore art thou Romeo?",
         "I'll ne'er believe a madman's tongue", "The king's a bawcock and a heart of gold"]
LABELS = np.array([2, 1, 2, 0, 1, 2, 0, 1])


@pytest.mark.parametrize("alpha", [1.0, 0.3, 2.5])
def test_naive_bayes_equals_sklearn_on_random_counts(alpha):
    rng = np.random.default_rng(0)
    X = rng.poisson(0.7, size=(60, 25))  # (N, V), many zeros
    y = rng.integers(0, 4, size=60)
    X_test = rng.poisson(0.7, size=(30, 25))
    ours = MultinomialNaiveBayes(alpha).fit(X, y)
    theirs = MultinomialNB(alpha=alpha, force_alpha=True).fit(X, y)
    np.testing.assert_allclose(ours.class_log_prior_, theirs.class_log_prior_, atol=1e-12)
    np.testing.assert_allclose(ours.feature_log_prob_, theirs.feature_log_prob_, atol=1e-12)
    np.testing.assert_allclose(ours.joint_log_likelihood(X_test),
                               theirs.predict_joint_log_proba(X_test), atol=1e-9)
    np.testing.assert_allclose(ours.predict_log_proba(X_test), theirs.predict_log_proba(X_test),
                               atol=1e-9)
    assert np.array_equal(ours.predict(X_test), theirs.predict(X_test))


def test_naive_bayes_equals_sklearn_on_sparse_word_counts():
    X, vocab = bag_of_words(TEXTS[:6])
    X_test, _ = bag_of_words(TEXTS[6:], vocab)
    ours = MultinomialNaiveBayes().fit(X, LABELS[:6])
    theirs = MultinomialNB(alpha=1.0).fit(X, LABELS[:6])
    np.testing.assert_allclose(ours.joint_log_likelihood(X_test),
                               theirs.predict_joint_log_proba(X_test), atol=1e-9)
    assert np.array_equal(ours.predict(X), theirs.predict(X))
    dense = MultinomialNaiveBayes().fit(X.toarray(), LABELS[:6])
    np.testing.assert_allclose(dense.joint_log_likelihood(X_test.toarray()),
                               ours.joint_log_likelihood(X_test), atol=1e-12)


def test_naive_bayes_by_hand():
    # class 0: words (a, a, b); class 1: word c. alpha 1, V 3: p(a|0) = 3/6, p(c|1) = 2/4
    nb = MultinomialNaiveBayes(1.0).fit(np.array([[2, 1, 0], [0, 0, 1]]), np.array([0, 1]))
    np.testing.assert_allclose(np.exp(nb.feature_log_prob_), [[3 / 6, 2 / 6, 1 / 6], [1 / 4, 1 / 4, 2 / 4]])
    score = nb.joint_log_likelihood(np.array([[0, 0, 2]]))  # two c's
    np.testing.assert_allclose(score, [[np.log(0.5) + 2 * np.log(1 / 6), np.log(0.5) + 2 * np.log(0.5)]])


def test_bag_of_words_equals_count_vectorizer():
    X, vocab = bag_of_words(TEXTS)
    cv = CountVectorizer(token_pattern=r"[a-z]+(?:'[a-z]+)*")
    Y = cv.fit_transform(TEXTS)
    assert vocab == list(cv.get_feature_names_out())
    assert np.array_equal(X.toarray(), Y.toarray())
    X2, _ = bag_of_words(["unknown words only"], vocab)
    assert X2.sum() == 0 and X2.shape == (1, len(vocab))


def test_confusion_matrix_and_macro_f1_equal_sklearn():
    rng = np.random.default_rng(1)
    for _ in range(5):
        y, p = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
        p[p == 3] = 2  # class 3 is never predicted: its F1 is 0
        m = confusion_matrix(y, p, 4)
        assert np.array_equal(m, sk_confusion(y, p, labels=range(4)))
        assert macro_f1(m) == pytest.approx(f1_score(y, p, average="macro", labels=range(4),
                                                     zero_division=0), abs=1e-12)


def test_cluster_bootstrap_pools_the_drawn_plays_with_repeats():
    correct = np.array([1, 1, 1, 0, 0, 1, 0, 0, 0, 0])
    groups = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    n_boot, seed = 300, 5
    draws = np.random.default_rng(seed).integers(3, size=(n_boot, 3))
    want = []
    for row in draws:  # pool every passage of each drawn play, a play drawn twice twice
        hits = sum(correct[groups == g].sum() for g in row)
        total = sum((groups == g).sum() for g in row)
        want.append(hits / total)
    lo, hi = np.quantile(want, [0.025, 0.975])
    ci = cluster_bootstrap_ci(correct, groups, n_boot=n_boot, seed=seed)
    assert float(ci.estimate) == pytest.approx(0.4)
    assert (ci.low, ci.high) == pytest.approx((lo, hi))


def test_cluster_bootstrap_is_wider_than_per_passage_when_plays_differ():
    from llm_lessons.evaluation.agreement import bootstrap_ci

    groups = np.repeat(np.arange(8), 40)
    correct = np.concatenate([np.ones(40) if g % 2 else np.r_[np.ones(4), np.zeros(36)]
                              for g in range(8)])  # plays right 100% or 10% of the time
    cluster = cluster_bootstrap_ci(correct, groups)
    passage = bootstrap_ci(correct, np.mean)
    assert cluster.high - cluster.low > 2 * (passage.high - passage.low)
    same = cluster_bootstrap_ci(np.ones(12), np.repeat(np.arange(3), 4))
    assert same.low == same.high == 1.0


def test_genre_split_holds_out_unseen_plays_and_whole_genres():
    s = genre_split()
    genres = play_genres()
    assert set(s.train_plays).isdisjoint(s.test_plays)
    assert all(genres[p] not in ("problems", "romances") for p in s.train_plays + s.test_plays)
    assert set(train_val_split().val_plays) <= set(s.test_plays)
    for g in GENRES:
        assert sum(s.genre[p] == g for p in s.test_plays) == 3
        assert sum(s.genre[p] == g for p in s.train_plays) >= 4
    assert s.genre["julius-caesar"] == "tragedy" and genre_split() == s
    with pytest.raises(ValueError, match="test_per_genre"):
        genre_split(test_per_genre=8)


def test_passages_have_no_speaker_names_and_start_at_words():
    text = speech_text(load_plays(["macbeth"])["macbeth"])
    assert "MACBETH:" not in text and "\n" not in text
    out = passages(text, 25)
    assert len(out) == 25 and all(len(p) == 64 for p in out)
    assert all(text[text.index(p) - 1] == " " for p in out)
    assert passages(text, 25) == out
    with pytest.raises(ValueError, match="too short"):
        passages("a b c", 3, length=4)
    with pytest.raises(ValueError):
        passages(text, 0)


def _tiny_bert(seed: int = 0) -> MaskedLM:
    torch.manual_seed(seed)
    return MaskedLM(BertConfig(vocab_size=6, block_size=8, n_layer=1, n_head=2, n_embd=16))


def test_bert_classifier_mean_pools_the_encoder():
    clf = BertClassifier(_tiny_bert(), 3)
    idx = torch.randint(6, (5, 8), generator=torch.Generator().manual_seed(0))
    logits, loss = clf(idx, torch.tensor([0, 1, 2, 0, 1]))
    pooled = clf.encoder.encode(idx).mean(1)  # (B, T, C) -> (B, C)
    torch.testing.assert_close(logits, pooled @ clf.head.weight.T + clf.head.bias)
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 0, 1])))
    assert clf(idx)[1] is None and clf.block_size == 8


def test_fine_tuning_learns_which_token_a_sequence_holds():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(2, (64,), generator=g)
    ids = torch.randint(2, 6, (64, 8), generator=g)
    ids[:, 3] = labels  # the class is written at position 3: token 0 or 1
    clf = BertClassifier(_tiny_bert(), 2)
    losses = fine_tune(clf, ids, labels, FineTuneConfig(steps=80, batch_size=16, lr=3e-3))
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
    assert (predict(clf, ids, batch_size=7) == labels.numpy()).mean() > 0.9
    assert not clf.training


def test_bad_input_is_refused():
    nb = MultinomialNaiveBayes()
    with pytest.raises(ValueError, match="fit the classifier"):
        nb.predict(np.ones((1, 3), dtype=int))
    with pytest.raises(ValueError, match="counts"):
        nb.fit(np.array([[1.5, 0.0]]), np.array([0]))
    with pytest.raises(ValueError, match="counts"):
        nb.fit(np.array([[-1, 2]]), np.array([0]))
    with pytest.raises(ValueError, match="labels"):
        nb.fit(np.array([[1, 2]]), np.array([0, 1]))
    with pytest.raises(ValueError, match="out of range"):
        nb.fit(np.array([[1, 2]]), np.array([3]), n_classes=2)
    nb.fit(np.array([[1, 2]]), np.array([0]))
    with pytest.raises(ValueError, match="words"):
        nb.predict(np.ones((1, 4), dtype=int))
    with pytest.raises(ValueError):
        MultinomialNaiveBayes(alpha=0.0)
    with pytest.raises(ValueError, match="non-empty"):
        bag_of_words([])
    with pytest.raises(ValueError, match="non-empty"):
        bag_of_words("a single string")
    with pytest.raises(ValueError, match="no words"):
        bag_of_words(["...", "!"])
    with pytest.raises(ValueError, match="0..2"):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError, match="equal"):
        confusion_matrix([0, 1], [0], 3)
    with pytest.raises(ValueError, match="non-empty"):
        cluster_bootstrap_ci([], [])
    with pytest.raises(ValueError):
        cluster_bootstrap_ci([1, 0], [0, 1], level=1.5)
    with pytest.raises(ValueError):
        cluster_bootstrap_ci([1, 0], [0, 1], n_boot=0)
    with pytest.raises(ValueError):
        FineTuneConfig(steps=0)
    with pytest.raises(ValueError, match="unknown preset"):
        FineTuneConfig.preset("tpu")
    assert FineTuneConfig.preset("gpu").steps > FineTuneConfig.preset("cpu").steps
    with pytest.raises(ValueError):
        BertClassifier(_tiny_bert(), 1)
    clf = BertClassifier(_tiny_bert(), 2)
    with pytest.raises(ValueError, match="targets shape"):
        clf(torch.zeros(2, 8, dtype=torch.long), torch.zeros(3, dtype=torch.long))
    with pytest.raises(TypeError, match="MaskedLM"):
        BertClassifier(torch.nn.Linear(2, 2), 2)
    with pytest.raises(ValueError, match="non-empty"):
        predict(clf, torch.zeros(0, 8, dtype=torch.long))
    with pytest.raises(TypeError):
        passages(["not", "a", "str"], 1)
    with pytest.raises(ValueError, match="labels"):
        fine_tune(clf, torch.zeros(4, 8, dtype=torch.long), torch.zeros(3, dtype=torch.long))
