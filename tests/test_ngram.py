"""N-gram LMs against nltk, hand-worked Kneser–Ney cases, a plain-Python reference and invariants."""

import itertools
import math
import random
from collections import Counter

import pytest
import torch
from nltk.lm import Laplace, Lidstone
from nltk.util import everygrams

from llm_lessons.ngram import NGramCounts, NGramLM


def random_text(n, alphabet="abcde", seed=0):
    rng = random.Random(seed)
    return [rng.choice(alphabet) for _ in range(n)]


# ---------------------------------------------------------------- add-k against nltk
@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("gamma", [1.0, 0.1, 0.003])
def test_add_k_perplexity_equals_nltk(order, gamma):
    train = random_text(400)
    test = random_text(150, alphabet="abcdez", seed=1)  # 'z' is never seen in training
    ref_model = Laplace(order) if gamma == 1.0 else Lidstone(gamma, order)
    ref_model.fit([list(everygrams(train, max_len=order))], train)
    # nltk's convention: every n-gram of the unpadded text, the first tokens with shorter contexts;
    # its vocabulary counts an <UNK> (here the id after the seen characters) in V.
    test_ngrams = [tuple(test[max(0, t - order + 1): t + 1]) for t in range(len(test))]
    ref = ref_model.perplexity(test_ngrams)
    chars = sorted(set(train))
    stoi = {c: i for i, c in enumerate(chars)}
    unk = len(chars)
    assert len(ref_model.vocab) == unk + 1
    lm = NGramLM(order, "add_k", k=gamma, vocab_size=len(ref_model.vocab)).fit([stoi[c] for c in train])
    ours = lm.perplexity([stoi.get(c, unk) for c in test])
    assert ours == pytest.approx(ref, rel=1e-9, abs=0)


def test_add_k_single_probabilities_equal_nltk():
    train = random_text(200)
    ref = Lidstone(0.5, 3)
    ref.fit([list(everygrams(train, max_len=3))], train)
    stoi = {c: i for i, c in enumerate(sorted(set(train)))}
    lm = NGramLM(3, "add_k", k=0.5, vocab_size=len(ref.vocab)).fit([stoi[c] for c in train])
    for ctx in [(), ("a",), ("a", "b"), ("e", "e"), ("c", "a")]:
        for w in "abcde":
            assert lm.prob(stoi[w], [stoi[c] for c in ctx]) == pytest.approx(ref.score(w, ctx), rel=1e-12)


# ---------------------------------------------------------------- Kneser–Ney
def test_kneser_ney_bigram_by_hand():
    # a b a c a b: bigrams ab ×2, ba, ac, ca; c(a •) = 3 with 2 distinct followers.
    # continuation: N1+(• a) = |{b, c}| = 2, N1+(• b) = N1+(• c) = 1, over 4 distinct bigrams:
    # P_cont(a) = 1.25/4 + .75·3/4·1/3 = 1/2, P_cont(b) = P_cont(c) = .25/4 + 3/16 = 1/4.
    lm = NGramLM(2, "kneser_ney", vocab_size=3, discount=0.75).fit([0, 1, 0, 2, 0, 1])
    assert lm.prob(1, [0]) == pytest.approx(1.25 / 3 + 0.75 * 2 / 3 * 0.25)  # 13/24
    assert lm.prob(2, [0]) == pytest.approx(0.25 / 3 + 0.75 * 2 / 3 * 0.25)  # 5/24
    assert lm.prob(0, [0]) == pytest.approx(0.75 * 2 / 3 * 0.5)  # 6/24: never seen, only back-off
    # the first token has no context: the raw unigram, c = (3, 2, 1), N = 6, discounted towards 1/V
    assert lm.prob(0) == pytest.approx(2.25 / 6 + 0.75 * 3 / 6 / 3)
    assert lm.prob(2) == pytest.approx(0.25 / 6 + 0.75 * 3 / 6 / 3)


def test_kneser_ney_trigram_by_hand():
    lm = NGramLM(3, "kneser_ney", vocab_size=3).fit([0, 1, 0, 2, 0, 1])
    # trigrams aba bac aca cab. Middle level, context a: N1+(• a b) = 1 (c), N1+(• a c) = 1 (b),
    # total 2, 2 types; P_cont(b | a) = .25/2 + .75·2/2·P_cont(b) = .125 + .75·.25 = .3125
    assert lm.prob(1, [0, 0]) == pytest.approx(0.3125)  # context "a a" never seen: full back-off
    # c(c a b) = 1 = c(c a •), one type: P = .25/1 + .75·1/1·.3125
    assert lm.prob(1, [2, 0]) == pytest.approx(0.25 + 0.75 * 0.3125)
    # at the start of a text the shorter context uses raw bigram counts, as an order-2 model does
    bigram = NGramLM(2, "kneser_ney", vocab_size=3).fit([0, 1, 0, 2, 0, 1])
    expected = [math.log(bigram.prob(0)), math.log(bigram.prob(1, [0])), math.log(lm.prob(2, [0, 1]))]
    assert lm.token_log_probs([0, 1, 2]).tolist() == pytest.approx(expected)


def kn_reference(train, order, V, D, ctx, w):
    """Interpolated Kneser–Ney written the obvious way, with Counters and recursion."""
    grams = {k: Counter(tuple(train[i:i + k]) for i in range(len(train) - k + 1))
             for k in range(1, order + 1)}

    def cont(g):  # N1+(• g): distinct tokens seen right before g
        return sum(1 for big in grams[len(g) + 1] if big[1:] == g)

    def p(ctx, w, raw):
        lower = p(ctx[1:], w, False) if ctx else 1 / V
        a = [grams[len(ctx) + 1][ctx + (v,)] if raw else cont(ctx + (v,)) for v in range(V)]
        total = sum(a)
        if total == 0:
            return lower
        return (max(a[w] - D, 0) + D * sum(x > 0 for x in a) * lower) / total

    return p(tuple(ctx), w, True)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_kneser_ney_equals_plain_reference(order):
    rng = random.Random(order)
    train = [rng.choice([0, 1, 2, 2, 3]) for _ in range(120)]  # token 4 is never seen
    lm = NGramLM(order, "kneser_ney", vocab_size=5, discount=0.6).fit(train)
    for _ in range(25):
        m = rng.randint(0, order - 1)
        ctx = [rng.randrange(5) for _ in range(m)]
        ours = lm.next_token_probs(ctx)
        ref = [kn_reference(train, order, 5, 0.6, ctx, w) for w in range(5)]
        assert ours.tolist() == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("smoothing", ["kneser_ney", "add_k"])
def test_distributions_sum_to_one_for_seen_and_unseen_contexts(order, smoothing):
    V = 4
    train = [0, 1, 2, 0, 1, 0, 0, 2, 1, 0]  # token 3 never occurs; most long contexts are unseen
    lm = NGramLM(order, smoothing, k=0.2, vocab_size=V).fit(train)
    n_seen = 0
    for m in range(order):
        for ctx in itertools.product(range(V), repeat=m):
            probs = lm.next_token_probs(ctx)
            assert probs.shape == (V,) and bool((probs > 0).all())
            assert float(probs.sum()) == pytest.approx(1.0, abs=1e-12)
            n_seen += m > 0 and lm.counts.count(ctx) > 0
    assert order == 1 or n_seen > 0  # both kinds were checked
    logits, _ = lm(torch.randint(0, V, (3, 9), generator=torch.Generator().manual_seed(0)))
    assert torch.allclose(logits.exp().sum(-1), torch.ones(3, 9), atol=1e-6)


# ---------------------------------------------------------------- invariants
@pytest.mark.parametrize("smoothing,k", [("add_k", 1.0), ("add_k", 0.01), ("kneser_ney", 1.0)])
def test_uniform_model_perplexity_is_vocab_size(smoothing, k):
    V = 7
    train = list(range(V)) * 5  # every token equally frequent: the unigram MLE is exactly 1/V
    lm = NGramLM(1, smoothing, k=k, vocab_size=V).fit(train)
    test = [3, 1, 4, 1, 5, 6, 2, 6, 5, 3, 5, 0]
    assert lm.perplexity(test) == pytest.approx(V, rel=1e-12)
    assert lm.cross_entropy(test) == pytest.approx(math.log(V), rel=1e-12)


def test_counts_equal_counter():
    rng = random.Random(3)
    train = [rng.randrange(6) for _ in range(300)]
    counts = NGramCounts(train, max_order=4, vocab_size=7)
    for k in range(1, 5):
        ref = Counter(tuple(train[i:i + k]) for i in range(len(train) - k + 1))
        for g in list(ref)[:40] + [tuple([6] * k), tuple([0] * k)]:
            assert counts.count(g) == ref[g]
    assert counts.n_tokens == 300 and counts.vocab_size == 7


def test_shared_counts_give_the_same_model():
    train = random_text(300)
    ids = [ord(c) - 97 for c in train]
    test = [ord(c) - 97 for c in random_text(80, seed=5)]
    big = NGramCounts(ids, max_order=5, vocab_size=5)
    for order in (1, 2, 3):
        for smoothing in ("add_k", "kneser_ney"):
            shared = NGramLM(order, smoothing, k=0.3).fit_counts(big)
            fresh = NGramLM(order, smoothing, k=0.3, vocab_size=5).fit(ids)
            assert shared.perplexity(test) == fresh.perplexity(test)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("smoothing", ["kneser_ney", "add_k"])
def test_forward_agrees_with_prob_and_loss(order, smoothing):
    V = 5
    lm = NGramLM(order, smoothing, k=0.5, vocab_size=V).fit([ord(c) - 97 for c in random_text(200)])
    g = torch.Generator().manual_seed(order)
    idx = torch.randint(0, V, (2, 6), generator=g)
    targets = torch.randint(0, V, (2, 6), generator=g)
    targets[0, 2] = targets[1, 5] = -100  # ignored positions
    logits, loss = lm(idx, targets)
    assert logits.shape == (2, 6, V) and logits.dtype == torch.float32
    for b, t in itertools.product(range(2), range(6)):
        ctx = idx[b, max(0, t - order + 2): t + 1].tolist() if order > 1 else []
        assert logits[b, t].exp().tolist() == pytest.approx(lm.next_token_probs(ctx).tolist(), rel=1e-5)
    keep = targets != -100
    manual = -logits[keep].gather(-1, targets[keep][:, None]).mean()
    assert loss.item() == pytest.approx(manual.item(), rel=1e-5)
    # the sequence scorer agrees with forward on the shifted sequence
    seq = idx[0]
    lp = lm.token_log_probs(seq)
    shifted, _ = lm(seq[None, :-1])
    assert lp[1:].tolist() == pytest.approx(shifted[0].gather(-1, seq[1:, None])[:, 0].tolist(), rel=1e-5)
    assert lm.block_size == max(1, order - 1)


def test_sampling_is_reproducible_and_follows_the_distribution():
    lm = NGramLM(1, "add_k", k=1.0, vocab_size=3).fit([0] * 70 + [1] * 20 + [2] * 7)  # P = .7, .2, .1
    draws = lm.sample(4000, generator=torch.Generator().manual_seed(0))
    assert draws[:50] == lm.sample(50, generator=torch.Generator().manual_seed(0))
    freq = Counter(draws)
    for w, p in enumerate([0.7, 0.2, 0.1]):
        assert abs(freq[w] / 4000 - p) < 4 * math.sqrt(p * (1 - p) / 4000)
    # a deterministic cycle: the trigram model continues it from any long context
    cyc = NGramLM(3, "add_k", k=1e-9, vocab_size=3).fit([0, 1, 2] * 30)
    assert cyc.sample(6, context=[2, 0, 1, 2, 0]) == [1, 2, 0, 1, 2, 0]


# ---------------------------------------------------------------- errors
def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="order"):
        NGramLM(0)
    with pytest.raises(ValueError, match="order"):
        NGramLM(2.5)
    with pytest.raises(ValueError, match="k must be > 0"):
        NGramLM(2, "add_k", k=0)
    with pytest.raises(ValueError, match="unknown smoothing"):
        NGramLM(2, "good_turing")
    with pytest.raises(ValueError, match="discount"):
        NGramLM(2, discount=1.5)
    with pytest.raises(ValueError, match="empty"):
        NGramLM(2).fit([])
    with pytest.raises(ValueError, match="token id 3"):
        NGramLM(2, vocab_size=3).fit([0, 1, 3])
    with pytest.raises(ValueError, match="token id -1"):
        NGramLM(2).fit([0, -1])
    with pytest.raises(TypeError, match="integer"):
        NGramLM(2).fit(torch.tensor([0.5, 1.0]))
    with pytest.raises(ValueError, match="1-D"):
        NGramLM(2).fit([[0, 1], [1, 0]])
    with pytest.raises(RuntimeError, match="fit"):
        NGramLM(2).prob(0, [1])
    with pytest.raises(TypeError, match="tokenizer"):
        NGramLM(2).fit("to be or not")
    with pytest.raises(ValueError, match="max_order"):
        NGramCounts([0, 1], max_order=0)


def test_bad_queries_raise():
    lm = NGramLM(3, vocab_size=4).fit([0, 1, 2, 3, 0, 1])
    with pytest.raises(ValueError, match="at most order-1 = 2"):
        lm.prob(0, [1, 2, 3])
    with pytest.raises(ValueError, match="token id 4"):
        lm.prob(4, [1])
    with pytest.raises(ValueError, match="token id 9"):
        lm.next_token_probs([9])
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        lm(torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="targets shape"):
        lm(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="token id 7"):
        lm.perplexity([0, 7])
    with pytest.raises(ValueError, match="vocab_size"):
        NGramLM(2, vocab_size=9).fit_counts(lm.counts)
    with pytest.raises(ValueError, match="order 3"):
        NGramLM(4).fit_counts(lm.counts)
    with pytest.raises(ValueError, match="n must be"):
        lm.sample(-1)
