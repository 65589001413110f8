"""Checkers for the exercises on counting and scoring text: chapter 2.1's Kneser–Ney continuation
probability and byte fallback, chapter 2.4's entropy rate of a Markov source and its multiple
choice by log-likelihood (lm-evaluation-harness's ``acc`` and ``acc_norm``).

Shapes: V vocabulary, K states of a chain. Every answer comes from a reference written here;
:meth:`MarkovSource.entropy_rate <llm_lessons.evaluation.markov_source.MarkovSource.entropy_rate>`
(and its ``stationary``) and :class:`~llm_lessons.evaluation.multiple_choice.ChoiceScores` (its
``pred`` and ``pred_norm`` are the answer) are forbidden while the student's code runs.

>>> def byte_fallback(text, vocab):
...     out = []
...     for ch in text:
...         out += [ch] if ch in vocab else [f"<0x{b:02X}>" for b in ch.encode("utf-8")]
...     return out
>>> check_byte_fallback(byte_fallback)
'check_byte_fallback: all 14 cases passed'
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from llm_lessons.exercises.checking import Case, Mistake, random_int, run_check


def _p_cont(counts, over="columns", share="types"):
    """N1+(• w) / N1+(• •) from bigram counts (V, V); the flags give the usual wrong versions."""
    c = counts.double()  # (V, V) row v: counts of "v w"
    if share == "tokens":  # how often w follows anything, not after how many different words
        return c.sum(0) / c.sum()
    seen = (c > 0).double()  # (V, V) 1 where the bigram type occurs
    n_contexts = seen.sum(0 if over == "columns" else 1)  # (V,) distinct left (or right) neighbours
    return n_contexts / (len(c) if share == "V" else seen.sum())


def check_continuation_prob(fn: Callable, n_cases: int = 10, seed: int = 0) -> str:
    """``fn(bigram_counts)``: bigram_counts (V, V), row v holding the counts of "v followed by w".
    Returns (V,) Kneser–Ney's continuation probability p_cont(w) = |{v : c(v, w) > 0}| /
    |{(v, w) : c(v, w) > 0}|: the number of different words w follows, over the number of
    different bigram types (the ``cont`` counts of :class:`llm_lessons.ngram.NGramCounts`).
    Counts [[0, 5], [1, 0]] give [1/2, 1/2], although w = 1 was seen 5 times and w = 0 once."""
    g, t = torch.Generator().manual_seed(seed), torch.tensor
    fixed = [(t([[0, 5], [1, 0]]), "the example: w = 1 seen 5 times, w = 0 once, each after one word"),
             # the, san, francisco, glasses: "francisco" is frequent but only ever follows "san"
             (t([[0, 5, 0, 1], [0, 0, 20, 0], [3, 0, 0, 1], [2, 0, 0, 1]]),
              "the classic: words (the, san, francisco, glasses), 'francisco' 20 times after 'san' only"),
             (t([[0, 2, 0], [4, 0, 0], [1, 3, 0]]), "w = 2 never follows anything (p_cont 0)"),
             (torch.diag(t([3, 1, 7, 2])), "every word follows only itself")]
    while len(fixed) < n_cases:
        V = random_int(g, 3, 9)
        counts = torch.randint(1, 12, (V, V), generator=g) * (torch.rand(V, V, generator=g) < 0.45)
        counts[random_int(g, 0, V), random_int(g, 0, V)] += 1  # never all zero
        fixed.append((counts, f"V = {V}"))
    cases = [Case((c,), _p_cont(c), f"{what}, bigram_counts = {c.tolist()}") for c, what in fixed]
    mistakes = [
        Mistake("token counts", lambda c: _p_cont(c, share="tokens"),
                "you used how OFTEN w follows something (its unigram frequency c(• w) / c(• •)): "
                "the continuation probability counts in how many DIFFERENT contexts w appears, "
                "the number of non-zero entries of column w, over the number of bigram types"),
        Mistake("followers", lambda c: _p_cont(c, over="rows"),
                "you counted the different words that FOLLOW w (non-zero entries of row w): "
                "p_cont(w) counts the words w follows, the non-zero entries of COLUMN w"),
        Mistake("over V", lambda c: _p_cont(c, share="V"),
                "you divided by V, the vocabulary size: divide by the number of different bigram "
                "types (all non-zero entries), so that p_cont sums to 1"),
    ]
    return run_check("check_continuation_prob", fn, cases, mistakes)


POOL = "abcdehlmnorst \n\t.éüß中文语言模型好🙂😀🚀"  # ASCII, Latin-1, Chinese, emoji (1 to 4 bytes)


def _fallback(text, vocab, encoding="utf-8", digits="{:02X}", unknown="bytes"):
    """Known characters stay, others become byte tokens; the flags give the usual wrong versions."""
    out = []
    for ch in text:
        if ch in vocab:
            out.append(ch)
        elif unknown == "code point":
            out.append(f"<0x{ord(ch):02X}>")
        elif unknown == "bytes":
            out += ["<0x" + digits.format(b) + ">" for b in ch.encode(encoding)]
    return out


def check_byte_fallback(fn: Callable, n_cases: int = 14, seed: int = 1) -> str:
    """``fn(text, vocab)``: text a str, vocab a set of single characters. Returns the list of
    tokens: a character in vocab stays itself; any other becomes its UTF-8 bytes written as
    Llama's (SentencePiece's) byte tokens, ``"<0xE4>"``: two upper-case hex digits each. So
    ``fn("a中", {"a"}) == ["a", "<0xE4>", "<0xB8>", "<0xAD>"]``: no character is ever lost
    (byte-level BPE, :class:`llm_lessons.tokenizers.BPETokenizer`, starts from the same bytes)."""
    g = torch.Generator().manual_seed(seed)
    fixed = [("a中", {"a"}, "the example"), ("hello", set("helo"), "every character known"),
             ("", {"a"}, "an empty text"), ("é", set(), "'é': 2 bytes, an empty vocab"),
             ("hi🙂", set("hi"), "an emoji: 4 bytes"), ("to\nbe", set("tobe"), "a newline (byte 0x0A)"),
             ("中文", {"中"}, "a Chinese character in the vocab, one not"),
             ("a b!", set("ab"), "ASCII outside the vocab (one byte each)")]
    while len(fixed) < n_cases:
        chars = [POOL[i] for i in torch.randint(0, len(POOL), (random_int(g, 1, 11),), generator=g)]
        vocab = {c for c in POOL if float(torch.rand((), generator=g)) < 0.5}
        fixed.append(("".join(chars), vocab, ""))
    cases = [Case((text, vocab), _fallback(text, vocab),
                  f"{what + ': ' if what else ''}text = {text!r}, vocab = {''.join(sorted(vocab))!r}")
             for text, vocab, what in fixed]
    utf16 = ("you wrote UTF-16 bytes (what .encode('utf-16') gives, a byte-order mark included): "
             "byte fallback uses the character's UTF-8 bytes, ch.encode('utf-8'), 1 to 4 of them")
    mistakes = [
        Mistake("code point", lambda s, v: _fallback(s, v, unknown="code point"),
                "you wrote the Unicode code point (ord(ch), '<0x4E2D>' for 中) as one token: byte "
                "fallback writes each of the character's UTF-8 BYTES, ch.encode('utf-8'), as a token"),
        Mistake("lower case", lambda s, v: _fallback(s, v, digits="{:02x}"),
                "your hex digits are lower case ('<0xe4>'): the byte tokens are written "
                "'<0xE4>', upper case, f'<0x{b:02X}>'"),
        Mistake("no padding", lambda s, v: _fallback(s, v, digits="{:X}"),
                "a byte below 16 came out with one hex digit ('<0xA>'): every byte token has two, "
                "'<0x0A>' (format with 02X)"),
        Mistake("dropped", lambda s, v: _fallback(s, v, unknown="drop"),
                "you dropped the characters outside the vocab: byte fallback keeps them, as their "
                "UTF-8 bytes, so that no text is ever lost"),
        Mistake("utf-16", lambda s, v: _fallback(s, v, encoding="utf-16"), utf16),
        Mistake("utf-16 le", lambda s, v: _fallback(s, v, encoding="utf-16-le"), utf16),
    ]
    return run_check("check_byte_fallback", fn, cases, mistakes)


def _stationary(P):
    """pi (K,) with pi P = pi and sum 1: the system (P^T - I) pi = 0, one equation replaced by
    sum(pi) = 1 (unique for an irreducible chain, periodic or not)."""
    K = len(P)
    A = P.T - torch.eye(K, dtype=P.dtype)  # (K, K)
    A[-1] = 1.0
    b = torch.zeros(K, dtype=P.dtype)
    b[-1] = 1.0
    return torch.linalg.solve(A, b)


def _xlogx(p):
    return p * torch.log(torch.where(p > 0, p, torch.ones_like(p)))  # 0 log 0 = 0


def _entropy_rate(P, pi="stationary", what="rate", base=math.e):
    """-sum_i pi_i sum_j P_ij log P_ij in nats; the flags give the usual wrong versions."""
    P = P.double()
    K = len(P)
    weights = {"stationary": _stationary, "uniform": lambda p: torch.full((K,), 1 / K, dtype=p.dtype),
               "columns": lambda p: p.sum(0) / K}[pi](P)  # (K,)
    h = -_xlogx(weights).sum() if what == "pi" else -(weights * _xlogx(P).sum(1)).sum()
    return float(h) / math.log(base) + 0.0  # + 0.0: a cycle's -0.0 prints as 0


def _random_chain(g, K):
    """A (K, K) chain with some zeros; the cycle i -> i + 1 stays positive (irreducible) and so does
    the loop 0 -> 0 (aperiodic: powers of P converge, for a student who iterates pi P)."""
    w = torch.log(torch.rand(K, K, generator=g, dtype=torch.float64)) ** 2  # >= 0, uneven rows
    w = w * (torch.rand(K, K, generator=g) < 0.6)
    w[torch.arange(K), (torch.arange(K) + 1) % K] += 0.05 + torch.rand(K, generator=g, dtype=torch.float64)
    w[0, 0] += 0.2
    return w / w.sum(1, keepdim=True)


def check_entropy_rate(fn: Callable, n_cases: int = 10, seed: int = 2) -> str:
    """``fn(P)``: P (K, K) float64, the row-stochastic transition matrix of an ergodic Markov chain
    (P[i, j] = chance that state j follows state i). Returns its entropy rate in nats per symbol,
    H = -sum_i pi_i sum_j P_ij log P_ij, with pi the stationary distribution (pi P = pi, sum 1)
    and 0 log 0 = 0. P = [[0.9, 0.1], [0.5, 0.5]] has pi = [5/6, 1/6] and H = 5/6 h(0.9, 0.1)
    + 1/6 log 2 = 0.3864. The bound no model's cross-entropy can beat (chapter 2.4)."""
    g, t = torch.Generator().manual_seed(seed), torch.tensor
    row = t([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    fixed = [(t([[0.9, 0.1], [0.5, 0.5]], dtype=torch.float64), "the example"),
             (t([[0, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=torch.float64), "a deterministic cycle: H = 0"),
             (row.repeat(4, 1), "an iid source, every row [0.1, 0.2, 0.3, 0.4]: H = entropy of a row"),
             (t([[0, 1, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]], dtype=torch.float64),
              "zeros in P, pi = [1/5, 2/5, 2/5]")]
    while len(fixed) < n_cases:
        K = random_int(g, 2, 7)
        fixed.append((_random_chain(g, K), f"a random {K}-state chain"))
    cases = [Case((P,), _entropy_rate(P), f"{what}, P = {P.numpy().round(4).tolist()}") for P, what in fixed]
    mistakes = [
        Mistake("uniform pi", lambda P: _entropy_rate(P, pi="uniform"),
                "you weighted every state's row entropy equally (a uniform pi, or the all-ones right "
                "eigenvector P 1 = 1): weight row i by pi_i, the stationary distribution, pi P = pi "
                "(the left eigenvector of P for eigenvalue 1, normalised to sum 1)"),
        Mistake("bits", lambda P: _entropy_rate(P, base=2.0),
                "your answer is in bits (log2): the entropy rate is asked in nats, the natural log"),
        Mistake("entropy of pi", lambda P: _entropy_rate(P, what="pi"),
                "you returned the entropy of pi, how spread the states are: the entropy RATE is "
                "the uncertainty of the NEXT symbol given the state, sum_i pi_i H(row i)"),
        Mistake("column sums", lambda P: _entropy_rate(P, pi="columns"),
                "your pi is P's column sums divided by K: that is pi only when P is doubly "
                "stochastic. Solve pi P = pi with sum(pi) = 1 (or take the left eigenvector)"),
    ]
    forbidden = ("llm_lessons.evaluation.markov_source.MarkovSource.entropy_rate",
                 "llm_lessons.evaluation.markov_source.MarkovSource.stationary")
    return run_check("check_entropy_rate", fn, cases, mistakes, forbidden=forbidden, atol=1e-7, rtol=1e-6)


def _first_max(values):
    return max(range(len(values)), key=lambda k: (values[k], -k))  # the lower index on ties


def _choose(logprobs, n_chars, norm="chars", best=_first_max, swap=False):
    """(by_total, by_char) as lm-evaluation-harness's acc and acc_norm; flags give wrong versions."""
    totals = [math.fsum(lp) for lp in logprobs]
    per = {"chars": n_chars, "tokens": [len(lp) for lp in logprobs]}[norm if norm != "both" else "tokens"]
    normed = [s / n for s, n in zip(totals, per, strict=True)]
    out = (best(normed if norm == "both" else totals), best(normed))
    return out[::-1] if swap else out


def _argmin(values):
    return _first_max([-v for v in values])


def _separated(logprobs, n_chars):
    """True when no variant's winner is within 1e-6 of the runner-up (the order of a sum is free)."""
    totals = [math.fsum(lp) for lp in logprobs]
    for per in (n_chars, [len(lp) for lp in logprobs], [1] * len(totals)):
        scores = sorted((s / n for s, n in zip(totals, per, strict=True)), reverse=True)
        if scores[0] - scores[1] < 1e-6 or scores[-2] - scores[-1] < 1e-6:
            return False
    return True


def check_multiple_choice(fn: Callable, n_cases: int = 12, seed: int = 3) -> str:
    """``fn(token_logprobs, n_chars)``: token_logprobs a list with one list per choice, the
    log-probabilities of that choice's tokens given the question; n_chars the choices' lengths
    in characters. Returns ``(by_total, by_char)``: the index of the choice with the largest summed
    log-probability (the harness's ``acc``) and the index with the largest sum divided by its
    character count (``acc_norm``); ties go to the lower index. ([[-1, -1], [-1.5]], [8, 2])
    gives (1, 0): the short choice has the larger sum, the long one the larger sum per character."""
    g = torch.Generator().manual_seed(seed)
    fixed = [([[-1.0, -1.0], [-1.5]], [8, 2], "the example"),
             ([[-2.0, -1.0, -3.0, -0.5], [-4.0], [-1.0, -2.5]], [20, 3, 7], "a long right answer"),
             ([[-0.75, -0.75], [-1.5], [-3.0, -1.0]], [2, 3, 8],
              "ties: sums of 0 and 1, per character 1 and 2"),
             ([[-0.2, -0.3, -0.1], [-2.0], [-0.4, -0.4]], [12, 4, 5], "one choice best both ways")]
    while len(fixed) < n_cases:
        K = random_int(g, 2, 6)
        n_tokens = [random_int(g, 1, 9) for _ in range(K)]
        logprobs = [[round(-3 * float(torch.rand((), generator=g)) ** 2, 4) for _ in range(n)]
                    for n in n_tokens]
        n_chars = [n * random_int(g, 1, 6) + random_int(g, 0, 4)  # tokens of 1 to 5+ characters
                   for n in n_tokens]
        if _separated(logprobs, n_chars) and len(set(_choose(logprobs, n_chars))) == 2:
            fixed.append((logprobs, n_chars, ""))
    cases = [Case((lp, n), _choose(lp, n),
                  f"{what + ': ' if what else ''}token_logprobs = {lp}, n_chars = {n}")
             for lp, n, what in fixed]
    mistakes = [
        Mistake("per token", lambda lp, n: _choose(lp, n, norm="tokens"),
                "you divided by the number of TOKENS: acc_norm divides the sum by the choice's "
                "length in CHARACTERS (n_chars), which does not depend on the tokenizer"),
        Mistake("argmin", lambda lp, n: _choose(lp, n, best=_argmin),
                "you took the smallest score: log-probabilities are <= 0 and the most likely "
                "choice has the LARGEST (least negative) one. Use argmax"),
        Mistake("mean for both", lambda lp, n: _choose(lp, n, norm="both"),
                "you used the mean log-probability per token: by_total is the plain SUM "
                "(acc), by_char the sum divided by the character count (acc_norm)"),
        Mistake("swapped", lambda lp, n: _choose(lp, n, swap=True),
                "your two answers are swapped: return (by_total, by_char), the plain sum first"),
    ]
    return run_check("check_multiple_choice", fn, cases, mistakes,
                     forbidden=("llm_lessons.evaluation.multiple_choice.ChoiceScores",))
