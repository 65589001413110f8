"""Chapter 7.4's checkers (a weights file's bytes, the windows of a cache-free greedy loop, the
element-wise tolerance test): an independent solution passes, a stub is "not implemented yet",
each plausible wrong answer fails with words that name its mistake, and the functions that are
the answer cannot be used to pass."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from checker_contract import contract

from llm_lessons.exercises.checking import ExerciseFailed
from llm_lessons.exercises.deployment import (
    check_close_mask,
    check_file_bytes,
    check_window_lengths,
)

# --- a weights file's bytes ---


def my_file_bytes(shapes, bits):
    total = 0
    for shape in shapes:
        numel = 1
        for d in shape:
            numel *= d
        total += math.ceil(numel * bits / 8)
    return total


def file_bits(shapes, bits):
    return sum(math.prod(s) * bits for s in shapes)


def file_float32(shapes, bits):
    return sum(math.prod(s) * 4 for s in shapes)


def file_sum_of_dims(shapes, bits):
    return sum(math.ceil(sum(s) * bits / 8) for s in shapes)


def file_floor(shapes, bits):
    return sum(math.prod(s) * bits // 8 for s in shapes)


def file_rounded_once(shapes, bits):
    return math.ceil(sum(math.prod(s) for s in shapes) * bits / 8)


# --- windows of a cache-free greedy loop ---


def my_window_lengths(prompt_len, max_new_tokens, block_size):
    lengths, length = [], prompt_len
    for _ in range(max_new_tokens):
        lengths.append(length if length < block_size else block_size)
        length += 1
    return lengths


def windows_uncropped(prompt_len, max_new_tokens, block_size):
    return [prompt_len + i for i in range(max_new_tokens)]


def windows_one_late(prompt_len, max_new_tokens, block_size):
    return [min(prompt_len + i, block_size) for i in range(1, max_new_tokens + 1)]


def windows_one_early(prompt_len, max_new_tokens, block_size):
    return [min(prompt_len + i - 1, block_size) for i in range(max_new_tokens)]


# --- the element-wise tolerance test ---


def my_close_mask(got, want, atol, rtol):
    return (got - want).abs() <= atol + rtol * want.abs()


def close_scaled_by_got(got, want, atol, rtol):
    return (got - want).abs() <= atol + rtol * got.abs()


def close_without_atol(got, want, atol, rtol):
    return (got - want).abs() <= rtol * want.abs()


def close_signed(got, want, atol, rtol):
    return got - want <= atol + rtol * want.abs()


def close_by_torch(got, want, atol, rtol):
    return torch.isclose(got, want, rtol=rtol, atol=atol)


def close_by_numpy(got, want, atol, rtol):
    return torch.from_numpy(np.isclose(got.numpy(), want.numpy(), rtol=rtol, atol=atol))


CASES = {
    check_file_bytes: (my_file_bytes, [
        (file_bits, "your answer is in bits"),
        (file_float32, "4 bytes a number"),
        (file_sum_of_dims, "added the dimensions"),
        (file_floor, "rounded down"),
        (file_rounded_once, "rounded up once for the whole file"),
    ]),
    check_window_lengths: (my_window_lengths, [
        (windows_uncropped, "grow past block_size"),
        (windows_one_late, "already holds one generated token"),
        (windows_one_early, "one token short"),
    ]),
    check_close_mask: (my_close_mask, [
        (close_scaled_by_got, "grows with |got|"),
        (close_without_atol, "dropped atol"),
        (close_signed, "without its absolute value"),
        (close_by_torch, "without calling torch.isclose"),
        (close_by_numpy, "without calling numpy.isclose"),
    ]),
}
(test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
 test_each_wrong_answer_is_named) = contract(CASES)

bound_isclose = torch.isclose


def cheat_with_a_global_isclose(got, want, atol, rtol):
    return bound_isclose(got, want, rtol=rtol, atol=atol)  # bound before the check


def test_a_forbidden_function_held_under_a_global_name_is_caught():
    with pytest.raises(ExerciseFailed, match="without calling torch.isclose"):
        check_close_mask(cheat_with_a_global_isclose)


def test_the_references_agree_with_the_libraries():
    # the mask is torch.isclose's definition; the bytes are what safetensors stores at 32 bits
    g = torch.Generator().manual_seed(0)
    want = torch.randn(200, generator=g)
    got = want + torch.randn(200, generator=g) * 1e-4
    got[::7] = want[::7] * 1e-3
    assert torch.equal(my_close_mask(got, want, 1e-5, 1e-4), torch.isclose(got, want, 1e-4, 1e-5))
    from llm_lessons.resources import load_gpt_shakespeare

    model, _ = load_gpt_shakespeare()
    shapes = [tuple(p.shape) for p in model.parameters()]  # the tied matrix once
    assert my_file_bytes(shapes, 32) == sum(p.numel() * 4 for p in model.parameters())


def test_the_windows_are_the_ones_onnx_generate_feeds(monkeypatch):
    # count the lengths the package's own loop passes to the graph
    from llm_lessons.interop import onnx_export

    seen = []

    def fake_logits(session, idx):
        seen.append(idx.shape[1])
        return torch.zeros(idx.shape[0], idx.shape[1], 5)

    monkeypatch.setattr(onnx_export, "onnx_logits", fake_logits)
    monkeypatch.setattr(onnx_export, "_sizes", lambda session: (8, 5))
    onnx_export.onnx_generate(None, torch.zeros(1, 3, dtype=torch.long), 9)
    assert seen == my_window_lengths(3, 9, 8)
