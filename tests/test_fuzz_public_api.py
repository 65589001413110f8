"""Random bad input thrown at the public API (hypothesis): every call either raises a clear
ValueError/TypeError or returns a correct result, never another exception and never NaN.

The invariants checked on results are independent of the code under test: a distribution
that softmax can form (no NaN, no +inf, not all -inf), ids inside the vocabulary, a finite
negative log-likelihood, a config whose fields have the types they are declared with.
"""

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_lessons import sampling, validation
from llm_lessons.evaluation import likelihood as metrics
from llm_lessons.gpt import GPT, GPTConfig
from llm_lessons.tokenizers import BPETokenizer, CharTokenizer
from llm_lessons.training import TrainConfig, evaluate

V = 6
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ANYTHING = st.one_of(
    st.none(), st.booleans(), st.integers(-10**20, 10**20), st.integers(-3, 12),
    st.floats(allow_nan=True, allow_infinity=True), st.floats(0, 1), st.sampled_from([1e-320, 5e-324, 1e300]),
    st.text(max_size=4), st.lists(st.integers(-3, 10), max_size=4), st.lists(st.floats(), max_size=3),
)
# sizes that are wrong in kind or sign, but never a legitimate request for 10**20 batches
SIZES = st.one_of(st.none(), st.booleans(), st.integers(-3, 12), st.floats(allow_nan=True),
                  st.text(max_size=2))


@pytest.fixture(scope="module")
def gpt():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=V, block_size=6, n_layer=1, n_head=1, n_embd=4)).eval()


def clear_error_or(call):
    """The call's result, or None if it raised ValueError/TypeError (anything else fails the test)."""
    try:
        return call()
    except (ValueError, TypeError) as err:
        assert str(err), "an error must say what was wrong"
        return None


def assert_distribution(logits):
    assert not torch.isnan(logits).any() and not torch.isposinf(logits).any()
    assert (logits > float("-inf")).any(dim=-1).all()


logit_rows = st.lists(st.one_of(st.floats(-1e30, 1e30), st.just(float("-inf"))), min_size=1, max_size=6)


@SETTINGS
@given(row=logit_rows, value=ANYTHING, knob=st.sampled_from(["temperature", "top_k", "top_p", "min_p",
                                                               "repetition_penalty", "presence_penalty"]))
def test_logit_processors(row, value, knob):
    logits = torch.tensor([row])
    if not (logits > float("-inf")).any():
        logits[0, 0] = 0.0
    prev = torch.tensor([[0]])
    out = clear_error_or(lambda: sampling.process_logits(logits, prev, **{knob: value}))
    if out is not None:
        assert out.shape == logits.shape
        assert_distribution(out)


@SETTINGS
@given(n=ANYTHING, temperature=ANYTHING, top_k=ANYTHING, greedy=ANYTHING, prompt=ANYTHING)
def test_generate(gpt, n, temperature, top_k, greedy, prompt):
    idx = torch.tensor([prompt]) if isinstance(prompt, list) and prompt and all(
        isinstance(i, int) for i in prompt) else prompt
    n = n if not isinstance(n, int) or isinstance(n, bool) or n < 0 else min(n, 4)
    gen = torch.Generator().manual_seed(0)
    for call in (lambda: sampling.generate(gpt, idx, n, temperature=temperature, top_k=top_k,
                                           greedy=greedy, generator=gen),
                 lambda: gpt.generate(idx, n, temperature=temperature, top_k=top_k, greedy=greedy,
                                      generator=gen)):
        out = clear_error_or(call)
        if out is not None:
            assert out.shape == (idx.shape[0], idx.shape[1] + n)
            assert int(out.min()) >= 0 and int(out.max()) < V


@SETTINGS
@given(ids=ANYTHING)
def test_decode(ids):
    for tok in (CharTokenizer("abcdef"), BPETokenizer()):
        out = clear_error_or(lambda tok=tok: tok.decode(ids))
        if out is not None:
            assert isinstance(ids, list) and all(type(i) is int for i in ids)  # nothing else decodes
            assert isinstance(out, str)


@SETTINGS
@given(ids=ANYTHING, batch_size=ANYTHING)
def test_token_nll(gpt, ids, batch_size):
    out = clear_error_or(lambda: metrics.token_nll(gpt, ids, batch_size=batch_size))
    if out is not None:
        assert all(type(i) is int and 0 <= i < V for i in ids)
        assert out.shape == (len(ids) - 1,) and bool(torch.isfinite(out).all()) and bool((out >= 0).all())


CONFIG_FIELDS = ["vocab_size", "block_size", "n_layer", "n_head", "n_embd", "dropout", "bias"]


@SETTINGS
@given(field=st.sampled_from(CONFIG_FIELDS), value=ANYTHING)
def test_gpt_config(field, value):
    values = {"vocab_size": 5, "block_size": 4, "n_layer": 1, "n_head": 1, "n_embd": 4, field: value}
    cfg = clear_error_or(lambda: GPTConfig(**values))
    if cfg is not None:
        assert isinstance(cfg.bias, bool) and isinstance(cfg.dropout, (int, float)) and 0 <= cfg.dropout < 1
        assert all(type(getattr(cfg, f)) is int and getattr(cfg, f) >= 1 for f in CONFIG_FIELDS[:5])


TRAIN_FIELDS = ["max_steps", "batch_size", "lr", "min_lr_ratio", "warmup_steps", "weight_decay",
                "grad_clip", "eval_interval", "eval_batches", "sample_interval", "seed", "betas"]


@SETTINGS
@given(field=st.sampled_from(TRAIN_FIELDS), value=ANYTHING)
def test_train_config(field, value):
    cfg = clear_error_or(lambda: TrainConfig(**{field: value}))
    if cfg is not None:
        assert math.isfinite(cfg.lr) and cfg.lr > 0 and cfg.grad_clip >= 0 and cfg.batch_size >= 1


@SETTINGS
@given(batch_size=SIZES, num_batches=SIZES)
def test_evaluate(gpt, batch_size, num_batches):
    data = torch.arange(30) % V
    loss = clear_error_or(lambda: evaluate(gpt, data, batch_size=batch_size, num_batches=num_batches))
    if loss is not None:
        assert math.isfinite(loss) and loss > 0


@SETTINGS
@given(value=ANYTHING, low=st.integers(-2, 2))
def test_validation_helpers_agree_with_their_contract(value, low):
    got = clear_error_or(lambda: validation.check_int(value, "x", low=low))
    if got is not None:
        assert type(got) is int and got >= low and not isinstance(value, (bool, float, str))
    real = clear_error_or(lambda: validation.check_real(value, "x", low=0.0))
    if real is not None:
        assert math.isfinite(real) and real >= 0
