"""Checkers for chapter 8.6's exercises: the loss on the response only (SFT), the DPO loss from
four sequence log-probabilities, and the KL divergence to the reference per answer character.

Shapes: B batch (or pairs), T positions, V vocabulary. A target of -100 marks a position that is
not learned (the prompt, the padding). Every answer comes from a reference written here in
float64; the package functions that are the answer
(:func:`llm_lessons.frontiers.preference.dpo_loss`, :func:`llm_lessons.transformer.lm_loss`) and
PyTorch's ready-made losses (``F.cross_entropy``, ``F.nll_loss``, ``F.kl_div``) are forbidden
while the student's code runs.

>>> import torch
>>> def loss(logits, targets):
...     keep = targets != -100                                   # (B, T)
...     logp = logits.log_softmax(-1)[keep]                      # (N, V)
...     return -logp.gather(-1, targets[keep][:, None]).mean()
>>> check_response_loss(loss)
'check_response_loss: all 10 cases passed'
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from llm_lessons.exercises.checking import Case, Mistake, available, random_float, random_int, run_check

IGNORE = -100
_LOSSES = ("torch.nn.functional.cross_entropy", "torch.nn.functional.nll_loss",
           "torch.nn.functional.kl_div", "llm_lessons.transformer.lm_loss")


def _masked_targets(g: torch.Generator, B: int, T: int, V: int) -> torch.Tensor:
    """Targets (B, T): a prompt of random length masked, then answer ids, then masked padding;
    every row keeps at least one learned position."""
    y = torch.full((B, T), IGNORE, dtype=torch.long)
    for b in range(B):
        start = random_int(g, 0, T)
        stop = random_int(g, start + 1, T + 1)
        y[b, start:stop] = torch.randint(0, V, (stop - start,), generator=g)
    return y


def _response_loss(logits, targets, how="learned"):
    """Mean -log p(target) over the learned positions; the flags give the usual wrong versions."""
    z = logits.double().log_softmax(-1)  # (B, T, V)
    keep = targets != IGNORE  # (B, T)
    safe = targets.clamp(min=0)
    nll = -z.gather(-1, safe[..., None]).squeeze(-1) * keep  # (B, T), 0 where not learned
    if how == "all positions":  # the masked positions count as zeros in the mean
        return (nll.sum() / targets.numel()).float()
    if how == "per row":  # each row's mean, then the mean of the rows
        return (nll.sum(1) / keep.sum(1)).mean().float()
    if how == "sum":
        return nll.sum().float()
    if how == "probabilities":  # no log-softmax: raw logits read as log-probabilities
        raw = -logits.double().gather(-1, safe[..., None]).squeeze(-1) * keep
        return (raw.sum() / keep.sum()).float()
    return (nll.sum() / keep.sum()).float()


def check_response_loss(fn: Callable, n_cases: int = 10, seed: int = 0) -> str:
    """``fn(logits, targets)``: logits (B, T, V), targets (B, T) with -100 where a position is not
    learned. Returns the mean of -log softmax(logits)[target] over the learned positions only, a
    0-dimensional tensor: the masked SFT loss."""
    g, t = torch.Generator().manual_seed(seed), torch.tensor
    flat = torch.zeros(1, 4, 5)
    cases = [Case((flat, t([[IGNORE, IGNORE, 2, 3]])), torch.tensor(math.log(5)),
                  "flat logits over V = 5, a prompt of 2 then 2 learned targets: log 5"),
             Case((t([[[2.0, 0.0], [0.0, 3.0]]]), t([[0, 1]])),
                  _response_loss(t([[[2.0, 0.0], [0.0, 3.0]]]), t([[0, 1]])),
                  "B = 1, T = 2, V = 2, nothing masked")]
    uneven = torch.randn(2, 6, 4, generator=g) * 2
    uneven_y = t([[IGNORE, IGNORE, IGNORE, IGNORE, 1, 2], [IGNORE, 0, 3, 1, 2, 0]])
    cases.append(Case((uneven, uneven_y), _response_loss(uneven, uneven_y),
                      "two rows with 2 and 5 learned targets (a short answer and a long one)"))
    while len(cases) < n_cases:
        B, T, V = random_int(g, 1, 5), random_int(g, 2, 9), random_int(g, 2, 12)
        logits = torch.randn(B, T, V, generator=g) * random_float(g, 0.5, 4.0)
        y = _masked_targets(g, B, T, V)
        cases.append(Case((logits, y), _response_loss(logits, y),
                          f"B = {B}, T = {T}, V = {V}, {int((y != IGNORE).sum())} learned targets"))
    mistakes = [
        Mistake("all positions", lambda z, y: _response_loss(z, y, "all positions"),
                "your mean divides by every position, masked ones included: the prompt then "
                "counts as zero loss and shrinks the average. Divide by the number of learned "
                "targets (targets != -100)"),
        Mistake("per row", lambda z, y: _response_loss(z, y, "per row"),
                "you averaged each row, then the rows: a one-word answer then weighs as much as "
                "a long one. Average over all learned targets of the batch at once"),
        Mistake("sum", lambda z, y: _response_loss(z, y, "sum"),
                "you returned the sum of the losses; the loss is their mean"),
        Mistake("probabilities", lambda z, y: _response_loss(z, y, "probabilities"),
                "you read the raw logits as log-probabilities: apply log_softmax over the "
                "vocabulary (the last dimension) first"),
    ]
    return run_check("check_response_loss", fn, cases, mistakes, forbidden=available(_LOSSES))


def _dpo(pc, pr, rc, rr, beta, how="dpo"):
    """(mean loss, chosen rewards, rejected rewards); the flags give the usual wrong versions."""
    pc, pr, rc, rr = (x.double() for x in (pc, pr, rc, rr))
    chosen, rejected = beta * (pc - rc), beta * (pr - rr)
    if how == "no reference":
        chosen, rejected = beta * pc, beta * pr
    margin = chosen - rejected
    if how == "swapped":
        margin = -margin
    if how == "beta outside":
        margin = (pc - rc) - (pr - rr)
    losses = torch.nn.functional.softplus(-margin)  # -log sigmoid(margin), stable
    if how == "beta outside":
        losses = beta * losses
    loss = losses.sum() if how == "sum" else losses.mean()
    return loss.float(), chosen.float(), rejected.float()


def check_dpo_loss(fn: Callable, n_cases: int = 10, seed: int = 1) -> str:
    """``fn(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta)``: four tensors (B,)
    of sequence log-probabilities and beta > 0. Returns ``(loss, chosen_rewards,
    rejected_rewards)``: rewards beta * (log pi - log pi_ref) per pair, and the mean over pairs of
    -log sigmoid(chosen reward - rejected reward)."""
    g, t = torch.Generator().manual_seed(seed), torch.tensor
    same = (t([-10.0, -3.0]), t([-12.0, -4.0]), t([-10.0, -3.0]), t([-12.0, -4.0]), 0.1)
    cases = [Case(same, _dpo(*same), "policy = reference: rewards 0, loss log 2"),
             Case((t([-10.0]), t([-12.0]), t([-11.0]), t([-11.0]), 0.1),
                  _dpo(t([-10.0]), t([-12.0]), t([-11.0]), t([-11.0]), 0.1),
                  "one pair: chosen up by 1 nat, rejected down by 1, beta 0.1: -log sigmoid(0.2)"),
             Case((t([-5.0, -40.0]), t([-60.0, -2.0]), t([-30.0, -30.0]), t([-30.0, -30.0]), 2.0),
                  _dpo(t([-5.0, -40.0]), t([-60.0, -2.0]), t([-30.0, -30.0]), t([-30.0, -30.0]), 2.0),
                  "large margins with beta 2 (one pair far right, one far wrong): keep it finite")]
    while len(cases) < n_cases:
        B = random_int(g, 1, 9)
        args = tuple(-30 * torch.rand(B, generator=g) for _ in range(4))
        beta = round(random_float(g, 0.05, 1.0), 3)
        cases.append(Case((*args, beta), _dpo(*args, beta), f"B = {B} pairs, beta = {beta}"))
    mistakes = [
        Mistake("no reference", lambda *a: _dpo(*a, how="no reference"),
                "your rewards ignore the reference model: the implicit reward is "
                "beta * (log pi - log pi_ref), a log-ratio, not beta * log pi"),
        Mistake("swapped", lambda *a: _dpo(*a, how="swapped"),
                "your loss prefers the rejected answer: the sigmoid takes chosen reward minus "
                "rejected reward"),
        Mistake("beta outside", lambda *a: _dpo(*a, how="beta outside"),
                "beta multiplies the log-ratios inside the sigmoid, not the loss outside it"),
        Mistake("sum", lambda *a: _dpo(*a, how="sum"),
                "you summed the losses of the pairs; the loss is their mean"),
    ]
    forbidden = available(("llm_lessons.frontiers.preference.dpo_loss",))
    return run_check("check_dpo_loss", fn, cases, mistakes, forbidden=forbidden, atol=1e-4)


def _kl(policy_logits, ref_logits, targets, how="forward"):
    """Mean KL(p || q) per learned position; the flags give the usual wrong versions."""
    keep = targets != IGNORE  # (B, T)
    logp = policy_logits.double().log_softmax(-1)  # (B, T, V)
    logq = ref_logits.double().log_softmax(-1)
    if how == "reverse":
        logp, logq = logq, logp
    if how == "sampled":  # log p - log q of the target only: an estimate, not the divergence
        safe = targets.clamp(min=0)[..., None]
        per = (logp.gather(-1, safe) - logq.gather(-1, safe)).squeeze(-1)
    else:
        per = (logp.exp() * (logp - logq)).sum(-1)  # (B, T)
    if how == "all positions":
        return per.mean().float()
    return per[keep].mean().float()


def check_response_kl(fn: Callable, n_cases: int = 10, seed: int = 2) -> str:
    """``fn(policy_logits, ref_logits, targets)``: logits (B, T, V) of the policy and the reference
    on one batch, targets (B, T) with -100 where nothing is learned. Returns the mean over the
    learned positions of KL(p || q) = sum_v p_v (log p_v - log q_v), p the policy's and q the
    reference's softmax: a 0-dimensional tensor."""
    g, t = torch.Generator().manual_seed(seed), torch.tensor
    z = torch.randn(1, 3, 4, generator=g)
    cases = [Case((z, z.clone(), t([[IGNORE, 1, 2]])), torch.tensor(0.0),
                  "the policy equals the reference: KL 0"),
             Case((t([[[0.0, 0.0]]]), t([[[math.log(3.0), 0.0]]]), t([[1]])),
                  _kl(t([[[0.0, 0.0]]]), t([[[math.log(3.0), 0.0]]]), t([[1]])),
                  "one position, p = (1/2, 1/2), q = (3/4, 1/4)")]
    while len(cases) < n_cases:
        B, T, V = random_int(g, 1, 4), random_int(g, 2, 8), random_int(g, 2, 10)
        ref = torch.randn(B, T, V, generator=g) * 2
        pol = ref + torch.randn(B, T, V, generator=g) * random_float(g, 0.3, 2.0)
        y = _masked_targets(g, B, T, V)
        cases.append(Case((pol, ref, y), _kl(pol, ref, y),
                          f"B = {B}, T = {T}, V = {V}, {int((y != IGNORE).sum())} learned positions"))
    mistakes = [
        Mistake("reverse", lambda p, q, y: _kl(p, q, y, "reverse"),
                "you computed KL(reference || policy): the divergence is not symmetric. Weight "
                "by the policy's probabilities p: sum_v p_v (log p_v - log q_v)"),
        Mistake("all positions", lambda p, q, y: _kl(p, q, y, "all positions"),
                "you averaged over every position, the prompt's and the padding's too: keep only "
                "the learned ones (targets != -100)"),
        Mistake("sampled", lambda p, q, y: _kl(p, q, y, "sampled"),
                "you took log p - log q of the target character only, a one-sample estimate; the "
                "divergence sums over the whole vocabulary, weighted by p"),
    ]
    return run_check("check_response_kl", fn, cases, mistakes, forbidden=available(_LOSSES))
