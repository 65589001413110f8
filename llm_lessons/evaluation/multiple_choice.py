"""Multiple-choice scoring by log-likelihood: which continuation does the model find most likely?

Shapes use fixed letters: T time (tokens of context + continuation), V vocabulary.

For a context c and choices a_1..a_K, the model's answer is argmax_k log p(a_k | c), the sum of
the log-probabilities of the choice's tokens (``acc``). Long choices collect more negative
terms, so the sum favours short answers; ``acc_norm`` divides each sum by the choice's length in
characters and ``acc_bytes`` by its UTF-8 bytes, as lm-evaluation-harness does.

The details follow the harness exactly, so the numbers can be checked against it:

- the continuation is ``target_delimiter + choice``; whitespace at the end of the context is
  moved to the start of the continuation (a BPE tokenizer then sees " word" whole);
- context and continuation are encoded *together* and split where the context's own encoding
  ends (what a model sees at the boundary is the joint tokenization);
- an empty context is replaced by a prefix token (our character models use ``"\\n"``);
- an input longer than ``block_size + 1`` tokens loses tokens from the left (from the context).

>>> import math
>>> from llm_lessons.evaluation.likelihood import UniformLM
>>> from llm_lessons.tokenizers import CharTokenizer
>>> tok = CharTokenizer("abc \\n")
>>> s = multiple_choice_scores(UniformLM(5), tok, "a b", ["c", "cc"])
>>> s.loglik == (-2 * math.log(5), -3 * math.log(5))   # " c" and " cc": ln 5 per character
True
>>> s.pred, s.pred_norm   # the sum prefers the short choice; per character of the choice the
(0, 1)
>>> # long one wins: the delimiter's cost is counted in the sum but not in the length
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from llm_lessons.configs import block_size_of
from llm_lessons.reproducibility import eval_mode, model_device


@dataclass(frozen=True)
class ChoiceScores:
    """Log-likelihood of each choice and the three predictions made from it."""

    loglik: tuple[float, ...]
    n_chars: tuple[int, ...]
    n_bytes: tuple[int, ...]

    @property
    def pred(self) -> int:
        return int(np.argmax(self.loglik))  # first maximum on ties, as numpy (and the harness)

    @property
    def pred_norm(self) -> int:
        return int(np.argmax(np.array(self.loglik) / np.array(self.n_chars, dtype=float)))

    @property
    def pred_bytes(self) -> int:
        return int(np.argmax(np.array(self.loglik) / np.array(self.n_bytes, dtype=float)))


def encode_pair(tokenizer, context: str, continuation: str, prefix_id: int) -> tuple[list[int], list[int]]:
    """Token ids of (context, continuation) as the harness builds them for a causal model.

    >>> from llm_lessons.tokenizers import CharTokenizer
    >>> tok = CharTokenizer("ab \\n")                  # ids: '\\n' 0, ' ' 1, 'a' 2, 'b' 3
    >>> encode_pair(tok, "a ", "b", prefix_id=0)       # the space moves to the continuation
    ([2], [1, 3])
    >>> encode_pair(tok, "", "ab", prefix_id=0)        # no context: the prefix token stands in
    ([0], [2, 3])
    """
    if not context:
        cont = tokenizer.encode(continuation)
        return ([prefix_id], cont) if cont[:1] != [prefix_id] else (cont[:1], cont[1:])
    n_space = len(context) - len(context.rstrip())
    if n_space:
        context, continuation = context[:-n_space], context[-n_space:] + continuation
    whole = tokenizer.encode(context + continuation)
    ctx = tokenizer.encode(context)
    return ctx, whole[len(ctx):]


@torch.no_grad()
def continuation_logprob(model, context_ids: Sequence[int], continuation_ids: Sequence[int],
                         block_size: int | None = None) -> tuple[float, bool]:
    """log p(continuation | context) summed over its tokens, and whether greedy decoding
    (argmax at every step) would have produced the continuation exactly."""
    T = block_size or block_size_of(model)
    if not context_ids or not continuation_ids:
        raise ValueError(f"context and continuation need at least one token each, got "
                         f"{len(context_ids)} and {len(continuation_ids)}")
    if len(continuation_ids) > T:
        raise ValueError(f"continuation has {len(continuation_ids)} tokens, more than block_size {T}")
    seq = (list(context_ids) + list(continuation_ids))[-(T + 1):]
    x = torch.tensor(seq[:-1], device=model_device(model))[None]  # (1, T)
    with eval_mode(model):
        logits, _ = model(x)
    n = len(continuation_ids)
    logp = F.log_softmax(logits[0, -n:].double(), dim=-1).cpu()  # (n, V)
    target = torch.tensor(list(continuation_ids))
    total = float(logp.gather(-1, target[:, None]).sum())
    return total, bool((logp.argmax(-1) == target).all())


def multiple_choice_scores(model, tokenizer, context: str, choices: Sequence[str], *,
                           target_delimiter: str = " ", prefix: str = "\n",
                           block_size: int | None = None) -> ChoiceScores:
    """Score every choice as a continuation of ``context`` (see the module docstring)."""
    if isinstance(choices, str) or len(choices) < 2:
        raise ValueError(f"choices must be a list of at least two strings, got {choices!r}")
    prefix_ids = tokenizer.encode(prefix)
    if len(prefix_ids) != 1:
        raise ValueError(f"prefix {prefix!r} must encode to exactly one token, got {prefix_ids}")
    lls = []
    for choice in choices:
        ctx, cont = encode_pair(tokenizer, context, target_delimiter + choice, prefix_ids[0])
        lls.append(continuation_logprob(model, ctx, cont, block_size)[0])
    return ChoiceScores(tuple(lls), tuple(len(c) for c in choices),
                        tuple(len(c.encode("utf-8")) for c in choices))


def multiple_choice_accuracy(model, tokenizer, items: Sequence[dict], **kwargs) -> dict[str, float]:
    """``acc``, ``acc_norm`` and ``acc_bytes`` over items ``{"context", "choices", "label"}``."""
    if not items:
        raise ValueError("items is empty: no question to score")
    hits = np.zeros(3)
    for i, item in enumerate(items):
        missing = {"context", "choices", "label"} - set(item)
        if missing:
            raise ValueError(f"items[{i}] lacks {sorted(missing)}")
        s = multiple_choice_scores(model, tokenizer, item["context"], item["choices"], **kwargs)
        hits += [s.pred == item["label"], s.pred_norm == item["label"], s.pred_bytes == item["label"]]
    acc, acc_norm, acc_bytes = (hits / len(items)).tolist()
    return {"acc": acc, "acc_norm": acc_norm, "acc_bytes": acc_bytes}
