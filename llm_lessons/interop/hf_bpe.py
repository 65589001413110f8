"""The book's byte-level BPE and Hugging Face ``tokenizers``' BPE, configured to agree (7.2).

:class:`~llm_lessons.tokenizers.BPETokenizer` learns merges in Python; ``tokenizers`` runs the
same algorithm in Rust. They learn the *same merges in the same order* once four choices match:

- **pre-tokenisation**: the book's regex cuts the text into chunks, and each chunk reaches the
  trainer as one word (a ``tokenizers`` pipeline with no pre-tokenizer keeps its input whole);
- **initial alphabet**: the 256 byte values, as the characters ``chr(0)`` ... ``chr(255)``
  (each chunk's UTF-8 bytes read as Latin-1, one character per byte);
- **vocabulary size** and **min frequency** 1 (the book merges while any pair is left);
- **ties**: both take the most frequent pair, and among equal counts the pair of smaller ids.
  ``tokenizers`` numbers its alphabet by code point, so with ``chr(b)`` standing for byte ``b``
  its ids *are* the book's byte ids and every tie is broken alike.

GPT-2's ``ByteLevel`` pre-tokenizer writes byte ``b`` as another stand-in character (space is
``'Ġ'``, U+0120), so its alphabet order is not byte order: the same algorithm then breaks some
ties the other way, and the merge lists part at the first tie between a pair with a
remapped byte and one without. :func:`to_hf` and :func:`from_hf` convert merge lists both ways
(ids kept: the book's ids are the converted tokenizer's ids).

>>> ours = BPETokenizer().train("aaabdaaabac", vocab_size=259)
>>> theirs = train_like_book("aaabdaaabac", vocab_size=259)
>>> list(theirs.merges.items()) == list(ours.merges.items())
True
>>> to_hf(ours).encode("aaab dab").ids == ours.encode("aaab dab")
True
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import cache
from itertools import pairwise

from llm_lessons.tokenizers import PATTERNS, BPETokenizer
from llm_lessons.validation import check_int


@cache
def byte_to_unicode() -> dict[int, str]:
    """GPT-2's stand-in character for each byte: printable Latin-1 bytes stand for themselves,
    the other 68 (control bytes, space, NBSP, soft hyphen) get ``chr(256 + n)`` in byte order.

    >>> table = byte_to_unicode()
    >>> table[ord("a")], table[ord(" ")], table[ord("\\n")]
    ('a', 'Ġ', 'Ċ')
    """
    kept = [*range(33, 127), *range(161, 173), *range(174, 256)]  # '!'..'~', '¡'..'¬', '®'..'ÿ'
    others = [b for b in range(256) if b not in kept]
    return {**{b: chr(b) for b in kept}, **{b: chr(256 + n) for n, b in enumerate(others)}}


def _check_book(tok) -> BPETokenizer:
    if not isinstance(tok, BPETokenizer):
        raise TypeError(f"expected the book's BPETokenizer, got {type(tok).__name__}")
    return tok


def _check_text(text, what: str = "text") -> str:
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str, got {type(text).__name__}")
    if not text:
        raise ValueError(f"{what} is empty: there is nothing to learn merges from")
    return text


def train_like_book(text: str, vocab_size: int, pattern: str = "gpt2") -> BPETokenizer:
    """Train ``tokenizers``' ``BpeTrainer`` configured as the book's algorithm (see the module
    docstring) and return its merges as a book :class:`BPETokenizer`, ids 256 on in order."""
    from tokenizers import Tokenizer, models, trainers  # noqa: PLC0415

    _check_text(text)
    vocab_size = check_int(vocab_size, "vocab_size", low=256, reason="the byte alphabet")
    if pattern not in PATTERNS:
        raise ValueError(f"pattern must be one of {sorted(PATTERNS)}, got {pattern!r}")
    chunks = BPETokenizer(pattern).chunks(text)  # the book's pre-split
    tok = Tokenizer(models.BPE())  # no pre-tokenizer: each chunk is one word
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=1, special_tokens=[],
                                  initial_alphabet=[chr(b) for b in range(256)],
                                  show_progress=False)
    tok.train_from_iterator((c.encode("utf-8").decode("latin-1") for c in chunks), trainer)
    return _merges_as_book(tok, {chr(b): b for b in range(256)}, pattern)


def _merges_as_book(tok, char_to_byte: dict[str, int], pattern: str) -> BPETokenizer:
    """The merges of a trained ``tokenizers`` BPE, read back as byte strings, as book ids."""
    import json  # noqa: PLC0415

    model = json.loads(tok.to_str())["model"]
    if model.get("type") != "BPE":
        raise ValueError(f"expected a BPE model, got {model.get('type')!r}")
    ids = {bytes([b]): b for b in range(256)}
    merges = []
    for merge in model["merges"]:
        left, right = merge.split(" ") if isinstance(merge, str) else merge
        try:
            a, b = (bytes(char_to_byte[c] for c in piece) for piece in (left, right))
        except KeyError as err:
            raise ValueError(f"merge {left!r} {right!r} holds {err.args[0]!r}, which stands for "
                             "no byte: not a byte-level BPE") from None
        merges.append((ids[a], ids[b]))
        ids.setdefault(a + b, 255 + len(merges))
    return BPETokenizer.from_merges(merges, pattern)


def from_hf(tokenizer) -> BPETokenizer:
    """A GPT-2-style byte-level ``tokenizers.Tokenizer`` (or a ``PreTrainedTokenizerFast``) as a
    book :class:`BPETokenizer`: the same merges in the same order, renumbered 256 on."""
    core = getattr(tokenizer, "backend_tokenizer", tokenizer)
    if not hasattr(core, "to_str"):
        raise TypeError(f"expected a tokenizers.Tokenizer, got {type(tokenizer).__name__}")
    return _merges_as_book(core, {c: b for b, c in byte_to_unicode().items()}, "gpt2")


def to_hf(tok: BPETokenizer):
    """The book's tokenizer as a ``tokenizers.Tokenizer`` with the same ids: GPT-2's
    ``ByteLevel`` stand-ins, the book's split regex, its merges in order."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers  # noqa: PLC0415

    _check_book(tok)
    if tok.pattern_name is None:
        raise ValueError("only a tokenizer with a named split pattern can be converted")
    table = byte_to_unicode()
    piece = {i: "".join(table[b] for b in raw) for i, raw in tok.vocab.items()}
    vocab = {}
    for i, text in piece.items():
        if text in vocab:
            raise ValueError(f"ids {vocab[text]} and {i} both stand for {tok.vocab[i]!r}: a "
                             "tokenizers vocabulary needs one id per piece")
        vocab[text] = i
    merges = [(piece[a], piece[b]) for a, b in tok.merges]
    hf = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    hf.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(tok.pattern), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    hf.decoder = decoders.ByteLevel()
    return hf


def train_byte_level(texts: Iterable[str], vocab_size: int, min_frequency: int = 2):
    """The usual GPT-2-style recipe in ``tokenizers``: ``ByteLevel`` pre-tokenizer (GPT-2's
    split regex) and decoder, all 256 bytes in the alphabet. Returns the trained Tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: PLC0415

    vocab_size = check_int(vocab_size, "vocab_size", low=256, reason="the byte alphabet")
    min_frequency = check_int(min_frequency, "min_frequency", low=0)
    if isinstance(texts, str):
        raise TypeError("texts must be an iterable of str (a list of lines, say), not one str")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=[], show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return tok


def first_difference(a: BPETokenizer, b: BPETokenizer) -> int | None:
    """Index of the first merge at which ``a`` and ``b`` join different byte strings (None if
    the shorter list is a prefix of the longer)."""
    pieces = [[(t.vocab[x], t.vocab[y]) for x, y in _check_book(t).merges] for t in (a, b)]
    return next((k for k, (x, y) in enumerate(zip(*pieces, strict=False)) if x != y), None)


def pair_counts_after(text: str, tok: BPETokenizer, n_merges: int) -> Counter:
    """How often each adjacent pair of ids occurs in ``text`` after the first ``n_merges`` merges
    of ``tok``: the counts training compared when it chose merge ``n_merges``."""
    _check_text(text)
    n_merges = check_int(n_merges, "n_merges", low=0, high=len(_check_book(tok).merges))
    prefix = BPETokenizer.from_merges(list(tok.merges)[:n_merges], tok.pattern_name or "gpt2")
    counts: Counter = Counter()
    for chunk, n in Counter(prefix.chunks(text)).items():
        for pair in pairwise(prefix.encode(chunk)):  # (L,) ids -> L - 1 pairs
            counts[pair] += n
    return counts
