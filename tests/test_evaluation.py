"""Our perplexity and multiple-choice numbers against lm-evaluation-harness run on the same model
and text, fully offline (relative difference < 1e-6, identical accuracies)."""

import json
import math
import runpy
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from llm_lessons.evaluation.harness import TASK_DIR, adapter_class, load_task_docs, make_lm, run_lm_eval
from llm_lessons.evaluation.likelihood import UniformLM, score_texts
from llm_lessons.evaluation.multiple_choice import (
    continuation_logprob,
    encode_pair,
    multiple_choice_accuracy,
    multiple_choice_scores,
)
from llm_lessons.gpt import GPT, GPTConfig
from llm_lessons.ngram import NGramLM
from llm_lessons.tokenizers import BPETokenizer, CharTokenizer

ROOT = Path(__file__).resolve().parent.parent
PPL_DOCS = [d["text"] for d in load_task_docs("shakespeare_ppl.jsonl")]
ALL_TEXT = "".join(PPL_DOCS) + "".join(
    json.dumps(load_task_docs(f)) for f in ("shakespeare_next_line.jsonl", "shakespeare_cloze.jsonl"))


@pytest.fixture(scope="module")
def char_tok():
    # every character of the task files (JSON escapes add a few harmless extra symbols)
    return CharTokenizer(ALL_TEXT + "\n")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test: lm_eval must run offline."""
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted during an offline evaluation")
    monkeypatch.setattr(socket.socket, "connect", refuse)


def gpt(V, T=64, seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=2, n_head=2, n_embd=32)).eval()


def rel(a, b):
    return abs(a - b) / abs(b)


def check_rolling(model, tok, **kwargs):
    res = run_lm_eval(model, tok, "shakespeare_ppl", **kwargs)["results"]["shakespeare_ppl"]
    ours = score_texts(model, tok, PPL_DOCS, block_size=kwargs.get("max_length"))
    assert rel(ours.word_perplexity, res["word_perplexity,none"]) < 1e-6
    assert rel(ours.byte_perplexity, res["byte_perplexity,none"]) < 1e-6
    assert rel(ours.bits_per_byte, res["bits_per_byte,none"]) < 1e-6
    return ours, res


def test_rolling_perplexity_matches_lm_eval_gpt(char_tok):
    ours, res = check_rolling(gpt(char_tok.vocab_size), char_tok)
    # the counts behind the numbers: every character once (prefix "\n" predicts the first)
    assert ours.n_tokens == sum(len(d) for d in PPL_DOCS)
    assert math.isfinite(res["bits_per_byte,none"])


def test_rolling_perplexity_matches_lm_eval_ngram_and_uniform(char_tok):
    ids = torch.tensor(char_tok.encode("".join(PPL_DOCS)))
    lm = NGramLM(3, vocab_size=char_tok.vocab_size).fit(ids)
    check_rolling(lm, char_tok, max_length=16)
    _, res = check_rolling(UniformLM(char_tok.vocab_size, block_size=32), char_tok)
    assert res["byte_perplexity,none"] == pytest.approx(char_tok.vocab_size, rel=1e-9)  # 1 byte/char


def test_rolling_perplexity_matches_lm_eval_bpe():
    tok = BPETokenizer().train(" ".join(PPL_DOCS), vocab_size=300)
    assert len(tok.encode("\n")) == 1
    ours, _ = check_rolling(gpt(tok.vocab_size, T=32, seed=1), tok)
    assert ours.n_tokens < ours.n_chars  # BPE tokens span several characters


def test_result_does_not_depend_on_batch_size(char_tok):
    model = gpt(char_tok.vocab_size)
    a = run_lm_eval(model, char_tok, "shakespeare_ppl", batch_size=1)["results"]["shakespeare_ppl"]
    b = run_lm_eval(model, char_tok, "shakespeare_ppl", batch_size=64)["results"]["shakespeare_ppl"]
    assert rel(a["bits_per_byte,none"], b["bits_per_byte,none"]) < 1e-6


@pytest.mark.parametrize("task,delimiter", [("shakespeare_next_line", "\n"), ("shakespeare_cloze", " ")])
def test_multiple_choice_matches_lm_eval(char_tok, task, delimiter):
    model = gpt(char_tok.vocab_size, seed=2)
    out = run_lm_eval(model, char_tok, task, log_samples=True)
    res, samples = out["results"][task], out["samples"][task]
    docs = load_task_docs(f"{task}.jsonl")
    ours = multiple_choice_accuracy(model, char_tok, docs, target_delimiter=delimiter)
    assert ours["acc"] == res["acc,none"] and ours["acc_norm"] == res["acc_norm,none"]
    for s in samples:  # item by item, choice by choice
        mine = multiple_choice_scores(model, char_tok, docs[s["doc_id"]]["context"],
                                      docs[s["doc_id"]]["choices"], target_delimiter=delimiter)
        theirs = [r[0][0] for r in s["resps"]]
        assert all(rel(a, b) < 1e-6 for a, b in zip(mine.loglik, theirs, strict=True))


def test_multiple_choice_matches_lm_eval_bpe():
    docs = load_task_docs("shakespeare_cloze.jsonl")
    tok = BPETokenizer().train(" ".join(d["context"] for d in docs), vocab_size=320)
    model = gpt(tok.vocab_size, seed=3)
    res = run_lm_eval(model, tok, "shakespeare_cloze")["results"]["shakespeare_cloze"]
    ours = multiple_choice_accuracy(model, tok, docs, target_delimiter=" ")
    assert ours["acc"] == res["acc,none"] and ours["acc_norm"] == res["acc_norm,none"]


def test_loglikelihood_pairs_match_lm_eval_encoding():
    """lm_eval's own request encoding (TemplateLM.loglikelihood: empty contexts, trailing spaces
    moved to the continuation, joint tokenization split at the context) equals ours."""
    from lm_eval.api.instance import Instance

    tok = BPETokenizer().train(" ".join(PPL_DOCS), vocab_size=300)
    model = gpt(tok.vocab_size, T=16, seed=5)
    lm = make_lm(model, tok)
    pairs = [("", "To be"), ("To be, or ", "not to be"), ("Now is the winter", " of our discontent"),
             ("A long context that will not fit in sixteen tokens, surely not", " at all")]
    theirs = lm.loglikelihood([Instance("loglikelihood", {}, p, i) for i, p in enumerate(pairs)])
    prefix = tok.encode("\n")[0]
    for (ctx, cont), (ll, greedy) in zip(pairs, theirs, strict=True):
        mine = continuation_logprob(model, *encode_pair(tok, ctx, cont, prefix))
        assert rel(mine[0], ll) < 1e-6 and mine[1] == greedy
    # a context of whitespace only loses it all to the continuation: both sides refuse it
    with pytest.raises(ValueError, match="context"):
        lm.loglikelihood([Instance("loglikelihood", {}, ("\n", "x"), 0)])
    with pytest.raises(ValueError, match="context"):
        continuation_logprob(model, *encode_pair(tok, "\n", "x", prefix))


def test_generate_until_is_greedy_and_stops(char_tok):
    from lm_eval.api.instance import Instance

    model = gpt(char_tok.vocab_size, seed=4)
    lm = make_lm(model, char_tok)
    prompt = "KING HENRY V:\nOnce more unto the breach"
    req = Instance("generate_until", {}, (prompt, {"until": ["e"], "max_gen_toks": 30}), 0)
    req_long = Instance("generate_until", {}, (prompt, {"until": [], "max_gen_toks": 30}), 1)
    cut, full = lm.generate_until([req, req_long])
    reference = model.generate(torch.tensor([char_tok.encode(prompt)]), 30, greedy=True)  # GPT's own
    expected = char_tok.decode(reference[0, len(prompt):].tolist())
    assert full == expected and cut == expected.split("e")[0]


def test_task_files_are_reproducible():
    script = runpy.run_path(str(ROOT / "scripts" / "make_eval_tasks.py"))
    for name, text in script["build"]().items():
        assert (TASK_DIR / name).read_text(encoding="utf-8") == text, name


def test_bad_inputs(char_tok):
    model = gpt(char_tok.vocab_size)
    with pytest.raises(ValueError, match="unknown task"):
        run_lm_eval(model, char_tok, "hellaswag")
    with pytest.raises(ValueError, match="tasks is empty"):
        run_lm_eval(model, char_tok, [])
    with pytest.raises(TypeError, match="encode"):
        make_lm(model, object())
    with pytest.raises(ValueError, match="prefix_token"):
        make_lm(model, char_tok, prefix_token="ab")
    with pytest.raises(ValueError, match="unknown task data file"):
        load_task_docs("../evaluation.py")
    with pytest.raises(ValueError, match="choices"):
        multiple_choice_scores(model, char_tok, "a", ["only one"])


def test_adapter_is_registered_by_name():
    from lm_eval.api.registry import get_model

    assert get_model("llm-lessons") is adapter_class()


def test_importing_the_module_does_not_import_lm_eval():
    code = ("import sys, llm_lessons.evaluation.harness, llm_lessons.evaluation.likelihood; "
            "print('lm_eval' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
