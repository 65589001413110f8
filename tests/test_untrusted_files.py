"""Tokenizer, votes and task files: written atomically, read as untrusted input (no regex from a
file, no silently re-ordered vocabulary, a half-written line named by its number)."""

import json
import warnings

import numpy as np
import pytest
import torch

from llm_lessons import files
from llm_lessons.evaluation import harness as evaluation
from llm_lessons.evaluation.human_eval import append_record, load_votes
from llm_lessons.mlm_data import MaskedCharTokenizer
from llm_lessons.tokenizers import PATTERNS, SPLIT_PATTERN, BPETokenizer, CharTokenizer, WordTokenizer

TEXT = "hello, world! hello again, world."


@pytest.fixture(scope="module")
def bpe():
    return BPETokenizer().train(TEXT * 3, vocab_size=270)


def test_bpe_file_names_a_pattern_and_never_holds_a_regex(tmp_path, bpe):
    path = tmp_path / "bpe.json"
    bpe.save(path)
    assert json.loads(path.read_text())["pattern"] == "gpt2"
    assert BPETokenizer.load(path).encode(TEXT) == bpe.encode(TEXT)
    payload = json.loads(path.read_text())
    path.write_text(json.dumps({**payload, "pattern": SPLIT_PATTERN}))  # older files: the regex itself
    assert BPETokenizer.load(path).encode(TEXT) == bpe.encode(TEXT)
    for hostile in ("(a+)+$", r"\w+", 3, None):
        path.write_text(json.dumps({**payload, "pattern": hostile}))
        with pytest.raises(ValueError, match="pattern must name one of"):
            BPETokenizer.load(path)


@pytest.mark.parametrize("merges", [[[1.7, 2]], [[True, 2]], [[1, 2, 3]], "abc", [[300, 1]]])
def test_bpe_merges_from_a_file_are_checked(tmp_path, merges):
    path = tmp_path / "bpe.json"
    path.write_text(json.dumps({"type": "BPETokenizer", "pattern": "gpt2", "merges": merges}))
    with pytest.raises((ValueError, TypeError)):
        BPETokenizer.load(path)


def test_a_pattern_that_skips_characters_raises_instead_of_dropping_them(tmp_path):
    tok = BPETokenizer(pattern=r"\w+")
    with pytest.raises(ValueError, match=r"character 5 \(','\) would be dropped"):
        tok.encode("hello, world!")
    with pytest.raises(ValueError, match="named pattern"):
        BPETokenizer(pattern=r"\S+|\s+").save(tmp_path / "custom.json")
    for name in PATTERNS:  # every named pattern covers any text
        assert BPETokenizer(name).decode(BPETokenizer(name).encode("a\n b'c 1_2 🙂")) == "a\n b'c 1_2 🙂"


def test_failed_tokenizer_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "chars.json"
    CharTokenizer("abc").save(path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="not valid Unicode"):
        CharTokenizer("ab\ud800").save(path)
    monkeypatch.setattr(files.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        CharTokenizer("xyz").save(path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["chars.json"]


@pytest.mark.parametrize("chars", [["b", "a"], ["a", "a"], ["ab"], [], [1], "ab"])
def test_char_tokenizer_file_must_hold_its_exact_vocabulary(tmp_path, chars):
    path = tmp_path / "chars.json"
    path.write_text(json.dumps({"type": "CharTokenizer", "chars": chars}))
    with pytest.raises(ValueError, match="sorted list of distinct single characters"):
        CharTokenizer.load(path)


def test_oversized_and_non_json_files_are_refused(tmp_path, monkeypatch):
    path = tmp_path / "t.json"
    path.write_text("[1, 2")
    with pytest.raises(ValueError, match="not a JSON tokenizer file"):
        CharTokenizer.load(path)
    path.write_text(json.dumps({"type": "CharTokenizer", "chars": ["a"]}))
    monkeypatch.setattr("llm_lessons.tokenizers.MAX_FILE_BYTES", 10)
    with pytest.raises(ValueError, match="more than the 10 this loader reads"):
        CharTokenizer.load(path)


TOKENIZERS = [CharTokenizer("abcdef"), WordTokenizer("a b c d"), BPETokenizer(),
              MaskedCharTokenizer(CharTokenizer("abcdef"))]


@pytest.mark.parametrize("tok", TOKENIZERS, ids=lambda t: type(t).__name__)
def test_decode_never_coerces_ids(tok):
    assert tok.decode([1, 2]) == tok.decode(torch.tensor([1, 2])) == tok.decode([np.int64(1), 2])
    for bad in ([1.7], [1.0], torch.tensor([1.0]), "12", [True]):
        with pytest.raises(TypeError, match="token ids"):
            tok.decode(bad)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([-1])


def _votes(path, lines):
    path.write_text("".join(lines))


LIKERT = {"type": "likert", "rater": "r1", "item": "p1", "system": "A", "fluency": 4, "relevance": 3}


def test_half_written_vote_line_is_named_or_skipped(tmp_path):
    path = tmp_path / "votes.jsonl"
    _votes(path, [json.dumps(LIKERT) + "\n", json.dumps({**LIKERT, "rater": "r2"}) + "\n", '{"type": "lik'])
    with pytest.raises(ValueError, match=r"votes.jsonl:3: not a complete JSON record"):
        load_votes(path)
    with pytest.warns(UserWarning, match=r"skipped invalid line\(s\) \[3\]"):
        assert len(load_votes(path, skip_invalid=True).likert) == 2
    append_record(path, {**LIKERT, "rater": "r3"})  # starts on a line of its own
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert [r["rater"] for r in load_votes(path, skip_invalid=True).likert] == ["r1", "r2", "r3"]


def test_append_record_is_atomic_and_strict(tmp_path, monkeypatch):
    path = tmp_path / "votes.jsonl"
    append_record(path, LIKERT)
    before = path.read_bytes()
    for bad in ({**LIKERT, "fluency": True}, {**LIKERT, "fluency": 4.0}, {**LIKERT, "rater": 7}):
        with pytest.raises(ValueError):
            append_record(path, bad)
    monkeypatch.setattr(files.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        append_record(path, {**LIKERT, "rater": "r2"})
    assert path.read_bytes() == before


def test_half_written_task_line_is_named(tmp_path, monkeypatch):
    (tmp_path / "t.jsonl").write_text('{"a": 1}\n{"a": ')
    monkeypatch.setattr(evaluation, "TASK_DIR", tmp_path)
    with pytest.raises(ValueError, match=r"t.jsonl:2 is not a complete JSON line"):
        evaluation.load_task_docs("t.jsonl")
