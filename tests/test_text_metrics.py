"""BLEU, self-BLEU and chrF against sacrebleu; ROUGE against rouge-score; continuation NLL against
a direct forward pass."""

import math
import random

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU, CHRF

from llm_lessons.evaluation import text_stats
from llm_lessons.evaluation.text_metrics import (
    bleu,
    continuation_nll,
    distinct_n,
    lcs_length,
    repetition_rate,
    rouge_l,
    rouge_n,
    sacre_bleu,
    sacre_chrf,
    self_bleu,
)
from llm_lessons.gpt import GPT, GPTConfig
from llm_lessons.tokenizers import CharTokenizer

sentence = st.lists(st.sampled_from("a b c d e".split()), min_size=0, max_size=10).map(" ".join)


def test_reexports_are_the_decoding_chapters_functions():
    assert distinct_n is text_stats.distinct_n and repetition_rate is text_stats.repetition_rate


@settings(max_examples=300, deadline=None)
@given(data=st.lists(st.tuples(sentence, st.lists(sentence.filter(bool), min_size=2, max_size=2)),
                     min_size=1, max_size=4),
       smooth=st.sampled_from(["exp", "none"]), effective_order=st.booleans())
def test_bleu_matches_sacrebleu(data, smooth, effective_order):
    hyps = [h for h, _ in data]
    refs = [r for _, r in data]
    expected = BLEU(tokenize="none", smooth_method=smooth, effective_order=effective_order).corpus_score(
        hyps, [list(s) for s in zip(*refs, strict=True)]).score
    ours = bleu(hyps, refs, smooth=smooth, effective_order=effective_order)
    assert ours == pytest.approx(expected, abs=1e-9)


def test_bleu_hand_worked():
    # hypothesis "the the the the" vs reference "the cat": unigram count clipped to 1 of 4;
    # no bigram matches -> 0 without smoothing.
    assert bleu(["the the the the"], ["the cat"], smooth="none") == 0.0
    # one 4-token hypothesis equal to the first 4 tokens of a 6-token reference:
    # every precision is 1, BP = exp(1 - 6/4)
    assert bleu(["a b c d"], ["a b c d e f"]) == pytest.approx(100 * math.exp(1 - 6 / 4))


def test_self_bleu_hand_case_and_sacrebleu():
    samples = ["the cat sat on the mat", "the cat sat on the hat", "a dog ran far away"]
    expected = [BLEU(tokenize="none", effective_order=True).sentence_score(
        s, samples[:i] + samples[i + 1:]).score for i, s in enumerate(samples)]
    assert self_bleu(samples) == pytest.approx(sum(expected) / 3)
    # the two cat sentences match each other on 5 of 6 unigrams, 4/5 bigrams, 3/4, 2/3: BLEU =
    # (5/6 * 4/5 * 3/4 * 2/3) ** (1/4); the dog sentence shares nothing -> 0
    cat = 100 * (5 / 6 * 4 / 5 * 3 / 4 * 2 / 3) ** 0.25
    assert self_bleu(samples) == pytest.approx(2 * cat / 3)
    assert self_bleu(["x y z", "x y z"]) == 100.0


def test_sacrebleu_wrappers_return_score_and_signature():
    hyps, refs = ["The cat sat on a mat."], ["The cat sat on the mat."]
    b = sacre_bleu(hyps, refs)
    assert b.score == pytest.approx(BLEU().corpus_score(hyps, [refs]).score)
    assert "tok:13a" in b.signature and "version:" in b.signature
    c = sacre_chrf(hyps, [[r] for r in refs])
    assert c.score == pytest.approx(CHRF().corpus_score(hyps, [refs]).score)
    assert "nc:6" in c.signature


def test_rouge_matches_rouge_score():
    rng = random.Random(0)
    words = "to be or not that is the question whether tis nobler Nobly".split()
    for stem in (False, True):
        scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=stem)
        for _ in range(200):
            hyp = " ".join(rng.choices(words, k=rng.randint(0, 12))) + rng.choice(["", ",", "!"])
            ref = " ".join(rng.choices(words, k=rng.randint(1, 12)))
            want = scorer.score(ref, hyp)
            for key, got in (("rouge1", rouge_n(hyp, ref, 1, stem)), ("rouge2", rouge_n(hyp, ref, 2, stem)),
                             ("rougeL", rouge_l(hyp, ref, stem))):
                assert got.precision == pytest.approx(want[key].precision)
                assert got.recall == pytest.approx(want[key].recall)
                assert got.fmeasure == pytest.approx(want[key].fmeasure)


def test_lcs_brute_force():
    from itertools import combinations

    rng = random.Random(1)
    for _ in range(100):
        a, b = rng.choices("abc", k=rng.randint(0, 6)), rng.choices("abc", k=rng.randint(0, 6))
        subs = {tuple(a[i] for i in idx) for k in range(len(a) + 1) for idx in combinations(range(len(a)), k)}
        best = max(k for k in range(len(b) + 1) for idx in combinations(range(len(b)), k)
                   if tuple(b[i] for i in idx) in subs)
        assert lcs_length(a, b) == best


def test_continuation_nll_equals_a_direct_forward_pass():
    torch.manual_seed(0)
    tok = CharTokenizer("abcdefgh ")
    model = GPT(GPTConfig.preset("nano", vocab_size=tok.vocab_size, block_size=32, n_layer=1))
    prompts, conts = ["abc d", "h"], ["efg hab", "gg a"]
    got = continuation_nll(model, tok, prompts, conts)
    for p, c, nll in zip(prompts, conts, got, strict=True):
        ids = torch.tensor(tok.encode(p + c))  # fits one window: one plain forward pass
        logits, _ = model(ids[None, :-1])
        per_token = F.cross_entropy(logits[0].double(), ids[1:], reduction="none")
        # continuation_nll runs a padded batch: float32 matmuls of another shape round
        # differently on some CPUs (3e-7 seen), so equal means equal to float32 rounding.
        torch.testing.assert_close(nll, per_token[len(p) - 1:], rtol=1e-5, atol=1e-6)
        assert len(nll) == len(c)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="non-empty list"):
        bleu([], [])
    with pytest.raises(ValueError, match="one per hypothesis"):
        bleu(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="at least one reference"):
        bleu(["a"], [[]])
    with pytest.raises(ValueError, match="at least two samples"):
        self_bleu(["only one"])
    with pytest.raises(TypeError, match="only strings"):
        sacre_bleu([1], ["a"])
    with pytest.raises(ValueError, match="same number of references"):
        sacre_bleu(["a", "b"], [["a"], ["b", "c"]])
    tok = CharTokenizer("ab")
    model = GPT(GPTConfig.preset("nano", vocab_size=2, block_size=8, n_layer=1))
    with pytest.raises(ValueError, match="2 prompts but 1 continuations"):
        continuation_nll(model, tok, ["a", "b"], ["a"])
    with pytest.raises(ValueError, match="non-empty list"):
        continuation_nll(model, tok, [], [])
