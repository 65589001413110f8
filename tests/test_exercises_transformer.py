"""Chapters 3 and 4.2's checkers: an independent solution passes, a stub is "not implemented yet",
each plausible wrong answer fails with words that name its mistake, and the package function
that is the answer cannot be used to pass."""

from __future__ import annotations

import pytest
import torch
from checker_contract import contract

from llm_lessons import positional
from llm_lessons.exercises.checking import ExerciseFailed
from llm_lessons.exercises.transformer import (
    check_kv_cache_append,
    check_pre_norm_block,
    check_rope,
    check_sinusoidal_encoding,
)
from llm_lessons.positional import apply_rope as imported_rope


def my_sinusoidal(n, d, layout="interleaved", column_rate=False, swap=False):
    pos = torch.arange(n, dtype=torch.float64)[:, None]  # (T, 1)
    pair = torch.arange(d // 2, dtype=torch.float64)
    angles = pos / 10000 ** (2 * pair / d)  # (T, d/2)
    sin, cos = (angles.cos(), angles.sin()) if swap else (angles.sin(), angles.cos())
    if layout == "halves":
        return torch.cat([sin, cos], dim=-1).float()
    pe = torch.empty(n, d, dtype=torch.float64)
    pe[:, 0::2], pe[:, 1::2] = sin, cos
    if column_rate:  # every column its own exponent col/d
        pe[:, 1::2] = (pos / 10000 ** (torch.arange(1, d, 2, dtype=torch.float64) / d)).cos()
    return pe.float()


def my_rope(x, positions, sign=1.0, halves=False):
    T, d = x.shape
    theta = 10000 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)  # (d/2,)
    angles = sign * positions.double()[:, None] * theta  # (T, d/2)
    cos, sin = angles.cos().float(), angles.sin().float()
    a, b = (x[:, : d // 2], x[:, d // 2:]) if halves else (x[:, 0::2], x[:, 1::2])
    ra, rb = a * cos - b * sin, a * sin + b * cos
    if halves:
        return torch.cat([ra, rb], dim=-1)
    return torch.stack([ra, rb], dim=-1).flatten(-2)  # (T, d/2, 2) -> (T, d)


def my_block(x, attn, mlp, ln1, ln2):
    x = x + attn(ln1(x))
    return x + mlp(ln2(x))


def post_norm_block(x, attn, mlp, ln1, ln2):
    x = ln1(x + attn(x))
    return ln2(x + mlp(x))


def my_append(ck, cv, k, v, block_size, dim=2, keep_first=False, crop=True, prepend=False):
    k = torch.cat([k, ck] if prepend else [ck, k], dim=dim)
    v = torch.cat([v, cv] if prepend else [cv, v], dim=dim)
    if crop and k.shape[2] > block_size:
        window = slice(0, block_size) if keep_first else slice(-block_size, None)
        k, v = k[:, :, window], v[:, :, window]
    return k, v


# checker -> (a correct solution written here, [(a wrong answer, words its failure must say)])
CASES = {
    check_sinusoidal_encoding: (my_sinusoidal, [
        (lambda n, d: my_sinusoidal(n, d, swap=True), "sin and cos are swapped"),
        (lambda n, d: my_sinusoidal(n, d, column_rate=True), "use the pair index i, not the column"),
        (lambda n, d: my_sinusoidal(n, d, layout="halves"), "interleaved"),
        (lambda n, d: positional.sinusoidal_encoding(n, d),
         "without calling llm_lessons.positional.sinusoidal_encoding"),
    ]),
    check_rope: (my_rope, [
        (lambda x, p: my_rope(x, p, sign=-1.0), "rotated the wrong way"),
        (lambda x, p: my_rope(x, p, halves=True), "two neighbours"),
        (lambda x, p: x, "unchanged"),
        (lambda x, p: my_rope(x, torch.arange(len(x))), "row numbers 0 .. T-1"),
        (lambda x, p: positional.apply_rope(x, p), "without calling llm_lessons.positional.apply_rope"),
    ]),
    check_pre_norm_block: (my_block, [
        (post_norm_block, "post-norm"),
        (lambda x, a, m, n1, n2: m(n2(a(n1(x)))), "residual connections are missing"),
        (lambda x, a, m, n1, n2: x + a(n1(x)) + m(n2(x)), "parallel block"),
        (lambda x, a, m, n1, n2: my_block(x, a, m, n1, n1), "same LayerNorm twice"),
        (lambda x, a, m, n1, n2: x + a(n1(x)), "add the MLP sublayer"),
    ]),
    check_kv_cache_append: (my_append, [
        (lambda *args: my_append(*args, dim=-1), "dimension 3 (the head-size axis)"),
        (lambda *args: my_append(*args, dim=1), "dimension 1 (the head axis)"),
        (lambda *args: my_append(*args, keep_first=True), "kept the first block_size"),
        (lambda *args: my_append(*args, crop=False), "grew past block_size"),
        (lambda *args: my_append(*args, prepend=True), "before the cached ones"),
        (lambda *args: my_append(*args, prepend=True, crop=False), "before the cached ones"),
        (lambda *args: my_append(*args)[::-1], "returned (v, k)"),
    ]),
}
(test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
 test_each_wrong_answer_is_named) = contract(CASES)


def test_the_reference_matches_the_package():
    # the checkers' own references agree with llm_lessons' functions (the convention is the book's)
    g = torch.Generator().manual_seed(1)
    assert torch.allclose(my_sinusoidal(9, 12), positional.sinusoidal_encoding(9, 12), atol=1e-6)
    x, p = torch.randn(5, 8, generator=g), torch.tensor([4, 0, 9, 2, 2])
    assert torch.allclose(my_rope(x, p), positional.apply_rope(x, p), atol=1e-6)


def cheat_with_an_imported_rope(x, positions):
    return imported_rope(x, positions)  # bound before the check, so patching cannot reach it


def test_a_forbidden_function_held_under_a_global_name_is_caught():
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.positional.apply_rope"):
        check_rope(cheat_with_an_imported_rope)


def test_a_wrong_shape_is_reported():
    with pytest.raises(ExerciseFailed, match="expected shape"):
        check_sinusoidal_encoding(lambda n, d: my_sinusoidal(n, d).T)


def test_an_unrelated_error_in_the_students_cache_code_is_reported_as_raised():
    with pytest.raises(ExerciseFailed, match="raised ZeroDivisionError"):
        check_kv_cache_append(lambda *args: 1 / 0)
