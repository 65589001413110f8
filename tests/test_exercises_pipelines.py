"""Chapter 7.1's checkers (the fill-mask pipeline's top k, a safetensors header read by hand,
greedy decoding with a cropped context): an independent solution passes, a stub is "not
implemented yet", each plausible wrong answer fails with words that name its mistake, and the
functions that are the answer cannot be used to pass."""

from __future__ import annotations

import json
import struct

import pytest
import torch
from checker_contract import contract

from llm_lessons import sampling
from llm_lessons.exercises.checking import ExerciseFailed
from llm_lessons.exercises.pipelines import (
    check_fill_mask_top_k,
    check_greedy_decode,
    check_safetensors_ranges,
)
from llm_lessons.mlm_decoding import top_predictions
from llm_lessons.sampling import generate as imported_generate

# --- fill-mask top k ---


def my_top_k(logits, position, k):
    probs = torch.nn.functional.softmax(logits[position].double(), dim=0)  # (V,)
    values, ids = torch.sort(probs, descending=True, stable=True)
    return values[:k].float(), ids[:k]


def top_k_over_positions(logits, position, k):
    probs = logits.softmax(dim=0)[position]
    top = probs.topk(k)
    return top.values, top.indices


def top_k_of_logits(logits, position, k):
    top = logits[position].topk(k)
    return top.values, top.indices


def top_k_renormalised(logits, position, k):
    top = logits[position].topk(k)
    return top.values.softmax(-1), top.indices


def top_k_by_package(logits, position, k):
    class Fixed(torch.nn.Module):
        def forward(self, idx, targets=None):
            return logits[None], None

    ids = torch.zeros(logits.shape[0], dtype=torch.long)
    ids[position] = logits.shape[1] - 1
    _, top, p = top_predictions(Fixed(), ids, logits.shape[1] - 1, k)
    return p[0], top[0]


# --- safetensors ranges ---


def my_ranges(data):
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    header.pop("__metadata__", None)
    return {name: (e["dtype"], e["shape"], 8 + n + e["data_offsets"][0], 8 + n + e["data_offsets"][1])
            for name, e in header.items()}


def ranges_as_stored(data):
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    return {k: (e["dtype"], e["shape"], *e["data_offsets"]) for k, e in header.items()}


def ranges_without_the_prefix(data):
    (n,) = struct.unpack("<Q", data[:8])
    return {k: (d, s, a - 8, b - 8) for k, (d, s, a, b) in my_ranges(data).items()}


def ranges_begin_and_length(data):
    (n,) = struct.unpack("<Q", data[:8])
    return {k: (d, s, a, a + b - 8 - n) for k, (d, s, a, b) in my_ranges(data).items()}


def ranges_by_library(data):
    from safetensors.torch import load

    tensors = load(data)
    return {k: (None, tuple(v.shape), 0, 0) for k, v in tensors.items()}


# --- greedy decoding ---


def my_greedy(model, idx, max_new_tokens):
    seq = idx
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits, _ = model(seq[:, -model.block_size:])
        seq = torch.cat([seq, logits[:, -1].argmax(dim=-1, keepdim=True)], dim=1)
    return seq


def greedy_first_block(model, idx, max_new_tokens):
    seq = idx
    for _ in range(max_new_tokens):
        logits, _ = model(seq[:, :model.block_size])
        seq = torch.cat([seq, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return seq


def greedy_first_position(model, idx, max_new_tokens):
    seq = idx
    for _ in range(max_new_tokens):
        logits, _ = model(seq[:, -model.block_size:])
        seq = torch.cat([seq, logits[:, 0].argmax(-1, keepdim=True)], dim=1)
    return seq


def greedy_new_only(model, idx, max_new_tokens):
    return my_greedy(model, idx, max_new_tokens)[:, idx.shape[1]:]


def greedy_by_package(model, idx, max_new_tokens):
    return sampling.generate(model, idx, max_new_tokens, greedy=True)


CASES = {
    check_fill_mask_top_k: (my_top_k, [
        (top_k_over_positions, "softmax ran over the positions"),
        (top_k_of_logits, "returned the logits themselves"),
        (top_k_renormalised, "softmax of the k winners only"),
        (top_k_by_package, "without calling llm_lessons.mlm_decoding.top_predictions"),
    ]),
    check_safetensors_ranges: (my_ranges, [
        (ranges_as_stored, "count from the end of the header"),
        (ranges_without_the_prefix, "forgot the 8 bytes"),
        (ranges_begin_and_length, "(begin, length)"),
        (ranges_by_library, "without calling safetensors.torch.load"),
    ]),
    check_greedy_decode: (my_greedy, [
        (greedy_first_block, "crop from the left"),
        (greedy_first_position, "logits at position 0"),
        (greedy_new_only, "only the new tokens"),
        (greedy_by_package, "without calling llm_lessons.sampling.generate"),
    ]),
}
(test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
 test_each_wrong_answer_is_named) = contract(CASES)


def cheat_with_an_imported_generate(model, idx, max_new_tokens):
    return imported_generate(model, idx, max_new_tokens, greedy=True)


def test_a_forbidden_function_held_under_a_global_name_is_caught():
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.sampling.generate"):
        check_greedy_decode(cheat_with_an_imported_generate)


def test_the_references_agree_with_the_tools_they_stand_for():
    """The checkers' conventions are the library's: safetensors' own writer gives the ranges the
    reference reads, and the book's greedy generate gives the reference's tokens."""
    from safetensors.torch import save

    from llm_lessons.gpt import GPT, GPTConfig

    tensors = {"a": torch.randn(3, 2), "b": torch.arange(5, dtype=torch.int64)}
    data = save(tensors, metadata={"format": "pt"})
    for name, (_, shape, start, end) in my_ranges(data).items():
        dtype = torch.float32 if name == "a" else torch.int64
        assert torch.equal(torch.frombuffer(bytearray(data[start:end]), dtype=dtype).reshape(shape),
                           tensors[name])
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=13, block_size=6, n_layer=1, n_head=2, n_embd=16, dropout=0.0)).eval()
    prompt = torch.tensor([[1, 2, 3]])
    assert torch.equal(my_greedy(gpt, prompt, 8), imported_generate(gpt, prompt, 8, greedy=True))
