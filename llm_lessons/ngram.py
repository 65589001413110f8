"""N-gram language models from counts: add-k (Lidstone/Laplace) and interpolated Kneser–Ney.

An order-n model makes the Markov assumption P(x_t | x_<t) ≈ P(x_t | x_{t-n+1:t}): only the
last n-1 tokens matter. Shapes: B batch, T time, V vocabulary, Q queries (flattened B·T).

Counts are stored so that millions of lookups run as a few tensor operations: a k-gram is the
integer ``rank(first k-1 tokens) * V + last token``, where ``rank`` is the index of a (k-1)-gram
among the distinct (k-1)-grams of the training data (a unigram's rank is its token id). Sorted,
these keys are searched with ``torch.searchsorted``.

>>> lm = NGramLM(order=2, smoothing="add_k", k=1.0, vocab_size=3).fit([0, 1, 0, 2, 0, 1])
>>> lm.prob(1, context=[0])  # (c(0 1) + k) / (c(0 •) + k V) = (2 + 1) / (3 + 3)
0.5
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

SMOOTHINGS = ("add_k", "kneser_ney")


def _as_ids(ids, vocab_size: int | None, what: str = "ids") -> Tensor:
    """A 1-D or 2-D int64 tensor of token ids, checked against ``range(vocab_size)``."""
    if isinstance(ids, str):
        raise TypeError(f"{what} must be token ids, got a str: encode the text with a tokenizer first")
    t = ids if isinstance(ids, Tensor) else torch.as_tensor(list(ids) if not hasattr(ids, "shape") else ids)
    if t.numel() and (t.is_floating_point() or t.is_complex() or t.dtype == torch.bool):
        raise TypeError(f"{what} must be integer token ids, got dtype {t.dtype}")
    t = t.detach().to("cpu", torch.long)
    if t.numel() and (t.min() < 0 or (vocab_size is not None and t.max() >= vocab_size)):
        bad = t[(t < 0) | (t >= (vocab_size or 2**62))][0].item()
        raise ValueError(f"{what} contain token id {bad}, outside the vocabulary range(0, {vocab_size})")
    return t


def _pad(counts: Tensor) -> Tensor:
    return torch.cat([counts, counts.new_zeros(1)])


class NGramCounts:
    """Every k-gram count (k = 1..max_order) of a training sequence, plus Kneser–Ney statistics.

    >>> c = NGramCounts([0, 1, 0, 2, 0, 1], max_order=2, vocab_size=3)
    >>> c.count((0, 1)), c.count((1, 0)), c.count((2, 2)), c.count((0,))
    (2, 1, 0, 3)
    """

    def __init__(self, ids, max_order: int, vocab_size: int | None = None):
        if not isinstance(max_order, int) or max_order < 1:
            raise ValueError(f"max_order must be an integer >= 1, got {max_order!r}")
        x = _as_ids(ids, vocab_size, "training ids")
        if x.dim() != 1:
            raise ValueError(f"training ids must be 1-D, got shape {tuple(x.shape)}")
        if x.numel() == 0:
            raise ValueError("training ids are empty: an n-gram model needs data to count")
        self.max_order, self.n_tokens = max_order, x.numel()
        self.vocab_size = V = int(x.max()) + 1 if vocab_size is None else vocab_size
        self.keys: dict[int, Tensor] = {1: torch.arange(V)}
        self.raw: dict[int, Tensor] = {1: torch.bincount(x, minlength=V)}  # c(g) per stored k-gram
        self.cont: dict[int, Tensor] = {}  # N1+(• g): distinct left neighbours of each k-gram
        prev = x  # (N-k+2,) rank of the (k-1)-gram starting at each position
        for k in range(2, max_order + 1):
            key = prev[:-1] * V + x[k - 1:]  # (N-k+1,)
            self.keys[k], pos, self.raw[k] = torch.unique(
                key, sorted=True, return_inverse=True, return_counts=True)
            # the suffix (last k-1 tokens) of each distinct k-gram, read at its first occurrence
            first = torch.full((len(self.keys[k]),), key.numel(), dtype=torch.long)
            first.scatter_reduce_(0, pos, torch.arange(key.numel()), reduce="amin")
            self.cont[k - 1] = torch.bincount(prev[first + 1], minlength=len(self.keys[k - 1]))
            prev = pos
        # per-context totals c(h •) and types N1+(h •), raw and continuation, for |h| = 0, 1, ...
        self.total: dict[tuple[bool, int], Tensor] = {}
        self.types: dict[tuple[bool, int], Tensor] = {}
        for raw, counts in ((True, self.raw), (False, self.cont)):
            for j in range(max_order):
                if j + 1 not in counts:
                    continue
                c = counts[j + 1].double()
                if j == 0:
                    self.total[raw, 0], self.types[raw, 0] = c.sum()[None], (c > 0).double().sum()[None]
                    continue
                ctx = self.keys[j + 1] // V  # rank of the length-j context of each (j+1)-gram
                size = len(self.keys[j])
                self.total[raw, j] = _pad(torch.bincount(ctx, weights=c, minlength=size))
                self.types[raw, j] = _pad(torch.bincount(ctx, weights=(c > 0).double(), minlength=size))
        # every per-k-gram vector gets a trailing 0, which rank -1 ("never seen") reads
        self.raw = {k: _pad(c) for k, c in self.raw.items()}
        self.cont = {k: _pad(c) for k, c in self.cont.items()}

    def _find(self, k: int, key: Tensor) -> Tensor:
        """Rank of each k-gram key in the k-gram table, -1 where it never occurred."""
        table = self.keys[k]
        if len(table) == 0:
            return torch.full_like(key, -1)
        idx = torch.searchsorted(table, key).clamp(max=len(table) - 1)
        return torch.where(table[idx] == key, idx, -1)

    def ranks(self, seq: Tensor, upto: int) -> dict[int, Tensor]:
        """``{k: (B, T-k+1)}`` ranks of every k-gram (k ≤ upto) in ``seq`` (B, T); -1 if unseen."""
        out = {1: seq}
        for k in range(2, min(upto, seq.shape[1]) + 1):
            out[k] = self._find(k, out[k - 1][:, :-1] * self.vocab_size + seq[:, k - 1:])
        return out

    def count(self, ngram: Sequence[int]) -> int:
        """How many times ``ngram`` occurs in the training ids."""
        k = len(ngram)
        if not 1 <= k <= self.max_order:
            raise ValueError(f"can count 1- to {self.max_order}-grams, got a {k}-gram")
        seq = _as_ids(ngram, self.vocab_size, "ngram")[None]  # (1, k)
        r = int(self.ranks(seq, k)[k][0, 0])
        return int(self.raw[k][r]) if r >= 0 else 0

    def level(self, j: int, ctx: Tensor | None, words: Tensor, raw: bool):
        """Counts a(h, w) (Q, W), c(h •) and N1+(h •) (Q, 1) for contexts of length j (ranks ``ctx``)."""
        counts = self.raw if raw else self.cont
        if j == 0:
            return counts[1][words].double(), self.total[raw, 0][None], self.types[raw, 0][None]
        seen = (ctx >= 0)[:, None]
        found = self._find(j + 1, torch.where(seen, ctx[:, None], 0) * self.vocab_size + words)  # (Q, W)
        a = counts[j + 1][torch.where(seen, found, -1)]
        total, types = self.total[raw, j][ctx][:, None], self.types[raw, j][ctx][:, None]  # (Q, 1)
        return a.double(), total, types


class NGramLM(torch.nn.Module):
    """An order-n language model from counts, with the book's LM interface.

    - ``"add_k"`` (Lidstone; Laplace when k = 1): P(w | h) = (c(h w) + k) / (c(h •) + k V).
      Same conventions as ``nltk.lm.Lidstone``: ``fit`` counts every k-gram (k ≤ n) of one
      unpadded sequence, the first tokens of a text are scored with the shorter context they
      have (nltk's ``everygrams``-style n-grams), and V is the whole vocabulary (nltk's
      ``len(vocab)`` counts its ``<UNK>``, so pass that as ``vocab_size`` to compare).
    - ``"kneser_ney"`` (interpolated, one discount D): the highest order uses raw counts,
      lower orders use continuation counts N1+(• h w), unseen contexts back off completely,
      and the recursion ends at the uniform 1/V, so every distribution sums to 1.

    ``forward(idx, targets)`` returns log-probabilities: ``logits[b, t]`` is the distribution of
    the token after ``idx[b, :t+1]``, given its last ``min(t+1, order-1)`` tokens.

    >>> lm = NGramLM(order=2, smoothing="kneser_ney", vocab_size=3).fit([0, 1, 0, 2, 0, 1])
    >>> round(lm.prob(1, context=[0]), 6)  # (2 - .75)/3 + .75 * 2/3 * P_cont(1) with P_cont(1) = 1/4
    0.541667
    >>> round(float(lm.next_token_probs([2]).sum()), 12)
    1.0
    """

    def __init__(self, order: int, smoothing: str = "kneser_ney", k: float = 1.0,
                 vocab_size: int | None = None, discount: float = 0.75):
        super().__init__()
        if not isinstance(order, int) or order < 1:
            raise ValueError(f"order must be an integer >= 1, got {order!r}")
        if smoothing not in SMOOTHINGS:
            raise ValueError(f"unknown smoothing {smoothing!r}; choose one of {SMOOTHINGS}")
        if not k > 0:
            raise ValueError(f"k must be > 0 (k = 0 gives zero probability to unseen n-grams), got {k}")
        if not 0 < discount <= 1:
            raise ValueError(f"discount must be in (0, 1], got {discount}")
        if vocab_size is not None and vocab_size < 1:
            raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
        self.order, self.smoothing, self.k, self.discount = order, smoothing, float(k), float(discount)
        self.block_size = max(1, order - 1)  # tokens of context forward() can use
        self._vocab_size = vocab_size
        self.counts: NGramCounts | None = None

    @property
    def vocab_size(self) -> int | None:
        return self._vocab_size

    def fit(self, ids) -> NGramLM:
        """Count the 1- to order-grams of ``ids`` (a 1-D sequence of token ids); returns self."""
        return self.fit_counts(NGramCounts(ids, self.order, self._vocab_size))

    def fit_counts(self, counts: NGramCounts) -> NGramLM:
        """Reuse counts made for an order >= this one (e.g. one 5-gram count serves orders 1–5)."""
        if counts.max_order < self.order:
            raise ValueError(f"counts go up to order {counts.max_order}, this model needs {self.order}")
        if self._vocab_size is not None and counts.vocab_size != self._vocab_size:
            raise ValueError(f"counts have vocab_size {counts.vocab_size}, model has {self._vocab_size}")
        self.counts, self._vocab_size = counts, counts.vocab_size
        return self

    def _fitted(self) -> NGramCounts:
        if self.counts is None:
            raise RuntimeError("this NGramLM has not been fitted yet: call fit(ids) first")
        return self.counts

    def _probs(self, ranks: list[Tensor], words: Tensor) -> Tensor:
        """P(w | h) (Q, W) float64 for contexts given by their suffix ranks [r_1 .. r_m], each (Q,)."""
        counts, m, V = self._fitted(), len(ranks), self._vocab_size
        if self.smoothing == "add_k":
            a, total, _ = counts.level(m, ranks[-1] if m else None, words, raw=True)
            return (a + self.k) / (total + self.k * V)
        D, p = self.discount, torch.full(words.shape, 1.0 / V, dtype=torch.float64)
        for j in range(m + 1):  # from the empty context up to the full one
            a, total, types = counts.level(j, ranks[j - 1] if j else None, words, raw=(j == m))
            p = torch.where(total > 0, ((a - D).clamp(min=0) + D * types * p) / total.clamp(min=1e-300), p)
        return p

    def _probs_after(self, idx: Tensor, words: Tensor | None) -> Tensor:
        """P(next | idx[:, :t+1]) for every t: (B, T, W) with words (B, T, W), or (B, T, V) if None."""
        B, T = idx.shape
        n1 = self.order - 1
        R = self._fitted().ranks(idx, n1)
        out = torch.empty(B, T, self._vocab_size if words is None else words.shape[-1], dtype=torch.float64)
        for t in range(min(n1 - 1, T)):  # the first tokens have a shorter context, m = t + 1
            ranks = [R[j][:, t - j + 1] for j in range(1, t + 2)]
            w = torch.arange(self._vocab_size)[None] if words is None else words[:, t]
            out[:, t] = self._probs(ranks, w)
        t0 = max(n1 - 1, 0)  # from here on the context is full: m = order - 1
        if T > t0:
            ranks = [R[j][:, t0 - j + 1: T - j + 1].reshape(-1) for j in range(1, n1 + 1)]  # (B*(T-t0),)
            all_words = torch.arange(self._vocab_size)[None]  # (1, V)
            w = all_words if words is None else words[:, t0:].reshape(-1, words.shape[-1])  # (Q, W)
            p = self._probs(ranks, w).expand(B * (T - t0), -1)  # (Q, W); Q = 1 broadcasts if order 1
            out[:, t0:] = p.reshape(B, T - t0, -1)  # (Q, W) -> (B, T-t0, W)
        return out

    def _context(self, context: Sequence[int]) -> list[Tensor]:
        ctx = _as_ids(context, self._vocab_size, "context")
        if ctx.dim() != 1 or len(ctx) > self.order - 1:
            raise ValueError(f"context must be a 1-D sequence of at most order-1 = {self.order - 1} "
                             f"ids (shorter only at the start of a text), got shape {tuple(ctx.shape)}")
        m = len(ctx)
        R = self._fitted().ranks(ctx[None], m)
        return [R[j][:, m - j] for j in range(1, m + 1)]  # suffix of length j starts at m - j

    def next_token_probs(self, context: Sequence[int] = ()) -> Tensor:
        """(V,) float64 distribution of the next token after ``context`` (≤ order-1 ids)."""
        ranks = self._context(context)
        return self._probs(ranks, torch.arange(self._fitted().vocab_size)[None])[0]

    def prob(self, token: int, context: Sequence[int] = ()) -> float:
        """P(token | context), context of at most order-1 previous ids."""
        ranks = self._context(context)
        w = _as_ids([token], self._vocab_size, "token")[None]  # (1, 1)
        return float(self._probs(ranks, w)[0, 0])

    def token_log_probs(self, ids) -> Tensor:
        """(N,) float64: log P(x_t | x_{t-order+1:t}) for every token, the first from the empty context."""
        x = _as_ids(ids, self._fitted().vocab_size)
        if x.dim() != 1 or x.numel() == 0:
            raise ValueError(f"ids must be a non-empty 1-D sequence, got shape {tuple(x.shape)}")
        first = self._probs([], x[:1, None])[0]  # (1,)
        rest = self._probs_after(x[None, :-1], x[1:].view(1, -1, 1))  # (1, N-1, 1)
        return torch.cat([first, rest.view(-1)]).log()

    def cross_entropy(self, ids) -> float:
        """Mean negative log-likelihood per token, in nats."""
        return float(-self.token_log_probs(ids).mean())

    def perplexity(self, ids) -> float:
        """exp(cross-entropy): the model is as unsure as a uniform choice among this many tokens."""
        return float(torch.exp(-self.token_log_probs(ids).mean()))

    def forward(self, idx: Tensor, targets: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """idx (B, T) -> logits (B, T, V) log-probabilities, and mean cross-entropy if targets given."""
        if not isinstance(idx, Tensor) or idx.dim() != 2:
            raise ValueError(f"idx must be a (B, T) tensor of token ids, got {getattr(idx, 'shape', idx)!r}")
        x = _as_ids(idx, self._fitted().vocab_size, "idx")
        logits = self._probs_after(x, None).log().float().to(idx.device)  # (B, T, V)
        if targets is None:
            return logits, None
        if targets.shape != idx.shape:
            raise ValueError(f"targets shape {tuple(targets.shape)} must equal idx shape {tuple(idx.shape)}")
        V = logits.shape[-1]
        loss = F.cross_entropy(logits.view(-1, V), targets.reshape(-1), ignore_index=-100)  # (B*T, V)
        return logits, loss

    @torch.no_grad()
    def sample(self, n: int, context: Sequence[int] = (),
               generator: torch.Generator | None = None) -> list[int]:
        """Draw ``n`` tokens one at a time, each from P(· | the last order-1 tokens so far)."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        seq = _as_ids(context, self._fitted().vocab_size, "context").tolist()
        out: list[int] = []
        for _ in range(n):
            ctx = seq[max(0, len(seq) - (self.order - 1)):] if self.order > 1 else []
            nxt = int(torch.multinomial(self.next_token_probs(ctx), 1, generator=generator))
            seq.append(nxt)
            out.append(nxt)
        return out
