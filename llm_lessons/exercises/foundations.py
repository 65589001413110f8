"""Checkers for chapter 2's exercises: add-k smoothing, BPE merges, shifted targets, BERT's
80/10/10 masking and bits per byte.

Every reference is written again here, one loop at a time; V is the vocabulary size and T the
number of positions in a window.

>>> check_shift_targets(lambda ids, T: (ids[:T], ids[1:T + 1]))
'check_shift_targets: all 8 cases passed'
>>> check_shift_targets(lambda ids, T: (ids[:T], ids[:T]))  # doctest: +ELLIPSIS
Traceback (most recent call last):
llm_lessons.exercises.checking.ExerciseFailed: check_shift_targets, 2 ids, T = 1: your targets equal...
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from llm_lessons.exercises.checking import Case, ExerciseFailed, Mistake, call, forbid, run_check


def _add_k(c: torch.Tensor, k: float) -> torch.Tensor:
    """P(w | h) = (c(h w) + k) / (c(h •) + k V): k more for each of the V next tokens."""
    V = c.shape[0]
    P = torch.empty(V, V, dtype=torch.float64)
    for h in range(V):
        total = sum(float(c[h, w]) for w in range(V))
        for w in range(V):
            P[h, w] = (float(c[h, w]) + k) / (total + k * V)
    return P


def check_add_k_bigram(fn: Callable, n_cases: int = 10, seed: int = 0) -> str:
    """``fn(counts, k)``: bigram counts (V, V) (row = previous token, column = next) and k > 0
    give the add-k smoothed P(next | previous), a (V, V) tensor whose rows sum to 1."""
    g = torch.Generator().manual_seed(seed)
    cases = [Case((torch.tensor([[3]]), 1.0), _add_k(torch.tensor([[3]]), 1.0), "V = 1, k = 1"),
             Case((torch.zeros(3, 3, dtype=torch.long), 0.5), torch.full((3, 3), 1 / 3),
                  "all counts 0 (every row must be uniform), k = 0.5"),
             Case((torch.tensor([[0, 2], [1, 3]]), 1.0), torch.tensor([[1 / 4, 3 / 4], [2 / 6, 4 / 6]]),
                  "counts [[0, 2], [1, 3]], k = 1 (Laplace)")]
    for _ in range(n_cases - len(cases)):
        V = int(torch.randint(3, 8, (), generator=g))
        k = [1.0, 0.5, 0.1, 0.01, 2.0][int(torch.randint(5, (), generator=g))]
        counts = torch.randint(0, 6, (V, V), generator=g) * (torch.rand(V, V, generator=g) < 0.6)
        counts[int(torch.randint(V, (), generator=g))] = 0  # a history never seen: a uniform row
        cases.append(Case((counts, k), _add_k(counts, k), f"V = {V}, k = {k}"))
    mistakes = [
        Mistake("no kV", lambda c, k: (c.double() + k) / c.double().sum(1, keepdim=True),
                "your rows do not sum to 1: you added k to every count but divided by the plain "
                "row total; the denominator must grow by k*V too: (c + k) / (row total + k*V)"),
        Mistake("k once", lambda c, k: (c.double() + k) / (c.double().sum(1, keepdim=True) + k),
                "you added k once to the denominator; k was added to each of the V counts of the "
                "row, so add k*V"),
        Mistake("k only on zeros", lambda c, k: torch.nn.functional.normalize(  # rows to sum 1
            torch.where(c == 0, float(k), c.double()), p=1, dim=1),
                "you added k only to the zero counts: add-k adds k to every count, seen or not"),
        Mistake("columns", lambda c, k: _add_k(c.T, k).T,
                "your columns sum to 1, not your rows: row h is the previous token, so "
                "normalise each row (sum over dim=1)"),
    ]
    return run_check("check_add_k_bigram", fn, cases, mistakes)


BPE_ANSWERS = ("llm_lessons.tokenizers.merge_pair", "llm_lessons.tokenizers.pair_counts")


def _merge(ids: list[int], pair: tuple[int, int], new_id: int, step: int = 2, first_only: bool = False,
           only_a: bool = False, keep_last: bool = True) -> list[int]:
    """Left to right, a found pair becomes ``new_id``; the flags give the usual wrong versions."""
    out, i, done = [], 0, False
    while i < len(ids) - (0 if keep_last else 1):
        found = i + 1 < len(ids) and ids[i] == pair[0] and (only_a or ids[i + 1] == pair[1])
        if found and not done:
            out.append(new_id)
            i += step
            done = first_only
        else:
            out.append(ids[i])
            i += 1
    return out


def _merge_overlapping(ids, pair, new_id):
    """Every position where the pair starts becomes new_id: [1, 1, 1] -> [new, new]."""
    at = [i + 1 < len(ids) and (ids[i], ids[i + 1]) == tuple(pair) for i in range(len(ids))]
    return [new_id if at[i] else ids[i] for i in range(len(ids)) if at[i] or i == 0 or not at[i - 1]]


def check_bpe_merge(fn: Callable, n_cases: int = 16, seed: int = 0) -> str:
    """``fn(ids, pair, new_id)``: ids a list of ints; every non-overlapping occurrence of the
    adjacent pair (a, b), scanning left to right, becomes new_id: [1, 1, 1], (1, 1) -> [new, 1]."""
    g = torch.Generator().manual_seed(seed)
    fixed = [([1, 2, 3, 1, 2], (1, 2), 4), ([1, 1, 1], (1, 1), 9), ([1, 1, 1, 1], (1, 1), 9),
             ([5], (5, 5), 7), ([], (1, 2), 3), ([1, 3, 2, 1], (1, 2), 5), ([2, 1, 2, 1, 2, 2], (1, 2), 8)]
    for _ in range(n_cases - len(fixed)):
        ids = torch.randint(3, (int(torch.randint(4, 16, (), generator=g)),), generator=g).tolist()
        i = int(torch.randint(len(ids) - 1, (), generator=g))
        fixed.append((ids, (ids[i], ids[i + 1]), 3))  # a pair that occurs
    cases = [Case(args, _merge(*args), f"ids = {args[0]}, pair = {args[1]}, new_id = {args[2]}")
             for args in fixed]
    mistakes = [
        Mistake("overlapping", _merge_overlapping,
                "your merges overlap: in [1, 1, 1] the pair (1, 1) is merged once, left to right, "
                "giving [new, 1]; after a merge continue after the pair's second token"),
        Mistake("step one", lambda ids, p, n: _merge(ids, p, n, step=1),
                "after a merge you moved on by one token, so the pair's second token was kept as "
                "well; skip both tokens of the pair (i += 2)"),
        Mistake("first only", lambda ids, p, n: _merge(ids, p, n, first_only=True),
                "you replaced only the first occurrence of the pair; replace every occurrence"),
        Mistake("only a", lambda ids, p, n: _merge(ids, p, n, only_a=True),
                "you merged wherever the first token a appears; check that the next token is b too"),
        Mistake("drops last", lambda ids, p, n: _merge(ids, p, n, keep_last=False),
                "your result lost the last token: a token left alone at the end of the scan "
                "(no pair can start there) is kept unchanged"),
    ]
    return run_check("check_bpe_merge", fn, cases, mistakes, forbidden=BPE_ANSWERS)


def _counts(ids: list[int], step: int = 1) -> dict[tuple[int, int], int]:
    counts: dict[tuple[int, int], int] = {}  # a dict keeps the order pairs were first seen in
    for i in range(0, len(ids) - 1, step):
        counts[(ids[i], ids[i + 1])] = counts.get((ids[i], ids[i + 1]), 0) + 1
    return counts


def _most_frequent(ids: list[int], step: int = 1, later_wins: bool = False) -> tuple[int, int]:
    counts, best = _counts(ids, step), None
    for pair, n in counts.items():
        if best is None or n > counts[best] or (later_wins and n == counts[best]):
            best = pair
    return best


def check_most_frequent_pair(fn: Callable, n_cases: int = 16, seed: int = 0) -> str:
    """``fn(ids)``: ids a list of at least 2 ints; returns the most frequent adjacent pair (a, b),
    pairs counted at every position (they overlap: (1, 1) occurs twice in [1, 1, 1]), a tie
    going to the pair that occurs first."""
    g = torch.Generator().manual_seed(seed)
    fixed = [[1, 2, 3, 1, 2], [4, 7], [5, 5, 5, 5], [2, 1, 9, 3], [3, 2, 0, 1], [6, 3, 3, 6, 3],
             [0, 0, 0, 1, 2, 1, 2, 0, 1], [9, 1, 2, 1, 2, 1, 2, 3, 4]]  # ties, overlaps, odd starts
    for _ in range(n_cases - len(fixed)):
        fixed.append(torch.randint(4, (int(torch.randint(5, 20, (), generator=g)),), generator=g).tolist())
    cases = [Case((ids,), _most_frequent(ids), f"ids = {ids}") for ids in fixed]
    tie = "; a tie goes to the pair that occurs first in ids"
    mistakes = [
        Mistake("largest", lambda ids: max(_counts(ids).items(), key=lambda pn: (pn[1], pn[0]))[0],
                "on a tie you picked the pair with the largest ids" + tie),
        Mistake("smallest", lambda ids: min(_counts(ids).items(), key=lambda pn: (-pn[1], pn[0]))[0],
                "on a tie you picked the pair with the smallest ids (sorted order)" + tie),
        Mistake("last", lambda ids: _most_frequent(ids, later_wins=True),
                "on a tie you kept the pair seen last (>= instead of >)" + tie),
        Mistake("even positions", lambda ids: _most_frequent(ids, step=2),
                "you counted only the pairs starting at even positions (stepping by 2); every "
                "adjacent pair counts, overlapping ones too: (1, 1) occurs twice in [1, 1, 1]"),
    ]
    return run_check("check_most_frequent_pair", fn, cases, mistakes, forbidden=BPE_ANSWERS)


def check_shift_targets(fn: Callable, seed: int = 0) -> str:
    """``fn(ids, T)``: ids a 1-D tensor of at least T + 1 token ids; returns (x, y), each (T,):
    the first window's inputs x = ids[:T] and their next-token targets y = ids[1:T + 1]."""
    g = torch.Generator().manual_seed(seed)
    cases = []
    for n, T in [(2, 1), (5, 4), (9, 1), (10, 4), (12, 7), (20, 8), (30, 16), (17, 16)]:
        ids = torch.randperm(100, generator=g)[:n]  # distinct ids, so every wrong shift shows
        x = torch.tensor([int(ids[t]) for t in range(T)])
        y = torch.tensor([int(ids[t + 1]) for t in range(T)])  # the token that follows x[t]
        cases.append(Case((ids, T), (x, y), f"{n} ids, T = {T}"))
    mistakes = [
        Mistake("no shift", lambda ids, T: (ids[:T], ids[:T]),
                "your targets equal your inputs: the target at position t is the next token, "
                "ids[t + 1], so y = ids[1:T + 1]"),
        Mistake("swapped", lambda ids, T: (ids[1:T + 1], ids[:T]),
                "you shifted the wrong way (inputs and targets swapped): x = ids[:T] and "
                "y = ids[1:T + 1], the token after each input"),
        Mistake("short", lambda ids, T: (ids[:T - 1], ids[1:T]),
                "your window is one token short: x holds T tokens, ids[:T], and y = ids[1:T + 1]"),
        Mistake("last window", lambda ids, T: (ids[-T - 1:-1], ids[-T:]),
                "you took the last window of the ids; take the first: x = ids[:T], y = ids[1:T + 1]"),
    ]
    return run_check("check_shift_targets", fn, cases, mistakes)


MASK_ANSWERS = ("llm_lessons.mlm_data.mask_tokens", "llm_lessons.data.mask_tokens")  # the last names it
PAD, CLS, SEP, MASK, V_MLM = 0, 1, 2, 3, 120  # ids 0..2 are special; the vocabulary has 120 ids


def _mlm_ids(seed: int) -> torch.Tensor:
    """(B=4, T=256) rows [CLS] text [SEP] [PAD]...; odd seeds give it flattened to (1024,)."""
    g, rows = torch.Generator().manual_seed(seed), []
    for _ in range(4):
        n = int(torch.randint(100, 255, (), generator=g))
        rows.append(torch.cat([torch.tensor([CLS]), torch.randint(4, V_MLM, (n,), generator=g),
                               torch.tensor([SEP]), torch.full((254 - n,), PAD)]))
    return torch.stack(rows).flatten() if seed % 2 else torch.stack(rows)


def check_mask_80_10_10(fn: Callable, n_draws: int = 20, seed: int = 0) -> str:
    """``fn(ids, mask_id, vocab_size, special_ids, generator)``: ids of any shape; returns
    (corrupted, targets) of ids' shape. A position whose id is not special is selected with
    probability 0.15; a selected one becomes ``mask_id`` (80%), a uniformly random id (10%) or
    stays (10%); targets hold the original id where selected, -100 elsewhere.

    Judged by properties over ~20 000 positions, each fraction within 5 standard deviations."""
    name = "check_mask_80_10_10"
    run_check(name, fn, [], forbidden=MASK_ANSWERS)  # refuses an answer held under a global name
    where = name  # the failures after the draws also say how many positions were judged

    def fail_if(wrong, hint: str) -> None:
        if wrong:
            raise ExerciseFailed(f"{where}: {hint}")

    def draw(d: int) -> tuple[torch.Tensor, ...]:
        ids = _mlm_ids(seed + d)
        with forbid(MASK_ANSWERS, name):  # a fresh generator per draw: the same seed, the same run
            out = call(name, fn, (ids, MASK, V_MLM, (PAD, CLS, SEP), torch.Generator().manual_seed(seed + d)))
        fail_if(not (isinstance(out, (tuple, list)) and len(out) == 2 and all(isinstance(
            t, torch.Tensor) and t.shape == ids.shape and not t.is_floating_point() for t in out)),
                f"return (corrupted, targets), two integer tensors of ids' shape {tuple(ids.shape)}")
        return ids, out[0], out[1]

    first = draw(0)
    fail_if(not all(torch.equal(a, b) for a, b in zip(first, draw(0), strict=True)),
            "two calls with generators seeded alike gave different results: draw every random "
            "number from the generator you are given (torch.rand(shape, generator=generator))")
    ids, corrupted, targets = (torch.cat([t.flatten() for t in parts])
                               for parts in zip(first, *(draw(d) for d in range(1, n_draws)), strict=True))
    where = f"{name}, {len(ids)} positions over {n_draws} seeded draws"
    special = ids <= SEP
    ordinary, selected, changed = ~special, targets != -100, corrupted != ids

    def share(part: torch.Tensor, among: torch.Tensor) -> float:
        return float(part[among].double().mean())

    fail_if(share(changed, ordinary) > 0.5,
            f"you changed {share(changed, ordinary):.0%} of the ordinary tokens: you applied 80/10/10 to "
            "every position. Select each with probability 0.15 first; only those are masked, swapped or kept")
    fail_if(share(selected, ordinary) > 0.5,
            "your targets hold a token at every position: put -100 (ignored by the loss) where the "
            "position was not selected, so the loss is taken on the selected ~15% only")
    fail_if(bool((changed | selected)[special].any()),
            "you masked special tokens ([CLS], [SEP], [PAD]): a position whose id is in special_ids "
            "is never selected; it stays unchanged with target -100")
    fail_if(bool((changed & ~selected).any()),
            "you changed a position whose target is -100: only selected positions may change, and "
            "each selected one gets its original id as target")
    fail_if(not torch.equal(targets[selected], ids[selected]),
            "a target must be the original id the model has to recover, not the corrupted token")
    n, rate = int(ordinary.sum()), share(selected, ordinary)
    fail_if(abs(rate - 0.15) > 5 * math.sqrt(0.15 * 0.85 / n),
            f"you selected {rate:.1%} of the ordinary positions; select each with probability 0.15")
    masked = selected & (corrupted == MASK)
    kept, swapped = selected & ~changed, selected & changed & (corrupted != MASK)
    fail_if(not (kept.any() or swapped.any()),
            "you replaced every selected token by [MASK]: BERT keeps 10% of them unchanged and "
            "swaps 10% for a random token, so the model cannot assume only [MASK] positions matter")
    m = int(selected.sum())
    for part, p, what in [(masked, 0.8, "become [MASK]"), (swapped, 0.1, "become a random token"),
                          (kept, 0.1, "stay unchanged")]:
        got = share(part, selected)
        fail_if(abs(got - p) > 5 * math.sqrt(p * (1 - p) / m) + 0.2 / V_MLM,
                f"{got:.1%} of the selected tokens {what}; 80% should become [MASK], 10% a random "
                "token and 10% stay unchanged (one uniform draw per selected position decides)")
    fail_if(len(corrupted[swapped].unique()) < V_MLM // 3,
            "your random tokens are always the same few ids: draw them uniformly from the "
            "vocabulary (torch.randint(vocab_size, shape, generator=generator))")
    return f"{name}: all {n_draws} draws passed ({m} of {n} ordinary positions selected)"


def _utf8_bytes(text: str) -> int:
    return sum(len(ch.encode("utf-8")) for ch in text)  # 1 byte for ASCII, up to 4 for an emoji


def check_bits_per_byte(fn: Callable, seed: int = 0) -> str:
    """``fn(total_nll_nats, text)``: a total NLL in nats over ``text`` gives bits per UTF-8 byte,
    total / (ln 2 · bytes): "你好" is 2 characters but 6 bytes."""
    g = torch.Generator().manual_seed(seed)
    texts = ["To be, or not to be", "你好，世界", "🙂", "naïve café — 汉字 🚀", "a\n", "日本語のテキスト",
             "Ünïcödé 🎭🎭"]
    cases = [Case((4 * math.log(4), "abcd"), 2.0, "4 ln 4 nats over 'abcd' (must be 2 bits per byte)")]
    for text in texts:
        total = round(float(torch.rand((), generator=g)) * 40 + 0.5, 4)
        n_bytes = _utf8_bytes(text)
        cases.append(Case((total, text), total / (math.log(2) * n_bytes),
                          f"text = {text!r} ({len(text)} characters, {n_bytes} bytes), total NLL = {total}"))
    mistakes = [
        Mistake("characters", lambda nll, t: nll / (math.log(2) * len(t)),
                "you divided by the number of characters; count UTF-8 bytes, len(text.encode('utf-8')):"
                " a Chinese character is 3 bytes, an emoji 4"),
        Mistake("nats", lambda nll, t: nll / _utf8_bytes(t),
                "you returned nats per byte: divide by ln 2 as well to turn nats into bits"),
        Mistake("log10", lambda nll, t: nll / (math.log10(2) * _utf8_bytes(t)),
                "you divided by log10(2); nats become bits by dividing by the natural log, ln 2 = "
                "math.log(2)"),
    ]
    return run_check("check_bits_per_byte", fn, cases, mistakes,
                     forbidden=("llm_lessons.evaluation.likelihood.bits_per_byte",))
