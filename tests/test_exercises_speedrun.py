"""The checkers of chapter 8.9 (Muon's Newton–Schulz iteration, the time to a target loss, one
Muon step): an independent solution passes, a stub is "not implemented yet", each plausible wrong
answer fails with words that name its mistake, a wrong type or a raising function is said plainly,
the functions that are the answer are refused, and the references agree with the package."""

from __future__ import annotations

import pytest
import torch
from checker_contract import contract

from llm_lessons.exercises import check_muon_update, check_newton_schulz, check_time_to_target
from llm_lessons.exercises.checking import ExerciseFailed
from llm_lessons.exercises.speedrun import _muon, _muon_step, _ns, _time_to_target
from llm_lessons.frontiers import muon
from llm_lessons.frontiers.muon import MuonAdamW, newton_schulz

# --- the Newton–Schulz iteration ---


def my_newton_schulz(G, steps):
    a, b, c = 3.4445, -4.7750, 2.0315
    tall = G.shape[0] > G.shape[1]
    X = G.T if tall else G  # (m, n) with m <= n
    X = X / torch.clamp(torch.sqrt((X * X).sum()), min=1e-7)
    for _ in range(steps):
        A = X @ X.T
        X = a * X + b * (A @ X) + c * (A @ (A @ X))
    return X.T if tall else X


def ns_on_the_tall_side(G, steps):
    """No transpose: X (X^T X) on the right equals (X X^T) X, so this is right too."""
    X = G / (G.norm() + 1e-7)  # the original Muon code's "+ eps"
    for _ in range(steps):
        A = X.T @ X
        X = 3.4445 * X + X @ (-4.7750 * A + 2.0315 * A @ A)
    return X


def ns_reversed(G, steps):
    c, b, a = 3.4445, -4.7750, 2.0315  # read backwards
    tall = G.shape[0] > G.shape[1]
    X = G.T if tall else G
    X = X / X.norm().clamp(min=1e-7)
    for _ in range(steps):
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    return X.T if tall else X


def ns_not_normalised(G, steps):
    X = G.T if G.shape[0] > G.shape[1] else G
    for _ in range(steps):
        A = X @ X.T
        X = 3.4445 * X + (-4.7750 * A + 2.0315 * A @ A) @ X
    return X.T if G.shape[0] > G.shape[1] else X


def ns_gram_on_the_left(G, steps):
    X = G.T if G.shape[0] > G.shape[1] else G
    X = X / X.norm().clamp(min=1e-7)
    for _ in range(steps):
        A = X.T @ X  # (n, n): cannot multiply the (m, n) X from the left
        X = 3.4445 * X + (-4.7750 * A + 2.0315 * A @ A) @ X
    return X.T if G.shape[0] > G.shape[1] else X


def ns_not_transposed_back(G, steps):
    return my_newton_schulz(G, steps).T if G.shape[0] > G.shape[1] else my_newton_schulz(G, steps)


def ns_without_clamp(G, steps):
    tall = G.shape[0] > G.shape[1]
    X = G.T if tall else G
    X = X / X.norm()  # 0 / 0 for a zero matrix
    for _ in range(steps):
        A = X @ X.T
        X = 3.4445 * X + (-4.7750 * A + 2.0315 * A @ A) @ X
    return X.T if tall else X


def ns_spectral(G, steps):
    X = G.T if G.shape[0] > G.shape[1] else G
    X = X / torch.linalg.svdvals(X).max().clamp(min=1e-7)
    for _ in range(steps):
        A = X @ X.T
        X = 3.4445 * X + (-4.7750 * A + 2.0315 * A @ A) @ X
    return X.T if G.shape[0] > G.shape[1] else X


# --- the time to a target loss ---


def my_time_to_target(steps, val_losses, wall, target):
    for step, loss, seconds in zip(steps, val_losses, wall, strict=True):
        if loss <= target:
            return step, seconds
    return None, None


def time_strict(steps, val_losses, wall, target):
    for step, loss, seconds in zip(steps, val_losses, wall, strict=True):
        if loss < target:
            return step, seconds
    return None, None


def time_last_crossing(steps, val_losses, wall, target):
    found = (None, None)
    for step, loss, seconds in zip(steps, val_losses, wall, strict=True):
        if loss <= target:
            found = (step, seconds)
    return found


def time_index(steps, val_losses, wall, target):
    for i, loss in enumerate(val_losses):
        if loss <= target:
            return i, wall[i]
    return None, None


def time_one_earlier(steps, val_losses, wall, target):
    for i, loss in enumerate(val_losses):
        if loss <= target:
            return steps[i], wall[i - 1]
    return None, None


def time_last_if_never(steps, val_losses, wall, target):
    found = my_time_to_target(steps, val_losses, wall, target)
    return (steps[-1], wall[-1]) if found == (None, None) and steps else found


# --- one step of Muon ---


def my_muon_update(param, grad, buf, lr, momentum, weight_decay, nesterov):
    param = param * (1 - lr * weight_decay)
    buf = buf.lerp(grad, 1 - momentum)
    u = grad.lerp(buf, momentum) if nesterov else buf
    rows, cols = param.shape
    return param - lr * max(1.0, rows / cols) ** 0.5 * newton_schulz(u), buf


def muon_without_nesterov(param, grad, buf, lr, momentum, weight_decay, nesterov):
    return my_muon_update(param, grad, buf, lr, momentum, weight_decay, False)


def muon_without_ratio(param, grad, buf, lr, momentum, weight_decay, nesterov):
    param = param * (1 - lr * weight_decay)
    buf = buf.lerp(grad, 1 - momentum)
    return param - lr * newton_schulz(grad.lerp(buf, momentum) if nesterov else buf), buf


def muon_decay_after(param, grad, buf, lr, momentum, weight_decay, nesterov):
    new, buf = my_muon_update(param, grad, buf, lr, momentum, 0.0, nesterov)
    return new * (1 - lr * weight_decay), buf


def muon_without_decay(param, grad, buf, lr, momentum, weight_decay, nesterov):
    return my_muon_update(param, grad, buf, lr, momentum, 0.0, nesterov)


def muon_ratio_inverted(param, grad, buf, lr, momentum, weight_decay, nesterov):
    param = param * (1 - lr * weight_decay)
    buf = buf.lerp(grad, 1 - momentum)
    u = grad.lerp(buf, momentum) if nesterov else buf
    rows, cols = param.shape
    return param - lr * max(1.0, cols / rows) ** 0.5 * newton_schulz(u), buf


def muon_buffer_reversed(param, grad, buf, lr, momentum, weight_decay, nesterov):
    buf = buf.lerp(grad, momentum)  # keeps 1 - momentum of the old buffer
    u = grad.lerp(buf, momentum) if nesterov else buf
    rows, cols = param.shape
    return param * (1 - lr * weight_decay) - lr * max(1.0, rows / cols) ** 0.5 * newton_schulz(u), buf


def muon_full_gradient_in_buffer(param, grad, buf, lr, momentum, weight_decay, nesterov):
    param = param * (1 - lr * weight_decay)
    buf = momentum * buf + grad
    u = grad + momentum * (buf - grad) if nesterov else buf
    rows, cols = param.shape
    return param - lr * max(1.0, rows / cols) ** 0.5 * newton_schulz(u), buf


CHECKERS = {
    check_newton_schulz: (my_newton_schulz, [(ns_reversed, "wrong order"),
                                             (ns_not_normalised, "Frobenius norm first"),
                                             (ns_gram_on_the_left, "does not fit the shapes"),
                                             (ns_not_transposed_back, "transpose the result back"),
                                             (ns_without_clamp, "clamp it before dividing"),
                                             (ns_spectral, "largest singular value")]),
    check_time_to_target: (my_time_to_target, [(time_strict, "use <="),
                                               (time_last_crossing, "the race ends at the first"),
                                               (time_index, "return the training step"),
                                               (time_one_earlier, "the evaluation before"),
                                               (time_last_if_never, "return (None, None)")]),
    check_muon_update: (my_muon_update, [(muon_without_nesterov, "Nesterov looks ahead"),
                                         (muon_without_ratio, "sqrt(max(1, rows / cols))"),
                                         (muon_decay_after, "after the update"),
                                         (muon_without_decay, "left out the weight decay"),
                                         (muon_full_gradient_in_buffer, "adds the whole gradient"),
                                         (muon_ratio_inverted, "the wrong way round"),
                                         (muon_buffer_reversed, "keeps (1 - momentum) of the old")]),
}

(test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
 test_each_wrong_answer_is_named) = contract(CHECKERS)


def test_the_tall_side_and_norm_plus_eps_pass_too():
    """(X X^T) X = X (X^T X): the orientation only changes the cost, so it is no mistake."""
    assert check_newton_schulz(ns_on_the_tall_side) == "check_newton_schulz: all 12 cases passed"


@pytest.mark.parametrize("checker, wrong, words", [
    (check_newton_schulz, lambda G, steps: G.tolist(), "expected a tensor of shape"),
    (check_newton_schulz, lambda G, steps: G[:, :1], "expected shape"),
    (check_time_to_target, lambda *a: my_time_to_target(*a)[0], "expected 2 values"),
    (check_time_to_target, lambda *a: None, "expected 2 values"),
    (check_muon_update, lambda *a: my_muon_update(*a)[0], "expected 2 values"),
    (check_muon_update, lambda p, g, *a: (p, g.sum()), "value 0"),
    (check_time_to_target, lambda s, losses, w, t: (s[losses.index(min(losses))], w[0]),
     "your function raised ValueError"),
    (check_muon_update, lambda p, *a: p.inverse(), "your function raised"),
])
def test_a_wrong_type_or_a_raising_function_is_said_plainly(checker, wrong, words):
    with pytest.raises(ExerciseFailed) as failure:
        checker(wrong)
    assert words in str(failure.value), str(failure.value)


def test_the_package_functions_are_refused_and_work_again_afterwards():
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.frontiers.muon.newton_schulz"):
        check_newton_schulz(newton_schulz)
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.frontiers.muon.newton_schulz"):
        check_newton_schulz(lambda G, steps: muon.newton_schulz(G, steps))

    def with_the_optimizer(param, grad, buf, lr, momentum, weight_decay, nesterov):
        return _muon_step(param, grad, buf, lr, momentum, weight_decay, nesterov)

    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.frontiers.muon.MuonAdamW.step"):
        check_muon_update(with_the_optimizer)
    G = torch.randn(4, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(newton_schulz(G, 3), my_newton_schulz(G, 3))  # put back
    p = torch.nn.Parameter(torch.ones(3, 2))
    p.grad = torch.eye(3, 2)
    MuonAdamW([{"params": [p], "muon": True}], lr=0.1).step()
    assert not torch.equal(p.detach(), torch.ones(3, 2))


def test_the_written_out_references_agree_with_the_package():
    g = torch.Generator().manual_seed(1)
    for m, n, steps in [(3, 8, 5), (8, 3, 5), (6, 6, 2), (1, 5, 4), (9, 1, 0)]:
        G = torch.randn(m, n, generator=g, dtype=torch.float64)
        torch.testing.assert_close(_ns(G, steps), newton_schulz(G, steps), atol=1e-12, rtol=1e-10)
    for (rows, cols), nesterov, wd in [((8, 3), True, 0.1), ((3, 8), False, 0.0), ((5, 5), True, 0.5)]:
        args = (torch.randn(rows, cols, generator=g), torch.randn(rows, cols, generator=g),
                torch.randn(rows, cols, generator=g), 0.02, 0.95, wd, nesterov)
        for ours, package in zip(_muon(*args), _muon_step(*args), strict=True):
            torch.testing.assert_close(ours, package, atol=1e-6, rtol=1e-5)
    assert _time_to_target([50, 100], [2.1, 2.0], [1.0, 2.5], 2.0) == (100, 2.5)
    assert _time_to_target([], [], [], 2.0) == (None, None)


def test_momentum_without_one_minus_m_is_caught_on_the_buffer():
    """Newton–Schulz forgets the scale of u, so without Nesterov the weight alone cannot tell
    buf = m buf + g from the average; the returned buffer does."""
    args = (torch.ones(3, 2), torch.eye(3, 2), torch.zeros(3, 2), 0.02, 0.9, 0.0, False)
    right, wrong = _muon(*args), _muon(*args, buffer="no 1 - m")
    torch.testing.assert_close(right[0], wrong[0], atol=1e-6, rtol=1e-5)
    assert not torch.allclose(right[1], wrong[1])
