"""Checkers for chapter 2's counting exercises: an interpolated bigram model (2.1), encoding a
word with a learned BPE merge list (2.1b), the units that make perplexities comparable (2.4)
and the expected calibration error (2.4c).

Shapes: V vocabulary, N predictions. Every answer comes from a reference written here (float64
for the numbers); the package's BPE encoder, its ``LikelihoodReport`` and its calibration
functions are forbidden while the student's code runs.

>>> def encode(word, merges):
...     tokens = list(word)
...     for a, b in merges:                   # in the order they were learned
...         out, i = [], 0
...         while i < len(tokens):            # left to right, never overlapping
...             if i + 1 < len(tokens) and (tokens[i], tokens[i + 1]) == (a, b):
...                 out.append(a + b)
...                 i += 2
...             else:
...                 out.append(tokens[i])
...                 i += 1
...         tokens = out                      # the next merge sees the new tokens
...     return tokens
>>> check_bpe_encode(encode)
'check_bpe_encode: all 16 cases passed'
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable

import torch

from llm_lessons.exercises.checking import Case, Mistake, available, random_int, run_check

LN2 = math.log(2)



def _interpolated(bigram, unigram, lam, swap=False, raw=False, columns=False, unseen="unigram"):
    """lam * p_bigram + (1 - lam) * p_unigram, unseen contexts unigram; the flags: wrong versions."""
    c = bigram.double()  # (V, V) row a: the tokens that followed a
    uni = unigram.double() / (1 if raw else unigram.sum())  # (V,)
    totals = c.sum(0, keepdim=True) if columns else c.sum(1, keepdim=True)  # (1, V) or (V, 1)
    w = 1 - lam if swap else lam
    p = w * c / totals.clamp(min=1) + (1 - w) * uni  # (V, V); clamp: an unseen row is 0 / 1 = 0
    seen = c.sum(1, keepdim=True) > 0  # (V, 1)
    return p if unseen == "scaled" else torch.where(seen, p, uni)


def _bigram_counts(seq: list[int], V: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.tensor(seq)
    bigram = torch.zeros(V, V, dtype=torch.long)
    bigram.index_put_((ids[:-1], ids[1:]), torch.ones(len(seq) - 1, dtype=torch.long), accumulate=True)
    return bigram, torch.bincount(ids, minlength=V)


def check_interpolated_bigram(fn: Callable, n_cases: int = 12, seed: int = 0) -> str:
    """``fn(bigram_counts, unigram_counts, lam)``: bigram_counts (V, V), row a = how often b
    followed a; unigram_counts (V,) the token counts (N in all); 0 <= lam <= 1. Returns the
    (V, V) matrix p(b | a) = lam * c(a, b) / sum_b' c(a, b') + (1 - lam) * c(b) / N; a row whose
    bigram counts are all 0 (a context never seen) is the unigram distribution c(b) / N alone.
    Every row sums to 1. The text [1, 0, 1, 0, 2] with lam = 0.8 gives row 0 = 0.8 * [0, .5, .5]
    + 0.2 * [.4, .4, .2] = [.08, .48, .44], and row 2 (2 is only ever last) = [.4, .4, .2]."""
    g = torch.Generator().manual_seed(seed)
    fixed = [([1, 0, 1, 0, 2], 3, 0.8, "the text [1, 0, 1, 0, 2] (token 2 is never followed)"),
             ([0, 1, 2, 0, 2, 1, 3], 4, 1.0, "lam = 1, the text [0, 1, 2, 0, 2, 1, 3]"),
             ([2, 0, 1, 1, 2, 0, 2], 3, 0.0, "lam = 0, the text [2, 0, 1, 1, 2, 0, 2]")]
    while len(fixed) < n_cases:
        V = random_int(g, 3, 9)
        seq = torch.randint(0, V - 1, (random_int(g, V, 4 * V),), generator=g).tolist()
        seq += [t for t in range(V - 1) if t not in seq[1:]]  # every token follows one: no empty column
        at = len(seq) if len(fixed) % 3 else random_int(g, 1, len(seq))  # 2 in 3: only at the end
        seq.insert(at, V - 1)
        relabel = torch.randperm(V, generator=g).tolist()  # the unseen context is any id
        lam = round(0.05 + 0.9 * float(torch.rand((), generator=g)), 2)
        fixed.append(([relabel[t] for t in seq], V, 0.3 if abs(lam - 0.5) < 0.05 else lam, "random"))
    cases = [Case((bigram, unigram, lam), _interpolated(bigram, unigram, lam),
                  f"{what}, V = {V}, lam = {lam}, unigram_counts = {unigram.tolist()}, "
                  f"bigram_counts = {bigram.tolist()}")
             for seq, V, lam, what in fixed for bigram, unigram in [_bigram_counts(seq, V)]]
    mistakes = [
        Mistake("swapped", lambda b, u, lam: _interpolated(b, u, lam, swap=True),
                "your lam weighs the wrong term: lam multiplies the BIGRAM estimate and 1 - lam "
                "the unigram one (lam = 1 is the plain bigram model)"),
        Mistake("raw unigram", lambda b, u, lam: _interpolated(b, u, lam, raw=True),
                "you mixed in the raw unigram counts: divide them by N = unigram_counts.sum() so "
                "they are probabilities, or your rows do not sum to 1"),
        Mistake("columns", lambda b, u, lam: _interpolated(b, u, lam, columns=True),
                "you normalised the bigram counts by their column sums: row a holds what followed "
                "a, so divide each row by its own total (sum over dim=1, keepdim=True)"),
        Mistake("unseen scaled", lambda b, u, lam: _interpolated(b, u, lam, unseen="scaled"),
                "a row for a context never seen sums to 1 - lam, not 1: with no bigram evidence "
                "use the unigram distribution alone there (torch.where on the row totals)"),
    ]
    return run_check("check_interpolated_bigram", fn, cases, mistakes)


BPE_ANSWERS = ("llm_lessons.tokenizers.BPETokenizer.encode",
               "llm_lessons.tokenizers.BPETokenizer._encode_chunk", "llm_lessons.tokenizers.merge_pair")


def _join(tokens: list[str], pair, backwards: bool = False, first_only: bool = False) -> list[str]:
    """Every non-overlapping (a, b) becomes a + b, scanning left to right (or right to left)."""
    seq, (a, b) = (tokens[::-1], pair[::-1]) if backwards else (list(tokens), pair)
    out, i, done = [], 0, False
    while i < len(seq):
        if not done and i + 1 < len(seq) and seq[i] == a and seq[i + 1] == b:
            out.append(pair[0] + pair[1])
            i, done = i + 2, first_only
        else:
            out.append(seq[i])
            i += 1
    return out[::-1] if backwards else out


def _encode(word: str, merges, backwards=False, first_only=False, reverse=False, from_chars=False):
    """The word's tokens after the merges, in order; the flags give the usual wrong versions."""
    tokens = list(word)
    for pair in merges[::-1] if reverse else merges:
        tokens = _join(list(word) if from_chars else tokens, pair, backwards, first_only)
    return tokens


def _learn(words: list[str], n_merges: int) -> list[tuple[str, str]]:
    """BPE training on a few words: merge the most frequent pair (ties: the first seen), repeat."""
    split, merges = [list(w) for w in words], []
    for _ in range(n_merges):
        counts: dict[tuple[str, str], int] = {}
        for tokens in split:
            for pair in zip(tokens, tokens[1:], strict=False):
                counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            break
        merges.append(max(counts, key=counts.get))
        split = [_join(tokens, merges[-1]) for tokens in split]
    return merges


def check_bpe_encode(fn: Callable, n_cases: int = 16, seed: int = 1) -> str:
    """``fn(word, merges)``: word a str, merges a list of pairs of strings in the order BPE
    learned them. Start from the word's characters and apply the merges in that order; each one
    joins EVERY occurrence of its pair, scanning left to right without overlap. Returns the list
    of tokens: "aaab" with [("a", "a"), ("a", "b"), ("aa", "ab")] gives ["aa", "a", "b"], then
    ["aa", "ab"], then ["aaab"]; "aaa" with [("a", "a")] gives ["aa", "a"]. Write the loop
    yourself (your own merge from the earlier exercise is welcome): the package's
    ``BPETokenizer.encode`` and ``merge_pair`` are forbidden."""
    g = torch.Generator().manual_seed(seed)
    fixed = [("aaa", [("a", "a")]), ("abab", [("a", "b")]), ("aaaa", [("a", "a"), ("aa", "aa")]),
             ("aaabdaaabac", [("a", "a"), ("a", "b"), ("aa", "ab")]),
             ("lower", [("l", "o"), ("lo", "w"), ("e", "r"), ("low", "er")]),
             ("xyz", [("a", "b")]), ("a", [("a", "a")]), ("abc", [])]
    while len(fixed) < n_cases:
        letters = "abcd"[: random_int(g, 2, 5)]
        words = ["".join(letters[i] for i in torch.randint(0, len(letters), (random_int(g, 2, 9),),
                                                           generator=g))
                 for _ in range(random_int(g, 3, 7))]
        merges = _learn(words, random_int(g, 2, 7))
        length = random_int(g, 3, 13)
        word = "".join(letters[i] for i in torch.randint(0, len(letters), (length,), generator=g))
        fixed.append((words[0] if len(fixed) % 2 else word, merges))
    cases = [Case((word, merges), _encode(word, merges), f"word = {word!r}, merges = {merges}")
             for word, merges in fixed]
    mistakes = [
        Mistake("first only", lambda w, m: _encode(w, m, first_only=True),
                "each merge joined only the first occurrence of its pair: join EVERY occurrence "
                "(\"abab\" with ('a', 'b') gives ['ab', 'ab'])"),
        Mistake("right to left", lambda w, m: _encode(w, m, backwards=True),
                "you scanned from the right: \"aaa\" with ('a', 'a') must give ['aa', 'a'], not "
                "['a', 'aa']. Scan left to right and skip both tokens of a joined pair"),
        Mistake("reversed", lambda w, m: _encode(w, m, reverse=True),
                "you applied the merges in reverse order: apply them in the order they were "
                "learned, since a later merge joins tokens that earlier merges made"),
        Mistake("from characters", lambda w, m: _encode(w, m, from_chars=True),
                "every merge started again from the word's characters, so merges of merged tokens "
                "(('aa', 'ab')) never apply: each merge must work on the tokens the previous ones "
                "produced (tokens = merged, inside the loop)"),
    ]
    return run_check("check_bpe_encode", fn, cases, mistakes, forbidden=BPE_ANSWERS)


UNIT_ANSWERS = ("llm_lessons.evaluation.likelihood.LikelihoodReport",  # .token_perplexity, .bits_per_char
                "llm_lessons.evaluation.likelihood.bits_per_token")  # of n_chars: bits per char


def _units(total_nll, n_tokens, n_chars, ppl_per="chars", log2=LN2, bits_per="chars"):
    """(token perplexity, char perplexity, bits per char); the flags give the usual wrong versions."""
    chars = n_tokens if ppl_per == "tokens" else n_chars
    return (math.exp(total_nll / n_tokens), math.exp(total_nll / chars),
            total_nll / ((n_tokens if bits_per == "tokens" else n_chars) * log2))


def check_perplexity_units(fn: Callable, n_cases: int = 12, seed: int = 2) -> str:
    """``fn(total_nll, n_tokens, n_chars)``: total_nll is a text's summed negative log-likelihood
    in nats; returns the tuple ``(token_perplexity, char_perplexity, bits_per_char)`` =
    (exp(total_nll / n_tokens), exp(total_nll / n_chars), total_nll / (n_chars * ln 2)).
    100 tokens, 400 characters and 400 * ln 2 nats give (e^(4 ln 2), 2, 1) = (16, 2, 1): a
    tokenizer with longer tokens has a higher perplexity per token for the same text, so only
    the per-character numbers compare across tokenizers."""
    g = torch.Generator().manual_seed(seed)
    fixed = [((400 * LN2, 100, 400), "400 ln 2 nats, 100 tokens, 400 characters"),
             ((0.0, 7, 30), "a text predicted with certainty (total_nll = 0)"),
             ((55.5, 40, 40), "a character-level tokenizer (n_tokens = n_chars = 40)"),
             ((3.2, 1, 5), "one token of 5 characters")]
    while len(fixed) < n_cases:
        n_chars = random_int(g, 10, 5000)
        n_tokens = max(1, round(n_chars / (1 + 4 * float(torch.rand((), generator=g)))))
        nll = round(n_tokens * (0.5 + 4.5 * float(torch.rand((), generator=g))), 3)
        fixed.append(((nll, n_tokens, n_chars), "random"))
    cases = [Case(args, _units(*args), f"{what}: (total_nll, n_tokens, n_chars) = {args}")
             for args, what in fixed]
    mistakes = [
        Mistake("char ppl per token", lambda *a: _units(*a, ppl_per="tokens"),
                "your character perplexity divides by the number of tokens, so it is the token "
                "perplexity again: per character means exp(total_nll / n_chars)"),
        Mistake("nats per char", lambda *a: _units(*a, log2=1.0),
                "your bits per character are nats per character: total_nll is in nats (natural "
                "log), so divide by ln 2 = math.log(2) as well to get bits"),
        Mistake("log10", lambda *a: _units(*a, log2=math.log10(2)),
                "you divided by log10(2); nats become bits by dividing by the natural log, "
                "ln 2 = math.log(2)"),
        Mistake("bits per token", lambda *a: _units(*a, bits_per="tokens"),
                "you returned bits per TOKEN: divide by n_chars, since bits per character are "
                "what two tokenizers share"),
    ]
    return run_check("check_perplexity_units", fn, cases, mistakes, forbidden=UNIT_ANSWERS)


def _ece(conf, correct, n_bins, how="weighted", ones="own bin", edges_to="upper"):
    """Expected calibration error, binned as llm_lessons.evaluation.calibration (and torchmetrics)
    bins: bin m holds [m / M, (m + 1) / M) and a confidence of exactly 1 is a bin of its own."""
    edges = torch.linspace(0, 1, n_bins + 1, dtype=conf.dtype)  # (M + 1,) as the package makes them
    if edges_to == "upper":
        index = torch.bucketize(conf, edges, right=True) - 1  # (N,) in 0 .. M; M: exactly 1
    else:  # (e_m, e_{m+1}]: an edge joins the bin below it, 1 the last one
        index = (torch.bucketize(conf, edges) - 1).clamp(min=0)
    if ones == "last bin":
        index = index.clamp(max=n_bins - 1)
    count = torch.bincount(index, minlength=n_bins + 1).double()  # (M + 1,)
    conf_sum = torch.zeros(n_bins + 1, dtype=torch.float64).index_add_(0, index, conf.double())
    hits = torch.zeros(n_bins + 1, dtype=torch.float64).index_add_(0, index, correct.double())
    full = count > 0
    gap, share = (hits[full] - conf_sum[full]) / count[full], count[full] / len(conf)  # non-empty bins
    return float({"weighted": (share * gap.abs()).sum(), "signed": (share * gap).sum(),
                  "unweighted": gap.abs().mean(), "all bins": gap.abs().sum() / n_bins,
                  "global": (correct.double().mean() - conf.double().mean()).abs()}[how])


def check_calibration_error(fn: Callable, n_cases: int = 12, seed: int = 3) -> str:
    """``fn(confidence, correct, n_bins)``: confidence (N,) floats in [0, 1], correct (N,) bool.
    Returns the expected calibration error over n_bins equal-width bins: the sum over the
    non-empty bins b of (n_b / N) * |accuracy_b - mean confidence_b|. As
    :mod:`llm_lessons.evaluation.calibration` (and torchmetrics): bin m holds the confidences in
    [m / n_bins, (m + 1) / n_bins), so a confidence on an edge goes to the bin ABOVE it, and a
    confidence of exactly 1.0 is a bin of its own (floor(confidence * n_bins) is that index).
    Confidences [0.92, 0.92, 0.64, 0.64], correct [T, T, T, F], 10 bins:
    0.5 * |1 - 0.92| + 0.5 * |0.5 - 0.64| = 0.11."""
    g, t = torch.Generator().manual_seed(seed), torch.tensor
    fixed = [(t([0.92, 0.92, 0.64, 0.64]), t([True, True, True, False]), 10, "two bins of two"),
             (t([1.0, 0.8, 0.3]), t([False, True, False]), 4, "a confidence of exactly 1.0"),
             (t([0.5, 0.4, 0.6]), t([False, True, True]), 4, "0.5 sits on an edge"),
             (t([0.0, 0.75, 0.7, 0.2]), t([False, True, False, True]), 4, "0.0, and 0.75 on an edge"),
             (t([0.3, 0.9, 0.55, 0.6, 0.7]), t([True, True, False, False, True]), 1, "a single bin")]
    while len(fixed) < n_cases:
        n_bins, N = [3, 5, 10, 15][random_int(g, 0, 4)], random_int(g, 4, 60)
        bin_of = torch.randint(0, n_bins, (N,), generator=g)
        conf = (bin_of + 0.02 + 0.96 * torch.rand(N, generator=g)) / n_bins  # never near an edge
        over = 0.3 * float(torch.rand((), generator=g))  # how over-confident this model is
        correct = torch.rand(N, generator=g) < conf - over
        fixed.append((conf, correct, n_bins, "random"))
    cases = [Case((conf, correct, M), _ece(conf, correct, M), f"{what}, n_bins = {M}, "
                  f"confidence = {[round(c, 4) for c in conf.tolist()]}, correct = {correct.int().tolist()}")
             for conf, correct, M, what in fixed]
    mistakes = [
        Mistake("unweighted", lambda c, y, m: _ece(c, y, m, how="unweighted"),
                "you averaged the bins' gaps with equal weights: weigh each bin by its share of "
                "the predictions, n_b / N, so a bin of one prediction counts little"),
        Mistake("signed", lambda c, y, m: _ece(c, y, m, how="signed"),
                "you summed signed gaps (accuracy - confidence), so over- and under-confident bins "
                "cancel: take the absolute value of each bin's gap"),
        Mistake("all bins", lambda c, y, m: _ece(c, y, m, how="all bins"),
                "you averaged the gaps over all n_bins bins, the empty ones counted as 0: weigh "
                "each non-empty bin by its share of the predictions, n_b / N, instead"),
        Mistake("global", lambda c, y, m: _ece(c, y, m, how="global"),
                "you compared the overall accuracy with the overall mean confidence: errors of "
                "opposite sign in different bins cancel. Bin the predictions by confidence first"),
        Mistake("1.0 in the last bin", lambda c, y, m: _ece(c, y, m, ones="last bin"),
                "a confidence of exactly 1.0 went into the last bin; the convention here (as "
                "torchmetrics) gives it a bin of its own: bin index floor(confidence * n_bins)"),
        Mistake("edge below", lambda c, y, m: _ece(c, y, m, edges_to="lower"),
                "a confidence on a bin edge went to the bin below; bin m holds [m / n_bins, "
                "(m + 1) / n_bins): 0.5 with 4 bins belongs to bin 2, [0.5, 0.75)"),
    ]
    forbidden = ["llm_lessons.evaluation.calibration.expected_calibration_error",
                 "llm_lessons.evaluation.calibration.reliability_bins"]
    if "torchmetrics" in sys.modules:  # importing it here would take seconds; a student's import is enough
        forbidden += available(("torchmetrics.functional.calibration_error",  # the same function as
                                "torchmetrics.functional.classification.calibration_error",  # this one
                                "torchmetrics.functional.classification.binary_calibration_error"))
    return run_check("check_calibration_error", fn, cases, mistakes, forbidden=forbidden)
