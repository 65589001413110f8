"""Decoding filters and generate(): hand-worked cases, plain-Python references over random
logits (hypothesis), Hugging Face's logits processors as an oracle, a chi-square test of the
sampled frequencies, and cached vs uncached generation token for token."""

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from llm_lessons.gpt import GPT, GPTConfig
from llm_lessons.ngram import NGramLM
from llm_lessons.sampling import (
    StepDecoder,
    apply_presence_frequency_penalty,
    apply_repetition_penalty,
    apply_temperature,
    generate,
    min_p_filter,
    process_logits,
    top_k_filter,
    top_p_filter,
)

INF = float("-inf")


def peaked_gpt(vocab_size=11, block_size=12, seed=0):
    """A random GPT with large weights: peaked next-token distributions, no near-ties."""
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=2, n_head=2, n_embd=16))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.4)
    return model


class FixedLM(torch.nn.Module):
    """The same next-token logits after any context: sampling it is sampling one distribution."""

    def __init__(self, logits, block_size=4):
        super().__init__()
        self.register_buffer("z", logits)
        self.block_size = block_size

    def forward(self, idx, targets=None):
        B, T = idx.shape
        return self.z.expand(B, T, -1), None


class NoCache(torch.nn.Module):
    """A model of the common interface without new_cache (generate must use full passes)."""

    def __init__(self, model):
        super().__init__()
        self.model, self.block_size = model, model.block_size
        self.lengths = []

    def forward(self, idx, targets=None):
        self.lengths.append(idx.shape[1])
        return self.model(idx, targets)


def rank_order(z):
    """Indices from the largest value down, ties by lowest index (plain Python)."""
    return sorted(range(len(z)), key=lambda i: (-z[i], i))


def np_softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


# Logits on a coarse grid, so ties are frequent and the tie rules are exercised.
logit_rows = st.integers(1, 12).flatmap(
    lambda V: arrays(np.float64, (3, V), elements=st.integers(-8, 8).map(lambda x: x / 2.0)))


# ------------------------------------------------------------------ hand-worked cases
def test_hand_worked_filters():
    z = torch.tensor([1.0, 3.0, 2.0, 3.0])
    assert top_k_filter(z, 1).tolist() == [INF, 3.0, INF, INF]  # tie 3/3: the lower index wins
    assert top_k_filter(z, 3).tolist() == [INF, 3.0, 2.0, 3.0]
    assert torch.equal(top_k_filter(z, 9), z)
    probs = torch.tensor([0.5, 0.25, 0.15, 0.1])
    logp = probs.log()
    assert top_p_filter(logp, 0.5).isfinite().tolist() == [True, False, False, False]  # 0.5 reaches 0.5
    assert top_p_filter(logp, 0.51).isfinite().tolist() == [True, True, False, False]
    assert top_p_filter(logp, 0.9).isfinite().tolist() == [True, True, True, False]
    assert top_p_filter(logp, 0.01).isfinite().sum() == 1  # always at least one token
    # exact binary fractions: 1/4 + 1/4 reaches 0.5 exactly, so the third token is not needed
    assert top_p_filter(torch.zeros(4), 0.5).isfinite().tolist() == [True, True, False, False]
    assert top_p_filter(torch.zeros(4), 0.75).isfinite().tolist() == [True, True, True, False]
    assert min_p_filter(logp, 0.4).isfinite().tolist() == [True, True, False, False]  # 0.15 < 0.4 * 0.5
    assert min_p_filter(logp, 0.19).isfinite().tolist() == [True, True, True, True]  # 0.1 >= 0.19 * 0.5
    assert apply_temperature(z, 0).tolist() == [INF, 3.0, INF, INF]


def test_penalties_hand_worked():
    z = torch.tensor([[2.0, -2.0, 0.5, 0.0]])
    prev = torch.tensor([[1, 1, 3, 0]])
    assert apply_repetition_penalty(z, prev, 2.0).tolist() == [[1.0, -4.0, 0.5, 0.0]]
    # counts 1, 2, 0, 1: subtract 0.5 * present + 0.25 * count
    assert apply_presence_frequency_penalty(z, prev, 0.5, 0.25).tolist() == [[1.25, -3.0, 0.5, -0.75]]
    assert torch.equal(apply_repetition_penalty(z, prev[:, :0], 3.0), z)  # nothing seen yet


# ------------------------------------------------------------------ properties over random logits
@settings(max_examples=150, deadline=None)
@given(z=logit_rows, k=st.integers(1, 14))
def test_top_k_keeps_exactly_k_lowest_index_on_ties(z, k):
    out = top_k_filter(torch.from_numpy(z), k).numpy()
    for row, filtered in zip(z, out, strict=True):
        kept = set(np.flatnonzero(np.isfinite(filtered)).tolist())
        assert kept == set(rank_order(row.tolist())[: min(k, len(row))])
        assert np.array_equal(filtered[list(kept)], row[list(kept)])  # kept logits untouched


@settings(max_examples=150, deadline=None)
@given(z=logit_rows, p=st.floats(0.001, 1.0))
def test_top_p_keeps_smallest_set_reaching_p(z, p):
    out = top_p_filter(torch.from_numpy(z), p).numpy()
    for row, filtered in zip(z, out, strict=True):
        probs = np_softmax(row)
        order = rank_order(row.tolist())
        kept = np.flatnonzero(np.isfinite(filtered)).tolist()
        m = len(kept)
        assert m >= 1 and set(kept) == set(order[:m])  # a most-likely prefix
        mass = probs[order[:m]].sum()
        assert mass >= p - 1e-9  # it reaches p ...
        assert probs[order[: m - 1]].sum() < p + 1e-9  # ... and one token fewer would not


@settings(max_examples=150, deadline=None)
@given(z=logit_rows, p=st.floats(0.0, 1.0))
def test_min_p_keeps_tokens_above_scaled_threshold(z, p):
    out = min_p_filter(torch.from_numpy(z), p).numpy()
    for row, filtered in zip(z, out, strict=True):
        probs = np_softmax(row)
        threshold = p * probs.max()
        clear = np.abs(probs - threshold) > 1e-12  # leave exact-boundary rounding aside
        assert np.array_equal(np.isfinite(filtered)[clear], (probs >= threshold)[clear])
        assert np.isfinite(filtered[np.argmax(row)])


@settings(max_examples=150, deadline=None)
@given(z=logit_rows, k=st.integers(1, 14), p=st.floats(0.01, 1.0), mp=st.floats(0.0, 1.0),
       t=st.floats(0.05, 5.0))
def test_filtered_distributions_sum_to_one(z, k, p, mp, t):
    zt = torch.from_numpy(z)
    for filtered in (top_k_filter(zt, k), top_p_filter(zt, p), min_p_filter(zt, mp), apply_temperature(zt, t),
                     apply_temperature(zt, 0),
                     process_logits(zt, temperature=t, top_k=k, top_p=p, min_p=mp)):
        probs = filtered.softmax(-1)
        assert torch.allclose(probs.sum(-1), torch.ones(3, dtype=torch.float64), atol=1e-12)
        assert (probs[filtered == INF] == 0).all()


@settings(max_examples=100, deadline=None)
@given(z=logit_rows, t=st.floats(0.05, 20.0))
def test_temperature_matches_softmax_of_scaled_logits(z, t):
    ref = np.stack([np_softmax(row / t) for row in z])
    assert np.allclose(apply_temperature(torch.from_numpy(z), t).softmax(-1).numpy(), ref, atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(z=logit_rows, penalty=st.floats(0.1, 5.0), presence=st.floats(-2, 2), frequency=st.floats(-2, 2),
       data=st.data())
def test_penalties_match_a_python_loop(z, penalty, presence, frequency, data):
    V = z.shape[1]
    prev = np.array(data.draw(arrays(np.int64, (3, 6), elements=st.integers(0, V - 1))))
    rep = apply_repetition_penalty(torch.from_numpy(z), torch.from_numpy(prev), penalty).numpy()
    zt, pt = torch.from_numpy(z), torch.from_numpy(prev)
    pf = apply_presence_frequency_penalty(zt, pt, presence, frequency).numpy()
    for b in range(3):
        for i in range(V):
            c = int((prev[b] == i).sum())
            want = z[b, i] if c == 0 else (z[b, i] / penalty if z[b, i] > 0 else z[b, i] * penalty)
            assert rep[b, i] == pytest.approx(want, abs=1e-12)
            assert pf[b, i] == pytest.approx(z[b, i] - presence * (c > 0) - frequency * c, abs=1e-12)


def test_temperature_to_zero_tends_to_argmax():
    z = torch.randn(5, 30, generator=torch.Generator().manual_seed(0))
    for t in (1e-2, 1e-3):
        probs = apply_temperature(z, t).softmax(-1)
        assert torch.allclose(probs, torch.nn.functional.one_hot(z.argmax(-1), 30).float(), atol=1e-6)


# ------------------------------------------------------------------ Hugging Face as the oracle
@pytest.mark.parametrize("seed", range(5))
def test_filters_agree_with_transformers(seed):
    lp = pytest.importorskip("transformers.generation.logits_process")
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(6, 40, generator=g) * 3
    ids = torch.randint(0, 40, (6, 15), generator=g)
    for k in (1, 3, 17, 40):
        assert torch.equal(top_k_filter(scores, k), lp.TopKLogitsWarper(k)(ids, scores.clone()))
    for p in (0.05, 0.3, 0.7, 0.95):
        assert torch.equal(top_p_filter(scores, p), lp.TopPLogitsWarper(p)(ids, scores.clone()))
    for p in (0.0, 0.05, 0.2, 0.6, 1.0):
        assert torch.equal(min_p_filter(scores, p), lp.MinPLogitsWarper(p)(ids, scores.clone()))
    for penalty in (0.5, 1.3, 2.0):
        ours = apply_repetition_penalty(scores, ids, penalty)
        assert torch.equal(ours, lp.RepetitionPenaltyLogitsProcessor(penalty)(ids, scores.clone()))
    for t in (0.3, 1.7):
        ref = lp.TemperatureLogitsWarper(t)(ids, scores.clone())
        assert torch.allclose(apply_temperature(scores, t), ref)
    # the whole pipeline in transformers' own order
    chain = lp.LogitsProcessorList([
        lp.RepetitionPenaltyLogitsProcessor(1.2), lp.TemperatureLogitsWarper(0.8), lp.TopKLogitsWarper(20),
        lp.TopPLogitsWarper(0.9), lp.MinPLogitsWarper(0.05)])
    ours = process_logits(scores, ids, repetition_penalty=1.2, temperature=0.8, top_k=20, top_p=0.9,
                          min_p=0.05)
    assert torch.allclose(ours, chain(ids, scores.clone()))


# ------------------------------------------------------------------ generate: sampling statistics
@pytest.mark.parametrize("knobs", [dict(top_k=4), dict(top_p=0.8), dict(min_p=0.15),
                                   dict(temperature=0.7, top_k=6, top_p=0.9)])
def test_sampled_frequencies_match_filtered_distribution(knobs):
    stats = pytest.importorskip("scipy.stats")
    z = torch.randn(12, generator=torch.Generator().manual_seed(3)) * 1.5
    model = FixedLM(z)
    n = 20000
    out = generate(model, torch.zeros(n, 1, dtype=torch.long), 1, generator=torch.Generator().manual_seed(0),
                   **knobs)
    counts = torch.bincount(out[:, 1], minlength=12).double()
    want = process_logits(z.double(), **knobs).softmax(-1)
    kept = want > 0
    assert (counts[~kept] == 0).all()  # removed tokens are never drawn
    assert stats.chisquare(counts[kept], want[kept] * n).pvalue > 1e-3
    assert not kept.all()
    # the test has power: the same counts reject the unfiltered distribution
    assert stats.chisquare(counts, z.double().softmax(-1) * n).pvalue < 1e-6


def test_sampling_is_reproducible_with_a_generator():
    model, prompt = peaked_gpt(), torch.tensor([[1, 2, 3], [4, 5, 6]])
    a = generate(model, prompt, 20, temperature=1.5, generator=torch.Generator().manual_seed(7))
    b = generate(model, prompt, 20, temperature=1.5, generator=torch.Generator().manual_seed(7))
    c = generate(model, prompt, 20, temperature=1.5, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(a[:, :3], prompt) and a.shape == (2, 23)


def test_temperature_zero_is_greedy_and_greedy_is_argmax():
    model, prompt = peaked_gpt(), torch.tensor([[1, 2, 3]])
    greedy = generate(model, prompt, 25, greedy=True)
    assert torch.equal(generate(model, prompt, 25, temperature=0), greedy)
    cold = generate(model, prompt, 25, temperature=1e-4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(cold, greedy)
    seq = prompt
    for _ in range(25):  # the definition, spelled out with plain forward passes
        logits, _ = model(seq[:, -model.block_size:])
        seq = torch.cat([seq, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(seq, greedy)


def test_generate_works_for_an_ngram_model():
    lm = NGramLM(order=3, smoothing="add_k", k=0.1, vocab_size=5).fit([0, 1, 2, 3, 4, 1, 2, 0, 1, 3] * 5)
    out = generate(lm, torch.tensor([[0, 1]]), 12, greedy=True)[0].tolist()
    seq = [0, 1]
    for _ in range(12):
        seq.append(int(lm.next_token_probs(seq[-2:]).argmax()))
    assert out == seq


# ------------------------------------------------------------------ the key-value cache
@pytest.mark.parametrize("prompt_len,new", [(3, 5), (4, 30)])  # 30 goes well past block_size 12
def test_cache_gives_exactly_the_uncached_tokens(prompt_len, new):
    model = peaked_gpt()
    prompt = torch.randint(0, 11, (3, prompt_len), generator=torch.Generator().manual_seed(1))
    for kwargs in (dict(greedy=True), dict(temperature=1.3, top_k=8),
                   dict(top_p=0.9, repetition_penalty=1.5)):
        runs = [generate(model, prompt, new, use_cache=c, generator=torch.Generator().manual_seed(5),
                         **kwargs) for c in (True, False)]
        assert torch.equal(runs[0], runs[1]), kwargs


def test_cache_feeds_one_token_per_step_until_the_window_is_full():
    model = peaked_gpt(block_size=8)
    lengths = []
    original = model.forward

    def recording_forward(idx, targets=None, cache=None):
        lengths.append(idx.shape[1])
        return original(idx, targets, cache)

    model.forward = recording_forward
    generate(model, torch.tensor([[1, 2, 3]]), 8, greedy=True)
    assert lengths == [3, 1, 1, 1, 1, 1, 8, 8]  # 3..8 fit; then rebuilt from the last 8 tokens
    wrapped = NoCache(peaked_gpt(block_size=8))
    generate(wrapped, torch.tensor([[1, 2, 3]]), 8, greedy=True)
    assert wrapped.lengths == [3, 4, 5, 6, 7, 8, 8, 8]


def test_step_decoder_logits_match_full_forward():
    model = peaked_gpt().eval()
    seq = torch.randint(0, 11, (2, 30), generator=torch.Generator().manual_seed(2))
    dec = StepDecoder(model, use_cache=True)
    with torch.no_grad():
        for t in range(1, 31):
            ref = model(seq[:, max(0, t - 12):t])[0][:, -1]
            assert torch.allclose(dec(seq[:, :t]), ref, atol=1e-5)


def test_generate_restores_training_mode_and_penalty_window():
    model = peaked_gpt().train()
    prompt = torch.tensor([[1, 1, 1, 2]])
    generate(model, prompt, 3)
    assert model.training
    # a window of 1 token only penalises the last token: equal to penalising prev = last token
    out = generate(model, prompt, 1, greedy=True, repetition_penalty=50.0, penalty_window=1)
    logits = model.eval()(prompt)[0][:, -1]
    assert out[0, -1] == apply_repetition_penalty(logits, prompt[:, -1:], 50.0).argmax()


def test_long_prompt_is_cropped_from_the_left_with_a_warning():
    model = peaked_gpt(block_size=8)
    prompt = torch.randint(0, 11, (1, 20), generator=torch.Generator().manual_seed(0))
    with pytest.warns(UserWarning, match="cropped from the left"):
        long = generate(model, prompt, 5, greedy=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        short = generate(model, prompt[:, -8:], 5, greedy=True)
    assert torch.equal(long[:, 20:], short[:, 8:])


def test_return_logprobs_are_the_unmodified_model_logprobs():
    model = peaked_gpt()
    prompt = torch.tensor([[1, 2, 3]])
    out, lp = generate(model, prompt, 6, temperature=2.0, top_k=3, generator=torch.Generator().manual_seed(0),
                       return_logprobs=True)
    full = model.eval()(out[:, :-1])[0].log_softmax(-1)  # (1, 8, V): 9 tokens fit in block 12
    ref = full[0, 2:].gather(-1, out[0, 3:, None]).squeeze(-1)
    assert lp.shape == (1, 6) and torch.allclose(lp[0], ref, atol=1e-5)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("fn,arg,match", [
    (top_k_filter, 0, "top_k"), (top_k_filter, 2.5, "top_k"), (top_p_filter, 0.0, "top_p"),
    (top_p_filter, 1.5, "top_p"), (top_p_filter, math.nan, "top_p"), (min_p_filter, -0.1, "min_p"),
    (apply_temperature, -1.0, "temperature"), (apply_temperature, math.inf, "temperature"),
])
def test_bad_filter_arguments(fn, arg, match):
    with pytest.raises(ValueError, match=match):
        fn(torch.zeros(4), arg)


def test_bad_logits_and_penalties():
    with pytest.raises(TypeError, match="floating-point"):
        top_k_filter(torch.arange(4), 2)
    with pytest.raises(ValueError, match="NaN"):
        top_k_filter(torch.tensor([0.0, math.nan]), 1)
    with pytest.raises(ValueError, match="entirely -inf"):
        top_p_filter(torch.full((3,), INF), 0.5)
    with pytest.raises(ValueError, match="repetition_penalty"):
        apply_repetition_penalty(torch.zeros(4), torch.tensor([1]), 0.0)
    with pytest.raises(ValueError, match="range"):
        apply_repetition_penalty(torch.zeros(4), torch.tensor([4]), 2.0)
    with pytest.raises(ValueError, match="leading dims"):
        apply_presence_frequency_penalty(torch.zeros(2, 4), torch.tensor([1]), 0.1, 0.1)


@pytest.mark.parametrize("kwargs,match", [
    (dict(max_new_tokens=-1), "max_new_tokens"), (dict(top_k=0), "top_k"), (dict(top_p=0.0), "top_p"),
    (dict(top_p=1.01), "top_p"), (dict(temperature=-0.5), "temperature"), (dict(min_p=2.0), "min_p"),
    (dict(repetition_penalty=0.0), "repetition_penalty"),
    (dict(repetition_penalty=-1.0), "repetition_penalty"),
    (dict(penalty_window=0), "penalty_window"),
])
def test_bad_generate_arguments(kwargs, match):
    args = dict(max_new_tokens=3) | kwargs
    with pytest.raises(ValueError, match=match):
        generate(peaked_gpt(), torch.tensor([[1, 2]]), **args)


def test_bad_prompts():
    model = peaked_gpt()
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        generate(model, torch.tensor([1, 2]), 3)
    with pytest.raises(ValueError, match="T >= 1"):
        generate(model, torch.zeros(1, 0, dtype=torch.long), 3)
    with pytest.raises(TypeError, match="integer"):
        generate(model, torch.tensor([[1.0, 2.0]]), 3)
    with pytest.raises(TypeError, match="block_size"):
        generate(torch.nn.Linear(2, 2), torch.tensor([[1]]), 3)
