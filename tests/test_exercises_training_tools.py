"""The checkers of chapter 7.3 (the break-even step of a compile, gradient accumulation, each
process's slice of the global batch): an independent solution passes, a stub is "not
implemented yet", each plausible wrong answer fails with words that name its mistake, the
package function that is the answer is refused, and the references agree with autograd and
with the package."""

from __future__ import annotations

import math

import pytest
import torch
from checker_contract import contract

from llm_lessons.exercises.checking import ExerciseFailed
from llm_lessons.exercises.training_tools import (
    _accumulate,
    _break_even,
    _slice,
    _Tiny,
    check_accumulated_gradients,
    check_break_even_steps,
    check_process_batch,
)
from llm_lessons.frontiers.distributed import sharded
from llm_lessons.training import random_windows

# --- break-even steps ---


def my_break_even(compile_s, eager_s, compiled_s):
    n = 0  # count steps until the compiled run has caught up (a plain simulation)
    if compiled_s >= eager_s:
        return math.inf
    while compile_s + n * compiled_s > n * eager_s:
        n += 1
    return n


def break_even_ignoring_compile(compile_s, eager_s, compiled_s):
    return 0 if compiled_s < eager_s else math.inf


def break_even_wrong_way(compile_s, eager_s, compiled_s):
    return (eager_s - compiled_s) / compile_s


def break_even_floor(compile_s, eager_s, compiled_s):
    saved = eager_s - compiled_s
    return math.floor(compile_s / saved) if saved > 0 else math.inf


# --- gradient accumulation ---


def my_accumulate(model, x, y, micro_batches):
    model.zero_grad(set_to_none=True)
    size = x.shape[0] // micro_batches
    for i in range(micro_batches):
        _, loss = model(x[i * size:(i + 1) * size], y[i * size:(i + 1) * size])
        (loss * size / x.shape[0]).backward()
    return [p.grad for p in model.parameters()]


def accumulate_undivided(model, x, y, micro_batches):
    model.zero_grad(set_to_none=True)
    for xm, ym in zip(x.chunk(micro_batches), y.chunk(micro_batches), strict=True):
        model(xm, ym)[1].backward()
    return [p.grad for p in model.parameters()]


def accumulate_last_only(model, x, y, micro_batches):
    for xm, ym in zip(x.chunk(micro_batches), y.chunk(micro_batches), strict=True):
        model.zero_grad(set_to_none=True)
        (model(xm, ym)[1] / micro_batches).backward()
    return [p.grad for p in model.parameters()]


# --- each process's slice ---


def my_process_batch(data, batch_size, block_size, seed, rank, world):
    x, y = random_windows(data, world * batch_size, block_size, torch.Generator().manual_seed(seed))
    return x.split(batch_size)[rank], y.split(batch_size)[rank]


def process_batch_own_draw(data, batch_size, block_size, seed, rank, world):
    return random_windows(data, batch_size, block_size, torch.Generator().manual_seed(seed))


def process_batch_strided(data, batch_size, block_size, seed, rank, world):
    x, y = random_windows(data, world * batch_size, block_size, torch.Generator().manual_seed(seed))
    return x[rank::world], y[rank::world]


def process_batch_by_package(data, batch_size, block_size, seed, rank, world):
    return sharded(random_windows, rank, world)(data, batch_size, block_size,
                                                torch.Generator().manual_seed(seed))


CHECKERS = {
    check_break_even_steps: (my_break_even, [(break_even_ignoring_compile, "left out the compile"),
                                             (break_even_wrong_way, "wrong way round"),
                                             (break_even_floor, "rounded down")]),
    check_accumulated_gradients: (my_accumulate, [(accumulate_undivided, "times too large"),
                                                  (accumulate_last_only, "only the last")]),
    check_process_batch: (my_process_batch, [(process_batch_own_draw, "the same windows"),
                                             (process_batch_strided, "every world-th")]),
}

(test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
 test_each_wrong_answer_is_named) = contract(CHECKERS)


def test_the_package_function_is_refused_and_works_again_afterwards():
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.frontiers.distributed"):
        check_process_batch(process_batch_by_package)

    def through_the_module(data, batch_size, block_size, seed, rank, world):
        from llm_lessons.frontiers import distributed  # noqa: PLC0415

        return distributed.sharded(random_windows, rank, world)(
            data, batch_size, block_size, torch.Generator().manual_seed(seed))

    with pytest.raises(ExerciseFailed, match="without calling"):
        check_process_batch(through_the_module)
    data = torch.arange(50)
    x, _ = sharded(random_windows, 1, 2)(data, 2, 4, torch.Generator().manual_seed(0))
    assert x.shape == (2, 4)


def test_the_slice_reference_equals_the_package():
    data = torch.randint(30, (200,), generator=torch.Generator().manual_seed(0))
    for rank, world in ((0, 1), (0, 2), (1, 2), (3, 4)):
        want = sharded(random_windows, rank, world)(data, 3, 5, torch.Generator().manual_seed(7))
        got = _slice(data, 3, 5, 7, rank, world)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_the_accumulated_reference_equals_the_full_batch_gradient():
    torch.manual_seed(0)
    model = _Tiny(5, 4)
    x, y = torch.randint(5, (6, 6)), torch.randint(5, (6, 6))
    model(x, y)[1].backward()
    full = [p.grad.clone() for p in model.parameters()]
    for micro in (1, 2, 3, 6):
        for got, want in zip(_accumulate(model, x, y, micro), full, strict=True):
            torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(("compile_s", "eager_s", "compiled_s"),
                         [(30.0, 0.05, 0.04), (12.0, 2.0, 1.0), (0.3, 0.1, 0.0), (1.0, 1.0, 1.0)])
def test_the_break_even_reference_is_the_fewest_steps(compile_s, eager_s, compiled_s):
    n = _break_even(compile_s, eager_s, compiled_s)
    if compiled_s >= eager_s:
        assert n == math.inf
        return
    assert compile_s + n * compiled_s <= n * eager_s  # caught up after n steps
    assert n == 0 or compile_s + (n - 1) * compiled_s > (n - 1) * eager_s  # not after n - 1
