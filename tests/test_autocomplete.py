"""The writing assistant of 6.3 against independent oracles: every suggestion's probability is
the product one plain forward pass gives, the beam search finds exactly what enumerating every
word finds, the cache changes nothing, a line is what greedy ``generate`` writes, and bad input
is refused with a clear error."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from llm_lessons.applications.autocomplete import (
    current_prefix,
    median_speedup,
    saved_keystrokes,
    suggest_by_frequency,
    suggest_line,
    suggest_words,
    suggest_words_batch,
    word_counts,
)
from llm_lessons.gpt import GPT, GPTConfig
from llm_lessons.resources import load_gpt_shakespeare
from llm_lessons.sampling import generate
from llm_lessons.tokenizers import CharTokenizer

PROMPTS = ["KING HENRY V:\nOnce more unto the br", "To be, or not to ", "ROMEO:\nO, she doth teach th"]


@pytest.fixture(scope="module")
def shipped():
    return load_gpt_shakespeare()


def forward_probability(model, tok, context: str, completion: str) -> float:
    """P(completion, then any non-letter | context) from one uncached forward pass."""
    ids = tok.encode(context + completion)
    with torch.no_grad():
        logp = model(torch.tensor([ids]))[0][0].double().log_softmax(-1)  # (T, V)
    n = len(tok.encode(context))
    letters = sum(float(logp[n - 1 + i, ids[n + i]]) for i in range(len(completion)))
    ends = [i for i, c in enumerate(tok.chars) if not (c.isalpha() or c == "'")]
    return math.exp(letters + float(logp[-1, ends].logsumexp(-1)))


def test_each_probability_is_one_forward_pass_product(shipped):
    model, tok = shipped
    for text in PROMPTS:
        got = suggest_words(model, tok, text, 5)
        assert [s.prob for s in got] == sorted((s.prob for s in got), reverse=True)
        assert 0 < sum(s.prob for s in got) <= 1
        for s in got:
            assert s.text and all(c.isalpha() or c == "'" for c in s.text)
            assert s.prob == pytest.approx(forward_probability(model, tok, text[-52:], s.text), rel=1e-4)


def test_the_cache_changes_nothing(shipped):
    model, tok = shipped
    for text in PROMPTS:
        cached = suggest_words(model, tok, text, 5)
        plain = suggest_words(model, tok, text, 5, use_cache=False)
        assert [s.text for s in cached] == [s.text for s in plain]
        assert [s.prob for s in cached] == pytest.approx([s.prob for s in plain], rel=1e-4)
        line, plain_line = suggest_line(model, tok, text), suggest_line(model, tok, text, use_cache=False)
        assert line.text == plain_line.text and line.prob == pytest.approx(plain_line.prob, rel=1e-3)


def test_a_batch_equals_one_prompt_at_a_time(shipped):
    model, tok = shipped
    batch = suggest_words_batch(model, tok, PROMPTS + ["a"], 3)  # contexts of several lengths
    for text, got in zip(PROMPTS + ["a"], batch, strict=True):
        alone = suggest_words(model, tok, text, 3)
        assert [s.text for s in got] == [s.text for s in alone]


def test_a_line_is_what_greedy_generate_writes(shipped):
    model, tok = shipped
    for text in PROMPTS:
        line = suggest_line(model, tok, text, max_chars=20)
        context = tok.encode(text)[-(model.block_size - 20):]
        out = tok.decode(generate(model, torch.tensor([context]), 20, greedy=True)[0, len(context):].tolist())
        assert line.text == out.split("\n")[0]


def test_the_beam_finds_the_exact_top_k_of_a_tiny_model():
    torch.manual_seed(0)
    tok = CharTokenizer("ab .")
    model = GPT(GPTConfig(vocab_size=4, block_size=8, n_layer=1, n_head=1, n_embd=8, dropout=0.0))
    model.eval()
    words = ["".join(w) for n in (1, 2, 3) for w in itertools.product("ab", repeat=n)]
    exact = sorted(words, key=lambda w: -forward_probability(model, tok, "ab ", w))[:5]
    got = suggest_words(model, tok, "ab ", 5, beam=8, max_chars=3)  # 8 beams hold every word
    assert [s.text for s in got] == exact
    assert [s.prob for s in got] == pytest.approx([forward_probability(model, tok, "ab ", w) for w in exact])


def test_the_frequency_baseline_and_keystrokes_by_hand():
    counts = word_counts("the king, the queen; the knave and thee")
    assert counts["the"] == 3 and counts["king"] == 1
    got = suggest_by_frequency(counts, "th", 2)
    assert [s.text for s in got] == ["e", "ee"] and [s.prob for s in got] == pytest.approx([0.75, 0.25])
    assert suggest_by_frequency(counts, "x", 3) == []
    assert saved_keystrokes("king", [["the"], ["ing"]]) == 2  # typed k, one key accepts "ing"
    assert saved_keystrokes("king", [["king"], ["ing"]]) == 3  # offered before any letter
    assert saved_keystrokes("be", [["e"], ["e"]]) == 0 and saved_keystrokes("king", []) == 0
    assert current_prefix("unto th") == "th" and current_prefix("unto ") == ""


def test_median_speedup_by_hand():
    cached = torch.tensor([[1.0, 2.0], [1.0, 2.0], [50.0, 2.0]])  # one busy moment
    uncached = torch.tensor([[2.0, 8.0], [2.0, 8.0], [2.0, 8.0]])
    assert median_speedup(cached, uncached) == pytest.approx(3.0)  # median of 2 and 4


@pytest.mark.parametrize("call, error, words", [
    (lambda m, t: suggest_words(m, t, "", 3), ValueError, "empty"),
    (lambda m, t: suggest_words(m, t, "Once more unto th\u00e9", 3), ValueError, "not in this tokenizer"),
    (lambda m, t: suggest_words(m, t, b"bytes", 3), TypeError, "str"),
    (lambda m, t: suggest_words(m, t, "the", 0), ValueError, "k"),
    (lambda m, t: suggest_words(m, t, "the", 9, beam=4), ValueError, "beam of at least k"),
    (lambda m, t: suggest_words(m, t, "the", 3, max_chars=64), ValueError, "block_size"),
    (lambda m, t: suggest_words(m, t, "the", 3, use_cache="yes"), TypeError, "use_cache"),
    (lambda m, t: suggest_words_batch(m, t, "the", 3), ValueError, "sequence of strings"),
    (lambda m, t: suggest_words_batch(m, t, [], 3), ValueError, "non-empty"),
    (lambda m, t: suggest_line(m, t, "", max_chars=8), ValueError, "empty"),
    (lambda m, t: suggest_line(m, t, "the", max_chars=0), ValueError, "max_chars"),
    (lambda m, t: word_counts(None), TypeError, "str"),
    (lambda m, t: suggest_by_frequency({}, 3, 1), TypeError, "prefix"),
    (lambda m, t: saved_keystrokes("", [["a"]]), ValueError, "non-empty"),
    (lambda m, t: median_speedup(torch.ones(2, 3), torch.ones(3, 2)), ValueError, "same shape"),
    (lambda m, t: median_speedup(torch.zeros(2, 3), torch.ones(2, 3)), ValueError, "positive"),
])
def test_bad_input_is_refused_clearly(shipped, call, error, words):
    with pytest.raises(error, match=words):
        call(*shipped)
