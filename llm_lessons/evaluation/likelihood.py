"""Likelihood-based evaluation: per-token NLL, perplexity, bits per token / byte, word perplexity.

Shapes use fixed letters: B batch (windows), T time (window length), V vocabulary.

Every number here comes from one sum, the negative log-likelihood (NLL, in nats) a model gives
to the tokens it *predicts*, and one count it is divided by:

    NLL = -sum_t log p(x_t | x_<t)      perplexity = exp(NLL / tokens)
    bits per byte = NLL / (ln 2 * UTF-8 bytes)      word perplexity = exp(NLL / words)

**The first token.** Nothing comes before it, so by default it is *not* predicted: a text of N
tokens yields N - 1 NLLs. With ``prefix_id`` (a stand-in "start of text" token; lm-evaluation-
harness uses its end-of-text token, our character models use ``"\\n"``), the first token is
predicted after the prefix and a text yields N NLLs. Either way every token is scored once.

**Long texts** are cut into windows of at most ``block_size`` inputs (:func:`token_windows`):
disjoint blocks by default, overlapping ones with a ``stride`` (each scored token then sees at
least ``block_size - stride`` tokens of context), and lm-evaluation-harness's rolling windows
with ``align_last=True`` (disjoint blocks, the last one moved left to keep a full context).

>>> model = UniformLM(vocab_size=4, block_size=3)
>>> nll = token_nll(model, [0, 1, 2, 3, 0])          # 5 tokens, 4 predictions of p = 1/4
>>> nll.shape, round(perplexity(model, [0, 1, 2, 3, 0]), 12)
(torch.Size([4]), 4.0)
>>> round(bits_per_byte(float(nll.sum()), "abcd"), 12)   # 4 * ln 4 nats over 4 bytes
2.0
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from llm_lessons.configs import block_size_of
from llm_lessons.ngram import NGramLM
from llm_lessons.reproducibility import eval_mode, model_device
from llm_lessons.sampling import vocab_size_of
from llm_lessons.validation import check_int, token_ids

LN2 = math.log(2.0)


@dataclass(frozen=True)
class Window:
    """One forward pass: inputs ``ids[start:stop]`` predict ``ids[start+1:stop+1]``, and only the
    last ``n_scored`` of those predictions are counted (the earlier ones are context)."""

    start: int
    stop: int
    n_scored: int

    @property
    def scored(self) -> range:
        """Positions (in the id sequence) of the tokens this window scores."""
        return range(self.stop + 1 - self.n_scored, self.stop + 1)


def _positive_int(value, name: str) -> int:
    return check_int(value, name, low=1)


def token_windows(n_tokens: int, block_size: int, stride: int | None = None,
                  align_last: bool = False) -> list[Window]:
    """The windows that score tokens 1..n_tokens-1 of a sequence, each exactly once.

    Windows start every ``stride`` tokens (default ``block_size``: disjoint blocks) and hold up
    to ``block_size`` inputs; each scores the predictions no earlier window made. With
    ``align_last`` a short final window is moved left to end at the same place with a full
    ``block_size`` of inputs (lm-evaluation-harness's rolling windows).

    >>> [(w.start, w.stop, w.n_scored) for w in token_windows(10, 4)]   # disjoint
    [(0, 4, 4), (4, 8, 4), (8, 9, 1)]
    >>> [(w.start, w.stop, w.n_scored) for w in token_windows(10, 4, align_last=True)]
    [(0, 4, 4), (4, 8, 4), (5, 9, 1)]
    >>> [(w.start, w.stop, w.n_scored) for w in token_windows(10, 4, stride=2)]  # sliding
    [(0, 4, 4), (2, 6, 2), (4, 8, 2), (6, 9, 1)]
    """
    n_tokens = check_int(n_tokens, "n_tokens", low=2, reason="a text needs at least two tokens to score "
                         "one prediction: the first token has no context")
    T = _positive_int(block_size, "block_size")
    S = check_int(T if stride is None else stride, "stride", low=1, high=T,
                  reason="at most block_size: a larger stride would skip tokens")
    last = n_tokens - 1  # inputs are ids[0:last]; the final token is only ever a target
    windows, done, start = [], 0, 0
    while done < last:
        stop = min(start + T, last)
        windows.append(Window(start, stop, stop - done))
        done, start = stop, start + S
    if align_last and windows[-1].stop - windows[-1].start < T and windows[-1].start > 0:
        w = windows[-1]
        windows[-1] = Window(max(0, w.stop - T), w.stop, w.n_scored)
    return windows


def _as_ids(ids, what: str = "ids") -> Tensor:
    if isinstance(ids, str):
        raise TypeError(f"{what} must be token ids, got a str: encode it with a tokenizer first")
    # a list goes through token_ids: torch.as_tensor([1.7], dtype=long) would silently give [1]
    t = ids if isinstance(ids, Tensor) else torch.tensor(token_ids(ids, what), dtype=torch.long)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{what} must be integer token ids, got dtype {t.dtype}")
    if t.dim() != 1:
        raise ValueError(f"{what} must be a 1-D sequence of token ids, got shape {tuple(t.shape)}")
    return t.detach().to("cpu", torch.long)


@torch.no_grad()
def corpus_token_nll(model: nn.Module, docs: Sequence, block_size: int | None = None,
                     stride: int | None = None, *, align_last: bool = False, prefix_id: int | None = None,
                     batch_size: int = 32, pad_id: int = 0) -> list[Tensor]:
    """Per-token NLLs (float64, nats) of each document, scored independently (no shared context).

    Windows of all documents are batched together, right-padded with ``pad_id`` to the longest
    window of their batch; a causal model's output at a position never depends on later
    (padding) tokens, so results do not depend on ``batch_size``, ``pad_id`` or document order.
    Document i gets ``len(docs[i]) - 1`` NLLs (``len(docs[i])`` with ``prefix_id``), in order.
    """
    if isinstance(docs, (str, Tensor)) or not isinstance(docs, Sequence) or len(docs) == 0:
        raise ValueError("docs must be a non-empty list of token-id sequences")
    B = _positive_int(batch_size, "batch_size")
    seqs = [_as_ids(d, f"docs[{i}]") for i, d in enumerate(docs)]
    V = vocab_size_of(model)
    if prefix_id is not None:
        token_ids([prefix_id], "prefix_id", V)
        seqs = [torch.cat([torch.tensor([prefix_id]), s]) for s in seqs]
    if V is not None:
        for i, s in enumerate(seqs):
            token_ids(s, f"docs[{i}]", V)
    if block_size is None and isinstance(model, NGramLM):
        # an n-gram's block_size is the context it uses, not a window: windows that short would
        # cut every window's first tokens off their context. It takes any length: one window each.
        block_size = max(len(s) for s in seqs) - 1 or 1
    T = _positive_int(block_size, "block_size") if block_size is not None else block_size_of(model)
    for i, s in enumerate(seqs):
        if len(s) < 2:
            raise ValueError(f"docs[{i}] has {len(s)} token(s) (prefix included): at least two are "
                             "needed, the first has no context and is never predicted")
    plan = [(d, w) for d, s in enumerate(seqs) for w in token_windows(len(s), T, stride, align_last)]
    out = [torch.empty(len(s) - 1, dtype=torch.float64) for s in seqs]
    device = model_device(model)  # the CPU for n-gram and uniform models
    with eval_mode(model):
        for i in range(0, len(plan), B):
            chunk = plan[i:i + B]
            L = max(w.stop - w.start for _, w in chunk)
            x = torch.full((len(chunk), L), pad_id, dtype=torch.long)  # (B, L) inputs
            y = torch.zeros((len(chunk), L), dtype=torch.long)  # (B, L) targets (0 where unscored)
            for b, (d, w) in enumerate(chunk):
                n = w.stop - w.start
                x[b, :n] = seqs[d][w.start:w.stop]
                y[b, :n] = seqs[d][w.start + 1:w.stop + 1]
            logits, _ = model(x.to(device))
            if logits.dim() != 3 or logits.shape[:2] != (len(chunk), L):
                raise ValueError(f"model returned logits of shape {tuple(logits.shape)} for inputs "
                                 f"{tuple(x.shape)}; expected (B, T, V)")
            if int(y.max()) >= logits.shape[-1]:
                raise ValueError(f"a token id ({int(y.max())}) is outside the model's vocabulary "
                                 f"range(0, {logits.shape[-1]})")
            if torch.isnan(logits).any() or torch.isposinf(logits).any():
                raise ValueError("the model's logits contain NaN or +inf: no likelihood can be computed")
            logp = F.log_softmax(logits.double(), dim=-1).cpu()  # (B, L, V)
            nll = -logp.gather(-1, y[..., None]).squeeze(-1)  # (B, L, V) -> (B, L)
            for b, (d, w) in enumerate(chunk):
                n = w.stop - w.start
                out[d][w.stop - w.n_scored:w.stop] = nll[b, n - w.n_scored:n]
    return out


def token_nll(model: nn.Module, ids, block_size: int | None = None, stride: int | None = None,
              **kwargs) -> Tensor:
    """(N - 1,) float64 NLLs of tokens 1..N-1 of one text ((N,) with ``prefix_id``), in nats.

    Keyword arguments are those of :func:`corpus_token_nll` (``align_last``, ``prefix_id``, ...).

    >>> token_nll(UniformLM(2, block_size=2), [0, 1, 1]).tolist() == [math.log(2)] * 2
    True
    """
    return corpus_token_nll(model, [ids], block_size, stride, **kwargs)[0]


def perplexity(model: nn.Module, ids, block_size: int | None = None, stride: int | None = None,
               **kwargs) -> float:
    """exp(mean NLL per predicted token) of one text (a list of texts: corpus-level, pooled)."""
    first = ids[0] if isinstance(ids, (list, tuple)) and len(ids) > 0 else None
    many = isinstance(first, (list, tuple)) or (isinstance(first, Tensor) and first.dim() == 1)
    nlls = corpus_token_nll(model, list(ids) if many else [ids], block_size, stride, **kwargs)
    total = torch.cat(nlls)
    return math.exp(float(total.sum()) / total.numel())


def _docs(text) -> list[str]:
    docs = [text] if isinstance(text, str) else list(text)
    if not docs or not all(isinstance(d, str) for d in docs):
        raise TypeError("text must be a str or a non-empty list of str")
    if not any(docs):
        raise ValueError("text is empty: there is nothing to divide the NLL by")
    return docs


def count_bytes(text) -> int:
    """UTF-8 bytes of a text or list of texts (``'—'`` is one character but three bytes)."""
    return sum(len(d.encode("utf-8")) for d in _docs(text))


def count_words(text) -> int:
    """Words as lm-evaluation-harness counts them: ``len(re.split(r"\\s+", doc))`` per document.

    A leading or trailing whitespace run adds an empty "word", exactly as in the harness.

    >>> count_words("To be, or not"), count_words("To be\\n")
    (4, 3)
    """
    return sum(len(re.split(r"\s+", d)) for d in _docs(text))


def bits_per_token(total_nll: float, n_tokens: int) -> float:
    """NLL in bits per predicted token: log2 of the token perplexity."""
    return total_nll / (_positive_int(n_tokens, "n_tokens") * LN2)


def bits_per_byte(total_nll: float, text) -> float:
    """NLL in bits per UTF-8 byte of ``text``: comparable across tokenizers."""
    return total_nll / (count_bytes(text) * LN2)


def word_perplexity(total_nll: float, text) -> float:
    """exp(NLL / words), words counted by :func:`count_words`."""
    return math.exp(total_nll / count_words(text))


@dataclass(frozen=True)
class LikelihoodReport:
    """Total NLL of a corpus and the counts it is divided by; every unit is a property.

    >>> r = LikelihoodReport(total_nll=8 * LN2, n_tokens=4, n_chars=8, n_bytes=8, n_words=2)
    >>> r.bits_per_token, r.token_perplexity, r.bits_per_byte, round(r.word_perplexity, 9)
    (2.0, 4.0, 1.0, 16.0)
    """

    total_nll: float
    n_tokens: int
    n_chars: int
    n_bytes: int
    n_words: int

    @property
    def nll_per_token(self) -> float:  # nats
        return self.total_nll / self.n_tokens

    @property
    def token_perplexity(self) -> float:
        return math.exp(self.total_nll / self.n_tokens)

    @property
    def bits_per_token(self) -> float:
        return self.total_nll / (self.n_tokens * LN2)

    @property
    def bits_per_char(self) -> float:  # per Unicode code point
        return self.total_nll / (self.n_chars * LN2)

    @property
    def bits_per_byte(self) -> float:  # per UTF-8 byte: comparable across tokenizers
        return self.total_nll / (self.n_bytes * LN2)

    @property
    def byte_perplexity(self) -> float:  # 2 ** bits_per_byte
        return math.exp(self.total_nll / self.n_bytes)

    @property
    def word_perplexity(self) -> float:  # words as count_words counts them
        return math.exp(self.total_nll / self.n_words)


def score_texts(model: nn.Module, tokenizer, texts, block_size: int | None = None,
                stride: int | None = None, *, prefix: str | None = "\n", align_last: bool = True,
                batch_size: int = 32) -> LikelihoodReport:
    """Score texts the way lm-evaluation-harness's ``loglikelihood_rolling`` does, by default.

    Each text is encoded separately, its first token predicted after ``prefix`` (one token of
    the tokenizer; None: the first token is not predicted), its windows rolling with the last
    one right-aligned. The NLLs are pooled over all texts (a corpus-level number).
    """
    docs = _docs(texts)
    prefix_id = None
    if prefix is not None:
        enc = tokenizer.encode(prefix)
        if len(enc) != 1:
            raise ValueError(f"prefix {prefix!r} must encode to exactly one token, got {enc}")
        prefix_id = enc[0]
    ids = [tokenizer.encode(d) for d in docs]
    nlls = corpus_token_nll(model, ids, block_size, stride, align_last=align_last,
                            prefix_id=prefix_id, batch_size=batch_size)
    return LikelihoodReport(total_nll=float(sum(float(n.sum()) for n in nlls)),
                            n_tokens=sum(n.numel() for n in nlls), n_chars=sum(len(d) for d in docs),
                            n_bytes=count_bytes(docs), n_words=count_words(docs))


class UniformLM(nn.Module):
    """The no-knowledge baseline: p(x_t | x_<t) = 1/V for every token, so perplexity is exactly V.

    >>> logits, loss = UniformLM(8)(torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long))
    >>> logits.shape, round(loss.item(), 5) == round(math.log(8), 5)
    (torch.Size([1, 3, 8]), True)
    """

    def __init__(self, vocab_size: int, block_size: int = 1024):
        super().__init__()
        self.vocab_size = _positive_int(vocab_size, "vocab_size")
        self.block_size = _positive_int(block_size, "block_size")

    def forward(self, idx: Tensor, targets: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        if not isinstance(idx, Tensor) or idx.dim() != 2:
            raise ValueError(f"idx must be a (B, T) tensor of token ids, got {getattr(idx, 'shape', idx)!r}")
        logits = torch.zeros(*idx.shape, self.vocab_size, device=idx.device)  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.reshape(-1), ignore_index=-100)
        return logits, loss
