"""A writing assistant: next-word and next-line suggestions from the KV-cached GPT (section 6.3).

Shapes use fixed letters: N prompts, W beams per prompt, R = N * W rows, L context length,
V vocabulary.

A character-level model knows nothing about words, yet it can suggest them: a *word* is a run
of letters (and apostrophes) ended by any other character, so the probability of completing
the word being typed with the letters c1 .. cm is

    P(c1 .. cm, then a boundary | text) = P(c1 | text) ... P(cm | text c1 .. cm-1) * P(boundary | ...)

where P(boundary) sums the probabilities of every non-letter (space, newline, punctuation).
:func:`suggest_words` finds the k most likely completions by beam search over letters, and
stops early once no open beam can beat the k-th finished word (probabilities only shrink as a
word grows). :func:`suggest_line` decodes greedily to the end of the line.

Both keep the last ``block_size - max_chars`` characters of the text as the context, so the
whole suggestion is decoded inside one window: then the key-value cache (``model.new_cache``,
through :class:`~llm_lessons.sampling.StepDecoder`) feeds one new character per step instead
of the whole window. The baseline a writer would otherwise get is a word-frequency table:
:func:`suggest_by_frequency`. :func:`saved_keystrokes` scores either against the words a
writer actually types.

>>> counts = word_counts("to be or not to be, that is the question")
>>> [(s.text, round(s.prob, 2)) for s in suggest_by_frequency(counts, "t", 2)]
[('o', 0.5), ('hat', 0.25)]
>>> saved_keystrokes("question", [["the"], ["uestion", "o"]])   # offered after typing "q"
6
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from llm_lessons.configs import block_size_of
from llm_lessons.reproducibility import eval_mode, model_device
from llm_lessons.sampling import StepDecoder
from llm_lessons.validation import check_bool, check_int

WORD = re.compile(r"[A-Za-z']+")


@dataclass(frozen=True)
class Suggestion:
    """Characters to insert after the text, and the probability the model (or table) gives them."""

    text: str
    prob: float


def is_word_char(c: str) -> bool:
    """Letters and the apostrophe ("o'er", "'tis") continue a word; anything else ends it."""
    return bool(WORD.fullmatch(c))


def current_prefix(text: str) -> str:
    """The part of the word being typed: the trailing letters of ``text`` ('' after a space).

    >>> current_prefix("Once more unto th"), current_prefix("Once more ")
    ('th', '')
    """
    match = re.search(r"[A-Za-z']*\Z", text)
    return match.group(0)


def _context(tok, text: str, block_size: int, max_chars: int) -> list[int]:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if not text:
        raise ValueError("text is empty: type at least one character before asking for a suggestion")
    if max_chars >= block_size:
        raise ValueError(f"max_chars {max_chars} must be below the model's block_size {block_size}, "
                         "so that some context fits in the window beside the suggestion")
    return tok.encode(text)[-(block_size - max_chars):]  # ValueError names an unknown character


@torch.no_grad()
def _beam_words(model, idx: torch.Tensor, word_ids: torch.Tensor, boundary_ids: torch.Tensor,
                k: int, beam: int, max_chars: int, use_cache: bool) -> list[list[tuple[list[int], float]]]:
    """Top-k (completion ids, log-probability) per prompt row of idx (N, L), by beam search."""
    N = idx.shape[0]
    decoder = StepDecoder(model, use_cache)
    seq = idx.new_zeros(N, 0)  # (R, t) the letters chosen so far
    score = torch.zeros(N, device=idx.device)  # (R,) their log-probability
    per_prompt = 1  # rows per prompt: 1 before the first step, then W
    finished: list[list[tuple[list[int], float]]] = [[] for _ in range(N)]
    with eval_mode(model):
        for step in range(max_chars + 1):
            logp = decoder(idx).float().log_softmax(dim=-1)  # (R, V)
            if step > 0:  # every open beam may end here: add P(any boundary)
                ends = score + logp[:, boundary_ids].logsumexp(dim=-1)  # (R,)
                for r in torch.nonzero(torch.isfinite(ends)).flatten().tolist():
                    finished[r // per_prompt].append((seq[r].tolist(), float(ends[r])))
            if step == max_chars:
                break
            cand = (score[:, None] + logp[:, word_ids]).reshape(N, -1)  # (R, Vw) -> (N, per_prompt * Vw)
            top, pick = cand.topk(min(beam, cand.shape[1]), dim=-1)  # (N, W); fewer letters than W: all
            if step > 0 and _settled(finished, top[:, 0], k):
                break
            parent = (torch.arange(N, device=idx.device)[:, None] * per_prompt
                      + pick // len(word_ids)).flatten()  # (R,)
            chars = word_ids[pick % len(word_ids)].flatten()  # (R,)
            decoder.reorder(parent)
            idx = torch.cat([idx[parent], chars[:, None]], dim=1)  # (R, L + t + 1)
            seq = torch.cat([seq[parent], chars[:, None]], dim=1)
            score, per_prompt = top.flatten(), top.shape[1]
    return [sorted(f, key=lambda h: (-h[1], h[0]))[:k] for f in finished]


def _settled(finished, best_open: torch.Tensor, k: int) -> bool:
    """True when every prompt has k finished words that no open beam can beat any more."""
    for f, best in zip(finished, best_open.tolist(), strict=True):
        if len(f) < k or sorted((h[1] for h in f), reverse=True)[k - 1] < best:
            return False
    return True


def suggest_words_batch(model, tok, texts: Sequence[str], k: int = 3, *, beam: int = 8,
                        max_chars: int = 12, use_cache: bool = True) -> list[list[Suggestion]]:
    """:func:`suggest_words` for many texts at once (texts of equal context length share a batch)."""
    k = check_int(k, "k", low=1)
    beam = check_int(beam, "beam", low=1)
    max_chars = check_int(max_chars, "max_chars", low=1)
    check_bool(use_cache, "use_cache")
    if k > beam:
        raise ValueError(f"k = {k} suggestions need a beam of at least k, got beam = {beam}")
    if isinstance(texts, str) or not len(texts):
        raise ValueError("texts must be a non-empty sequence of strings")
    block_size = block_size_of(model)
    contexts = [_context(tok, t, block_size, max_chars) for t in texts]
    word_ids = torch.tensor([i for i, c in enumerate(tok.chars) if is_word_char(c)])
    boundary_ids = torch.tensor([i for i, c in enumerate(tok.chars) if not is_word_char(c)])
    device = model_device(model)
    word_ids, boundary_ids = word_ids.to(device), boundary_ids.to(device)
    out: list[list[Suggestion]] = [[] for _ in texts]
    for length in sorted({len(c) for c in contexts}):
        rows = [i for i, c in enumerate(contexts) if len(c) == length]
        idx = torch.tensor([contexts[i] for i in rows], device=device)  # (N, L)
        tops = _beam_words(model, idx, word_ids, boundary_ids, k, beam, max_chars, use_cache)
        for i, top in zip(rows, tops, strict=True):
            out[i] = [Suggestion(tok.decode(ids), math.exp(lp)) for ids, lp in top]
    return out


def suggest_words(model, tok, text: str, k: int = 3, *, beam: int = 8, max_chars: int = 12,
                  use_cache: bool = True) -> list[Suggestion]:
    """The k most likely completions of the word being typed at the end of ``text``, best first.

    Each suggestion is the letters to append (at least one), and its probability of being
    typed *and then ended* by a non-letter. An unknown character in ``text`` is a ValueError.
    """
    return suggest_words_batch(model, tok, [text], k, beam=beam, max_chars=max_chars,
                               use_cache=use_cache)[0]


@torch.no_grad()
def suggest_line(model, tok, text: str, *, max_chars: int = 32, use_cache: bool = True) -> Suggestion:
    """Greedy continuation of ``text`` up to (not including) the next newline, at most
    ``max_chars`` characters, with the probability of those characters."""
    max_chars = check_int(max_chars, "max_chars", low=1)
    check_bool(use_cache, "use_cache")
    context = _context(tok, text, block_size_of(model), max_chars)
    idx = torch.tensor([context], device=model_device(model))  # (1, L)
    decoder, newline = StepDecoder(model, use_cache), tok.stoi.get("\n")
    chosen, logp_sum = [], 0.0
    with eval_mode(model):
        for _ in range(max_chars):
            logp = decoder(idx).float().log_softmax(dim=-1)[0]  # (V,)
            nxt = int(logp.argmax())
            if nxt == newline:
                break
            chosen.append(nxt)
            logp_sum += float(logp[nxt])
            idx = torch.cat([idx, idx.new_tensor([[nxt]])], dim=1)  # (1, L + t + 1)
    return Suggestion(tok.decode(chosen), math.exp(logp_sum))


def word_counts(text: str) -> Counter:
    """How often each word (a run of letters and apostrophes, case kept) occurs in ``text``."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return Counter(WORD.findall(text))


def suggest_by_frequency(counts: Counter, prefix: str, k: int = 3) -> list[Suggestion]:
    """The baseline: the k most frequent words that start with ``prefix`` (ties alphabetical),
    as completions, each with its share of the count of all words that start so."""
    k = check_int(k, "k", low=1)
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
    match = [(w, n) for w, n in counts.items() if w.startswith(prefix) and len(w) > len(prefix)]
    total = sum(n for _, n in match)
    best = sorted(match, key=lambda wn: (-wn[1], wn[0]))[:k]
    return [Suggestion(w[len(prefix):], n / total) for w, n in best]


def saved_keystrokes(word: str, offers: Sequence[Sequence[str]]) -> int:
    """Characters a writer does not type: ``offers[p]`` are the completions shown after the
    first p letters of ``word``; at the first p where the rest of the word is offered, one key
    accepts it, saving ``len(word) - p - 1`` (never below 0). 0 if it is never offered."""
    if not isinstance(word, str) or not word:
        raise ValueError("word must be a non-empty str")
    for p, offered in enumerate(offers):
        if p < len(word) and word[p:] in offered:
            return max(0, len(word) - p - 1)
    return 0


def median_speedup(cached, uncached) -> float:
    """Median over prompts of (median uncached time / median cached time), from two tables of
    seconds (repeats, prompts) measured interleaved: >1 means the cache is faster."""
    cached = torch.as_tensor(cached, dtype=torch.float64)
    uncached = torch.as_tensor(uncached, dtype=torch.float64)
    if cached.dim() != 2 or cached.shape != uncached.shape or cached.numel() == 0:
        raise ValueError(f"need two non-empty (repeats, prompts) tables of the same shape, got "
                         f"{tuple(cached.shape)} and {tuple(uncached.shape)}")
    if not (cached > 0).all() or not (uncached > 0).all():
        raise ValueError("timings must be positive seconds")
    ratio = uncached.quantile(0.5, dim=0) / cached.quantile(0.5, dim=0)  # (prompts,)
    return float(ratio.quantile(0.5))  # the median: the mean of the middle two for even counts
