"""The checkers of chapter 8.8 (the full-batch gradient from unequal shards, a ring
reduce-scatter, the bytes a data-parallel step sends): an independent solution passes, a stub is
"not implemented yet", each plausible wrong answer fails with words that name its mistake, the
package function that is the answer is refused, and the references agree with autograd and with
the package."""

from __future__ import annotations

import pytest
import torch
from checker_contract import contract

from llm_lessons.exercises.checking import ExerciseFailed
from llm_lessons.exercises.distributed import (
    _bytes,
    _combine,
    _models,
    check_bytes_per_step,
    check_combine_shard_gradients,
    check_reduce_scatter,
)
from llm_lessons.frontiers.distributed import communication_per_step
from llm_lessons.gpt import GPT, GPTConfig

# --- the full-batch gradient from unequal shards ---


def my_combine(grads, sizes):
    stacked = torch.stack(grads)  # (shards, ...)
    weights = torch.tensor(sizes, dtype=stacked.dtype).reshape(-1, *[1] * (stacked.dim() - 1))
    return (weights * stacked).sum(0) / sum(sizes)


def combine_plain_mean(grads, sizes):
    return torch.stack(grads).mean(0)


def combine_weighted_sum(grads, sizes):
    return sum(n * g for g, n in zip(grads, sizes, strict=True))


def combine_sum(grads, sizes):
    return torch.stack(grads).sum(0)


# --- reduce-scatter, simulated on a ring ---


def my_reduce_scatter(tensors):
    p = len(tensors)
    chunks = [list(x.clone().chunk(p)) for x in tensors]  # chunks[rank][c]
    for step in range(p - 1):  # rank r sends its running chunk (r - step - 1) to rank r + 1
        sent = [(r, (r - step - 1) % p, chunks[r][(r - step - 1) % p].clone()) for r in range(p)]
        for r, c, value in sent:
            chunks[(r + 1) % p][c] += value
    return [chunks[r][r] for r in range(p)]


def reduce_scatter_mean(tensors):
    return [c / len(tensors) for c in my_reduce_scatter(tensors)]


def reduce_scatter_shifted(tensors):
    p = len(tensors)
    total = torch.stack(tensors).sum(0).chunk(p)
    return [total[(r + 1) % p] for r in range(p)]


def reduce_scatter_strided(tensors):
    p = len(tensors)
    total = torch.stack(tensors).sum(0)
    return [total[r::p] for r in range(p)]


# --- bytes per step ---


def my_bytes(model, world, strategy):
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    return {"ddp": 2, "fsdp": 3}[strategy] * (world - 1) * size / world


def bytes_without_ring(model, world, strategy):
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    return {"ddp": 2, "fsdp": 3}[strategy] * size


def bytes_fsdp_like_ddp(model, world, strategy):
    return my_bytes(model, world, "ddp")


def bytes_from_state_dict(model, world, strategy):
    size = sum(v.numel() * v.element_size() for v in model.state_dict().values())
    return {"ddp": 2, "fsdp": 3}[strategy] * (world - 1) * size / world


def bytes_as_float32(model, world, strategy):
    size = sum(p.numel() * 4 for p in model.parameters())
    return {"ddp": 2, "fsdp": 3}[strategy] * (world - 1) * size / world


def bytes_by_package(model, world, strategy):
    return communication_per_step(model, world, strategy)


CHECKERS = {
    check_combine_shard_gradients: (my_combine, [(combine_plain_mean, "as DDP does"),
                                                 (combine_weighted_sum, "never divided"),
                                                 (combine_sum, "added the gradients up")]),
    check_reduce_scatter: (my_reduce_scatter, [(reduce_scatter_mean, "a reduce-scatter sums"),
                                               (reduce_scatter_shifted, "one position off"),
                                               (reduce_scatter_strided, "contiguous run")]),
    check_bytes_per_step: (my_bytes, [(bytes_without_ring, "(world - 1) / world"),
                                      (bytes_fsdp_like_ddp, "three passes"),
                                      (bytes_from_state_dict, "under two names"),
                                      (bytes_as_float32, "element_size()")]),
}

(test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
 test_each_wrong_answer_is_named) = contract(CHECKERS)


def test_the_package_function_is_refused_and_works_again_afterwards():
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.frontiers.distributed"):
        check_bytes_per_step(bytes_by_package)

    def calls_it_through_the_module(model, world, strategy):
        from llm_lessons.frontiers import distributed  # noqa: PLC0415

        return distributed.communication_per_step(model, world, strategy)

    with pytest.raises(ExerciseFailed, match="without calling"):
        check_bytes_per_step(calls_it_through_the_module)
    model = _models()[0][0]
    assert communication_per_step(model, 2, "ddp") > 0


def test_the_byte_reference_agrees_with_the_package():
    """The package floors to whole bytes; the reference is exact."""
    for model, _ in _models():
        for world in (1, 2, 3, 4, 8):
            for strategy in ("ddp", "fsdp"):
                assert abs(_bytes(model, world, strategy)
                           - communication_per_step(model, world, strategy)) < 4


def test_the_combined_shard_gradients_equal_autograds_full_batch_gradient():
    """Unequal shards of a real model: the reference's weighting gives the full-batch gradient."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8))
    x = torch.randint(11, (7, 8))
    y = torch.randint(11, (7, 8))

    def gradient(rows):
        model.zero_grad()
        model(x[rows], y[rows])[1].backward()
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    full = gradient(slice(0, 7))
    shards = [gradient(slice(0, 2)), gradient(slice(2, 7))]
    torch.testing.assert_close(_combine(shards, [2, 5]), full, atol=1e-6, rtol=1e-5)
    assert (_combine(shards, [1, 1]) - full).abs().max() > 1e-4  # the plain mean is not


def test_the_ring_simulation_equals_the_sum_on_every_rank():
    """The ring of the test's solution (and of section 2) against a plain sum, p = 1..6."""
    g = torch.Generator().manual_seed(0)
    for p in range(1, 7):
        tensors = [torch.randint(-9, 10, (2 * p,), generator=g).double() for _ in range(p)]
        total = torch.stack(tensors).sum(0)
        assert torch.equal(torch.cat(my_reduce_scatter(tensors)), total)
