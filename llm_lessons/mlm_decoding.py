"""Getting text out of a masked language model, and scoring text with one.

Shapes use fixed letters: B batch, T time (positions), V vocabulary, I iterations.

An MLM only ever learned p(x_t | the rest, with x_t hidden). It has no "next token", so
generation must be assembled from mask filling (MLM解码):

- :func:`fill_mask`: predict the [MASK] positions of a text, all at once (*independent*) or one
  at a time, each choice then visible to the next (*left_to_right*, or *confidence*: easiest
  first);
- :func:`iterative_refinement`: start from all masks, predict everything, then repeatedly
  re-mask the least confident positions and predict them again (mask-predict, Ghazvininejad
  et al., 2019);
- :func:`prefix_constrained`: keep a prefix fixed and generate the rest with either method.

Scoring: :func:`pseudo_log_likelihood` sums log p(x_t | x_{\\t}) over positions, masking each in
turn (Salazar et al., 2020); :func:`left_to_right_log_likelihood` uses the MLM as a true
chain-rule model, p(x_t | x_<t) read at a [MASK] placed after the prefix.

Every function takes ``mask_id`` and ``special_ids`` (ids never produced and, when scoring,
excluded from the softmax, so probabilities are over ordinary tokens only).

>>> class Copy(torch.nn.Module):   # a toy "MLM": predicts id 1 everywhere, with certainty
...     block_size = 8
...     def forward(self, idx, targets=None):
...         return torch.nn.functional.one_hot(torch.ones_like(idx), 4).float() * 9, None
>>> fill_mask(Copy(), torch.tensor([0, 3, 2, 3]), mask_id=3).tolist()
[0, 1, 2, 1]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from llm_lessons.configs import block_size_of
from llm_lessons.reproducibility import eval_mode, model_device
from llm_lessons.sampling import apply_temperature, top_k_filter, vocab_size_of
from llm_lessons.validation import (
    check_batch_size,
    check_int,
    check_logits,
    check_temperature,
    check_token_tensor,
    token_ids,
)

ORDERS = ("independent", "left_to_right", "confidence")


def _check(model: nn.Module, ids: torch.Tensor, mask_id: int, special_ids: Sequence[int] = ()) -> None:
    V = vocab_size_of(model)
    check_token_tensor(ids, "ids", V, dims=(1, 2))
    T = block_size_of(model)
    if ids.shape[-1] > T:
        raise ValueError(f"length {ids.shape[-1]} exceeds the model's block_size {T}")
    token_ids([mask_id], "mask_id", V, kind_error=ValueError)  # ValueError even for 1.5 or True, as ever
    token_ids(special_ids, "special_ids", V, kind_error=ValueError)


def _check_sampling(temperature: float, top_k: int | None) -> None:
    check_temperature(temperature)  # 0 = greedy
    if top_k is not None:
        check_int(top_k, "top_k", low=1)


@torch.no_grad()
def _log_probs(model: nn.Module, ids: torch.Tensor, banned: Sequence[int]) -> torch.Tensor:
    """log p over ordinary tokens at every position: ids (B, T) -> (B, T, V), eval mode."""
    with eval_mode(model):
        logits, _ = model(ids)
    check_logits(logits, "the model's logits")
    logits = logits.float()
    if banned:
        logits[..., list(banned)] = float("-inf")
    return logits.log_softmax(dim=-1)


def _choose(logp: torch.Tensor, temperature: float, top_k: int | None,
            generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick a token from each row of logp (..., V): argmax or a sample; return ids and their p."""
    if temperature == 0:
        ids = logp.argmax(dim=-1)
    else:
        scores = apply_temperature(logp, temperature)  # logp / t, safe for a tiny t
        if top_k is not None:
            scores = top_k_filter(scores, top_k)  # exactly k, the book's one definition
        flat = scores.reshape(-1, scores.shape[-1]).softmax(dim=-1)  # (..., V) -> (N, V)
        ids = torch.multinomial(flat, 1, generator=generator).view(scores.shape[:-1])
    return ids, logp.gather(-1, ids[..., None]).squeeze(-1).exp()


def _batched(ids: torch.Tensor) -> tuple[torch.Tensor, bool]:
    return (ids[None], True) if ids.dim() == 1 else (ids, False)


def top_predictions(model: nn.Module, ids: torch.Tensor, mask_id: int, k: int = 5,
                    special_ids: Sequence[int] = ()) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The k most likely tokens at each [MASK] of ids (T,): positions (M,), ids (M, k), p (M, k)."""
    _check(model, ids, mask_id, special_ids)
    if ids.dim() != 1:
        raise ValueError(f"top_predictions takes one sequence (T,), got {tuple(ids.shape)}")
    positions = (ids == mask_id).nonzero().squeeze(1)  # (M,)
    if positions.numel() == 0:
        raise ValueError("ids contain no [MASK] (mask_id) to predict")
    V = vocab_size_of(model)
    if V is not None:
        check_int(k, "k", low=1, high=V - len({mask_id, *special_ids}))  # never a banned token
    else:
        check_int(k, "k", low=1)
    logp = _log_probs(model, ids[None], {mask_id, *special_ids})[0, positions]  # (M, V)
    top = logp.topk(k, dim=-1)
    return positions, top.indices, top.values.exp()


def fill_mask(model: nn.Module, ids: torch.Tensor, mask_id: int, order: str = "independent",
              special_ids: Sequence[int] = (), temperature: float = 0.0, top_k: int | None = None,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Replace every ``mask_id`` in ids (T,) or (B, T) by a prediction; returns the filled ids.

    ``order="independent"`` fills all masks from one forward pass: each choice is the best for
    its own position but ignores the others, so adjacent choices may belong to different words.
    ``"left_to_right"`` fills the leftmost mask, runs the model again with it visible, and so
    on; ``"confidence"`` fills the most confident mask first. Greedy when ``temperature == 0``.
    """
    _check(model, ids, mask_id, special_ids)
    _check_sampling(temperature, top_k)
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    x, squeeze = _batched(ids.clone())
    masked = x == mask_id  # (B, T)
    if not masked.any():
        raise ValueError("ids contain no [MASK] (mask_id) to fill")
    banned = {mask_id, *special_ids}
    if order == "independent":
        choice, _ = _choose(_log_probs(model, x, banned), temperature, top_k, generator)  # (B, T)
        x = torch.where(masked, choice, x)
    while order != "independent" and masked.any():
        choice, p = _choose(_log_probs(model, x, banned), temperature, top_k, generator)  # (B, T)
        if order == "left_to_right":
            leftmost_first = -torch.arange(x.shape[1], dtype=torch.float, device=x.device)  # (T,)
            key = torch.where(masked, leftmost_first, -float("inf"))
        else:
            key = torch.where(masked, p, -float("inf"))
        pos = key.argmax(dim=1)  # (B,): the position each row fills now
        rows = masked.any(dim=1).nonzero().squeeze(1)  # rows that still have a mask
        x[rows, pos[rows]] = choice[rows, pos[rows]]
        masked[rows, pos[rows]] = False
    return x[0] if squeeze else x


@dataclass
class Refinement:
    """What :func:`iterative_refinement` did: final ``ids`` and, per iteration, the ``tokens``
    after it, each token's ``confidence`` (its probability when last predicted; 1 where fixed)
    and which positions were ``masked`` in that iteration's input. Shapes (I, [B,] T)."""

    ids: torch.Tensor
    tokens: torch.Tensor
    confidence: torch.Tensor
    masked: torch.Tensor


def iterative_refinement(model: nn.Module, template: int | torch.Tensor, iterations: int, mask_id: int,
                         special_ids: Sequence[int] = (), temperature: float = 0.0,
                         top_k: int | None = None, generator: torch.Generator | None = None) -> Refinement:
    """Mask-predict: fill all masks, then re-mask and re-predict the least confident ones.

    ``template`` is a length (all positions free) or ids (T,)/(B, T) whose ``mask_id``
    positions are free; other positions stay fixed. With N free positions and I iterations,
    iteration i (0-based) predicts every masked position, then the N (I - 1 - i) / I least
    confident free positions are masked again for the next iteration: fewer every time.
    """
    if isinstance(template, bool) or not isinstance(template, (int, torch.Tensor)):
        raise TypeError(f"template must be a length (int) or a tensor of ids, got {type(template).__name__}")
    if isinstance(template, int):
        T = block_size_of(model)
        if not 1 <= template <= T:
            raise ValueError(f"length must be in 1..block_size={T}, got {template}")
        template = torch.full((template,), mask_id, dtype=torch.long, device=model_device(model))
    iterations = check_int(iterations, "iterations", low=1)
    _check(model, template, mask_id, special_ids)
    _check_sampling(temperature, top_k)
    x, squeeze = _batched(template.clone())
    free = x == mask_id  # (B, T): positions the model writes
    if not free.any(dim=1).all():
        raise ValueError("the template has a row without any [MASK]: nothing to generate")
    n_free = free.sum(dim=1)  # (B,)
    conf = torch.ones(x.shape, device=x.device)  # (B, T)
    masked = free.clone()
    history = []
    banned = {mask_id, *special_ids}
    for i in range(iterations):
        choice, p = _choose(_log_probs(model, x, banned), temperature, top_k, generator)  # (B, T)
        x = torch.where(masked, choice, x)
        conf = torch.where(masked, p, conf)
        history.append((x.clone(), conf.clone(), masked.clone()))
        n_next = (n_free * (iterations - 1 - i)) // iterations  # (B,) how many to re-mask
        rank = torch.where(free, conf, float("inf")).argsort(dim=1).argsort(dim=1)  # (B, T) 0 = least sure
        masked = rank < n_next[:, None]
        x = torch.where(masked, torch.full_like(x, mask_id), x)
    tokens, confidence, was_masked = (torch.stack(h) for h in zip(*history, strict=True))  # each (I, B, T)
    if squeeze:
        return Refinement(x[0], tokens[:, 0], confidence[:, 0], was_masked[:, 0])
    return Refinement(x, tokens, confidence, was_masked)


def prefix_constrained(model: nn.Module, prefix_ids: torch.Tensor, length: int, mask_id: int,
                       method: str = "left_to_right", iterations: int = 10,
                       special_ids: Sequence[int] = (), temperature: float = 0.0,
                       top_k: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Keep ``prefix_ids`` (P,) or (B, P) fixed and generate ``length`` more tokens after it.

    ``method="left_to_right"`` appends one [MASK] at a time after the text so far and fills it
    (the MLM imitating a GPT, but with no key-value cache possible: every step re-reads the
    whole sequence, because a new token changes every position's representation).
    ``"iterative"`` fills prefix + ``length`` masks with :func:`iterative_refinement`.
    Returns (P + length,) or (B, P + length) ids.
    """
    length = check_int(length, "length", low=1)
    _check(model, prefix_ids, mask_id, special_ids)
    T = block_size_of(model)
    if prefix_ids.shape[-1] + length > T:
        raise ValueError(f"prefix ({prefix_ids.shape[-1]}) + length ({length}) exceeds block_size {T}")
    x, squeeze = _batched(prefix_ids)
    masks = torch.full((x.shape[0], length), mask_id, dtype=x.dtype, device=x.device)  # (B, length)
    if method == "iterative":
        out = iterative_refinement(model, torch.cat([x, masks], dim=1), iterations, mask_id,
                                   special_ids, temperature, top_k, generator).ids
    elif method == "left_to_right":
        _check_sampling(temperature, top_k)
        out = x
        for _ in range(length):
            out = torch.cat([out, masks[:, :1]], dim=1)  # (B, t + 1): a [MASK] after the text
            logp = _log_probs(model, out, {mask_id, *special_ids})[:, -1]  # (B, V)
            out[:, -1] = _choose(logp, temperature, top_k, generator)[0]
    else:
        raise ValueError(f"method must be 'left_to_right' or 'iterative', got {method!r}")
    return out[0] if squeeze else out


def pseudo_log_likelihood(model: nn.Module, ids: torch.Tensor, mask_id: int,
                          special_ids: Sequence[int] = (), reduction: str = "sum",
                          batch_size: int = 512) -> torch.Tensor:
    """PLL(x) = sum_t log p(x_t | x with position t masked), in nats; ids (T,) or (B, T).

    Each sequence is copied T times with a different position masked in each copy, and
    scored in one batched pass. Positions holding a special id are not scored. ``reduction``
    "sum" gives (B,) (or a scalar for (T,) input); "none" gives the per-position (B, T) values
    (0 where not scored). Not a probability of x: the factors do not chain into one.
    """
    _check(model, ids, mask_id, special_ids)
    check_batch_size(batch_size)
    if reduction not in ("sum", "none"):
        raise ValueError(f"reduction must be 'sum' or 'none', got {reduction!r}")
    x, squeeze = _batched(ids)
    B, T = x.shape
    copies = x[:, None, :].repeat(1, T, 1)  # (B, T, T): copy j of row b masks position j
    eye = torch.eye(T, dtype=torch.bool, device=x.device)  # (T, T)
    copies[:, eye] = mask_id
    flat = copies.view(B * T, T)  # (B, T, T) -> (B*T, T)
    banned = {mask_id, *special_ids}
    scores = []
    for s in range(0, B * T, batch_size):
        logp = _log_probs(model, flat[s:s + batch_size], banned)  # (b, T, V)
        rows = torch.arange(s, min(s + batch_size, B * T), device=x.device)  # copies (b, j) as b*T + j
        j, target = rows % T, x.reshape(-1)[rows]  # the masked position, and x[b, j] there
        scores.append(logp[torch.arange(len(rows), device=x.device), j].gather(1, target[:, None]).squeeze(1))
    per_pos = torch.cat(scores).view(B, T)  # (B*T,) -> (B, T)
    if special_ids:
        per_pos = per_pos.masked_fill(torch.isin(x, torch.tensor(list(special_ids), device=x.device)), 0.0)
    out = per_pos if reduction == "none" else per_pos.sum(dim=1)
    return out[0] if squeeze else out


def left_to_right_log_likelihood(model: nn.Module, ids: torch.Tensor, mask_id: int,
                                 special_ids: Sequence[int] = ()) -> torch.Tensor:
    """Per-position log p(x_t | x_<t) (B, T), each read at a [MASK] placed after x_<t.

    The factors chain into a proper probability of the sequence (each is a distribution over
    ordinary tokens), so exp(-mean) is a true perplexity, comparable with a GPT's.
    """
    _check(model, ids, mask_id, special_ids)
    x, squeeze = _batched(ids)
    banned, out = {mask_id, *special_ids}, []
    for t in range(x.shape[1]):
        probe = torch.cat([x[:, :t], torch.full_like(x[:, :1], mask_id)], dim=1)  # (B, t + 1)
        logp = _log_probs(model, probe, banned)[:, -1]  # (B, V)
        out.append(logp.gather(1, x[:, t:t + 1]).squeeze(1))
    per_pos = torch.stack(out, dim=1)  # T x (B,) -> (B, T)
    return per_pos[0] if squeeze else per_pos
