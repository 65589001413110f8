"""The book's BPE against Hugging Face ``tokenizers`` (chapter 7.2): configured alike, the Rust
trainer learns the book's merges in the book's order; converted, it encodes to the book's ids;
GPT-2's ``ByteLevel`` alphabet order breaks ties differently, and only ties."""

import pytest

pytest.importorskip("tokenizers")

from llm_lessons.data import load_plays  # noqa: E402
from llm_lessons.interop.hf_bpe import (  # noqa: E402
    byte_to_unicode,
    first_difference,
    from_hf,
    pair_counts_after,
    to_hf,
    train_byte_level,
    train_like_book,
)
from llm_lessons.tokenizers import BPETokenizer  # noqa: E402


@pytest.fixture(scope="module")
def texts():
    plays = load_plays(["hamlet", "twelfth-night"])
    return plays["hamlet"], plays["twelfth-night"][:40_000] + " naïve café — 语言 🙂\n"


@pytest.fixture(scope="module")
def book(texts):
    return BPETokenizer().train(texts[0], vocab_size=500)


def test_the_byte_table_is_gpt2s():
    convert = pytest.importorskip("transformers.convert_slow_tokenizer")
    assert byte_to_unicode() == convert.bytes_to_unicode()
    from tokenizers.pre_tokenizers import ByteLevel

    assert set(byte_to_unicode().values()) == set(ByteLevel.alphabet())


@pytest.mark.parametrize("pattern", ["gpt2", "whitespace"])
def test_configured_like_the_book_tokenizers_learns_the_same_merges_in_order(texts, pattern):
    ours = BPETokenizer(pattern).train(texts[0], vocab_size=400)
    theirs = train_like_book(texts[0], vocab_size=400, pattern=pattern)
    assert list(theirs.merges.items()) == list(ours.merges.items())
    assert theirs.encode(texts[1]) == ours.encode(texts[1])


def test_non_ascii_text_trains_alike_byte_for_byte():
    text = "naïve café — naïve — 语言语言 🙂🙂 café\n" * 20
    ours, theirs = BPETokenizer().train(text, 300), train_like_book(text, 300)
    assert list(theirs.merges.items()) == list(ours.merges.items())


def test_the_converted_tokenizer_gives_the_books_ids_and_text_back(texts, book):
    hf = to_hf(book)
    for text in (texts[1], "", "\n\n  x", "It's a—b 12,000 don't"):
        ids = book.encode(text)
        assert hf.encode(text).ids == ids
        assert hf.decode(ids) == text == book.decode(ids)
    assert from_hf(hf).merges == book.merges  # and back


def test_transformers_wraps_the_converted_tokenizer(texts, book):
    transformers = pytest.importorskip("transformers")
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=to_hf(book))
    line = texts[1][:500]
    assert fast(line)["input_ids"] == book.encode(line)
    assert from_hf(fast).merges == book.merges


def test_gpt2_byte_level_order_changes_only_tie_breaks(texts, book):
    gpt2_style = from_hf(train_byte_level(texts[0].splitlines(keepends=True), 500, 1))
    k = first_difference(book, gpt2_style)
    assert k is not None and k < 244
    ours, theirs = list(book.merges)[k], list(gpt2_style.merges)[k]
    counts = pair_counts_after(texts[0], book, k)
    assert counts[ours] == counts[theirs] == max(counts.values())  # a tie at the top
    table = byte_to_unicode()  # the book takes the smaller byte ids; tokenizers the smaller
    assert ours < theirs  # code points of GPT-2's stand-ins (a space is 'Ġ', U+0120)
    as_bytes = [book.vocab[i] for i in ours], [gpt2_style.vocab[i] for i in theirs]
    stand_ins = [["".join(table[b] for b in piece) for piece in pair] for pair in as_bytes]
    assert stand_ins[1] < stand_ins[0]
    # and on this text the two lists hold the same merges, in a different order
    assert ({(book.vocab[a], book.vocab[b]) for a, b in book.merges}
            == {(gpt2_style.vocab[a], gpt2_style.vocab[b]) for a, b in gpt2_style.merges})


def test_first_difference_and_counts_on_a_hand_worked_case():
    a = BPETokenizer().train("aaabdaaabac", 259)  # (a a), (a b), (aa ab)
    b = BPETokenizer.from_merges([(97, 97), (256, 97)])
    assert first_difference(a, a) is None and first_difference(a, b) == 1
    assert first_difference(b, BPETokenizer.from_merges([(97, 97)])) is None  # a prefix
    assert pair_counts_after("aaabdaaabac", a, 0)[(97, 97)] == 4
    assert pair_counts_after("aaabdaaabac", a, 1) == {(256, 97): 2, (97, 98): 2, (98, 100): 1,
                                                       (100, 256): 1, (98, 97): 1, (97, 99): 1}


def test_bad_input_is_refused(book):
    with pytest.raises(ValueError, match="empty"):
        train_like_book("", 300)
    with pytest.raises(TypeError, match="must be a str"):
        train_like_book(b"bytes", 300)
    with pytest.raises(ValueError, match="vocab_size"):
        train_like_book("abc", 100)
    with pytest.raises(ValueError, match="pattern must be one of"):
        train_like_book("abc", 300, pattern=r"\w+")
    with pytest.raises(TypeError, match="BPETokenizer"):
        to_hf("not a tokenizer")
    with pytest.raises(TypeError, match="tokenizers.Tokenizer"):
        from_hf(book)
    with pytest.raises(TypeError, match="not one str"):
        train_byte_level("one string", 300)
    with pytest.raises(ValueError, match="n_merges"):
        pair_counts_after("abc", book, len(book.merges) + 1)
    same_bytes = BPETokenizer.from_merges([(97, 98), (256, 99), (98, 99), (97, 258)])  # abc twice
    with pytest.raises(ValueError, match="one id per piece"):
        to_hf(same_bytes)
    custom = BPETokenizer(r"\w+|\W+")
    with pytest.raises(ValueError, match="named split pattern"):
        to_hf(custom)


def test_a_word_level_tokenizer_is_not_a_byte_level_bpe():
    from tokenizers import Tokenizer, models

    with pytest.raises(ValueError, match="expected a BPE model"):
        from_hf(Tokenizer(models.WordLevel({"a": 0}, unk_token=None)))
    with pytest.raises(ValueError, match="stands for no byte"):
        from_hf(Tokenizer(models.BPE(vocab={"€": 0, "x": 1, "€x": 2}, merges=[("€", "x")])))
