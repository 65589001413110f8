"""Direct preference optimisation (DPO): learn from pairs of answers, one preferred, without a
reward model or reinforcement learning.

Shapes use fixed letters: B pairs, T time, V vocabulary.

RLHF trains a reward model on human preferences, then a policy to maximise that reward while
staying close (in KL) to the model it started from. Rafailov et al. (2023) showed that the
optimum of that problem can be reached directly: with ``r(x, y) = beta * log(pi(y|x) / pi_ref(y|x))``
as an implicit reward, the Bradley–Terry likelihood of the preferences becomes a loss on the
policy itself:

    loss = -log sigmoid( beta * [ (log pi(y_w) - log pi_ref(y_w)) - (log pi(y_l) - log pi_ref(y_l)) ] )

for a preferred answer y_w and a dispreferred y_l to the same prompt. It raises the preferred
answer's probability relative to the reference model more than the other's; ``beta`` sets how
far from the reference that may go. The reference is a frozen copy of the starting model.

>>> pc, pr, rc, rr = (torch.tensor([v]) for v in (-10.0, -12.0, -11.0, -11.0))
>>> loss, chosen, rejected = dpo_loss(pc, pr, rc, rr, beta=0.1)
>>> round(loss.item(), 4), round(chosen.item(), 2), round(rejected.item(), 2)   # -log sigmoid(0.2)
(0.5981, 0.1, -0.1)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sequence_logprob(model, idx: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
    """log p(completion | prompt) for each row of idx (B, T): the sum of log p(x_t | x_<t) over
    the positions t where ``completion_mask`` (B, T) is 1. Works with any book model
    (``forward(idx) -> (logits, loss)``); padding after the text cannot change a causal model's
    earlier predictions, so right-padded batches need no attention mask."""
    if idx.shape != completion_mask.shape:
        raise ValueError(f"idx {tuple(idx.shape)} and completion_mask {tuple(completion_mask.shape)} "
                         "must have one shape")
    logits, _ = model(idx)  # (B, T, V)
    logp = logits[:, :-1].float().log_softmax(-1)  # position t-1 predicts token t
    token_logp = logp.gather(-1, idx[:, 1:, None]).squeeze(-1)  # (B, T-1)
    return (token_logp * completion_mask[:, 1:].to(token_logp.dtype)).sum(dim=-1)  # (B,)


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float = 0.1,
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The mean DPO loss over B pairs of sequence log-probabilities, and the implicit rewards
    ``beta * (log pi - log pi_ref)`` of the chosen and rejected answers (B,) each. Their
    difference is the *reward margin*; its mean growing is what training should show."""
    if not beta > 0:
        raise ValueError(f"beta must be positive, got {beta}")
    chosen = beta * (policy_chosen - ref_chosen)  # (B,)
    rejected = beta * (policy_rejected - ref_rejected)  # (B,)
    return -F.logsigmoid(chosen - rejected).mean(), chosen.detach(), rejected.detach()
