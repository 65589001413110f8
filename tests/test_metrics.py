"""Perplexity and its units: checked against PyTorch's cross-entropy, closed forms, hand-worked
cases, the n-gram models' own likelihoods, and lm-evaluation-harness's window and word rules."""

import math
import random

import pytest
import torch
import torch.nn.functional as F

from llm_lessons.evaluation import likelihood as metrics
from llm_lessons.evaluation.likelihood import (
    LikelihoodReport,
    UniformLM,
    corpus_token_nll,
    perplexity,
    score_texts,
    token_nll,
    token_windows,
)
from llm_lessons.evaluation.markov_source import MarkovConfig, MarkovSource
from llm_lessons.gpt import GPT, GPTConfig
from llm_lessons.ngram import NGramLM
from llm_lessons.tokenizers import CharTokenizer


def small_gpt(V=11, T=8, seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=2, n_head=2, n_embd=16)).eval()


class SuccessorLM(torch.nn.Module):
    """Puts (almost) all probability on (current token + 1) mod V: on 0, 1, 2, ... every
    prediction is right only if targets are aligned with inputs exactly (no off-by-one)."""

    def __init__(self, V, block_size):
        super().__init__()
        self.V, self.block_size = V, block_size

    def forward(self, idx, targets=None):
        return 40.0 * F.one_hot((idx + 1) % self.V, self.V).float(), None


def ids(n, V, seed=0):
    return torch.randint(V, (n,), generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- windows

@pytest.mark.parametrize("align_last", [False, True])
def test_windows_score_every_token_exactly_once(align_last):
    rng = random.Random(0)
    for _ in range(300):
        T = rng.randint(1, 12)
        n, S = rng.randint(2, 60), rng.randint(1, T)
        ws = token_windows(n, T, S, align_last=align_last)
        scored = [p for w in ws for p in w.scored]
        assert scored == list(range(1, n))  # each of tokens 1..n-1 once, in order
        for w in ws:
            assert 0 <= w.start < w.stop <= n - 1 and w.stop - w.start <= T
            assert 1 <= w.n_scored <= w.stop - w.start


def test_windows_are_lm_eval_rolling_windows():
    from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

    for n in range(1, 40):
        for T in (1, 2, 3, 5, 8):
            x = list(range(100, 100 + n))
            ours = []
            seq = [-1] + x  # the prefix token, then the text
            for w in token_windows(len(seq), T, align_last=True):
                ours.append((seq[w.start:w.stop], seq[w.stop + 1 - w.n_scored:w.stop + 1]))
            theirs = []
            for ctx, cont in map(make_disjoint_window, get_rolling_token_windows(x, -1, T, 1)):
                theirs.append(((ctx + cont)[-(T + 1):][:-1], cont))  # what their model reads
            assert ours == theirs, (n, T)


def test_hand_worked_windows():
    # the docstring case of lm_eval's LM.loglikelihood_rolling: 10 tokens, prefix, context 4
    seq = ["BOS"] + list(range(10))
    got = [(seq[w.start:w.stop], list(w.scored)) for w in token_windows(11, 4, align_last=True)]
    assert got == [(["BOS", 0, 1, 2], [1, 2, 3, 4]), ([3, 4, 5, 6], [5, 6, 7, 8]), ([5, 6, 7, 8], [9, 10])]


@pytest.mark.parametrize("bad", [0, -1, 9, 2.0, True])
def test_bad_stride_raises(bad):
    with pytest.raises(ValueError, match="stride"):
        token_windows(20, 8, bad)


def test_too_short_raises():
    model = UniformLM(5, 4)
    for short in ([], [3]):
        with pytest.raises(ValueError, match="at least two"):
            token_nll(model, short)
    assert token_nll(model, [3], prefix_id=0).numel() == 1  # a prefix makes one token scorable
    with pytest.raises(ValueError, match="block_size"):
        token_nll(model, [1, 2, 3], block_size=0)


@pytest.mark.parametrize("bad,err", [("hello", TypeError), (torch.ones(4), TypeError),
                                     (torch.ones(2, 3, dtype=torch.long), ValueError)])
def test_bad_ids_raise(bad, err):
    with pytest.raises(err):
        token_nll(UniformLM(5, 4), bad)


def test_empty_texts_raise():
    for bad in ("", [], ["", ""]):
        with pytest.raises((ValueError, TypeError)):
            metrics.bits_per_byte(1.0, bad)
    with pytest.raises(ValueError):
        corpus_token_nll(UniformLM(5, 4), [])


# ---------------------------------------------------------------- values

@pytest.mark.parametrize("V,T,S,prefix", [(2, 1, None, None), (65, 8, 3, 0), (81, 16, None, 5)])
def test_uniform_model_scores_exactly_V(V, T, S, prefix):
    x = ids(100, V)
    assert perplexity(UniformLM(V, T), x, stride=S, prefix_id=prefix) == pytest.approx(V, rel=1e-12)


def test_disjoint_windows_equal_pytorch_cross_entropy():
    model, T = small_gpt(T=8), 8
    x = ids(8 * 5 + 1, 11)
    logits, _ = model(x[:-1].view(5, T))  # (N,) -> (5, T): five disjoint blocks
    expected = F.cross_entropy(logits.reshape(-1, 11), x[1:], reduction="none").double()
    for stride in (None, T):
        got = token_nll(model, x, stride=stride)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_successor_model_has_zero_nll_only_when_aligned():
    model = SuccessorLM(V=7, block_size=5)
    x = torch.arange(50) % 7
    for S in (1, 3, 5):
        for align_last in (False, True):
            assert token_nll(model, x, stride=S, align_last=align_last).max() < 1e-12
    assert token_nll(model, x, prefix_id=6)[0] < 1e-12  # after the prefix 6 comes 0
    # the off-by-one mistake (targets = inputs) scores the same model terribly
    logits, _ = model(x[None, :5])
    assert F.cross_entropy(logits[0], x[:5]) > 30


def test_sliding_windows_recover_full_context_ngram_likelihood():
    src = MarkovSource(MarkovConfig.preset("tiny"))  # text with a 2-symbol memory
    V, order, T = len(src.alphabet), 3, 8
    lm = NGramLM(order, smoothing="kneser_ney", vocab_size=V).fit(torch.tensor(src.sample_ids(5000, seed=1)))
    x = torch.tensor(src.sample_ids(400, seed=2))
    full = -lm.token_log_probs(x)[1:]  # the n-gram's own likelihood, full (order-1) context
    sliding = token_nll(lm, x, block_size=T, stride=T - (order - 1))  # >= order-1 tokens of context
    torch.testing.assert_close(sliding, full, rtol=1e-5, atol=1e-6)
    disjoint = token_nll(lm, x, block_size=T)  # window starts lose their context
    assert not torch.allclose(disjoint, full, rtol=1e-3)
    assert float(disjoint.sum()) > float(sliding.sum())  # context helps on text with memory


# ---------------------------------------------------------------- invariances

def test_batch_size_padding_and_document_order_do_not_matter():
    model = small_gpt(V=11, T=8)
    docs = [ids(n, 11, seed=n) for n in (2, 5, 9, 17, 23, 40)]  # windows of many lengths: padding
    ref = corpus_token_nll(model, docs, batch_size=1)
    assert [r.numel() for r in ref] == [len(d) - 1 for d in docs]  # every token but the first, once
    for bs in (2, 3, 64):
        for pad in (0, 10):
            got = corpus_token_nll(model, docs, batch_size=bs, pad_id=pad)
            for a, b in zip(got, ref, strict=True):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    perm = [3, 0, 5, 1, 4, 2]
    shuffled = corpus_token_nll(model, [docs[i] for i in perm], batch_size=4)
    for j, i in enumerate(perm):
        torch.testing.assert_close(shuffled[j], ref[i], rtol=1e-5, atol=1e-6)


def test_corpus_perplexity_pools_tokens():
    model = small_gpt(V=11, T=8)
    docs = [ids(n, 11, seed=n) for n in (3, 30)]
    nlls = corpus_token_nll(model, docs)
    pooled = math.exp(float(torch.cat(nlls).sum()) / sum(n.numel() for n in nlls))
    assert perplexity(model, docs) == pytest.approx(pooled, rel=1e-12)
    per_doc = sum(math.exp(float(n.mean())) for n in nlls) / 2  # the common mistake
    assert abs(per_doc - pooled) > 1e-3


def test_model_mode_is_restored():
    model = small_gpt().train()
    token_nll(model, ids(20, 11))
    assert model.training


# ---------------------------------------------------------------- units

def test_units_hand_worked():
    nll = 12 * math.log(2)  # 12 bits
    text = "ab—"  # 3 characters, 5 bytes ('—' is 3 bytes in UTF-8)
    assert metrics.count_bytes(text) == 5
    assert metrics.bits_per_byte(nll, text) == pytest.approx(12 / 5)
    assert metrics.bits_per_token(nll, 6) == pytest.approx(2.0)
    assert metrics.word_perplexity(nll, ["a b", "c"]) == pytest.approx(2 ** 4)
    r = LikelihoodReport(nll, n_tokens=6, n_chars=3, n_bytes=5, n_words=1)
    assert r.bits_per_char == pytest.approx(4.0) and r.byte_perplexity == pytest.approx(2 ** (12 / 5))


def test_word_and_byte_counts_match_lm_eval():
    from lm_eval.api.task import ConfigurableTask

    for doc in ["To be, or not to be", " lead", "trail \n", "a\n\nb", "语言 模型", "x"]:
        assert metrics.count_words(doc) == ConfigurableTask.count_words(doc)
        assert metrics.count_bytes(doc) == ConfigurableTask.count_bytes(doc)


def test_aggregations_match_lm_eval():
    from lm_eval.api import metrics as lm

    docs, lls = ["To be, or not to be", "that is the question—"], [-41.5, -37.25]
    total = -sum(lls)
    assert metrics.word_perplexity(total, docs) == pytest.approx(
        lm.weighted_perplexity([(ll, metrics.count_words(d)) for ll, d in zip(lls, docs, strict=True)]))
    assert metrics.bits_per_byte(total, docs) == pytest.approx(
        lm.bits_per_byte([(ll, metrics.count_bytes(d)) for ll, d in zip(lls, docs, strict=True)]))


def test_report_conversions_agree():
    r = LikelihoodReport(total_nll=1234.5, n_tokens=700, n_chars=1000, n_bytes=1010, n_words=180)
    assert r.bits_per_token * r.n_tokens == pytest.approx(r.bits_per_byte * r.n_bytes)
    assert r.token_perplexity == pytest.approx(2 ** r.bits_per_token)
    assert r.byte_perplexity == pytest.approx(2 ** r.bits_per_byte)
    assert math.log(r.word_perplexity) * r.n_words == pytest.approx(r.total_nll)


def test_score_texts_predicts_every_character_after_the_prefix():
    text = "ROMEO:\nBut soft!"
    tok = CharTokenizer(text + "\n")
    model = UniformLM(tok.vocab_size, block_size=4)
    r = score_texts(model, tok, [text, text[:5]])
    assert r.n_tokens == r.n_chars == len(text) + 5  # the prefix makes the first char scorable too
    assert r.total_nll == pytest.approx(r.n_tokens * math.log(tok.vocab_size))
    without = score_texts(model, tok, [text], prefix=None)
    assert without.n_tokens == len(text) - 1
    with pytest.raises(ValueError, match="prefix"):
        score_texts(model, tok, [text], prefix="RO")


def test_plot_token_windows_draws_read_and_scored_spans():
    import matplotlib

    matplotlib.use("Agg")
    from llm_lessons.plotting import plot_token_windows

    ws = token_windows(10, 4, align_last=True)
    ax = plot_token_windows(ws, 10)
    bars = ax.patches
    assert len(bars) == 2 * len(ws)
    for w, read, scored in zip(ws, bars[0::2], bars[1::2], strict=True):
        assert (read.get_x() + 0.5, read.get_width()) == (w.start, w.stop - w.start)
        assert (scored.get_x() + 0.5, scored.get_width()) == (w.scored[0], w.n_scored)
