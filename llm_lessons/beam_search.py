"""Scoring a sequence under a model, and beam search for high-scoring ones (section 4.3).

Shapes use fixed letters: B batch, T time (positions), V vocabulary, W beam width.

Beam search keeps the W most probable partial sequences. At each step every beam is extended
by every token (W·V candidates scored by their summed log-probability) and the best W survive.
Width 1 is greedy decoding. A hypothesis that ends (emits ``eos_id``) after n tokens is ranked
by the score Hugging Face ``transformers`` uses::

    score = (sum of log p of its n tokens) / n ** length_penalty

length_penalty > 0 divides by a larger number for longer outputs, which favours them (scores
are negative); without an end token every beam has the same n and the score is a rescaled
log-probability.

>>> from llm_lessons.gpt import GPT, GPTConfig
>>> from llm_lessons.sampling import generate
>>> _ = torch.manual_seed(0); model = GPT(GPTConfig(vocab_size=5, block_size=8, n_layer=1, n_embd=8))
>>> prompt = torch.tensor([[1, 2]])
>>> beams = beam_search(model, prompt, max_new_tokens=4, beam_width=3)
>>> len(beams), beams[0].score >= beams[1].score >= beams[2].score
(3, True)
>>> greedy = generate(model, prompt, 4, greedy=True)
>>> torch.equal(beam_search(model, prompt, 4, beam_width=1)[0].tokens, greedy[0])
True
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from llm_lessons.configs import block_size_of
from llm_lessons.reproducibility import eval_mode
from llm_lessons.sampling import StepDecoder, check_prompt, warn_if_cropped
from llm_lessons.validation import check_batch_size, check_int, check_real, token_ids


@torch.no_grad()
def token_logprobs(model, idx: torch.Tensor, start: int = 1, chunk: int = 256) -> torch.Tensor:
    """log p(idx[:, t] | context) for t = start .. T-1, as a (B, T - start) tensor.

    The context is what generation sees: the previous tokens, cropped from the left to the
    last ``block_size`` (so a long sequence is scored with a sliding window, one window per
    token past the first block, run in chunks of ``chunk`` windows). Summing the result gives a
    sample's log-likelihood; its negated mean is the loss (cross-entropy, in nats per token).
    """
    check_prompt(idx, 0)
    check_batch_size(chunk, "chunk")
    B, T = idx.shape
    start = check_int(start, "start", low=1, high=T, reason="token 0 has no context")
    bs = block_size_of(model)
    parts = [idx.new_zeros(B, 0).float()]
    with eval_mode(model):
        head = min(T, bs + 1)  # tokens 1..head-1 are predicted by one forward pass of the first window
        if start < head:
            logits, _ = model(idx[:, : head - 1])  # (B, head-1, V)
            lp = logits.float().log_softmax(-1).gather(-1, idx[:, 1:head, None]).squeeze(-1)  # (B, head-1)
            parts.append(lp[:, start - 1:])
        if T > bs + 1 and start < T:
            s0 = max(start - bs, 1)  # the window starting at s predicts token s + bs
            windows = idx[:, :-1].unfold(1, bs, 1)[:, s0:]  # (B, nW, bs)
            n_windows = windows.shape[1]
            flat = windows.reshape(B * n_windows, bs)  # (B, nW, bs) -> (B*nW, bs)
            targets = idx[:, s0 + bs:].reshape(B * n_windows, 1)  # (B, nW) -> (B*nW, 1)
            out = []
            for i in range(0, flat.shape[0], chunk):
                logits, _ = model(flat[i:i + chunk])  # (b, bs, V)
                out.append(logits[:, -1].float().log_softmax(-1).gather(-1, targets[i:i + chunk]))
            parts.append(torch.cat(out).view(B, n_windows))  # (B*nW, 1) -> (B, nW)
    return torch.cat(parts, dim=1)


@dataclass
class Beam:
    """One hypothesis: the prompt plus ``length`` generated tokens, and how it scored."""

    tokens: torch.Tensor  # (T + length,) prompt and continuation
    logprob: float  # sum of log p of the generated tokens
    length: int  # generated tokens (an end token counts)
    score: float  # logprob / length ** length_penalty
    finished: bool  # True if it ended with eos_id


def _beam(tokens: torch.Tensor, logprob: float, length: int, length_penalty: float, finished: bool) -> Beam:
    score = logprob / length ** length_penalty if length > 0 else 0.0
    return Beam(tokens, float(logprob), length, float(score), finished)


@torch.no_grad()
def beam_search(model, idx: torch.Tensor, max_new_tokens: int, beam_width: int,
                length_penalty: float = 1.0, eos_id: int | None = None,
                use_cache: bool = True) -> list[Beam]:
    """The ``beam_width`` best continuations of one prompt idx (1, T), best score first.

    Ties between candidates go to the lower (beam, token) index, so width 1 is exactly greedy
    decoding. With ``eos_id``, a beam that emits it is set aside as finished, and the search
    stops once ``beam_width`` beams have finished (``early_stopping=True`` in
    ``transformers``); otherwise it runs ``max_new_tokens`` steps. The context policy and the
    key-value cache (reordered to follow the surviving beams) are those of
    :func:`llm_lessons.sampling.generate`.
    """
    check_prompt(idx, max_new_tokens)
    if idx.shape[0] != 1:
        raise ValueError(f"beam_search takes one prompt of shape (1, T), got {tuple(idx.shape)}")
    beam_width = check_int(beam_width, "beam_width", low=1)
    length_penalty = check_real(length_penalty, "length_penalty", kind_error=ValueError)
    if eos_id is not None:  # its upper bound, the vocabulary size, shows with the first logits
        (eos_id,) = token_ids([eos_id], "eos_id", kind_error=ValueError)
    decoder = StepDecoder(model, use_cache)
    warn_if_cropped(idx, decoder.block_size)
    T, W = idx.shape[1], beam_width
    seqs, sums = idx, torch.zeros(1, dtype=torch.float64, device=idx.device)  # (1, T), (1,)
    finished: list[Beam] = []
    with eval_mode(model):
        for step in range(max_new_tokens):
            logp = decoder(seqs).double().log_softmax(dim=-1)  # (rows, V)
            V = logp.shape[-1]
            if eos_id is not None and eos_id >= V:
                raise ValueError(f"eos_id {eos_id} is not in the model's vocabulary of {V} tokens")
            cand = (sums[:, None] + logp).view(-1)  # (rows, V) -> (rows*V,)
            order = torch.sort(cand, descending=True, stable=True).indices[: 2 * W].tolist()
            rows, toks, new_sums = [], [], []
            for rank, c in enumerate(order):  # at most W end tokens among them: W others remain
                row, tok = divmod(c, V)
                if tok == eos_id:
                    if rank < W:  # only a top-W candidate may finish
                        ended = torch.cat([seqs[row], seqs.new_tensor([tok])])
                        finished.append(_beam(ended, cand[c].item(), step + 1, length_penalty, True))
                    continue
                rows.append(row), toks.append(tok), new_sums.append(cand[c].item())
                if len(rows) == W:
                    break
            if len(finished) >= W or not rows:
                break
            rows_t = torch.tensor(rows, device=idx.device)
            seqs = torch.cat([seqs[rows_t], seqs.new_tensor(toks)[:, None]], dim=1)  # (W, T + step + 1)
            sums = torch.tensor(new_sums, dtype=torch.float64, device=idx.device)
            decoder.reorder(rows_t)
    pool = list(finished)
    if len(finished) < W:
        pool += [_beam(seqs[i], sums[i].item(), seqs.shape[1] - T, length_penalty, False)
                 for i in range(seqs.shape[0])]
    pool.sort(key=lambda b: -b.score)  # stable: equal scores keep their order
    return pool[:W]
