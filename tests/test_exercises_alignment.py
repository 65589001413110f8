"""The checkers of chapter 8.6 (the loss on the response only, the DPO loss from four
log-probabilities, the KL to the reference per answer character): an independent solution passes,
a stub is "not implemented yet", each plausible wrong answer fails with words that name its
mistake, and the functions that are the answer cannot be used to pass. The checkers' references
agree with the package (the book's loss, ``dpo_loss``) and with PyTorch's own KL."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from checker_contract import contract

from llm_lessons.exercises.alignment import check_dpo_loss, check_response_kl, check_response_loss
from llm_lessons.exercises.checking import ExerciseFailed
from llm_lessons.frontiers.preference import dpo_loss
from llm_lessons.transformer import lm_loss

# --- the loss on the response only ---


def my_response_loss(logits, targets):
    total, count = torch.zeros((), dtype=torch.float64), 0
    for b in range(targets.shape[0]):
        for t in range(targets.shape[1]):
            if targets[b, t] != -100:
                z = logits[b, t].double()
                total = total - (z[targets[b, t]] - torch.logsumexp(z, 0))
                count += 1
    return (total / count).float()


def loss_over_all_positions(logits, targets):
    keep = targets != -100
    nll = -logits.log_softmax(-1).gather(-1, targets.clamp(min=0)[..., None]).squeeze(-1)
    return (nll * keep).sum() / targets.numel()


def loss_per_row(logits, targets):
    keep = targets != -100
    nll = -logits.log_softmax(-1).gather(-1, targets.clamp(min=0)[..., None]).squeeze(-1)
    return ((nll * keep).sum(1) / keep.sum(1)).mean()


def loss_on_raw_logits(logits, targets):
    keep = targets != -100
    return -logits[keep].gather(-1, targets[keep][:, None]).mean()


def loss_with_cross_entropy(logits, targets):
    return F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=-100)


# --- the DPO loss ---


def my_dpo(pc, pr, rc, rr, beta):
    chosen, rejected = beta * (pc - rc), beta * (pr - rr)
    return torch.log1p(torch.exp(-(chosen - rejected))).mean(), chosen, rejected


def dpo_without_reference(pc, pr, rc, rr, beta):
    chosen, rejected = beta * pc, beta * pr
    return -F.logsigmoid(chosen - rejected).mean(), chosen, rejected


def dpo_swapped(pc, pr, rc, rr, beta):
    chosen, rejected = beta * (pc - rc), beta * (pr - rr)
    return -F.logsigmoid(rejected - chosen).mean(), chosen, rejected


def dpo_beta_outside(pc, pr, rc, rr, beta):
    chosen, rejected = beta * (pc - rc), beta * (pr - rr)
    return -beta * F.logsigmoid((pc - rc) - (pr - rr)).mean(), chosen, rejected


def dpo_summed(pc, pr, rc, rr, beta):
    chosen, rejected = beta * (pc - rc), beta * (pr - rr)
    return -F.logsigmoid(chosen - rejected).sum(), chosen, rejected


def dpo_from_the_package(pc, pr, rc, rr, beta):
    return dpo_loss(pc, pr, rc, rr, beta=beta)


# --- the KL to the reference ---


def my_kl(policy_logits, ref_logits, targets):
    keep = targets != -100
    p = policy_logits[keep].double().softmax(-1)
    q = ref_logits[keep].double().softmax(-1)
    return (p * (p.log() - q.log())).sum(-1).mean()


def kl_reversed(policy_logits, ref_logits, targets):
    return my_kl(ref_logits, policy_logits, targets)


def kl_everywhere(policy_logits, ref_logits, targets):
    p = policy_logits.double().log_softmax(-1)
    q = ref_logits.double().log_softmax(-1)
    return (p.exp() * (p - q)).sum(-1).mean()


def kl_of_the_target_only(policy_logits, ref_logits, targets):
    keep = targets != -100
    y = targets[keep][:, None]
    p = policy_logits[keep].log_softmax(-1).gather(-1, y)
    q = ref_logits[keep].log_softmax(-1).gather(-1, y)
    return (p - q).mean()


def kl_with_torch(policy_logits, ref_logits, targets):
    keep = targets != -100
    return F.kl_div(ref_logits[keep].log_softmax(-1), policy_logits[keep].log_softmax(-1),
                    reduction="batchmean", log_target=True)


CHECKERS = {
    check_response_loss: (my_response_loss, [(loss_over_all_positions, "divides by every position"),
                                             (loss_per_row, "averaged each row"),
                                             (loss_on_raw_logits, "raw logits")]),
    check_dpo_loss: (my_dpo, [(dpo_without_reference, "ignore the reference"),
                              (dpo_swapped, "prefers the rejected"),
                              (dpo_beta_outside, "inside the sigmoid"),
                              (dpo_summed, "summed")]),
    check_response_kl: (my_kl, [(kl_reversed, "KL(reference || policy)"),
                                (kl_everywhere, "every position"),
                                (kl_of_the_target_only, "one-sample estimate")]),
}

(test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
 test_each_wrong_answer_is_named) = contract(CHECKERS)


def test_the_package_functions_are_the_answers_and_are_refused():
    g = torch.Generator().manual_seed(0)
    logits, ref = torch.randn(2, 5, 7, generator=g), torch.randn(2, 5, 7, generator=g)
    targets = torch.tensor([[-100, -100, 3, 1, -100], [-100, 2, 0, 6, 5]])
    # outside the checks they agree with the independent solutions ...
    torch.testing.assert_close(lm_loss(logits, targets), my_response_loss(logits, targets))
    torch.testing.assert_close(kl_with_torch(logits, ref, targets).double(), my_kl(logits, ref, targets))
    four = [-30 * torch.rand(4, generator=g) for _ in range(4)]
    for a, b in zip(dpo_loss(*four, beta=0.3), my_dpo(*four, 0.3), strict=True):
        torch.testing.assert_close(a, b)
    # ... inside, they are refused
    with pytest.raises(ExerciseFailed, match="without calling torch.nn.functional.cross_entropy"):
        check_response_loss(loss_with_cross_entropy)
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.frontiers.preference.dpo_loss"):
        check_dpo_loss(dpo_from_the_package)
    with pytest.raises(ExerciseFailed, match="without calling torch.nn.functional.kl_div"):
        check_response_kl(kl_with_torch)
