"""Notebook 7.1's claims that the interop tests do not already make: ``generate`` needs the
attention mask when the padding id is a real character, a model and its tokenizer round-trip
through ``save_pretrained`` / ``from_pretrained`` on a local folder (and a pipeline loads from
it), and a safetensors file read by hand (8-byte length, JSON header, raw bytes) holds exactly
the model's tensors."""

from __future__ import annotations

import json
import struct

import pytest
import torch

transformers = pytest.importorskip("transformers")

from llm_lessons.interop.gpt2 import gpt_to_hf  # noqa: E402
from llm_lessons.interop.hf_tokenizer import char_tokenizer_to_hf  # noqa: E402
from llm_lessons.resources import load_gpt_shakespeare  # noqa: E402
from llm_lessons.sampling import generate  # noqa: E402

PROMPT = "ROMEO:\nWhat light"


@pytest.fixture(scope="module")
def gpt():
    model, tok = load_gpt_shakespeare()
    return model, tok, gpt_to_hf(model), char_tokenizer_to_hf(tok)


def test_generate_needs_the_attention_mask_when_the_pad_id_is_a_newline(gpt):
    model, tok, hf, htok = gpt
    enc = htok(PROMPT, return_tensors="pt")
    n = model.block_size - enc["input_ids"].shape[1]
    ours = generate(model, enc["input_ids"], n, greedy=True)
    assert tok.itos[0] == "\n"
    with_mask = hf.generate(**enc, max_new_tokens=n, do_sample=False, pad_token_id=0)
    bare = hf.generate(enc["input_ids"], max_new_tokens=n, do_sample=False, pad_token_id=0)
    rare = hf.generate(enc["input_ids"], max_new_tokens=n, do_sample=False,
                       pad_token_id=tok.stoi["Z"])  # a padding id absent from the text
    assert torch.equal(with_mask, ours) and torch.equal(rare, ours)
    assert not torch.equal(bare, ours)  # the newline after "ROMEO:" was hidden as padding
    with pytest.raises(IndexError):  # GPT-2 has no position 64; the book's generate crops
        hf.generate(**enc, max_new_tokens=n + 2, do_sample=False, pad_token_id=0)
    assert generate(model, enc["input_ids"], n + 2, greedy=True).shape[1] == model.block_size + 2


def test_model_and_tokenizer_round_trip_through_a_local_folder(gpt, tmp_path):
    model, tok, hf, htok = gpt
    hf.save_pretrained(tmp_path)
    htok.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "tokenizer.json").is_file()
    reloaded = transformers.GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    retok = transformers.AutoTokenizer.from_pretrained(tmp_path)
    text = "KING HENRY V:\nOnce more unto the breach"
    assert retok(text)["input_ids"] == tok.encode(text)
    idx = torch.tensor([tok.encode(text)])
    with torch.no_grad():
        assert torch.equal(reloaded(idx).logits, hf(idx).logits)
    pipe = transformers.pipeline("text-generation", model=str(tmp_path), device="cpu")
    got = pipe(PROMPT, max_new_tokens=10, do_sample=False, pad_token_id=0)[0]["generated_text"]
    assert got == tok.decode(generate(model, torch.tensor([tok.encode(PROMPT)]), 10,
                                      greedy=True)[0].tolist())


def test_a_safetensors_file_read_by_hand_holds_the_models_tensors(gpt, tmp_path):
    _, _, hf, _ = gpt
    hf.save_pretrained(tmp_path)
    data = (tmp_path / "model.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    assert header.pop("__metadata__") == {"format": "pt"}
    state = hf.state_dict()
    spans = []
    for name, entry in header.items():
        start, end = (8 + n + o for o in entry["data_offsets"])
        tensor = torch.frombuffer(bytearray(data[start:end]), dtype=torch.float32).reshape(entry["shape"])
        assert entry["dtype"] == "F32" and torch.equal(tensor, state[name])
        spans.append((start, end))
    spans.sort()  # the byte ranges tile the data section exactly: no gap, no overlap
    assert spans[0][0] == 8 + n and spans[-1][1] == len(data)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
