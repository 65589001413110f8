"""Checkers for chapter 1's arithmetic of scale and chapter 2.4's measures of generated text:
the compute-optimal model size, a doubling time, distinct-n and BLEU's clipped precision.

Each is a few lines whose mistakes still give plausible numbers: a forgotten square root still
returns a "size", a fit of the natural log still returns a "doubling time". The answers come from
references written here, never from :func:`llm_lessons.scale.fit_log_growth`,
:func:`llm_lessons.evaluation.text_stats.distinct_n` or :func:`llm_lessons.evaluation.text_metrics.bleu`
(all forbidden while the student's code runs).

>>> import math
>>> def compute_optimal(C):
...     N = math.sqrt(C / 120)  # C = 6 N D and D = 20 N give C = 120 N^2
...     return N, 20 * N
>>> check_compute_optimal(compute_optimal)
'check_compute_optimal: all 12 cases passed'
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

import torch

from llm_lessons.exercises.checking import Case, Mistake, random_float, random_int, run_check


def _optimal(C: float, flops_per_token: float = 6.0, ratio: float = 20.0, root: bool = True,
             d_over_n: bool = False) -> tuple[float, float]:
    """(N, D) from C = flops_per_token * N * D and D = ratio * N; the flags give the wrong versions."""
    n_squared = C / (flops_per_token * ratio)
    N = math.sqrt(n_squared) if root else n_squared
    return N, (N / ratio if d_over_n else ratio * N)


def check_compute_optimal(fn: Callable, n_cases: int = 12, seed: int = 0) -> str:
    """``fn(C)``: the compute-optimal ``(N, D)``, parameters and training tokens, for a budget of
    C FLOPs. Training costs C = 6 N D (2 FLOPs per parameter per token forward, 4 backward), and
    Chinchilla's rule says a compute-optimal model sees D = 20 N tokens: C = 120 N², so
    N = sqrt(C / 120) and D = 20 N. C = 5.88e23 gives Chinchilla itself, (7e10, 1.4e12)."""
    g = torch.Generator().manual_seed(seed)
    fixed = [(120.0, "C = 120 (one parameter, twenty tokens)"), (1.2e21, "C = 1.2e21"),
             (5.88e23, "C = 5.88e23, Chinchilla's budget"), (3.14e23, "C = 3.14e23, GPT-3's budget")]
    cases = [Case((C,), _optimal(C), label) for C, label in fixed]
    while len(cases) < n_cases:
        C = float(f"{10 ** random_float(g, 15, 26):.3g}")  # from a laptop's hour to a frontier model
        cases.append(Case((C,), _optimal(C), f"C = {C:.3g}"))
    mistakes = [
        Mistake("no 6", lambda C: _optimal(C, flops_per_token=1.0),
                "you left out the 6 of C = 6 N D: with D = 20 N the budget is C = 6 · N · 20 N = "
                "120 N², so N = sqrt(C / 120)"),
        Mistake("ratio inverted", lambda C: _optimal(C, d_over_n=True),
                "your D is N / 20: Chinchilla's rule is about 20 tokens PER parameter, D = 20 N "
                "(70e9 parameters, 1.4e12 tokens)"),
        Mistake("no square root", lambda C: _optimal(C, root=False),
                "you forgot the square root: C = 120 N² grows with the SQUARE of N, so C / 120 is "
                "N², and N = sqrt(C / 120)"),
        Mistake("swapped", lambda C: _optimal(C)[::-1],  # solving with D = N / 20 gives this pair too
                "you returned (D, N), or solved with D = N / 20, which gives the same pair: return the "
                "parameter count first, (N, D), with 20 tokens PER parameter, D = 20 N"),
    ]
    # atol = 0: with numbers near 1e12 any absolute tolerance is either meaningless or huge
    return run_check("check_compute_optimal", fn, cases, mistakes, atol=0.0, rtol=1e-6)


def _doubling(years, values, log: Callable = math.log2, endpoints: bool = False,
              slope_only: bool = False) -> float:
    """Years per doubling from the least-squares line of log2(value) on the year (float64)."""
    x, y = [float(a) for a in years], [log(float(v)) for v in values]
    if endpoints:
        slope = (y[-1] - y[0]) / (x[-1] - x[0])
    else:  # closed form; centring first keeps years near 2020 from swamping the sums
        mx, my = sum(x) / len(x), sum(y) / len(y)
        slope = (sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
                 / sum((a - mx) ** 2 for a in x))
    return slope if slope_only else 1 / slope


def check_doubling_time(fn: Callable, n_cases: int = 14, seed: int = 1) -> str:
    """``fn(years, values)``: two equally long lists of floats, decimal years (increasing) and
    positive quantities such as parameter counts. Fit a straight line log2(value) = a + b · year
    by least squares over ALL the points; b counts doublings per year, and the doubling time is
    1 / b years. A quantity that shrinks has b < 0: its "doubling time" is negative, minus the
    halving time (values halving every 2 years give -2.0)."""
    g = torch.Generator().manual_seed(seed)
    fixed = [([2018.0, 2018.5, 2019.0, 2019.5], [1.0, 2.0, 4.0, 8.0], "values doubling every half year"),
             ([2020.0, 2023.0], [3e9, 24e9], "two points only"),
             ([2010.0, 2012.0, 2014.0, 2016.0], [8.0, 4.0, 2.0, 1.0], "values halving every 2 years"),
             ([2019.0, 2020.0, 2021.0, 2022.0, 2023.0], [1.0, 1.5, 5.0, 6.0, 20.0],
              "noisy growth, years 2019..2023, values [1, 1.5, 5, 6, 20]")]
    cases = [Case((x, v), _doubling(x, v), label) for x, v, label in fixed]
    while len(cases) < n_cases:
        k, T = random_int(g, 3, 13), random_float(g, 0.3, 3.0) * (1 if len(cases) % 4 else -1)
        x = sorted(round(random_float(g, 2010, 2025), 2) for _ in range(k))
        noise = (torch.randn(k, generator=g, dtype=torch.float64) * 0.4).tolist()  # in doublings
        start = 10 ** random_float(g, 0, 9)
        v = [float(f"{start * 2 ** ((a - x[0]) / T + e):.4g}") for a, e in zip(x, noise, strict=True)]
        if x[-1] - x[0] < 2 or abs(_doubling(x, v, slope_only=True)) < 0.2:  # a flat fit is all noise
            continue
        cases.append(Case((x, v), _doubling(x, v),
                          f"{k} noisy points, years {x[0]}..{x[-1]}, values {v[0]:.3g}..{v[-1]:.3g}"))
    mistakes = [
        Mistake("natural log", lambda x, v: _doubling(x, v, log=math.log),
                "you fitted the natural log: the slope of ln(value) counts factors of e per year, not "
                "doublings. Fit log2(value), or divide the ln-slope by ln 2"),
        Mistake("log10", lambda x, v: _doubling(x, v, log=math.log10),
                "you fitted log10(value): its slope counts orders of magnitude per year, and a doubling "
                "is only log10(2) ≈ 0.3 of one. Fit log2(value)"),
        Mistake("no log", lambda x, v: _doubling(x, v, log=float),
                "you fitted a line through the values themselves: exponential growth is a straight line "
                "only on a log scale. Fit log2(value) against the year"),
        Mistake("slope", lambda x, v: _doubling(x, v, slope_only=True),
                "you returned the slope, doublings PER YEAR; the doubling time is its inverse, 1 / slope"),
        Mistake("endpoints", lambda x, v: _doubling(x, v, endpoints=True),
                "you used only the first and the last point; fit the least-squares line through ALL "
                "the points: slope = sum((x - x̄)(y - ȳ)) / sum((x - x̄)²)"),
    ]
    return run_check("check_doubling_time", fn, cases, mistakes,
                     forbidden=("llm_lessons.scale.fit_log_growth",))


def _grams(seq, n: int, drop_last: bool = False) -> list[tuple]:
    """The n-grams of one sequence; ``drop_last`` is the off-by-one range(len - n)."""
    return [tuple(seq[i:i + n]) for i in range(len(seq) - n + (0 if drop_last else 1))]


def _distinct(samples, n: int, how: str = "pooled", drop_last: bool = False) -> float:
    """Unique n-grams over all n-grams, pooled over samples; ``how`` gives the wrong versions."""
    if how == "joined":  # the samples run into each other
        samples = [[t for s in samples for t in s]]
    elif how == "mean":
        return sum(_distinct([s], n) for s in samples) / len(samples) if samples else 0.0
    grams = [gram for s in samples for gram in _grams(s, 1 if how == "tokens" else n, drop_last)]
    if not grams:
        return 0.0
    unique = sum(c == 1 for c in Counter(grams).values()) if how == "hapaxes" else len(set(grams))
    return unique / len(grams)


def _tokens(g: torch.Generator, length: int, alphabet: int, chars: bool) -> list:
    ids = torch.randint(0, alphabet, (length,), generator=g).tolist()
    return [chr(ord("a") + i) for i in ids] if chars else ids


def check_distinct_n(fn: Callable, n_cases: int = 18, seed: int = 2) -> str:
    """``fn(samples, n)``: distinct-n of a list of samples, each a list of tokens (characters,
    words or ids): the number of different n-grams over the number of all n-grams, pooled across
    the samples. An n-gram lies inside one sample (none runs from one sample into the next);
    0.0 when there are no n-grams at all (every sample shorter than n).
    [list("abab")], n = 2: bigrams ab, ba, ab: 2 different of 3, distinct-2 = 2/3."""
    g = torch.Generator().manual_seed(seed)
    fixed = [([list("abab")], 2, 'one sample "abab", n = 2'),
             ([list("abab"), list("abcd")], 2, 'samples "abab" and "abcd", n = 2'),
             ([list("ab"), list("a")], 3, "every sample shorter than n = 3"), ([], 2, "no samples at all"),
             ([list("aab"), list("b")], 1, 'samples "aab" and "b", n = 1'),
             ([[1, 2, 3], [], [3, 1, 2]], 2, "samples [1, 2, 3], [], [3, 1, 2], n = 2"),
             (["the cat sat".split(), "the cat ran".split()], 2, 'words "the cat sat", "the cat ran", n = 2')]
    cases = [Case((s, n), _distinct(s, n), label) for s, n, label in fixed]
    while len(cases) < n_cases:
        n, chars = random_int(g, 1, 4), bool(random_int(g, 0, 2))
        samples = [_tokens(g, random_int(g, 0, 11), random_int(g, 2, 5), chars)
                   for _ in range(random_int(g, 1, 6))]
        shown = ["".join(s) if chars else s for s in samples]  # few tokens: repeats are likely
        cases.append(Case((samples, n), _distinct(samples, n), f"samples {shown}, n = {n}"))
    mistakes = [
        Mistake("joined", lambda s, n: _distinct(s, n, "joined"),
                "your n-grams run from the end of one sample into the next (did you join the samples "
                "first?): take each sample's n-grams separately, then pool them"),
        Mistake("n ignored", lambda s, n: _distinct(s, n, "tokens"),
                "you counted unique tokens (distinct-1) whatever n is: count the unique n-grams, the "
                "tuples of n consecutive tokens"),
        Mistake("mean per sample", lambda s, n: _distinct(s, n, "mean"),
                "you averaged each sample's own ratio: distinct-n pools the n-grams of all the samples "
                "first, so an n-gram that two samples share counts once"),
        Mistake("hapaxes", lambda s, n: _distinct(s, n, "hapaxes"),
                "you counted the n-grams that occur exactly once; distinct-n counts every different "
                "n-gram once, however often it occurs (the size of the set)"),
        Mistake("last n-gram", lambda s, n: _distinct(s, n, drop_last=True),
                "you missed each sample's last n-gram (range(len(s) - n) stops one short): a sample "
                "of L tokens has L - n + 1 n-grams"),
    ]
    forbidden = ("llm_lessons.evaluation.text_stats.distinct_n", "llm_lessons.evaluation.text_stats.ngrams")
    return run_check("check_distinct_n", fn, cases, mistakes, forbidden=forbidden)


def _precision(candidate, reference, n: int, how: str = "clipped", drop_last: bool = False) -> float:
    """BLEU's modified n-gram precision; ``how`` gives the wrong versions."""
    if how == "unigrams":
        n = 1
    cand, ref = Counter(_grams(candidate, n, drop_last)), Counter(_grams(reference, n, drop_last))
    if how == "unclipped":  # every occurrence that appears anywhere in the reference
        matched = sum(c for gram, c in cand.items() if gram in ref)
    elif how == "once":  # each matching n-gram type counted once
        matched = sum(1 for gram in cand if gram in ref)
    else:
        matched = sum(min(c, ref[gram]) for gram, c in cand.items())
    total = sum(ref.values()) if how == "recall" else sum(cand.values())
    return matched / total if total else 0.0


def check_clipped_precision(fn: Callable, n_cases: int = 18, seed: int = 3) -> str:
    """``fn(candidate, reference, n)``: BLEU's modified n-gram precision of a candidate against
    one reference, both lists of tokens. Each n-gram of the candidate counts at most as often as
    it occurs in the reference (its count is clipped); the sum of the clipped counts is divided
    by the number of the candidate's n-grams, 0.0 when the candidate has none. Candidate
    "the the the the", reference "the cat" (words), n = 1: "the" counts once, precision 1/4."""
    g = torch.Generator().manual_seed(seed)
    w = str.split
    fixed = [(w("the the the the"), w("the cat"), 1, 'candidate "the the the the", reference "the cat"'
              ', n = 1'),
             (w("the the the the the the the"), w("the cat is on the mat"), 1,
              'BLEU\'s example: candidate "the" seven times, reference "the cat is on the mat", n = 1'),
             (w("the cat the cat"), w("the cat the mat"), 1,
              'candidate "the cat the cat", reference "the cat the mat", n = 1'),
             (w("the cat sat on the mat"), w("the cat is on the mat"), 2,
              'candidate "the cat sat on the mat", reference "the cat is on the mat", n = 2'),
             ([], w("the cat"), 1, "an empty candidate"),
             (w("the cat"), w("the cat sat"), 3, "a candidate shorter than n = 3"),
             (w("the cat sat"), w("cat"), 2, "a reference without bigrams, n = 2"),
             (list("banana"), list("bandana"), 2, 'characters: "banana" against "bandana", n = 2')]
    cases = [Case((c, r, n), _precision(c, r, n), label) for c, r, n, label in fixed]
    while len(cases) < n_cases:
        n, chars, alphabet = random_int(g, 1, 4), bool(random_int(g, 0, 2)), random_int(g, 2, 5)
        cand, ref = (_tokens(g, random_int(g, 0, 13), alphabet, chars) for _ in range(2))
        shown = ("".join(cand), "".join(ref)) if chars else (cand, ref)
        cases.append(Case((cand, ref, n), _precision(cand, ref, n),
                          f"candidate {shown[0]!r}, reference {shown[1]!r}, n = {n}"))
    mistakes = [
        Mistake("unclipped", lambda c, r, n: _precision(c, r, n, "unclipped"),
                "you counted every candidate n-gram found in the reference, however often: clip each "
                "n-gram's count to its count in the reference ('the the the the' against 'the cat' "
                "scores 1/4, not 4/4)"),
        Mistake("recall", lambda c, r, n: _precision(c, r, n, "recall"),
                "you divided by the reference's number of n-grams (that is recall); BLEU's precision "
                "divides by the CANDIDATE's number of n-grams"),
        Mistake("once per type", lambda c, r, n: _precision(c, r, n, "once"),
                "you counted each matching n-gram type once; its clipped count is min(count in the "
                "candidate, count in the reference), which can be more than 1"),
        Mistake("unigrams", lambda c, r, n: _precision(c, r, n, "unigrams"),
                "you compared single tokens whatever n is: use the n-grams of length n of both lists"),
        Mistake("last n-gram", lambda c, r, n: _precision(c, r, n, drop_last=True),
                "you missed the last n-gram of each list (range(len(s) - n) stops one short): a list "
                "of L tokens has L - n + 1 n-grams"),
    ]
    # rouge_n's precision is the same clipped count (on its own tokens), so it is an answer too
    forbidden = ("llm_lessons.evaluation.text_metrics.bleu", "llm_lessons.evaluation.text_metrics.rouge_n")
    return run_check("check_clipped_precision", fn, cases, mistakes, forbidden=forbidden)
