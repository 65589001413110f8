"""Chapter 8.7's checkers (absmax per channel, group-wise dequantization, unpacking int4): an
independent solution passes, a stub is "not implemented yet", each plausible wrong answer fails
with words that name its mistake, and the functions that are the answer cannot be used to pass."""

from __future__ import annotations

import pytest
import torch
from checker_contract import contract

from llm_lessons.exercises.checking import ExerciseFailed
from llm_lessons.exercises.quantization import (
    check_absmax_per_channel,
    check_dequantize_groups,
    check_unpack_int4,
)
from llm_lessons.frontiers import quantization
from llm_lessons.frontiers.quantization import quantize as imported_quantize

# --- absmax per channel ---


def my_absmax(w, bits):
    Q = 2 ** (bits - 1) - 1
    scale = w.abs().max(dim=1).values / Q  # (out,)
    scale[scale == 0] = 1.0
    q = torch.round(w / scale[:, None]).clamp(-Q, Q).to(torch.int8)
    return q, scale


def absmax_per_tensor(w, bits):
    Q = 2 ** (bits - 1) - 1
    scale = w.abs().max() / Q
    return torch.round(w / scale).clamp(-Q, Q).to(torch.int8), scale  # a 0-dim scale


def absmax_per_column(w, bits):
    Q = 2 ** (bits - 1) - 1
    scale = w.abs().max(dim=0).values / Q  # (in,)
    scale[scale == 0] = 1.0
    return torch.round(w / scale).clamp(-Q, Q).to(torch.int8), scale


def absmax_over_128(w, bits):
    Q = 2 ** (bits - 1)
    scale = w.abs().max(dim=1, keepdim=True).values / Q  # (out, 1)
    scale[scale == 0] = 1.0
    return torch.round(w / scale).clamp(-Q, Q - 1).to(torch.int8), scale


def absmax_cast(w, bits):
    q, scale = my_absmax(w, bits)
    return (w / scale[:, None]).to(torch.int8), scale  # the cast truncates


def absmax_signed(w, bits):
    Q = 2 ** (bits - 1) - 1
    scale = w.max(dim=1).values / Q
    scale[scale == 0] = 1.0
    return torch.round(w / scale[:, None]).clamp(-Q, Q).to(torch.int8), scale


def absmax_by_package(w, bits):
    return quantization.quantize(w, bits, "channel")


# --- group-wise dequantization ---


def my_dequantize(q, scale, group_size):
    out_features, in_features = q.shape
    groups = q.float().reshape(out_features, in_features // group_size, group_size)  # (out, n, G)
    return (groups * scale[:, :, None]).reshape(out_features, in_features)


def dequantize_tiled(q, scale, group_size):
    return q.float() * scale.repeat(1, group_size)


def dequantize_one_scale_a_row(q, scale, group_size):
    return q.float() * scale[:, :1]


def dequantize_dividing(q, scale, group_size):
    return q.float() / scale.repeat_interleave(group_size, dim=1)


def dequantize_by_package(q, scale, group_size):
    return quantization.dequantize(q, scale.reshape(-1), "group", group_size)


# --- unpacking int4 ---


def my_unpack(packed):
    b = packed.long()
    codes = torch.stack([b % 16, b // 16], dim=-1).reshape(len(packed), -1)  # (out, n, 2) -> (out, 2n)
    return torch.where(codes >= 8, codes - 16, codes).to(torch.int8)


def unpack_unsigned(packed):
    b = packed.long()
    return torch.stack([b % 16, b // 16], dim=-1).reshape(len(packed), -1).to(torch.int8)


def unpack_offset(packed):
    return (unpack_unsigned(packed).long() - 8).to(torch.int8)


def unpack_high_first(packed):
    return my_unpack(packed).reshape(len(packed), -1, 2).flip(-1).reshape(len(packed), -1)


def unpack_concatenated(packed):
    codes = my_unpack(packed)
    return torch.cat([codes[:, 0::2], codes[:, 1::2]], dim=1)


# checker -> (a correct solution written here, [(a wrong answer, words its failure must say)])
CASES = {
    check_absmax_per_channel: (my_absmax, [
        (absmax_per_tensor, "one scale for the whole matrix"),
        (absmax_per_column, "per input column"),
        (absmax_over_128, "divided by 2**(bits-1)"),
        (absmax_cast, "truncated toward zero"),
        (absmax_signed, "largest *signed* value"),
        (absmax_by_package, "without calling llm_lessons.frontiers.quantization.quantize"),
    ]),
    check_dequantize_groups: (my_dequantize, [
        (dequantize_tiled, "tiled the scales"),
        (dequantize_one_scale_a_row, "first group's scale for the whole row"),
        (dequantize_dividing, "dequantization multiplies"),
        (dequantize_by_package, "without calling llm_lessons.frontiers.quantization.dequantize"),
    ]),
    check_unpack_int4: (my_unpack, [
        (unpack_unsigned, "two's-complement number"),
        (unpack_offset, "offset code"),
        (unpack_high_first, "pairs are swapped"),
        (unpack_concatenated, "interleave"),
    ]),
}
(test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
 test_each_wrong_answer_is_named) = contract(CASES)


def test_the_references_match_the_package():
    # the checkers' conventions are the book's: per-channel scales, groups of consecutive columns
    g = torch.Generator().manual_seed(0)
    w = torch.randn(6, 16, generator=g)
    w[1] = 0.0
    for bits in (8, 4):
        q, scale = my_absmax(w, bits)
        theirs = quantization.quantize(w, bits, "channel")
        assert torch.equal(q, theirs[0]) and torch.allclose(scale, theirs[1])
        qg, sg = quantization.quantize(w, bits, "group", 4)
        assert torch.allclose(my_dequantize(qg, sg.reshape(6, 4), 4),
                              quantization.dequantize(qg, sg, "group", 4))


def test_the_unpacking_inverts_the_packing_that_storage_bytes_counts():
    q = torch.randint(-7, 8, (5, 12), generator=torch.Generator().manual_seed(1)).to(torch.int8)
    nibble = q.to(torch.int16) & 0xF
    packed = (nibble[:, 0::2] | (nibble[:, 1::2] << 4)).to(torch.uint8)  # (5, 6): two codes a byte
    assert torch.equal(my_unpack(packed), q)
    assert packed.numel() + 2 * 5 == quantization.storage_bytes((5, 12), 4, "channel")


def cheat_with_an_imported_quantize(w, bits):
    return imported_quantize(w, bits, "channel")  # bound before the check, so patching cannot reach it


def test_a_forbidden_function_held_under_a_global_name_is_caught():
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.frontiers.quantization.quantize"):
        check_absmax_per_channel(cheat_with_an_imported_quantize)


def test_pytorchs_own_quantizer_is_refused_too():
    def with_torch(w, bits):
        scale = w.abs().amax(dim=1) / 127
        return torch.quantize_per_channel(w, scale.double(), torch.zeros(len(w), dtype=torch.long), 0,
                                          torch.qint8).int_repr(), scale

    with pytest.raises(ExerciseFailed, match="without calling torch.quantize_per_channel"):
        check_absmax_per_channel(with_torch)
