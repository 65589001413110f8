"""Retrieval-augmented generation (6.2): the window is cut from the left, only the continuation
is scored (checked against the model's own loss with -100 targets, one window at a time), BM25
finds the chunk that shares the query's rare words, and bad input is refused by name."""

from __future__ import annotations

import pytest
import torch

from llm_lessons.applications.rag import (
    ChunkRetriever,
    continuation_loss,
    continuation_targets,
    fit_window,
    make_chunks,
    paired_difference,
    passage_after_match,
)
from llm_lessons.gpt import GPT, GPTConfig
from llm_lessons.tokenizers import CharTokenizer

TEXT = "the king is dead, long live the king\nROMEO:\nwherefore art thou romeo?\n"


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    tok = CharTokenizer(TEXT)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=16))
    return model.eval(), tok


def test_fit_window_keeps_the_continuation_and_the_end_of_the_passage():
    assert fit_window("ABCDEFGH", "prompt", "next", 14) == "EFGHpromptnext"
    assert fit_window("AB", "prompt", "next", 14) == "ABpromptnext"
    assert fit_window("AB", "prompt", "next", 4) == "next"


def test_continuation_loss_equals_the_models_loss_with_ignored_targets(tiny):
    model, tok = tiny
    contexts = ["the king is dead, long", "ROMEO:\n", "x" * 0 + "wherefore art thou"]
    conts = [" live", "wh", " romeo?"]
    got = continuation_loss(model, tok, contexts, conts, batch_size=2)
    for i, (c, x) in enumerate(zip(contexts, conts, strict=True)):
        window = torch.tensor(tok.encode((c + x)[-(model.block_size + 1):]))
        inputs, targets = continuation_targets(window, len(x))
        _, loss = model(inputs[None], targets=targets[None])  # the book's -100 convention
        assert torch.isclose(got[i], loss, atol=1e-5), (i, got[i], loss)


def test_a_long_context_is_cut_so_the_window_fits_the_block(tiny):
    model, tok = tiny
    long = continuation_loss(model, tok, ["wherefore art " * 5], ["thou"])
    short = continuation_loss(model, tok, [("wherefore art " * 5)[-(17 - 4):]], ["thou"])
    assert torch.allclose(long, short)


def test_bm25_finds_the_chunk_with_the_rare_words():
    chunks = make_chunks({"play": TEXT}, size=16, stride=8)
    assert all(len(c.text) == 16 for c in chunks) and chunks[1].start == 8
    found, scores = ChunkRetriever(chunks).search(["O wherefore", "zzz"], k=2)
    assert found.shape == scores.shape == (2, 2)
    assert "wherefore" in chunks[int(found[0, 0])].text
    assert float(scores[1].max()) == 0.0


def test_the_passage_follows_the_longest_matching_tail():
    assert passage_after_match(TEXT, 0, 20, "I saw the kin", 12, 4) == " king is dea"
    assert passage_after_match(TEXT, 0, 20, "I saw the kin", 12, 4, limit=10) == "the king i"
    assert len(passage_after_match(TEXT, 0, 20, "qqq", 12)) == 12  # no match: the chunk's end


def test_paired_difference_of_a_constant_shift_is_exact():
    a = torch.rand(50, generator=torch.Generator().manual_seed(0))
    mean, low, high = paired_difference(a + 0.25, a)
    assert mean == pytest.approx(0.25) and low == pytest.approx(0.25) and high == pytest.approx(0.25)


@pytest.mark.parametrize("call, words", [
    (lambda: fit_window("a", "b", "", 4), "nothing to score"),
    (lambda: fit_window("a", "b", "cdefg", 4), "does not fit"),
    (lambda: fit_window(1, "b", "c", 4), "passage must be a str"),
    (lambda: fit_window("a", "b", "c", 0), "size must be an int"),
    (lambda: continuation_targets(torch.arange(4), 4), "n_scored must be an int in"),
    (lambda: continuation_targets(torch.zeros(2, 3), 1), "1-d tensor"),
    (lambda: make_chunks({"a": ""}, 4, 8), "stride must be"),
    (lambda: ChunkRetriever([]), "no chunks"),
    (lambda: paired_difference(torch.zeros(3), torch.zeros(4)), "one shape"),
])
def test_bad_input_is_refused_by_name(call, words):
    with pytest.raises((ValueError, TypeError), match=words):
        call()


def test_bad_scoring_input_is_refused(tiny):
    model, tok = tiny
    with pytest.raises(ValueError, match="no windows"):
        continuation_loss(model, tok, [], [])
    with pytest.raises(ValueError, match="2 contexts but 1"):
        continuation_loss(model, tok, ["a", "b"], ["c"])
    with pytest.raises(ValueError, match="at least one character of context"):
        continuation_loss(model, tok, [""], ["k"])
    with pytest.raises(ValueError, match="k must be an int"):
        ChunkRetriever(make_chunks({"p": TEXT}, 16, 8)).search(["king"], k=0)
