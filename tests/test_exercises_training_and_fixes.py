"""The checkers of chapters 3.2, 4.4 and 5 (the learning-rate schedule, gradient clipping, mask
filling, mask-predict's re-masking, the mask nn.MultiheadAttention expects, the future-leak
test): an independent solution passes, a stub is "not implemented yet", each plausible wrong
answer fails with words that name its mistake, and the functions that are the answer cannot be
used to pass."""

from __future__ import annotations

import math

import pytest
import torch
from checker_contract import contract
from torch import nn

from llm_lessons.exercises.article_fixes import check_future_leak, check_subsequent_mask, fake_model
from llm_lessons.exercises.checking import ExerciseFailed
from llm_lessons.exercises.mlm_filling import check_fill_masks, check_remask, check_remask_counts
from llm_lessons.exercises.optimisation import check_clip_grad_norm, check_lr_schedule
from llm_lessons.training import TrainConfig, lr_at

# --- the learning-rate schedule ---


def my_schedule(step, peak, warmup, total, low):
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return low + (peak - low) * (1 + math.cos(math.pi * progress)) / 2


def schedule_from_zero(step, peak, warmup, total, low):
    return peak * step / warmup if step < warmup else my_schedule(step, peak, warmup, total, low)


def schedule_to_zero(step, peak, warmup, total, low):
    return my_schedule(step, peak, warmup, total, 0.0)


def schedule_linear(step, peak, warmup, total, low):
    if step < warmup:
        return peak * (step + 1) / warmup
    return low + (peak - low) * max(0.0, 1 - (step - warmup) / (total - warmup))


# --- gradient clipping ---


def my_clip(grads, max_norm):
    total = torch.cat([g.flatten() for g in grads]).norm().item()
    factor = min(1.0, max_norm / (total + 1e-6))
    return [g * factor for g in grads], total


def clip_each(grads, max_norm):
    out = [g * min(1.0, max_norm / (g.norm().item() + 1e-6)) for g in grads]
    return out, torch.cat([g.flatten() for g in grads]).norm().item()


def clip_always(grads, max_norm):
    total = torch.cat([g.flatten() for g in grads]).norm().item()
    return [g * max_norm / total for g in grads], total


def clip_with_torch(grads, max_norm):
    params = [nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    total = torch.nn.utils.clip_grad_norm_(params, max_norm)
    return [p.grad for p in params], float(total)


# --- mask filling and mask-predict ---


def my_fill(ids, logits, mask_id):
    logits = logits.clone()
    logits[:, mask_id] = -math.inf
    return torch.where(ids == mask_id, logits.argmax(-1), ids)


def fill_everywhere(ids, logits, mask_id):
    logits = logits.clone()
    logits[:, mask_id] = -math.inf
    return logits.argmax(-1)


def fill_with_mask(ids, logits, mask_id):
    return torch.where(ids == mask_id, logits.argmax(-1), ids)


def my_remask(confidence, free, n):
    scores = torch.where(free, confidence, torch.full_like(confidence, math.inf))
    chosen = torch.argsort(scores, stable=True)[:n]  # stable: equal confidences, earlier first
    out = torch.zeros_like(free)
    out[chosen] = True
    return out


def remask_most_confident(confidence, free, n):
    scores = torch.where(free, -confidence, torch.full_like(confidence, math.inf))
    out = torch.zeros_like(free)
    out[torch.argsort(scores, stable=True)[:n]] = True
    return out


def remask_ignoring_free(confidence, free, n):
    out = torch.zeros_like(free)
    out[torch.argsort(confidence, stable=True)[:n]] = True
    return out


def my_counts(N, iterations):
    return [N * (iterations - 1 - i) // iterations for i in range(iterations)]


def counts_off_by_one(N, iterations):
    return [N * (iterations - i) // iterations for i in range(iterations)]


def counts_fractional(N, iterations):
    return [N * (iterations - 1 - i) / iterations for i in range(iterations)]


# --- chapter 5 ---


def my_subsequent_mask(T):
    return torch.triu(torch.full((T, T), -math.inf), diagonal=1)


def bool_blocked_mask(T):  # PyTorch's own bool convention: also right
    return torch.ones(T, T).triu(1).bool()


def keep_mask(T):
    return torch.tril(torch.ones(T, T)).bool()


def mask_with_diagonal(T):
    return torch.triu(torch.full((T, T), -math.inf))


def torch_mask(T):
    return nn.Transformer.generate_square_subsequent_mask(T)


def my_future_leak(logits_fn, ids, t):
    changed = ids.clone()
    V = logits_fn(ids).shape[-1]
    changed[:, t:] = (changed[:, t:] + 1) % V
    return (logits_fn(ids)[:, :t] - logits_fn(changed)[:, :t]).abs().max().item()


def leak_including_t(logits_fn, ids, t):
    changed = ids.clone()
    changed[:, t:] = (changed[:, t:] + 1) % logits_fn(ids).shape[-1]
    return (logits_fn(ids)[:, : t + 1] - logits_fn(changed)[:, : t + 1]).abs().max().item()


def leak_changing_only_t(logits_fn, ids, t):
    changed = ids.clone()
    changed[:, t] = (changed[:, t] + 1) % logits_fn(ids).shape[-1]
    return (logits_fn(ids)[:, :t] - logits_fn(changed)[:, :t]).abs().max().item()


def leak_after_t(logits_fn, ids, t):
    changed = ids.clone()
    changed[:, t + 1:] = (changed[:, t + 1:] + 1) % logits_fn(ids).shape[-1]
    return (logits_fn(ids)[:, :t] - logits_fn(changed)[:, :t]).abs().max().item()


CHECKERS = {
    check_lr_schedule: (my_schedule, [(schedule_from_zero, "starts at 0"), (schedule_to_zero, "ends at 0"),
                                      (schedule_linear, "straight line")]),
    check_clip_grad_norm: (my_clip, [(clip_each, "each tensor"), (clip_always, "already below")]),
    check_fill_masks: (my_fill, [(fill_everywhere, "given tokens must stay"),
                                 (fill_with_mask, "[MASK] itself be predicted")]),
    check_remask: (my_remask, [(remask_most_confident, "MOST confident"),
                               (remask_ignoring_free, "not free")]),
    check_remask_counts: (my_counts, [(counts_off_by_one, "N (I - 1 - i) / I"),
                                      (counts_fractional, "round down")]),
    check_subsequent_mask: (my_subsequent_mask, [(keep_mask, "True = blocked"),
                                                 (mask_with_diagonal, "blocked the diagonal")]),
    check_future_leak: (my_future_leak, [(leak_including_t, "compared position t"),
                                         (leak_changing_only_t, "changed only the token at position t"),
                                         (leak_after_t, "but not the one at t")]),
}

(test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
 test_each_wrong_answer_is_named) = contract(CHECKERS)


def test_the_schedule_checker_agrees_with_the_training_loop():
    """The checker's reference is the schedule train() uses: lr_at, step by step."""
    config = TrainConfig(max_steps=60, lr=2e-3, warmup_steps=7, min_lr_ratio=0.1)
    for step in range(70):
        assert math.isclose(my_schedule(step, 2e-3, 7, 60, 2e-4), lr_at(step, config), rel_tol=1e-12)


def test_the_clipping_checker_agrees_with_pytorch():
    """Outside the check, torch's clip_grad_norm_ gives the checker's answers; inside, it is refused."""
    g = torch.Generator().manual_seed(0)
    grads = [torch.randn(3, 2, generator=g), torch.randn(5, generator=g) * 3]
    for max_norm in (0.5, 100.0):
        mine, torchs = my_clip(grads, max_norm), clip_with_torch(grads, max_norm)
        assert math.isclose(mine[1], torchs[1], rel_tol=1e-5)
        for a, b in zip(mine[0], torchs[0], strict=True):
            torch.testing.assert_close(a, b)
    with pytest.raises(ExerciseFailed, match="without calling torch.nn.utils.clip_grad_norm_"):
        check_clip_grad_norm(clip_with_torch)


def test_pytorchs_mask_is_the_answer_and_is_refused():
    assert torch.equal(torch_mask(5), my_subsequent_mask(5))
    with pytest.raises(ExerciseFailed, match="without calling torch.nn.Transformer.generate_square"):
        check_subsequent_mask(torch_mask)
    assert isinstance(vars(nn.Transformer)["generate_square_subsequent_mask"], staticmethod)  # put back
    assert "all 6 cases passed" in check_subsequent_mask(bool_blocked_mask)  # PyTorch's bool convention


def test_the_remask_checker_agrees_with_mask_predict():
    """The counts are iterative_refinement's own: N (I - 1 - i) // I."""
    from llm_lessons import mlm_decoding

    class Unsure(nn.Module):  # predicts token 1 with a confidence that falls along the row
        block_size = 16

        def forward(self, idx, targets=None):
            T = idx.shape[-1]
            logits = torch.zeros(*idx.shape, 4)
            logits[..., 1] = torch.linspace(3.0, 0.0, T)
            return logits, None

    trace = mlm_decoding.iterative_refinement(Unsure(), 10, 4, mask_id=3)
    counts = trace.masked.sum(dim=1).tolist()  # masked before each iteration
    assert counts == [10] + my_counts(10, 4)[:-1]


@pytest.mark.parametrize("kind, leaks", [("causal", False), ("next", True), ("all", True), ("last", True)])
def test_the_fake_models_leak_as_described(kind, leaks):
    model = fake_model(kind, 6, torch.Generator().manual_seed(0))
    ids = torch.randint(0, 6, (2, 8), generator=torch.Generator().manual_seed(1))
    assert (my_future_leak(model, ids, 3) > 1e-6) == leaks
