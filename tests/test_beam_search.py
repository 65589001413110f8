"""Beam search against greedy decoding and exhaustive enumeration; token_logprobs against a
plain loop of forward passes and against generate's own log-probabilities."""

import itertools

import pytest
import torch

from llm_lessons.beam_search import beam_search, token_logprobs
from llm_lessons.gpt import GPT, GPTConfig
from llm_lessons.sampling import generate


def peaked_gpt(vocab_size=7, block_size=10, seed=0, std=0.4):
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=2, n_head=2, n_embd=16))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, std)
    return model.eval()


def loop_logprobs(model, seq, start):
    """log p(seq[t] | the last block_size tokens before t), one forward pass per token."""
    out = []
    with torch.no_grad():
        for t in range(start, seq.shape[1]):
            logits, _ = model(seq[:, max(0, t - model.block_size):t])
            out.append(logits[:, -1].log_softmax(-1).gather(-1, seq[:, t:t + 1]))
    return torch.cat(out, dim=1)


@pytest.mark.parametrize("T,start", [(5, 1), (10, 3), (11, 1), (25, 1), (25, 13), (25, 25)])
def test_token_logprobs_equals_a_loop_of_forward_passes(T, start):
    model = peaked_gpt()
    seq = torch.randint(0, 7, (3, T), generator=torch.Generator().manual_seed(T))
    ours = token_logprobs(model, seq, start=start, chunk=4)
    assert ours.shape == (3, T - start)
    if T > start:
        assert torch.allclose(ours, loop_logprobs(model, seq, start), atol=1e-5)


def test_token_logprobs_equal_generates_logprobs_past_the_window():
    model = peaked_gpt()
    prompt = torch.tensor([[1, 2, 3], [3, 2, 1]])
    out, lp = generate(model, prompt, 20, temperature=1.5, generator=torch.Generator().manual_seed(0),
                       return_logprobs=True)
    assert torch.allclose(token_logprobs(model, out, start=3), lp, atol=1e-5)


@pytest.mark.parametrize("use_cache", [True, False])
@pytest.mark.parametrize("seed", range(3))
def test_width_one_is_greedy(seed, use_cache):
    model = peaked_gpt(seed=seed)
    prompt = torch.tensor([[seed, 1, 2]])
    beams = beam_search(model, prompt, 15, beam_width=1, use_cache=use_cache)  # past block_size 10
    assert len(beams) == 1
    assert torch.equal(beams[0].tokens, generate(model, prompt, 15, greedy=True)[0])


def test_wide_beam_is_exhaustive_search():
    """With W = V^(n-1) no prefix is ever pruned: the beams are the W best of all V^n sequences."""
    V, n = 3, 4
    model = peaked_gpt(vocab_size=V, std=0.6)
    prompt = torch.tensor([[0, 2]])
    everything = torch.tensor([[0, 2, *c] for c in itertools.product(range(V), repeat=n)])  # (V^n, 2 + n)
    totals = token_logprobs(model, everything, start=2).double().sum(-1)
    best = totals.argsort(descending=True)[: V ** (n - 1)]
    beams = beam_search(model, prompt, n, beam_width=V ** (n - 1))
    assert [b.tokens.tolist() for b in beams] == everything[best].tolist()
    logprobs = torch.tensor([b.logprob for b in beams], dtype=torch.float64)
    assert torch.allclose(logprobs, totals[best], atol=1e-5)


@pytest.mark.parametrize("length_penalty", [0.0, 1.0, 2.0])
def test_scores_are_sorted_and_recomputable(length_penalty):
    model = peaked_gpt(std=0.25)
    prompt = torch.tensor([[1, 2, 3]])
    beams = beam_search(model, prompt, 12, beam_width=5, length_penalty=length_penalty, eos_id=0)
    scores = [b.score for b in beams]
    assert len(beams) == 5 and scores == sorted(scores, reverse=True)
    assert len({tuple(b.tokens.tolist()) for b in beams}) == 5  # no duplicates
    for b in beams:
        lp = token_logprobs(model, b.tokens[None], start=3).sum().item()
        assert b.length == len(b.tokens) - 3 and b.logprob == pytest.approx(lp, abs=1e-4)
        assert b.score == pytest.approx(b.logprob / b.length ** length_penalty, rel=1e-9)
        ends = [i for i, t in enumerate(b.tokens[3:].tolist()) if t == 0]
        assert ends == ([b.length - 1] if b.finished else [])  # an end token only as the last one


def test_end_token_finishes_beams_early():
    model = peaked_gpt(std=0.25)
    beams = beam_search(model, torch.tensor([[1, 2, 3]]), 40, beam_width=3, eos_id=0)
    assert all(b.finished for b in beams) and max(b.length for b in beams) < 40


def test_cache_does_not_change_the_beams():
    model = peaked_gpt()
    prompt = torch.tensor([[4, 5]])
    a = beam_search(model, prompt, 14, beam_width=4, use_cache=True)
    b = beam_search(model, prompt, 14, beam_width=4, use_cache=False)
    assert [x.tokens.tolist() for x in a] == [x.tokens.tolist() for x in b]


def test_zero_new_tokens_returns_the_prompt():
    beams = beam_search(peaked_gpt(), torch.tensor([[1, 2]]), 0, beam_width=3)
    assert len(beams) == 1 and beams[0].tokens.tolist() == [1, 2] and beams[0].score == 0.0


@pytest.mark.parametrize("kwargs,match", [
    (dict(beam_width=0), "beam_width"), (dict(beam_width=1.5), "beam_width"),
    (dict(length_penalty=float("nan")), "length_penalty"), (dict(eos_id=-1), "eos_id"),
    (dict(eos_id=99), "vocabulary"), (dict(max_new_tokens=-2), "max_new_tokens"),
])
def test_bad_arguments(kwargs, match):
    args = dict(max_new_tokens=3, beam_width=2) | kwargs
    with pytest.raises(ValueError, match=match):
        beam_search(peaked_gpt(), torch.tensor([[1, 2]]), **args)


def test_bad_prompts():
    with pytest.raises(ValueError, match=r"\(1, T\)"):
        beam_search(peaked_gpt(), torch.tensor([[1, 2], [3, 4]]), 3, beam_width=2)
    with pytest.raises(ValueError, match="start"):
        token_logprobs(peaked_gpt(), torch.tensor([[1, 2]]), start=0)
