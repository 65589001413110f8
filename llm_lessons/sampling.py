"""Decoding: turning next-token logits into text, one token at a time (section 4.3).

Shapes use fixed letters: B batch, T time (positions), V vocabulary, L previous tokens.

A language model gives logits z over the V tokens; sampling draws from softmax(z). Every
knob here is a *transformation of the logits* (removed tokens get -inf, so softmax gives
them probability exactly 0 and renormalises the rest):

* temperature t:   z / t (t -> 0 is greedy argmax; t = 1 leaves the distribution alone)
* top-k:           keep the k largest logits
* top-p (nucleus): keep the smallest most-likely set whose probability reaches p
* min-p:           keep tokens with p_i >= min_p * max_j p_j
* repetition:      seen tokens' logits divided (if > 0) or multiplied (if < 0) by the penalty
* presence/frequency: subtract presence * [count > 0] + frequency * count

:func:`generate` applies them in the order Hugging Face ``transformers`` does: penalties,
temperature, top-k, top-p, min-p; then it samples (or takes the argmax).

>>> z = torch.tensor([2.0, 1.0, 0.0, -1.0])
>>> top_k_filter(z, 2)
tensor([2., 1., -inf, -inf])
>>> top_p_filter(z, 0.8).softmax(-1).round(decimals=3)   # p = .644, .237, ... : two reach 0.8
tensor([0.7310, 0.2690, 0.0000, 0.0000])
"""

from __future__ import annotations

import math
import warnings

import torch

from llm_lessons.configs import block_size_of
from llm_lessons.reproducibility import eval_mode
from llm_lessons.validation import check_bool, check_int, check_logits, check_real, check_token_tensor

NEG_INF = float("-inf")


_check_logits = check_logits  # one definition for every module that turns logits into a choice


def _real(value, name: str, **interval) -> float:
    # every knob here has always answered bad input, even "hot" for a temperature, with a ValueError
    return check_real(value, name, **interval, kind_error=ValueError)


def _check_prev(prev_ids: torch.Tensor, logits: torch.Tensor) -> None:
    check_token_tensor(prev_ids, "prev_ids", logits.shape[-1], dims=None)
    if prev_ids.shape[:-1] != logits.shape[:-1] or prev_ids.dim() != logits.dim():
        raise ValueError(f"prev_ids {tuple(prev_ids.shape)} must be (..., L) with the same leading "
                         f"dims as logits {tuple(logits.shape)}")


def apply_temperature(logits: torch.Tensor, t: float) -> torch.Tensor:
    """softmax(z / t): t < 1 sharpens, t > 1 flattens. t = 0 is the limit: only the argmax
    (the lowest index among ties) survives, so sampling at t = 0 *is* greedy decoding.

    A tiny t can overflow z / t to +-inf (or make t itself round to 0 in float32); the result
    is then computed as (z - max z) / t in float64, which softmax treats identically and which
    cannot reach +inf or NaN.

    >>> apply_temperature(torch.tensor([2.0, 1.0, 1.0]), 0.5)
    tensor([4., 2., 2.])
    >>> apply_temperature(torch.tensor([1.0, 3.0, 3.0]), 0)
    tensor([-inf, 3., -inf])
    >>> apply_temperature(torch.tensor([-1.0, -2.0]), 1e-310)   # z / t would be [-inf, -inf]
    tensor([0., -inf])
    """
    _check_logits(logits)
    t = _real(t, "temperature", low=0.0)
    if t == 0:
        keep = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, logits.argmax(-1, keepdim=True), True)
        return logits.masked_fill(~keep, NEG_INF)
    scaled = logits / t
    if (~torch.isfinite(scaled) & torch.isfinite(logits)).any():  # only then; else exactly z / t
        # in float64, where t itself does not round to 0; then back (large negatives -> -inf)
        wide = logits.double()
        scaled = ((wide - wide.max(dim=-1, keepdim=True).values) / t).to(logits.dtype)
    return scaled


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep exactly the k largest logits (k >= V keeps all); ties go to the lowest index.

    >>> top_k_filter(torch.tensor([1.0, 3.0, 1.0, 1.0]), 2)   # a three-way tie for second
    tensor([1., 3., -inf, -inf])
    """
    _check_logits(logits)
    k = check_int(k, "top_k", low=1)
    if k >= logits.shape[-1]:
        return logits
    order = torch.sort(logits, dim=-1, descending=True, stable=True).indices  # stable: ties by index
    keep = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, order[..., :k], True)
    return logits.masked_fill(~keep, NEG_INF)


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus sampling (Holtzman et al., 2020): keep the smallest set of most likely tokens
    whose total probability is >= p. A token is kept iff the mass strictly above it is < p,
    so the top token always survives; ties at the boundary go to the lowest index.

    >>> top_p_filter(torch.tensor([0.0, 0.0, 0.0, 0.0]), 0.5)   # 0.25 + 0.25 reaches 0.5
    tensor([0., 0., -inf, -inf])
    """
    _check_logits(logits)
    p = _real(p, "top_p", low=0.0, high=1.0, low_open=True)
    if p == 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True, stable=True)  # (..., V)
    probs = sorted_logits.softmax(dim=-1)
    cum = probs.cumsum(dim=-1)
    mass_above = torch.cat([torch.zeros_like(cum[..., :1]), cum[..., :-1]], dim=-1)  # exclusive cumsum
    below = mass_above < p
    below[..., 0] = True  # the top token always survives, even if p rounds to 0 in the logits' dtype
    keep = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, order, below)
    return logits.masked_fill(~keep, NEG_INF)


def min_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Min-p sampling (Nguyen et al., 2024): keep tokens with probability >= p * (top probability).

    The threshold moves with the model's confidence: a peaked distribution keeps few tokens,
    a flat one keeps many. Compared in log space (z_i - max z >= log p), so nothing underflows.

    >>> min_p_filter(torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05])), 0.2).isinf().tolist()
    [False, False, False, True]
    """
    _check_logits(logits)
    p = _real(p, "min_p", low=0.0, high=1.0)
    if p == 0.0:
        return logits
    top = logits.max(dim=-1, keepdim=True).values  # (..., 1)
    return logits.masked_fill(logits - top < math.log(p), NEG_INF)


def apply_repetition_penalty(logits: torch.Tensor, prev_ids: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's repetition penalty (Keskar et al., 2019), as in ``transformers``: for every token
    already in prev_ids (..., L), divide its logit by ``penalty`` if positive, multiply if
    negative. penalty > 1 discourages repeats, 1 does nothing, < 1 encourages them.

    >>> apply_repetition_penalty(torch.tensor([2.0, -1.0, 3.0]), torch.tensor([0, 1, 0]), 2.0)
    tensor([ 1., -2.,  3.])
    """
    _check_logits(logits)
    penalty = _real(penalty, "repetition_penalty")
    info = torch.finfo(logits.dtype)  # a penalty the logits' dtype cannot hold would give 0 * inf
    if not info.tiny <= penalty <= info.max:
        raise ValueError(f"repetition_penalty must be > 0 (within {logits.dtype}'s range "
                         f"[{info.tiny:.3g}, {info.max:.3g}]), got {penalty}")
    _check_prev(prev_ids, logits)
    seen = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, prev_ids.long(), True)  # (..., V)
    penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalised, logits)


def apply_presence_frequency_penalty(logits: torch.Tensor, prev_ids: torch.Tensor,
                                     presence: float, frequency: float) -> torch.Tensor:
    """OpenAI's penalties: z_i - presence * [c_i > 0] - frequency * c_i, with c_i the number
    of times token i occurs in prev_ids (..., L). Negative values encourage repeats.

    >>> apply_presence_frequency_penalty(torch.zeros(3), torch.tensor([0, 0, 2]), 0.5, 1.0)
    tensor([-2.5000,  0.0000, -1.5000])
    """
    _check_logits(logits)
    presence, frequency = _real(presence, "presence_penalty"), _real(frequency, "frequency_penalty")
    _check_prev(prev_ids, logits)
    ones = torch.ones(prev_ids.shape, dtype=logits.dtype, device=logits.device)
    counts = torch.zeros_like(logits).scatter_add_(-1, prev_ids.long(), ones)  # (..., V)
    return logits - presence * (counts > 0).to(logits.dtype) - frequency * counts


def process_logits(logits: torch.Tensor, prev_ids: torch.Tensor | None = None, *,
                   temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                   min_p: float | None = None, repetition_penalty: float = 1.0,
                   presence_penalty: float = 0.0, frequency_penalty: float = 0.0) -> torch.Tensor:
    """Every knob in ``generate``'s order: penalties, temperature, top-k, top-p, min-p.

    softmax of the result is the distribution the next token is drawn from.

    >>> process_logits(torch.tensor([2.0, 1.0, 0.0]), temperature=0.5, top_k=2)
    tensor([4., 2., -inf])
    """
    if prev_ids is not None:
        if repetition_penalty != 1.0:
            logits = apply_repetition_penalty(logits, prev_ids, repetition_penalty)
        if presence_penalty != 0.0 or frequency_penalty != 0.0:
            logits = apply_presence_frequency_penalty(logits, prev_ids, presence_penalty, frequency_penalty)
    if temperature != 1.0:
        logits = apply_temperature(logits, temperature)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    if min_p is not None:
        logits = min_p_filter(logits, min_p)
    return check_logits(logits, "the processed logits")  # e.g. a huge penalty pushed all to -inf


def vocab_size_of(model) -> int | None:
    """The model's vocabulary size if it states one (``config.vocab_size`` or ``vocab_size``)."""
    if model is None:
        return None
    size = getattr(getattr(model, "config", None), "vocab_size", None) or getattr(model, "vocab_size", None)
    return size if isinstance(size, int) and not isinstance(size, bool) else None


def check_prompt(idx: torch.Tensor, max_new_tokens: int) -> None:
    """Shared checks of generate's and beam_search's prompt and length."""
    if not isinstance(idx, torch.Tensor) or idx.dtype not in (torch.int64, torch.int32):
        raise TypeError("idx must be an integer tensor (B, T) of token ids")
    if idx.dim() != 2 or idx.shape[1] == 0 or idx.shape[0] == 0:
        raise ValueError(f"idx must have shape (B, T) with B >= 1 and T >= 1 (one prompt per row), got "
                         f"{tuple(idx.shape)}; use idx[None] for a single 1-D prompt")
    check_int(max_new_tokens, "max_new_tokens", low=0)


def warn_if_cropped(idx: torch.Tensor, block_size: int) -> None:
    """Say so when a prompt is longer than the context window (it will be cropped from the left)."""
    if idx.shape[1] > block_size:
        warnings.warn(f"prompt of {idx.shape[1]} tokens is longer than block_size {block_size}: "
                      f"only its last {block_size} tokens are used (cropped from the left)", stacklevel=3)


class StepDecoder:
    """Gives the next-token logits (B, V) for a growing sequence idx (B, T), with or without
    the model's key-value cache.

    Context policy: the model sees at most its last ``block_size`` tokens (older ones are
    cropped from the left). With a cache, only the new tokens are fed each step. A model with
    learned absolute positions cannot slide a full cache by one (every cached key was computed
    at its old position), so once the window is full the cache is *rebuilt* from the cropped
    window at every step: slower, but the tokens are exactly those of uncached decoding.
    """

    def __init__(self, model, use_cache: bool = True):
        self.model = model
        self.block_size = block_size_of(model)
        self.use_cache = bool(use_cache) and callable(getattr(model, "new_cache", None))
        self.cache = None
        self.filled = 0  # positions held by the cache
        self.seen = 0  # tokens of the sequence already fed

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        if not self.use_cache:
            logits, _ = self.model(idx[:, -self.block_size:])
            return logits[:, -1, :]  # (B, T, V) -> (B, V)
        new = idx.shape[1] - self.seen
        if self.cache is None or self.filled + new > self.block_size:
            self.cache, self.filled = self.model.new_cache(), 0  # (re)build from the cropped window
            window = idx[:, -self.block_size:]
        else:
            window = idx[:, self.seen:]
        logits, _ = self.model(window, cache=self.cache)
        self.filled += window.shape[1]
        self.seen = idx.shape[1]
        return logits[:, -1, :]  # (B, T, V) -> (B, V)

    def reorder(self, rows: torch.Tensor) -> None:
        """Keep (and repeat) cache rows, e.g. the parents of the surviving beams."""
        for layer in self.cache or []:
            layer.k, layer.v = layer.k[rows], layer.v[rows]  # (B, nh, S, hs) -> (len(rows), nh, S, hs)


@torch.no_grad()
def generate(model, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, min_p: float | None = None,
             repetition_penalty: float = 1.0, greedy: bool = False,
             generator: torch.Generator | None = None, use_cache: bool = True, *,
             presence_penalty: float = 0.0, frequency_penalty: float = 0.0,
             penalty_window: int | None = None, return_logprobs: bool = False,
             ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Append ``max_new_tokens`` tokens to each prompt row of idx (B, T); returns (B, T + n).

    Works with any model of the book's interface (``forward(idx) -> (logits, loss)`` and
    ``block_size``); uses the key-value cache when ``use_cache`` and the model has
    ``new_cache`` (see :class:`StepDecoder` for the context policy: crop from the left,
    rebuild a full cache). A prompt longer than ``block_size`` is cropped the same way, with
    a warning. ``greedy=True`` or ``temperature=0`` takes the argmax (lowest index on ties);
    otherwise the next token is drawn with ``generator`` (on the model's device) from
    softmax(:func:`process_logits`). Penalties look at the whole sequence so far, prompt
    included, as ``transformers`` does, or at its last ``penalty_window`` tokens. The model
    runs in eval mode and is put back in its previous mode. ``return_logprobs=True`` also
    returns (B, n) log-probabilities of the chosen tokens under the *unmodified* model
    distribution (before penalties, temperature and filters): the sample's likelihood.
    """
    check_prompt(idx, max_new_tokens)
    for name, value in (("top_k", top_k), ("top_p", top_p), ("min_p", min_p)):
        if value is not None:  # validate every knob now, not at the first step
            process_logits(torch.zeros(1), **{name: value})
    process_logits(torch.zeros(1), temperature=temperature)
    process_logits(torch.zeros(1), torch.zeros(1, dtype=torch.long), repetition_penalty=repetition_penalty,
                   presence_penalty=presence_penalty, frequency_penalty=frequency_penalty)
    if penalty_window is not None:
        check_int(penalty_window, "penalty_window", low=1)
    check_bool(greedy, "greedy")
    check_token_tensor(idx, "idx", vocab_size_of(model))
    decoder = StepDecoder(model, use_cache)
    warn_if_cropped(idx, decoder.block_size)
    argmax = greedy or temperature == 0
    logprobs = []
    with eval_mode(model):
        for step in range(max_new_tokens):
            logits = decoder(idx)  # (B, V)
            check_logits(logits, f"the model's logits at generation step {step}")
            raw = logits
            prev = idx if penalty_window is None else idx[:, -penalty_window:]  # (B, L)
            logits = process_logits(logits, prev, repetition_penalty=repetition_penalty,
                                    presence_penalty=presence_penalty, frequency_penalty=frequency_penalty)
            if argmax:
                nxt = logits.argmax(dim=-1, keepdim=True)  # (B, 1); first maximum on ties
            else:
                logits = process_logits(logits, temperature=temperature, top_k=top_k, top_p=top_p,
                                        min_p=min_p)
                nxt = torch.multinomial(logits.softmax(dim=-1), 1, generator=generator)  # (B, 1)
            if return_logprobs:
                logprobs.append(raw.float().log_softmax(dim=-1).gather(-1, nxt))  # (B, 1)
            idx = torch.cat([idx, nxt.to(idx.dtype)], dim=1)
    if return_logprobs:
        return idx, torch.cat(logprobs, dim=1) if logprobs else idx.new_zeros(idx.shape[0], 0).float()
    return idx
