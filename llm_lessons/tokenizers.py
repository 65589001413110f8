"""Tokenizers: turn text into integer ids and back (characters, words, byte-level BPE).

A language model only ever sees ids in ``range(V)`` (V the vocabulary size); the tokenizer
decides what one id stands for. Three answers, from smallest to largest unit:

- :class:`CharTokenizer`: one id per character seen in a training text (V ≈ 70 for Shakespeare).
- :class:`WordTokenizer`: one id per word, punctuation mark or whitespace run; unseen words
  become ``<unk>`` (the out-of-vocabulary problem).
- :class:`BPETokenizer`: byte-level byte-pair encoding, trained from scratch. The base vocabulary
  is the 256 byte values, so *any* string is encodable; merges of frequent adjacent pairs then
  make frequent pieces a single token.

>>> tok = CharTokenizer("hello")
>>> tok.chars, tok.encode("hole"), tok.decode([1, 0, 2, 2, 3])
(['e', 'h', 'l', 'o'], [1, 3, 2, 0], 'hello')
"""

from __future__ import annotations

import heapq
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import pairwise
from pathlib import Path

from llm_lessons.files import read_limited, write_atomic
from llm_lessons.validation import check_int, token_ids

#: GPT-2 style pre-split, written with the standard library's ``re``: contractions, runs of
#: letters, digits or other symbols (each with at most one leading space), and whitespace.
#: BPE never merges across these chunks, so a token never spans a word and its neighbour.
SPLIT_PATTERN = r"'(?:[sdmt]|ll|ve|re)| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+"

#: The pre-split patterns a saved tokenizer may name. A file names one of these; it never holds
#: a regex, which could take exponential time to match (``(a+)+$``) or skip characters.
PATTERNS: dict[str, str] = {
    "gpt2": SPLIT_PATTERN,
    "whitespace": r"\s+|\S+",  # words with their punctuation, and the spaces between them
    "none": r"(?s).+",  # the whole text is one chunk: merges may cross words
}

MAX_FILE_BYTES = 64 * 2**20  # a 100k-merge BPE is about 2 MB of JSON
MAX_MERGES = 2**20


def _check_ids(ids: Sequence[int], size: int) -> list[int]:
    return token_ids(ids, "ids", vocab_size=size)


def _write_json(path: str | Path, payload: dict) -> None:
    try:
        text = json.dumps(payload, ensure_ascii=False, indent=1).encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(f"cannot save: the vocabulary holds text that is not valid Unicode "
                         f"({err})") from None
    write_atomic(path, text)


def _read_json(path: str | Path, kind: str) -> dict:
    try:
        payload = json.loads(read_limited(path, MAX_FILE_BYTES).decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not a JSON tokenizer file: {err}") from None
    if not isinstance(payload, dict) or payload.get("type") != kind:
        got = payload.get("type") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path} holds a {got!r}, not a {kind!r}")
    return payload


def _check_text(text, what: str = "text") -> str:
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str, got {type(text).__name__}")
    return text


class CharTokenizer:
    """One id per distinct character of a text, in sorted order.

    >>> tok = CharTokenizer.from_text("abracadabra")
    >>> tok.vocab_size, tok.chars
    (5, ['a', 'b', 'c', 'd', 'r'])
    >>> tok.encode("cab"), tok.decode(tok.encode("cab"))
    ([2, 0, 1], 'cab')
    """

    def __init__(self, text: str):
        if not isinstance(text, str):
            raise TypeError(f"CharTokenizer needs a str, got {type(text).__name__}")
        if not text:
            raise ValueError("CharTokenizer needs a non-empty text to take its characters from")
        self.chars: list[str] = sorted(set(text))
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(self.chars)}
        self.itos: dict[int, str] = dict(enumerate(self.chars))

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        return cls(text)

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        """Ids of each character; a character not in the vocabulary raises ValueError."""
        _check_text(text)
        try:
            return [self.stoi[c] for c in text]
        except KeyError as err:
            pos = next(p for p, c in enumerate(text) if c not in self.stoi)
            raise ValueError(f"character {err.args[0]!r} at position {pos} is not in this "
                             f"tokenizer's vocabulary of {self.vocab_size} characters") from None

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.itos[i] for i in _check_ids(ids, self.vocab_size))

    def save(self, path: str | Path) -> None:
        _write_json(path, {"type": "CharTokenizer", "chars": self.chars})

    @classmethod
    def load(cls, path: str | Path) -> CharTokenizer:
        """The tokenizer saved at ``path``; its characters must be single, distinct and sorted,
        exactly as saved, so every id means what it meant to the model trained with it."""
        chars = _read_json(path, "CharTokenizer").get("chars")
        if (not isinstance(chars, list) or not chars
                or not all(isinstance(c, str) and len(c) == 1 for c in chars) or chars != sorted(set(chars))):
            raise ValueError(f"{path}: chars must be a non-empty sorted list of distinct single "
                             "characters (as CharTokenizer.save writes it)")
        return cls("".join(chars))


class WordTokenizer:
    """Words, punctuation marks and whitespace runs seen at least ``min_count`` times get an id.

    Everything else encodes to ``<unk>`` (id 0), so decoding is lossy exactly where the
    vocabulary has holes: the out-of-vocabulary (OOV) problem that byte-level BPE removes.

    >>> tok = WordTokenizer("to be, or not to be")
    >>> tok.tokenize("to be, or")
    ['to', ' ', 'be', ',', ' ', 'or']
    >>> tok.decode(tok.encode("not to sleep"))
    'not to <unk>'
    """

    PATTERN = r"\w+(?:'\w+)*|[^\w\s]|\s+"
    UNK = "<unk>"

    def __init__(self, text: str, min_count: int = 1):
        if not isinstance(text, str) or not text:
            raise ValueError("WordTokenizer needs a non-empty str to build its vocabulary from")
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        counts = Counter(self.tokenize(text))
        self.itos: list[str] = [self.UNK] + sorted(w for w, c in counts.items() if c >= min_count)
        self.stoi: dict[str, int] = {w: i for i, w in enumerate(self.itos)}

    @classmethod
    def tokenize(cls, text: str) -> list[str]:
        return re.findall(cls.PATTERN, text)

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        return [self.stoi.get(w, 0) for w in self.tokenize(_check_text(text))]

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.itos[i] for i in _check_ids(ids, self.vocab_size))

    def oov_rate(self, text: str) -> float:
        """Fraction of word tokens (those with a letter or digit) of ``text`` that are ``<unk>``."""
        words = [w for w in self.tokenize(text) if re.match(r"\w", w)]
        if not words:
            raise ValueError("oov_rate needs a text with at least one word")
        return sum(w not in self.stoi for w in words) / len(words)


def pair_counts(ids: Sequence[int], counts: Counter | None = None, weight: int = 1) -> Counter:
    """Count adjacent pairs (adding ``weight`` per occurrence to ``counts`` if given).

    >>> pair_counts([1, 2, 3, 1, 2])
    Counter({(1, 2): 2, (2, 3): 1, (3, 1): 1})
    """
    counts = Counter() if counts is None else counts
    for pair in pairwise(ids):
        counts[pair] += weight
    return counts


def merge_pair(ids: Sequence[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every occurrence of ``pair``, scanning left to right, by ``new_id``.

    >>> merge_pair([1, 2, 3, 1, 2], (1, 2), 4)
    [4, 3, 4]
    >>> merge_pair([7, 7, 7], (7, 7), 9)  # left to right: (7 7) 7, never 7 (7 7)
    [9, 7]
    """
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


class BPETokenizer:
    """Byte-level byte-pair encoding (BPE), trained from scratch.

    Training starts from the UTF-8 bytes of the text (ids 0–255), cut into chunks by
    :data:`SPLIT_PATTERN`, and repeats: count adjacent pairs, merge the most frequent one into
    a new id (ties: the smallest pair of ids). The worked example from the BPE literature,
    ``"aaabdaaabac"`` (bytes a=97, b=98, c=99, d=100): ``aa`` is most frequent (4 times) and
    becomes 256; then ``ab`` and ``(256, a)`` tie at 2 and the smaller pair ``ab`` becomes 257;
    then ``(256, 257)`` (``aaab``) becomes 258:

    >>> tok = BPETokenizer().train("aaabdaaabac", vocab_size=259)
    >>> list(tok.merges.items())
    [((97, 97), 256), ((97, 98), 257), ((256, 257), 258)]
    >>> tok.encode("aaabdaaabac")
    [258, 100, 258, 97, 99]
    >>> tok.decode(tok.encode("aaab 🙂 语言")) == "aaab 🙂 语言"  # unseen bytes fall back to themselves
    True
    """

    def __init__(self, pattern: str = SPLIT_PATTERN):
        if not isinstance(pattern, str):
            raise TypeError(f"pattern must be a name in {sorted(PATTERNS)} or a regex str")
        # a name, or (from code, never from a file) a regex of your own, which cannot be saved
        self.pattern = PATTERNS.get(pattern, pattern)
        self.pattern_name = pattern if pattern in PATTERNS else next(
            (name for name, regex in PATTERNS.items() if regex == pattern), None)
        self._split = re.compile(self.pattern)
        self.merges: dict[tuple[int, int], int] = {}  # (left, right) -> new id, in training order
        self.vocab: dict[int, bytes] = {i: bytes([i]) for i in range(256)}
        self._cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def chunks(self, text: str) -> list[str]:
        """The pre-split pieces BPE works inside; they concatenate back to ``text``.

        A pattern that skips a character would make encode drop it silently: that raises.

        >>> BPETokenizer().chunks("Now, fair Hippolyta's hour")
        ['Now', ',', ' fair', ' Hippolyta', "'s", ' hour']
        """
        pieces = self._split.findall(_check_text(text))
        if sum(map(len, pieces)) != len(text):  # ordered, non-overlapping: equal length = covered
            pos = next((i for i, (a, b) in enumerate(zip("".join(pieces), text, strict=False)) if a != b),
                       min(len(text), sum(map(len, pieces))))
            raise ValueError(f"the pre-split pattern does not cover the text: character {pos} "
                             f"({text[pos:pos + 1]!r}) would be dropped; use a pattern that matches "
                             "every character")
        return pieces

    def train(self, text: str, vocab_size: int, verbose: bool = False) -> BPETokenizer:
        """Learn ``vocab_size - 256`` merges from ``text`` (fewer if no pair is left); returns self.

        Pair counts are kept up to date incrementally: a merge only revisits the distinct chunks
        that contain the merged pair, and a heap finds the next most frequent pair.
        """
        if not isinstance(text, str):
            raise TypeError(f"train needs a str, got {type(text).__name__}")
        vocab_size = check_int(vocab_size, "vocab_size", low=256, reason="the byte alphabet")
        freqs = Counter(self.chunks(text))
        words = [list(w.encode("utf-8")) for w in freqs]
        weights = list(freqs.values())
        counts: Counter = Counter()
        where: dict[tuple[int, int], set[int]] = {}
        for w, (ids, n) in enumerate(zip(words, weights, strict=True)):
            for pair in pairwise(ids):
                counts[pair] += n
                where.setdefault(pair, set()).add(w)
        heap = [(-n, pair) for pair, n in counts.items()]
        heapq.heapify(heap)
        self.merges, self.vocab, self._cache = {}, {i: bytes([i]) for i in range(256)}, {}
        while len(self.vocab) < vocab_size and heap:
            neg, pair = heapq.heappop(heap)
            if counts.get(pair, 0) != -neg or -neg <= 0:
                continue  # a stale heap entry: this pair's count has changed since it was pushed
            new_id = len(self.vocab)
            self.merges[pair] = new_id
            self.vocab[new_id] = self.vocab[pair[0]] + self.vocab[pair[1]]
            if verbose:
                print(f"merge {new_id - 255}/{vocab_size - 256}: {pair} -> {new_id} "
                      f"{self.vocab[new_id]!r} ({-neg} occurrences)")
            changed = set()
            for w in where.pop(pair, ()):
                ids, n = words[w], weights[w]
                merged = merge_pair(ids, pair, new_id)
                if len(merged) == len(ids):
                    continue
                for p in pairwise(ids):
                    counts[p] -= n
                    changed.add(p)
                for p in pairwise(merged):
                    counts[p] += n
                    changed.add(p)
                    where.setdefault(p, set()).add(w)
                words[w] = merged
            counts.pop(pair, None)
            for p in changed - {pair}:
                if counts[p] > 0:
                    heapq.heappush(heap, (-counts[p], p))
                else:
                    del counts[p]
        return self

    def _encode_chunk(self, chunk: str) -> list[int]:
        ids = list(chunk.encode("utf-8"))
        while len(ids) > 1:
            # apply the earliest-learned merge present; this reproduces training's order
            pair = min(pairwise(ids), key=lambda p: self.merges.get(p, float("inf")))
            if pair not in self.merges:
                break
            ids = merge_pair(ids, pair, self.merges[pair])
        return ids

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``: any str, including characters never seen in training."""
        _check_text(text)
        out: list[int] = []
        for chunk in self.chunks(text):
            ids = self._cache.get(chunk)
            if ids is None:
                ids = self._encode_chunk(chunk)
                if len(self._cache) < 100_000:
                    self._cache[chunk] = ids
            out.extend(ids)
        return out

    def decode(self, ids: Iterable[int]) -> str:
        """Concatenate the tokens' bytes and read them as UTF-8 (invalid bytes become '�')."""
        data = b"".join(self.vocab[i] for i in _check_ids(ids, self.vocab_size))
        return data.decode("utf-8", errors="replace")

    @classmethod
    def from_merges(cls, merges: Iterable[Sequence[int]], pattern: str = SPLIT_PATTERN) -> BPETokenizer:
        """Rebuild a tokenizer from its merge list (pairs in training order, ids from 256 on)."""
        tok = cls(pattern)
        merges = list(merges)
        if len(merges) > MAX_MERGES:
            raise ValueError(f"{len(merges)} merges: more than the {MAX_MERGES} a tokenizer may have")
        for merge in merges:
            new_id = len(tok.vocab)
            if not isinstance(merge, (list, tuple)) or len(merge) != 2:
                raise ValueError(f"merge {new_id - 256} must be a pair of ids, got {merge!r}")
            left, right = token_ids(merge, f"merge {new_id - 256}")
            if not (0 <= left < new_id and 0 <= right < new_id):
                raise ValueError(f"merge ({left}, {right}) -> {new_id} refers to an id not yet defined")
            tok.merges[(int(left), int(right))] = new_id
            tok.vocab[new_id] = tok.vocab[left] + tok.vocab[right]
        return tok

    def save(self, path: str | Path) -> None:
        """Write the pattern's name and the merges as JSON (never pickle, never a regex: loading
        a file runs no code and compiles nothing it holds). Written atomically."""
        if self.pattern_name is None:
            raise ValueError(f"only a tokenizer with a named pattern ({sorted(PATTERNS)}) can be saved: "
                             "a loader never compiles a regex read from a file")
        _write_json(path, {"type": "BPETokenizer", "pattern": self.pattern_name,
                           "merges": [list(p) for p in self.merges]})

    @classmethod
    def load(cls, path: str | Path) -> BPETokenizer:
        """The tokenizer saved at ``path``: its pattern is looked up by name in :data:`PATTERNS`
        (older files hold the regex itself, accepted only if it *is* one of those)."""
        payload = _read_json(path, "BPETokenizer")
        name, merges = payload.get("pattern"), payload.get("merges")
        if not isinstance(name, str) or name not in PATTERNS:
            name = next((n for n, regex in PATTERNS.items() if regex == name), None)
        if name is None or not isinstance(merges, list):
            raise ValueError(f"{path}: pattern must name one of {sorted(PATTERNS)} and merges must be "
                             "a list of id pairs")
        return cls.from_merges(merges, name)
