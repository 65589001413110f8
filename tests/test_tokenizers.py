"""Tokenizers: hand-worked BPE merges, a naive BPE reference, round trips on edge strings."""

import json
from collections import Counter
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_lessons.data import load_shakespeare
from llm_lessons.tokenizers import BPETokenizer, CharTokenizer, WordTokenizer

EDGE_STRINGS = [
    "", " ", "\n", "\n\n\n", "\t \r\n  ", "hello world", "   leading and trailing   ",
    "🙂🤖👩‍👩‍👧", "语言模型是什么？", "naïve café — Ångström", "\x00\x01\x7f\x80", "a" * 500,
    "it's we'll they've", "x_y__z 123 4.56", "Ǆ² ½ ٣", "MACBETH:\nIs this a dagger which I see?\n",
]


@pytest.fixture(scope="module")
def text():
    return load_shakespeare(["macbeth"])[:30_000]


@pytest.fixture(scope="module")
def bpe(text):
    return BPETokenizer().train(text, vocab_size=400)


# ---------------------------------------------------------------- characters and words
def test_char_tokenizer_round_trip_and_vocab():
    tok = CharTokenizer("To be, or not to be")
    assert tok.chars == sorted(set("To be, or not to be")) and tok.vocab_size == 9
    assert [tok.itos[i] for i in tok.encode("be to")] == list("be to")
    assert tok.decode(tok.encode("not to be, or")) == "not to be, or"
    assert CharTokenizer.from_text("ab").stoi == {"a": 0, "b": 1}


def test_char_tokenizer_errors(tmp_path):
    tok = CharTokenizer("abc")
    with pytest.raises(ValueError, match=r"character 'z' at position 2"):
        tok.encode("abzc")
    with pytest.raises(ValueError, match="non-empty"):
        CharTokenizer("")
    with pytest.raises(TypeError):
        CharTokenizer(["a", "b"])
    with pytest.raises(ValueError, match="token id 3"):
        tok.decode([0, 3])
    tok.save(tmp_path / "c.json")
    assert CharTokenizer.load(tmp_path / "c.json").chars == tok.chars
    with pytest.raises(ValueError, match="CharTokenizer"):
        BPETokenizer.load(tmp_path / "c.json")


def test_word_tokenizer():
    tok = WordTokenizer("the cat sat on the mat.\nthe end")
    assert "".join(tok.tokenize("any text, even 'odd'  ones!\n")) == "any text, even 'odd'  ones!\n"
    assert tok.decode(tok.encode("the cat sat.")) == "the cat sat."
    assert tok.decode(tok.encode("the dog sat")) == "the <unk> sat"
    assert tok.oov_rate("the dog and the cat") == pytest.approx(2 / 5)  # dog, and
    with pytest.raises(ValueError, match="at least one word"):
        tok.oov_rate(" ,. ")
    assert WordTokenizer("a a b", min_count=2).itos == ["<unk>", " ", "a"]


# ---------------------------------------------------------------- BPE by hand
def test_bpe_hand_worked_example():
    tok = BPETokenizer().train("aaabdaaabac", vocab_size=259)
    # aa (4 times) -> 256; then ab and (256, a) tie at 2, the smaller pair ab -> 257; then 256 257 -> 258
    assert list(tok.merges.items()) == [((97, 97), 256), ((97, 98), 257), ((256, 257), 258)]
    assert tok.vocab[258] == b"aaab"
    assert tok.encode("aaabdaaabac") == [258, 100, 258, 97, 99]
    assert tok.encode("aaaa") == [256, 256]


def test_bpe_never_merges_across_chunks():
    tok = BPETokenizer().train("ab ab ab", vocab_size=300)
    # chunks 'ab', ' ab', ' ab': ab (3) -> 256, then (' ', 256) (2) -> 257; nothing else pairs up
    assert list(tok.merges.items()) == [((97, 98), 256), ((32, 256), 257)]
    assert tok.vocab_size == 258  # training stops early when no pair is left
    assert tok.encode("ab ab") == [256, 257]


def naive_bpe(text, n_merges, tok):
    """Recount every pair after every merge: slow, obvious, independent of the incremental code."""
    words = {tuple(w.encode("utf-8")): n for w, n in Counter(tok.chunks(text)).items()}
    merges = []
    for new_id in range(256, 256 + n_merges):
        counts = Counter()
        for w, n in words.items():
            for pair in pairwise(w):
                counts[pair] += n
        pair = max(counts, key=lambda p: (counts[p], -p[0], -p[1]))
        merges.append(pair)
        merged = {}
        for w, n in words.items():
            out, i = [], 0
            while i < len(w):
                if w[i:i + 2] == pair:
                    out.append(new_id)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + n
        words = merged
    return merges, sum(len(w) * n for w, n in words.items())


def test_bpe_equals_naive_reference(text):
    sample = text[:6000]
    tok = BPETokenizer().train(sample, vocab_size=256 + 60)
    merges, n_tokens = naive_bpe(sample, 60, tok)
    assert list(tok.merges) == merges
    assert len(tok.encode(sample)) == n_tokens  # encoding replays training exactly


def test_smaller_vocab_is_a_prefix(text, bpe):
    small = BPETokenizer().train(text, vocab_size=300)
    assert list(small.merges.items()) == list(bpe.merges.items())[:44]
    assert BPETokenizer.from_merges(list(small.merges)).encode(text[:500]) == small.encode(text[:500])
    # more merges, shorter sequences: every merge learned from this text shortens it
    assert len(bpe.encode(text)) < len(small.encode(text)) < len(text.encode("utf-8"))


def test_bpe_vocab_is_consistent(bpe):
    assert bpe.vocab_size == 400
    for (left, right), new_id in bpe.merges.items():
        assert bpe.vocab[new_id] == bpe.vocab[left] + bpe.vocab[right]


# ---------------------------------------------------------------- round trips
@pytest.mark.parametrize("s", EDGE_STRINGS)
def test_bpe_round_trip_edge_strings(bpe, s):
    ids = bpe.encode(s)
    assert all(0 <= i < bpe.vocab_size for i in ids)
    assert bpe.decode(ids) == s
    assert "".join(bpe.chunks(s)) == s


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_bpe_round_trip_any_string(bpe, s):
    assert "".join(bpe.chunks(s)) == s
    assert bpe.decode(bpe.encode(s)) == s


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="abcde \n", max_size=40))
def test_char_round_trip_any_string(s):
    assert CharTokenizer("abcde \n").decode(CharTokenizer("abcde \n").encode(s)) == s


def test_bpe_save_load(tmp_path, text, bpe):
    path = tmp_path / "bpe.json"
    bpe.save(path)
    payload = json.loads(path.read_text(encoding="utf-8"))  # plain JSON, not pickle
    assert payload["type"] == "BPETokenizer" and len(payload["merges"]) == 144
    loaded = BPETokenizer.load(path)
    assert loaded.merges == bpe.merges and loaded.vocab == bpe.vocab
    for s in EDGE_STRINGS + [text[:3000]]:
        assert loaded.encode(s) == bpe.encode(s)


def test_bpe_byte_fallback_and_errors(bpe):
    assert BPETokenizer().train("anything", vocab_size=256).encode("é") == [0xC3, 0xA9]
    assert bpe.decode([0xE8]) == "\ufffd"  # half a character is shown as the replacement mark
    with pytest.raises(ValueError, match=r"vocab_size must be an int >= 256 \(the byte alphabet\)"):
        BPETokenizer().train("abc", vocab_size=255)
    with pytest.raises(ValueError, match="token id 400"):
        bpe.decode([1, 400])
    with pytest.raises(TypeError):
        bpe.encode(b"bytes")
    with pytest.raises(ValueError, match="not yet defined"):
        BPETokenizer.from_merges([(97, 300)])
