"""Checkers for chapter 6.3's exercises: the keystrokes a suggestion saves, the top-k word
completions of a character model, and the median speed-up of a cache from repeated timings.

All three are short and all three have a plausible wrong version that still gives sensible
numbers: forgetting the key that accepts a suggestion, forgetting that a word must *end*
(without the boundary factor "th" always beats "the"), averaging timings that have outliers.
The answers come from references written here, not from
:func:`llm_lessons.applications.autocomplete.saved_keystrokes`,
:func:`~llm_lessons.applications.autocomplete.suggest_words` or
:func:`~llm_lessons.applications.autocomplete.median_speedup` (all forbidden).

>>> def saved(word, offers):
...     for p, offered in enumerate(offers):
...         if p < len(word) and word[p:] in offered:
...             return max(0, len(word) - p - 1)
...     return 0
>>> check_saved_keystrokes(saved)
'check_saved_keystrokes: all 10 cases passed'
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import torch

from llm_lessons.exercises.checking import Case, Mistake, random_float, random_int, run_check

# --- keystrokes saved by a suggestion ---


def _saved(word, offers, accept=1, first=True, whole=False):
    """The reference; the flags give the usual wrong versions."""
    found = []
    for p, offered in enumerate(offers):
        target = word if whole else word[p:]
        if p < len(word) and target in offered:
            found.append(max(0, len(word) - p - accept))
    if not found:
        return 0
    return found[0] if first else found[-1]


def check_saved_keystrokes(fn: Callable, seed: int = 0) -> str:
    """``fn(word, offers)``: ``offers[p]`` is the list of completions shown after the writer typed
    the first p letters of ``word``. At the first p where the rest of the word, ``word[p:]``, is
    offered, one key accepts it: return ``len(word) - p - 1`` (never below 0); 0 if never offered."""
    g = torch.Generator().manual_seed(seed)
    hand = [
        (("question", [["the"], ["uestion", "o"]]), "'question', offered after typing 'q'"),
        (("the", [["the", "to"]]), "'the', offered before any letter is typed"),
        (("be", [["e"], ["e"], ["e"]]), "'be': offered after 'b', but a 1-letter rest saves nothing"),
        (("and", [["a"], ["nd"], ["d"]]), "'and', offered after 'a' and again after 'an' (the first counts)"),
        (("king", [["queen"], ["ing"]]), "'king', offered after 'k'; the whole word is never the rest"),
        (("o", [["o"]]), "'o', a one-letter word offered at once: 0 saved"),
        (("nothing", []), "'nothing', no suggestions at all"),
    ]
    cases = [Case(args, _saved(*args), label) for args, label in hand]
    letters = "abcdefghij"
    while len(cases) < 10:
        n = random_int(g, 3, 9)
        word = "".join(letters[random_int(g, 0, 10)] for _ in range(n))
        offers = [[word[p:] if random_float(g, 0, 1) < 0.3 else "xy", word]
                  for p in range(random_int(g, 1, n))]
        cases.append(Case((word, offers), _saved(word, offers), f"random word {word!r}, offers {offers}"))
    mistakes = [
        Mistake("no accept key", lambda w, o: _saved(w, o, accept=0),
                "you forgot the key that accepts the suggestion: it costs one keystroke, so taking "
                "the rest of the word after p letters saves len(word) - p - 1"),
        Mistake("last offer", lambda w, o: _saved(w, o, first=False),
                "you used the *last* prefix length at which the word was offered; the writer takes "
                "it the first time it appears, which saves the most"),
        Mistake("whole word", lambda w, o: _saved(w, o, whole=True),
                "you looked for the whole word among the offers; a suggestion is the rest of the "
                "word, word[p:], after the p letters already typed"),
    ]
    forbidden = ("llm_lessons.applications.autocomplete.saved_keystrokes",)
    return run_check("check_saved_keystrokes", fn, cases, mistakes, forbidden=forbidden)


# --- top-k word completions of a bigram character model ---


def _completion_probs(P, chars, last, candidates, boundary=True, start="last"):
    """P(candidate, then a non-letter | last character) under the bigram table P (V, V)."""
    stoi = {c: i for i, c in enumerate(chars)}
    ends = [i for i, c in enumerate(chars) if not c.isalpha()]
    out = []
    for word in candidates:
        prob, prev = 1.0, stoi[last] if start == "last" else None
        for c in word:
            prob *= float(P[prev, stoi[c]]) if prev is not None else float(P[:, stoi[c]].mean())
            prev = stoi[c]
        if boundary == "space":
            prob *= float(P[prev, stoi[" "]])
        elif boundary:
            prob *= float(P[prev, ends].sum())
        out.append(prob)
    return out


def _top_k(P, chars, last, candidates, k, **flags):
    probs = _completion_probs(P, chars, last, candidates, **flags)
    order = sorted(range(len(candidates)), key=lambda i: (-probs[i], candidates[i]))
    return [candidates[i] for i in order[:k]]


def _bigram(g: torch.Generator, V: int) -> torch.Tensor:
    logits = torch.randn(V, V, dtype=torch.float64, generator=g) * 2.0
    return torch.softmax(logits, dim=-1)  # (V, V): each row sums to 1


def check_top_k_completions(fn: Callable, n_cases: int = 8, seed: int = 1) -> str:
    """``fn(P, chars, last, candidates, k)``: ``P`` (V, V) is a bigram character model,
    ``P[i, j]`` = P(next char ``chars[j]`` | current char ``chars[i]``); ``last`` is the last
    character typed. The probability of completing with ``word`` is the product of its letters'
    transitions, starting from ``last``, times the probability that a non-letter (any character
    of ``chars`` that is not alphabetic) follows its last letter. Return the ``k`` most likely
    candidates, best first (ties alphabetical)."""
    g = torch.Generator().manual_seed(seed)
    chars = [" ", ".", "a", "e", "h", "t"]
    P = torch.full((6, 6), 0.05, dtype=torch.float64)
    P[5, 4], P[4, 3], P[3, 0], P[4, 0] = 0.6, 0.5, 0.6, 0.3  # t -> h -> e -> space
    P = P / P.sum(dim=-1, keepdim=True)
    cands = ["h", "he", "hat", "a", "e"]
    cases = [Case((P, chars, "t", cands, 3), _top_k(P, chars, "t", cands, 3),
                  "after 't': 'h', 'he', 'hat', 'a', 'e' (a word must also end)")]
    while len(cases) < n_cases:
        chars = [" ", ",", "\n", *"abcdefg"[: random_int(g, 3, 8)]]
        letters = chars[3:]
        P = _bigram(g, len(chars))
        cands = sorted({"".join(letters[random_int(g, 0, len(letters))] for _ in range(random_int(g, 1, 5)))
                        for _ in range(8)})
        k = random_int(g, 1, len(cands) + 1)
        last = letters[random_int(g, 0, len(letters))]
        cases.append(Case((P, chars, last, cands, k), _top_k(P, chars, last, cands, k),
                          f"a random bigram over {''.join(chars)!r}, last {last!r}, "
                          f"candidates {cands}, k={k}"))
    mistakes = [
        Mistake("no boundary", lambda *a: _top_k(*a, boundary=False),
                "you scored only the letters; a suggestion must also *end* there, so multiply by "
                "the probability of a non-letter after its last letter (else 'th' beats 'the')"),
        Mistake("space only", lambda *a: _top_k(*a, boundary="space"),
                "you multiplied by the probability of a space only; any non-letter ends a word "
                "(comma, newline, ...): sum P over all of them"),
        Mistake("ignores last", lambda *a: _top_k(*a, start="mean"),
                "the first letter must be scored from the row of `last`, the character typed just "
                "before the completion"),
        Mistake("ascending", lambda P, c, la, ca, k: _top_k(P, c, la, ca, len(ca))[::-1][:k],
                "your list is in increasing probability; return the k *most* likely first"),
    ]
    forbidden = ("llm_lessons.applications.autocomplete.suggest_words",
                 "llm_lessons.applications.autocomplete.suggest_words_batch")
    return run_check("check_top_k_completions", fn, cases, mistakes, forbidden=forbidden)


# --- median speed-up from repeated, interleaved timings ---


def _speedup(cached, uncached, how="median"):
    cached, uncached = torch.as_tensor(cached).tolist(), torch.as_tensor(uncached).tolist()
    prompts = range(len(cached[0]))
    if how == "pooled":
        return statistics.median(sum(uncached, [])) / statistics.median(sum(cached, []))
    lower = lambda xs: sorted(xs)[(len(xs) - 1) // 2]  # noqa: E731 - what torch.median returns
    center = {"mean": statistics.mean, "lower": lower}.get(how, statistics.median)
    ratios = [center([row[p] for row in uncached]) / center([row[p] for row in cached]) for p in prompts]
    value = lower(ratios) if how == "lower" else statistics.median(ratios)
    return 1 / value if how == "inverted" else value


def check_median_speedup(fn: Callable, seed: int = 2) -> str:
    """``fn(cached, uncached)``: two tensors of seconds, shape (repeats, prompts), measured
    interleaved. Per prompt, take the median over repeats of each; the speed-up of the prompt
    is uncached / cached; return the median of those speed-ups over prompts (a float; for an
    even count the median is the mean of the middle two, as ``statistics.median`` has it)."""
    g = torch.Generator().manual_seed(seed)
    c = torch.tensor([[1.0, 2.0, 4.0], [1.0, 2.0, 4.0], [9.0, 2.0, 4.0]])
    u = torch.tensor([[2.0, 3.0, 4.0], [2.0, 3.0, 4.0], [2.0, 3.0, 40.0]])
    cases = [Case((c, u), _speedup(c, u), "3 repeats x 3 prompts with one slow outlier in each table")]
    c2, u2 = torch.tensor([[1.0, 1.0], [1.0, 1.0]]), torch.tensor([[2.0, 3.0], [2.0, 3.0]])
    cases.append(Case((c2, u2), _speedup(c2, u2), "2 prompts (an even count: the mean of the middle two)"))
    while len(cases) < 8:
        R, n = random_int(g, 3, 8), random_int(g, 2, 7)
        base = torch.rand(n, dtype=torch.float64, generator=g) * 0.02 + 0.005
        cached = base * (1 + 0.1 * torch.rand(R, n, dtype=torch.float64, generator=g))
        noise = 1 + 0.1 * torch.rand(R, n, dtype=torch.float64, generator=g)
        uncached = base * random_float(g, 1.5, 3.0) * noise
        cached[random_int(g, 0, R), random_int(g, 0, n)] *= 20  # the machine was busy once
        cases.append(Case((cached, uncached), _speedup(cached, uncached),
                          f"random timings, {R} repeats x {n} prompts, one outlier"))
    mistakes = [
        Mistake("mean", lambda a, b: _speedup(a, b, "mean"),
                "you averaged the repeats; one busy moment of the machine then moves the result: "
                "take the median over repeats"),
        Mistake("inverted", lambda a, b: _speedup(a, b, "inverted"),
                "your ratio is upside down: the speed-up is uncached time / cached time (> 1 when "
                "the cache helps)"),
        Mistake("lower median", lambda a, b: _speedup(a, b, "lower"),
                "for an even count you took the lower middle value (torch.median "
                "does that); the median of an even count is the mean of the two middle values"),
        Mistake("pooled", lambda a, b: _speedup(a, b, "pooled"),
                "you pooled every prompt's timings into one median; compare each prompt with "
                "itself (uncached / cached per prompt), then take the median of those ratios"),
    ]
    forbidden = ("llm_lessons.applications.autocomplete.median_speedup",)
    return run_check("check_median_speedup", fn, cases, mistakes, forbidden=forbidden, rtol=1e-6)
