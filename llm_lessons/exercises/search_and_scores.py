"""Checkers for chapters 2.4 and 4.3's exercises: min-p, the repetition penalty, a beam-search step,
perplexity over sliding windows, and Cohen's κ.

Shapes: V vocabulary, W beams, L previous tokens. Every answer comes from a reference written here.

>>> import torch
>>> def min_p(logits, p):
...     probs = logits.softmax(-1)
...     return logits.masked_fill(probs < p * probs.max(), float("-inf"))
>>> check_min_p(min_p)
'check_min_p: all 16 cases passed'
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import torch

from llm_lessons.exercises.checking import Case, Mistake, random_float, random_int, run_check
from llm_lessons.exercises.decoding import keep_only

NEG_INF = float("-inf")




def _min_p(logits: torch.Tensor, p: float, scaled: bool = True, dropped: float = NEG_INF) -> torch.Tensor:
    probs = torch.softmax(logits.double(), -1).tolist()
    bar = p * max(probs) if scaled else p
    return keep_only(logits, [i for i, q in enumerate(probs) if q >= bar], dropped)


def check_min_p(fn: Callable, n_cases: int = 16, seed: int = 0) -> str:
    """``fn(logits, p)`` on (V,) logits, 0 <= p <= 1, keeps the tokens whose probability is at
    least p times the top token's probability and sets the others to -inf (min-p sampling)."""
    g, t = torch.Generator().manual_seed(seed), torch.tensor
    hand = t([0.5, 0.3, 0.15, 0.05]).log()
    cases = [Case((t([0.3]), 0.5), t([0.3]), "a single token, p = 0.5"),
             Case((t([1.0, 2.5, -0.5]), 1.0), t([NEG_INF, 2.5, NEG_INF]), "p = 1 keeps only the top token"),
             Case((t([-1.0, 0.5, -2.0]), 0.0), t([-1.0, 0.5, -2.0]), "p = 0 keeps every token"),
             Case((hand, 0.2), _min_p(hand, 0.2), "probabilities [0.5, 0.3, 0.15, 0.05], p = 0.2")]
    while len(cases) < n_cases:
        V, p = random_int(g, 2, 20), round(random_float(g, 0.05, 0.95), 3)
        logits = torch.randperm(V, generator=g).float() * 0.6 + random_float(g, -3, 3)  # of both signs
        probs = torch.softmax(logits.double(), -1)
        if any(abs(r - p) < 1e-3 for r in (probs / probs.max()).tolist() if r < 1):  # float32 could flip it
            continue
        cases.append(Case((logits, p), _min_p(logits, p),
                          f"V = {V}, p = {p}, logits = {[round(x, 2) for x in logits.tolist()]}"))
    mistakes = [
        Mistake("unscaled", lambda lg, p: _min_p(lg, p, scaled=False),
                "you compared each probability with p itself; min-p's threshold is p times the "
                "top token's probability (p * max prob), so it moves with the model's confidence"),
        Mistake("logits vs p", lambda lg, p: keep_only(lg, [i for i, z in enumerate(lg.tolist()) if z >= p]),
                "you compared the logits with p: apply softmax first, then keep probabilities >= p * max"),
        Mistake("zeros", lambda lg, p: _min_p(lg, p, dropped=0.0), "the dropped tokens must get "
                "-inf, not 0: a logit of 0 still has probability after the softmax"),
    ]
    return run_check("check_min_p", fn, cases, mistakes, forbidden=("llm_lessons.sampling.min_p_filter",))


def _repetition(logits, prev, penalty, how="ctrl", each=False):
    out = logits.clone()
    for i in prev.tolist() if each else sorted(set(prev.tolist())):
        z = float(out[i])
        out[i] = {"ctrl": z / penalty if z > 0 else z * penalty,  # towards "less likely" either way
                  "reversed": z * penalty if z > 0 else z / penalty,
                  "divide": z / penalty, "subtract": z - penalty}[how]
    return out


def check_repetition_penalty(fn: Callable, n_cases: int = 14, seed: int = 1) -> str:
    """``fn(logits, prev_ids, penalty)``: CTRL's repetition penalty on (V,) logits. Every token that
    occurs in ``prev_ids`` (L,) has its logit divided by ``penalty`` if positive, multiplied by it if
    negative, once however often it occurred; the other tokens are unchanged. penalty > 1 makes
    repeats less likely, 1 changes nothing."""
    g, t = torch.Generator().manual_seed(seed), torch.tensor
    cases = [Case((t([2.0, -1.0, 3.0]), t([0, 1, 0]), 2.0), t([1.0, -2.0, 3.0]),
                  "logits [2, -1, 3], prev_ids [0, 1, 0], penalty 2"),
             Case((t([0.5, -0.5]), t([], dtype=torch.long), 1.5), t([0.5, -0.5]), "an empty history"),
             Case((t([1.0, -2.0, 0.7]), t([0, 1]), 1.0), t([1.0, -2.0, 0.7]), "penalty 1")]
    for _ in range(n_cases - len(cases)):
        V, L, penalty = random_int(g, 3, 16), random_int(g, 2, 12), round(random_float(g, 1.2, 3.2), 2)
        logits = torch.randn(V, generator=g) * 2
        prev = torch.randint(0, min(V, L), (L,), generator=g)  # few distinct ids: repeats are likely
        prev[-1] = prev[0]  # at least one token seen twice
        cases.append(Case((logits, prev, penalty), _repetition(logits, prev, penalty),
                          f"V = {V}, prev_ids = {prev.tolist()}, penalty {penalty}"))
    mistakes = [
        Mistake("divide all", lambda z, prev, r: _repetition(z, prev, r, how="divide"),
                "you divided every seen logit by the penalty: a negative logit divided by it moves "
                "towards 0 and the token becomes MORE likely. Multiply the negative ones"),
        Mistake("each occurrence", lambda z, prev, r: _repetition(z, prev, r, each=True),
                "a token seen twice was penalised twice: the penalty applies once to every token "
                "that occurs in prev_ids, however often (use the set of ids)"),
        Mistake("subtract", lambda z, prev, r: _repetition(z, prev, r, how="subtract"), "you subtracted "
                "the penalty; CTRL's penalty divides positive logits by it and multiplies negative ones"),
        Mistake("reversed", lambda z, prev, r: _repetition(z, prev, r, how="reversed"),
                "you multiplied the positive logits and divided the negative ones: that favours "
                "repeats. Divide positive logits by the penalty, multiply negative ones"),
    ]
    return run_check("check_repetition_penalty", fn, cases, mistakes,
                     forbidden=("llm_lessons.sampling.apply_repetition_penalty",))


def _candidates(beams, logprobs, add_score=True):
    """(score, beam, token) for every extension, best first; ties to the lower beam, then token."""
    out = [((score if add_score else 0.0) + float(logprobs[b, v]), b, v)
           for b, (_, score) in enumerate(beams) for v in range(logprobs.shape[1])]
    return sorted(out, key=lambda c: (-c[0], c[1], c[2]))


def _extend(beams, chosen):
    return [(tuple(beams[b][0]) + (v,), s) for s, b, v in chosen]


def check_beam_step(fn: Callable, n_cases: int = 14, seed: int = 2) -> str:
    """``fn(beams, next_logprobs, width)`` returns the ``width`` best extensions of the beams.

    ``beams``: W pairs ``(tokens, score)``, a tuple of token ids and its total log-probability;
    ``next_logprobs`` (W, V): each beam's log-probabilities of its next token. Each candidate is
    ``(tokens + (v,), score + next_logprobs[beam, v])``; return the ``width`` best as a list of
    such pairs, best first, equal scores ordered by the lower beam index, then the lower token id.
    """
    g = torch.Generator().manual_seed(seed)
    half = torch.tensor([[0.5, 0.25, 0.25], [0.5, 0.25, 0.25]]).log()
    tie = [((1,), -1.0), ((2,), -1.0)]
    cases = [Case(([((7,), 0.0)], half[:1], 1), [((7, 0), float(half[0, 0]))], "one beam, width 1"),
             Case((tie, half, 4), _extend(tie, _candidates(tie, half)[:4]),
                  "two beams with equal scores and equal next log-probs (ties), width 4")]
    while len(cases) < n_cases:
        W, V = random_int(g, 1, 5), random_int(g, 2, 9)
        width = random_int(g, 1, min(W * V, 6) + 1)
        scores = sorted((random_float(g, -4, 0) for _ in range(W)), reverse=True)
        beams = [(tuple(torch.randint(0, V, (random_int(g, 1, 4),), generator=g).tolist()), s)
                 for s in scores]
        logprobs = (torch.randn(W, V, generator=g) * 1.5).log_softmax(-1)  # (W, V)
        top = [c[0] for c in _candidates(beams, logprobs)[: width + 1]]
        if any(a - b < 1e-3 for a, b in zip(top, top[1:], strict=False)):  # float32 could flip a near-tie
            continue
        cases.append(Case((beams, logprobs, width), _extend(beams, _candidates(beams, logprobs)[:width]),
                          f"{W} beams with scores {[round(s, 3) for s in scores]}, V = {V}, width {width}"))
    mistakes = [
        Mistake("greedy per beam", lambda bm, lp, w: _extend(
            bm, [c for c in _candidates(bm, lp) if c[2] == int(lp[c[1]].argmax())][:w]),
                "you kept each beam's best token separately (greedy per beam): compare all W * V "
                "extensions together and keep the width best overall; one beam may supply several "
                "of them and another none"),
        Mistake("no previous score", lambda bm, lp, w: _extend(bm, _candidates(bm, lp, False)[:w]),
                "you forgot to add the beam's previous score: a candidate's score is the beam's "
                "total log-probability plus the next token's log-probability"),
        Mistake("ascending", lambda bm, lp, w: _extend(bm, sorted(_candidates(bm, lp))[:w]),
                "you sorted ascending and kept the worst candidates: log-probabilities are "
                "negative and the best is the largest (closest to 0); sort in descending order"),
        Mistake("ties reversed", lambda bm, lp, w: _extend(bm, sorted(_candidates(bm, lp))[::-1][:w]),
                "on equal scores the lower beam index, then the lower token id, comes first (a "
                "stable descending sort of the flattened W * V candidates does this)"),
    ]
    return run_check("check_beam_step", fn, cases, mistakes,
                     forbidden=("llm_lessons.beam_search.beam_search",))


def fake_nll_fn(n_tokens: int, block_size: int, g: torch.Generator) -> Callable:
    """A stand-in model for :func:`check_windowed_nll`: the prediction at position i costs
    base[i] + 2 / (i - start + 1), more with less context, so a token missed, scored twice or seen
    with too little context changes the total. Windows a model could not run are refused."""
    base = (torch.rand(n_tokens, generator=g, dtype=torch.float64) * 2 + 1).tolist()

    def nll_fn(start: int, end: int, score_from: int) -> list[float]:
        start, end, score_from = int(start), int(end), int(score_from)
        if end > n_tokens - 1:
            raise ValueError(f"nll_fn: end = {end} > n_tokens - 1 = {n_tokens - 1} (end is exclusive): "
                             "the inputs stop before the last token, which is only a target")
        if end - start > block_size:
            raise ValueError(f"nll_fn: the inputs ids[{start}:{end}] are more than block_size = {block_size}")
        if not 0 <= start <= score_from <= end:
            raise ValueError(f"nll_fn: need 0 <= start <= score_from <= end, got {start, score_from, end}")
        return [base[i] + 2.0 / (i - start + 1) for i in range(score_from, end)]

    return nll_fn


def _windows(n_tokens: int, block_size: int, stride: int, last_gap: int = 1, score_all: bool = False):
    """(start, end, score_from) of each window; each scores what no earlier window scored."""
    last, done, start, out = n_tokens - last_gap, 0, 0, []
    while done < last:
        end = min(start + block_size, last)
        out.append((start, end, start if score_all else done))
        done, start = end, start + stride
    return out


def _total(nll_fn, windows) -> float:
    return sum(sum(nll_fn(*w)) for w in windows)


def check_windowed_nll(fn: Callable, n_cases: int = 16, seed: int = 3) -> str:
    """``fn(nll_fn, n_tokens, block_size, stride)`` returns the total NLL of a text of n_tokens.

    Tokens 1 .. n_tokens - 1 are each predicted once (token 0 has no context). ``nll_fn(start,
    end, score_from)`` runs the model on the inputs ``ids[start:end]`` (at most ``block_size``,
    ``end <= n_tokens - 1``) and returns the NLLs of its predictions at positions score_from ..
    end - 1 (of tokens score_from + 1 .. end). Windows start every ``stride`` tokens, hold up to
    ``block_size`` inputs, and each scores only the predictions no earlier window made: the first
    all of its own, the next ones their last ``stride`` (Hugging Face's strided perplexity).
    """
    g = torch.Generator().manual_seed(seed)
    sizes = [(2, 4, 4), (5, 4, 4), (10, 4, 4), (10, 4, 2), (10, 4, 1), (12, 5, 3)]
    while len(sizes) < n_cases:
        bs = random_int(g, 1, 9)
        sizes.append((random_int(g, 2, 31), bs, random_int(g, 1, bs + 1)))
    cases = []
    for n, bs, stride in sizes:
        nll_fn = fake_nll_fn(n, bs, g)
        cases.append(Case((nll_fn, n, bs, stride), _total(nll_fn, _windows(n, bs, stride)),
                          f"n_tokens = {n}, block_size = {bs}, stride = {stride}"))
    mistakes = [
        Mistake("stride ignored", lambda m, n, bs, s: _total(m, _windows(n, bs, bs)),
                "you used disjoint windows and ignored the stride: start a window every stride "
                "tokens, so each scored token keeps at least block_size - stride tokens of context"),
        Mistake("double counting", lambda m, n, bs, s: _total(m, _windows(n, bs, s, score_all=True)),
                "every window scored all its predictions, so the overlapping ones were counted "
                "twice: a window scores only the positions after the previous window's end"),
        Mistake("last token", lambda m, n, bs, s: _total(m, _windows(n, bs, s, last_gap=2)),
                "the last token is never scored (off by one): the windows must run until their "
                "inputs end at n_tokens - 1, whose prediction is the final token"),
        Mistake("first window short", lambda m, n, bs, s: _total(
            m, [(a, e, max(f, e - s)) for a, e, f in _windows(n, bs, s)]),
                "the first window scored only its last stride predictions: no earlier window "
                "scored its first ones, so it must score all of them"),
    ]
    return run_check("check_windowed_nll", fn, cases, mistakes,
                     forbidden=("llm_lessons.evaluation.likelihood.token_windows",))


def _agreement(a, b) -> float:
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def _kappa(a, b, chance="cohen") -> float:
    n, labels = len(a), sorted(set(a) | set(b), key=str)
    if chance == "cohen":  # each rater's own label frequencies, as if they labelled independently
        p_e = sum(a.count(c) / n * b.count(c) / n for c in labels)
    elif chance == "pooled":
        p_e = sum(((a.count(c) + b.count(c)) / (2 * n)) ** 2 for c in labels)
    else:
        p_e = 1 / len(labels)
    return (_agreement(a, b) - p_e) / (1 - p_e)


def check_cohen_kappa(fn: Callable, n_cases: int = 16, seed: int = 4) -> str:
    """``fn(a, b)``: Cohen's κ between two raters' labels of the same items (equal-length lists):
    κ = (p_o - p_e) / (1 - p_e), p_o the share of items given the same label, p_e = sum over labels
    c of P_a(c) · P_b(c), each rater's own label frequencies (the agreement expected by chance).
    a = [1, 1, 2, 2], b = [1, 2, 2, 2]: p_o = 3/4, p_e = 2/4 · 1/4 + 2/4 · 3/4 = 1/2, κ = 0.5."""
    g = torch.Generator().manual_seed(seed)
    fixed = [([1, 1, 2, 2], [1, 2, 2, 2], "a = [1, 1, 2, 2], b = [1, 2, 2, 2]"),
             ([1, 2, 3], [1, 2, 3], "perfect agreement"), ([1, 2], [2, 1], "two items, always disagreeing"),
             (["yes", "yes", "no", "yes", "no", "yes"], ["yes", "no", "no", "yes", "yes", "yes"],
              "labels that are strings"), ([1, 1, 2, 3, 3], [1, 2, 2, 2, 3], "three labels"),
             ([0, 0, 0, 1, 1, 2, 2, 2], [0, 0, 1, 1, 1, 2, 2, 3], "label 3 used by rater b only")]
    cases = [Case((a, b), _kappa(a, b), label) for a, b, label in fixed]
    while len(cases) < n_cases:
        n, K = random_int(g, 6, 41), random_int(g, 2, 6)
        a = torch.multinomial(torch.rand(K, generator=g) + 0.1, n, True, generator=g).tolist()
        other = torch.multinomial(torch.rand(K, generator=g) + 0.1, n, True, generator=g).tolist()
        agree = (torch.rand(n, generator=g) < 0.6).tolist()  # b copies a often, so κ is mostly > 0
        b = [x if same else y for x, y, same in zip(a, other, agree, strict=True)]
        if len(set(a) | set(b)) > 1:  # with one label only, κ is undefined
            cases.append(Case((a, b), _kappa(a, b), f"{n} items, {K} labels, a = {a[:8]}..., b = {b[:8]}..."))
    mistakes = [
        Mistake("scott", lambda a, b: _kappa(a, b, "pooled"),
                "you pooled both raters' labels to compute p_e (that is Scott's pi); Cohen's kappa "
                "multiplies each rater's OWN label frequencies: p_e = sum_c P_a(c) * P_b(c)"),
        Mistake("p_o", _agreement, "you returned the observed agreement p_o; kappa corrects it for "
                "chance: (p_o - p_e) / (1 - p_e)"),
        Mistake("uniform chance", lambda a, b: _kappa(a, b, "uniform"),
                "you took p_e = 1 / (number of labels), as if the raters chose labels uniformly; "
                "use their label frequencies: p_e = sum_c P_a(c) * P_b(c)"),
    ]
    answers = ("llm_lessons.evaluation.agreement.cohen_kappa",)
    sklearn = ("sklearn.metrics.cohen_kappa_score",)
    loaded = "sklearn.metrics" in sys.modules  # optional, and seconds to import: forbidden once loaded
    message = run_check("check_cohen_kappa", fn, cases, mistakes, forbidden=answers + sklearn * loaded)
    if not loaded and "sklearn.metrics" in sys.modules:  # the student's code loaded it: check again
        message = run_check("check_cohen_kappa", fn, cases, mistakes, forbidden=answers + sklearn)
    return message
