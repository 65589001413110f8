"""Retrieval-augmented generation with a 64-character window: retrieve, fit, score (6.2).

Shapes use fixed letters: B batch, T time (positions), V vocabulary.

**Retrieval-augmented generation** (检索增强生成, RAG) puts text found by a search engine in
front of the prompt, so the language model can read it before it continues. For the book's
char-level GPT the whole window is ``block_size`` = 64 characters: a passage, the prompt and
the continuation being scored must share it, so the passage is cut **from the left** (its end,
next to the prompt, is kept) and the continuation is never cut.

>>> fit_window("ABCDEFGH", "prompt", "next", 14)   # 4 characters of passage fit
'EFGHpromptnext'
>>> ids = torch.tensor([5, 6, 7, 8, 9])               # a window of T + 1 = 5 tokens
>>> continuation_targets(ids, 2)                    # score only the last 2 characters
(tensor([5, 6, 7, 8]), tensor([-100, -100,    8,    9]))

:class:`ChunkRetriever` is BM25 (``bm25s``) over words of fixed-size character chunks;
:func:`passage_after_match` turns a retrieved chunk into the passage that follows the longest
piece of the prompt it contains (what an induction head can copy from);
:func:`continuation_loss` scores many windows in batches, with ``-100`` on every target that is
not the continuation; :func:`paired_difference` is a paired bootstrap of two conditions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from llm_lessons.reproducibility import eval_mode, model_device
from llm_lessons.validation import check_batch_size, check_int


def fit_window(passage: str, prompt: str, continuation: str, size: int) -> str:
    """``passage + prompt + continuation`` in at most ``size`` characters, cut from the left.

    The passage goes first (its oldest characters), then the prompt's; the continuation is what
    is scored, so a window too small for it is an error.
    """
    check_int(size, "size", low=1)
    for name, text in (("passage", passage), ("prompt", prompt), ("continuation", continuation)):
        if not isinstance(text, str):
            raise TypeError(f"{name} must be a str, got {type(text).__name__}")
    if not continuation:
        raise ValueError("continuation is empty: there is nothing to score")
    if len(continuation) > size:
        raise ValueError(f"a continuation of {len(continuation)} characters does not fit a "
                         f"window of {size}")
    return (passage + prompt + continuation)[-size:]


def continuation_targets(window: torch.Tensor, n_scored: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets of one window of T + 1 ids: targets are the next ids, with ``-100``
    (ignored by the loss) everywhere but the last ``n_scored`` positions."""
    if not isinstance(window, torch.Tensor) or window.dim() != 1:
        raise ValueError(f"window must be a 1-d tensor of ids, got {getattr(window, 'shape', window)}")
    check_int(n_scored, "n_scored", low=1, high=len(window) - 1,
              reason="a window of T + 1 ids has T targets")
    inputs, targets = window[:-1], window[1:].clone()  # (T,), (T,)
    targets[: len(targets) - n_scored] = -100
    return inputs, targets


@torch.no_grad()
def continuation_loss(model, tokenizer, contexts: Sequence[str], continuations: Sequence[str],
                      batch_size: int = 256) -> torch.Tensor:
    """Mean loss (nats per character) of each continuation given its context: a tensor (N,).

    Each window is ``fit_window(context, "", continuation, block_size + 1)``; windows of equal
    length are batched, the model runs once per batch, and only the continuation is scored.
    """
    if len(contexts) != len(continuations):
        raise ValueError(f"{len(contexts)} contexts but {len(continuations)} continuations")
    if len(contexts) == 0:
        raise ValueError("no windows to score")
    check_batch_size(batch_size)
    size = model.block_size + 1
    windows = [fit_window(c, "", x, size) for c, x in zip(contexts, continuations, strict=True)]
    losses = torch.empty(len(windows))
    by_length: dict[tuple[int, int], list[int]] = {}
    for i, (w, x) in enumerate(zip(windows, continuations, strict=True)):
        by_length.setdefault((len(w), len(x)), []).append(i)
    device = model_device(model)
    with eval_mode(model):
        for (length, n_scored), rows in sorted(by_length.items()):
            if length < 2:
                raise ValueError("a window needs at least one character of context")
            for start in range(0, len(rows), batch_size):
                batch = rows[start:start + batch_size]
                ids = torch.tensor([tokenizer.encode(windows[i]) for i in batch], device=device)
                inputs, targets = ids[:, :-1], ids[:, 1:].clone()  # (B, T), (B, T)
                targets[:, : length - 1 - n_scored] = -100
                logits, _ = model(inputs)  # (B, T, V)
                nll = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=-100,
                                      reduction="none")  # (B, V, T) -> (B, T), 0 where ignored
                losses[batch] = (nll.sum(dim=1) / n_scored).float().cpu()
    return losses


@dataclass(frozen=True)
class Chunk:
    """A piece of the datastore: its text, the source it came from and where it starts."""

    text: str
    source: str
    start: int


def make_chunks(texts: dict[str, str], size: int = 48, stride: int = 24) -> list[Chunk]:
    """Overlapping character chunks of every text (``size`` characters, a new one every
    ``stride``), tagged with the text's name and the offset they start at."""
    check_int(size, "size", low=1)
    check_int(stride, "stride", low=1, high=size, reason="a larger stride leaves gaps")
    chunks = [Chunk(text[s:s + size], name, s) for name, text in texts.items()
              for s in range(0, max(len(text) - size, 0) + 1, stride)]
    if not chunks:
        raise ValueError("no text to chunk")
    return chunks


def _words(texts: Sequence[str]) -> list[list[str]]:
    import re

    return [re.findall(r"[a-z]+", t.lower()) for t in texts]


class ChunkRetriever:
    """BM25 over the lowercase words of each chunk (``bm25s``; no stop words dropped: in a
    64-character window, "the" and "thou" are much of what there is to match)."""

    def __init__(self, chunks: Sequence[Chunk]):
        import bm25s

        if not chunks:
            raise ValueError("no chunks to index")
        self.chunks = list(chunks)
        self.index = bm25s.BM25()
        self.index.index(_words([c.text for c in self.chunks]), show_progress=False)

    def search(self, queries: Sequence[str], k: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k`` best chunks of each query: indices (N, k) into ``chunks`` and BM25 scores
        (N, k), best first (a query with no known word scores 0 everywhere)."""
        check_int(k, "k", low=1, high=len(self.chunks))
        if len(queries) == 0:
            raise ValueError("no queries")
        words = [w or ["\u2205"] for w in _words(queries)]  # bm25s needs a token per query
        found, scores = self.index.retrieve(words, k=k, show_progress=False, n_threads=1)
        return torch.as_tensor(found, dtype=torch.long), torch.as_tensor(scores)


def passage_after_match(source: str, start: int, end: int, prompt: str, width: int,
                        lookback: int = 8, limit: int | None = None) -> str:
    """``width`` characters of ``source`` around the longest tail of ``prompt`` found in
    ``source[start:end]`` (a retrieved chunk): ``lookback`` of them before the match's end,
    the rest what followed it, never past ``limit``. No match: the chunk's last ``width``.

    >>> passage_after_match("the king is dead, long live the king", 0, 20, "I saw the kin", 12, 4)
    ' king is dea'
    """
    check_int(width, "width", low=1)
    check_int(lookback, "lookback", low=0, high=width)
    limit = len(source) if limit is None else min(limit, len(source))
    chunk = source[start:end]
    for n in range(min(len(prompt), len(chunk)), 1, -1):  # the longest tail first
        at = chunk.rfind(prompt[-n:])
        if at >= 0:
            begin = start + at + n - lookback
            break
    else:
        begin = end - width
    begin = max(0, min(begin, limit - width))
    return source[begin:min(begin + width, limit)]  # shorter only if limit < width


def paired_difference(a: torch.Tensor, b: torch.Tensor, n_boot: int = 2000, seed: int = 0,
                      level: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``a - b`` over paired probes and its percentile-bootstrap interval: the same
    resampled probes for both conditions, so what every probe shares cancels."""
    from llm_lessons.evaluation.agreement import bootstrap_ci

    if a.shape != b.shape or a.dim() != 1:
        raise ValueError(f"need two 1-d tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    d = (a.double() - b.double()).numpy()
    ci = bootstrap_ci(d, lambda x: x.mean(), n_boot=n_boot, level=level, seed=seed)
    return float(ci.estimate), float(ci.low), float(ci.high)
