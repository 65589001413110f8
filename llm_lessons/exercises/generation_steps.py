"""Checkers for four small steps between a model and its use: greedy generation with a cropped
context (chapter 2.2), the targets of the MLM objective (chapter 2.3), BLEU's brevity penalty
(chapter 2.4b) and the article's embedding with positions, read batch-first (chapter 5).

Shapes: B batch, T positions, C channels, V vocabulary. Every answer comes from a reference
written here; :func:`llm_lessons.sampling.generate` (and the decoders built on the same loop),
:func:`llm_lessons.evaluation.text_metrics.bleu` and sacrebleu's ``compute_bleu`` are forbidden
while the student's code runs.

>>> import torch
>>> def targets(original, corrupted, selected):
...     return torch.where(selected, original, -100)   # the ORIGINAL token where it was selected
>>> check_mlm_targets(targets)
'check_mlm_targets: all 12 cases passed'
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from llm_lessons.exercises.checking import Case, Mistake, available, random_int, run_check
from llm_lessons.exercises.transformer import sinusoidal_table

GENERATE_ANSWERS = ("llm_lessons.sampling.generate", "llm_lessons.sampling.StepDecoder.__call__",
                    "llm_lessons.gpt.GPT.generate", "llm_lessons.beam_search.beam_search")
BLEU_ANSWERS = ("llm_lessons.evaluation.text_metrics.bleu", "llm_lessons.evaluation.text_metrics.sacre_bleu",
                "sacrebleu.metrics.bleu.BLEU.compute_bleu")



def fake_causal_lm(V: int, block_size: int, g: torch.Generator) -> Callable[[torch.Tensor], torch.Tensor]:
    """A stand-in causal language model for :func:`check_greedy_generate`: ids (B, T) -> logits
    (B, T, V), deterministic (float64, no dropout).

    Position t reads every earlier token of its input, the recent ones most (weights 0.6^(t - j)),
    and its own position (learned absolute positions, as GPT's): so which block_size tokens it is
    given, and where, changes its prediction. Like a real model it refuses more than block_size
    tokens (ValueError) and a 1-D input.
    """
    table = torch.randn(V, 8, generator=g, dtype=torch.float64)  # (V, C) token vectors
    pos = torch.randn(block_size, 8, generator=g, dtype=torch.float64) * 0.5  # (T, C) positions
    head = torch.randn(8, V, generator=g, dtype=torch.float64) * 2  # (C, V)

    def logits(ids: torch.Tensor) -> torch.Tensor:
        if ids.dim() != 2 or ids.shape[1] == 0:
            raise ValueError(f"ids must have shape (B, T) with T >= 1, got {tuple(ids.shape)}; "
                             "a single text needs a batch dimension: ids[None]")
        T = ids.shape[1]
        if T > block_size:
            raise ValueError(f"this model reads at most block_size = {block_size} tokens, got {T}")
        t = torch.arange(T, dtype=torch.float64)
        weights = (0.6 ** (t[:, None] - t[None, :])).tril()  # (T, T): row t weighs tokens j <= t
        h = weights @ (table[ids] + pos[:T])  # (T, T) @ (B, T, C) -> (B, T, C)
        return torch.tanh(h) @ head  # (B, T, V)

    return logits


def _generate(logits_fn, ids, n_new, block_size, crop="last", row=-1, feed=True, keep="all"):
    """Greedy decoding, one token at a time; the flags give the usual wrong versions."""
    text, first = ids.clone(), None  # (T0,)
    for _ in range(n_new):
        window = text[-block_size:] if crop == "last" else text[:block_size]  # (<= block_size,)
        nxt = logits_fn(window[None])[0, row].argmax() if feed or first is None else first
        first = nxt
        text = torch.cat([window if keep == "window" else text, nxt[None]])
    return text[len(ids):] if keep == "new" else text


def check_greedy_generate(fn: Callable, n_cases: int = 12, seed: int = 0) -> str:
    """``fn(logits_fn, ids, n_new, block_size)``: greedy generation. ids (T0,) is the prompt;
    ``logits_fn`` maps ids (B, T) to logits (B, T, V) and raises ValueError when T > block_size
    (see :func:`fake_causal_lm`). Append n_new tokens one at a time: each is the argmax of the
    LAST row of the logits for the text so far cropped to its last block_size tokens. Return
    the whole text (T0 + n_new,); n_new = 0 returns ids unchanged. Example: block_size 2, text
    [5, 1, 4]: the model reads [[1, 4]] and the argmax of logits[0, -1] is appended."""
    g = torch.Generator().manual_seed(seed)
    fixed = [(6, 4, 4, 0, "n_new = 0: nothing to append"),
             (7, 4, 1, 6, "a one-token prompt that grows past block_size"),
             (8, 3, 3, 4, "a prompt of exactly block_size tokens"),
             (9, 3, 7, 4, "a prompt longer than block_size"),
             (6, 1, 3, 4, "block_size 1: only the last token is read")]
    while len(fixed) < n_cases:
        fixed.append((random_int(g, 5, 13), random_int(g, 2, 7), random_int(g, 1, 9),
                      random_int(g, 1, 9), ""))
    cases = []
    for V, block_size, T0, n_new, what in fixed:
        model, ids = fake_causal_lm(V, block_size, g), torch.randint(0, V, (T0,), generator=g)
        cases.append(Case((model, ids, n_new, block_size), _generate(model, ids, n_new, block_size),
                          f"{what + ', ' if what else ''}V = {V}, block_size = {block_size}, "
                          f"ids = {ids.tolist()}, n_new = {n_new}"))
    mistakes = [
        Mistake("first block", lambda m, i, n, b: _generate(m, i, n, b, crop="first"),
                "you cropped to the FIRST block_size tokens (ids[:block_size]): once the text is "
                "longer, the model never sees what it just wrote. Keep the last ones: ids[-block_size:]"),
        Mistake("row 0", lambda m, i, n, b: _generate(m, i, n, b, row=0),
                "you took row 0 of the logits, the prediction after the window's first token: the "
                "next token is predicted by the LAST row, logits[0, -1]"),
        Mistake("not fed back", lambda m, i, n, b: _generate(m, i, n, b, feed=False),
                "you appended the first prediction n_new times: compute the logits again after each "
                "new token, on the text that now ends with it"),
        Mistake("new only", lambda m, i, n, b: _generate(m, i, n, b, keep="new"),
                "you returned only the new tokens: return the prompt followed by them (T0 + n_new ids)"),
        Mistake("window kept", lambda m, i, n, b: _generate(m, i, n, b, keep="window"),
                "you cropped the text itself and returned the window: crop only what the model "
                "reads (ids[-block_size:] passed to logits_fn) and keep appending to the whole text"),
    ]
    return run_check("check_greedy_generate", fn, cases, mistakes, forbidden=available(GENERATE_ANSWERS))


def _targets(original, corrupted, selected, fill=-100, source="original", where="selected"):
    """The MLM targets; the flags give the usual wrong versions."""
    at = {"selected": selected, "not selected": ~selected, "changed": corrupted != original,
          "everywhere": torch.ones_like(selected)}[where]
    tokens = original if source == "original" else corrupted
    return torch.where(at, tokens, torch.full_like(original, fill))  # (T,)


def _corrupt(g, T, V, mask_id):
    """A text (T,) of ordinary ids (never mask_id), its selection and its 80/10/10 corruption."""
    original = torch.randint(0, V - 1, (T,), generator=g)
    original += (original >= mask_id).long()  # skip mask_id
    selected = torch.rand(T, generator=g) < 0.2 + 0.4 * float(torch.rand((), generator=g))
    selected[random_int(g, 0, T)] = True
    how = torch.rand(T, generator=g)
    other = (original + torch.randint(1, V - 1, (T,), generator=g)) % V  # a different token
    other = torch.where(other == mask_id, (other + 1) % V, other)
    other = torch.where(other == original, (other + 1) % V, other)  # V >= 3: never mask_id here
    corrupted = torch.where(selected & (how < 0.8), torch.full_like(original, mask_id), original)
    return original, torch.where(selected & (how >= 0.8) & (how < 0.9), other, corrupted), selected


def check_mlm_targets(fn: Callable, n_cases: int = 12, seed: int = 1) -> str:
    """``fn(original, corrupted, selected)``: the targets of BERT's MLM loss. original (T,) is the
    text, corrupted (T,) the model's input after the 80/10/10 corruption (a selected position
    became [MASK], a random token, or stayed unchanged), selected (T,) bool the positions chosen
    for prediction. Return targets (T,) long: the ORIGINAL token where selected, -100 elsewhere
    (the index the loss ignores). Example: original [7, 2, 5], corrupted [7, 9, 5] ([MASK] = 9),
    selected [False, True, True] -> [-100, 2, 5] (position 2 was selected and left unchanged)."""
    g, t = torch.Generator().manual_seed(seed), torch.tensor
    yes, no = True, False
    fixed = [(t([5, 6, 7]), t([5, 6, 7]), t([no, no, no]), 9, "nothing selected"),
             (t([2, 7, 1, 8]), t([9, 9, 9, 9]), t([yes, yes, yes, yes]), 9,
              "every position selected and masked"),
             (t([3, 1, 4, 1, 5, 2, 6]), t([3, 9, 4, 1, 0, 2, 9]), t([no, yes, no, yes, yes, no, yes]), 9,
              "masked, random (5 -> 0) and unchanged (the 1 at position 3) selected positions"),
             (t([4]), t([0]), t([yes]), 0, "one token, masked")]
    while len(fixed) < n_cases:
        T, V = random_int(g, 4, 21), random_int(g, 6, 30)
        mask_id = random_int(g, 0, V)
        fixed.append((*_corrupt(g, T, V, mask_id), mask_id, ""))
    cases = [Case((o, c, s), _targets(o, c, s),
                  f"{what + ': ' if what else ''}original {o.tolist()}, corrupted {c.tolist()} "
                  f"([MASK] = {mask_id}), selected {s.long().tolist()}") for o, c, s, mask_id, what in fixed]
    mistakes = [
        Mistake("zero", lambda o, c, s: _targets(o, c, s, fill=0),
                "you put 0 at the unselected positions: 0 is a real token id, so the loss would train "
                "them to predict it. Use -100, the ignore_index of F.cross_entropy"),
        Mistake("corrupted", lambda o, c, s: _targets(o, c, s, source="corrupted"),
                "your targets are the corrupted input (the [MASK] id, a random token): the model must "
                "predict the ORIGINAL token at every selected position"),
        Mistake("inverted", lambda o, c, s: _targets(o, c, s, where="not selected"),
                "your selection is inverted: the targets hold the original token where selected is "
                "True and -100 where it is False"),
        Mistake("changed only", lambda o, c, s: _targets(o, c, s, where="changed"),
                "you set targets only where the input changed: a selected token left unchanged (the "
                "10%) must be predicted too. Use the selection, not corrupted != original"),
        Mistake("everywhere", lambda o, c, s: _targets(o, c, s, where="everywhere"),
                "you returned the original text everywhere: only the selected positions are "
                "predictions; the others get -100"),
    ]
    return run_check("check_mlm_targets", fn, cases, mistakes)


def _bp(c, r, ratio="r/c", longer="one", exp=True):
    """BLEU's brevity penalty; the flags give the usual wrong versions."""
    if c == 0:
        return 0.0
    if c > r and longer == "one":
        return 1.0
    x = r / c if ratio == "r/c" else c / r
    return math.exp(1 - x) if exp else x


def check_brevity_penalty(fn: Callable, n_cases: int = 16, seed: int = 2) -> str:
    """``fn(c, r)``: BLEU's brevity penalty for a candidate of c >= 0 tokens against a reference
    of r >= 1: 1.0 if c > r, exp(1 - r / c) if 0 < c <= r, 0.0 if c == 0 (nothing to score).
    It only punishes SHORT candidates (a long one already pays in precision). Example: c = 4,
    r = 5 -> exp(1 - 5/4) = exp(-0.25) = 0.7788."""
    g = torch.Generator().manual_seed(seed)
    fixed = [((4, 5), "one token short"), ((5, 5), "the same length"), ((6, 5), "one token longer"),
             ((0, 5), "an empty candidate"), ((1, 10), "a much shorter candidate"),
             ((10, 1), "a much longer candidate"), ((9, 12), ""), ((1, 1), "")]
    while len(fixed) < n_cases:
        fixed.append(((random_int(g, 0, 31), random_int(g, 1, 31)), ""))
    cases = [Case(args, _bp(*args), f"{what + ': ' if what else ''}(c, r) = {args}") for args, what in fixed]
    mistakes = [
        Mistake("reversed", lambda c, r: _bp(c, r, ratio="c/r"),
                "your ratio is reversed: exp(1 - c / r) is above 1 for a short candidate. The penalty "
                "is exp(1 - r / c), r the reference length, c the candidate's"),
        Mistake("always", lambda c, r: _bp(c, r, longer="formula"),
                "you applied exp(1 - r / c) to longer candidates too, rewarding them (above 1): the "
                "penalty is 1.0 when c > r"),
        Mistake("r / c", lambda c, r: _bp(c, r, exp=False),
                "you returned r / c without the exponential: the penalty is exp(1 - r / c), between "
                "0 and 1"),
        Mistake("c / r", lambda c, r: _bp(c, r, ratio="c/r", exp=False),
                "you returned the plain ratio c / r: BLEU's penalty is exp(1 - r / c), which falls "
                "faster as the candidate gets shorter"),
    ]
    return run_check("check_brevity_penalty", fn, cases, mistakes, forbidden=available(BLEU_ANSWERS))


def _embed(ids, table, pe, positions="time", scale=False):
    """table[ids] + pe[:T]; the flags give the usual wrong versions."""
    B, T = ids.shape
    x = table[ids] * (math.sqrt(table.shape[1]) if scale else 1.0)  # (B, T, C)
    if positions == "time":
        return x + pe[:T]  # (T, C) broadcast over the batch
    if positions == "batch":
        return x + pe[:B, None, :]  # (B, 1, C): sequence b gets pe[b] at every position
    return x


def check_embed_with_positions(fn: Callable, n_cases: int = 12, seed: int = 3) -> str:
    """``fn(ids, table, pe)``: the input of the article's encoder, batch-first. ids (B, T) long,
    table (V, C) the token embeddings, pe (max_len, C) sinusoidal positions (max_len >= T).
    Return (B, T, C) = table[ids] + pe[:T]: position t of EVERY sequence gets pe[t]. No sqrt(C)
    factor (it would drown the positions). Example: B = 2, T = 3: out[1, 2] = table[ids[1, 2]]
    + pe[2]."""
    g = torch.Generator().manual_seed(seed)
    sizes = [(1, 5, 7, 4, 8, "one sequence"), (3, 1, 5, 2, 4, "three one-token sequences"),
             (2, 6, 9, 8, 6, "max_len = T"), (4, 3, 6, 6, 5, "more sequences than positions"),
             (3, 3, 8, 4, 3, "B = T")]
    while len(sizes) < n_cases:
        B, T = random_int(g, 1, 6), random_int(g, 1, 9)
        sizes.append((B, T, random_int(g, 3, 20), 2 * random_int(g, 1, 9),
                      max(B, T) + random_int(g, 0, 5), ""))
    cases = []
    for B, T, V, C, max_len, what in sizes:
        ids, table = torch.randint(0, V, (B, T), generator=g), torch.randn(V, C, generator=g)
        pe = sinusoidal_table(max_len, C)
        cases.append(Case((ids, table, pe), _embed(ids, table, pe),
                          f"{what + ', ' if what else ''}(B, T, V, C) = {(B, T, V, C)}, max_len = {max_len}, "
                          f"ids = {ids.tolist()}"))
    mistakes = [
        Mistake("batch as time", lambda i, w, p: _embed(i, w, p, positions="batch"),
                "you added pe[b] to every position of sequence b: the batch was read as time (the "
                "listing's sequence-first layout fed batch-first data). Position t gets pe[t]: "
                "add pe[:T], of shape (T, C), which broadcasts over the batch"),
        Mistake("scaled", lambda i, w, p: _embed(i, w, p, scale=True),
                "you multiplied the token vectors by sqrt(C), the listing's factor: with N(0, 1) "
                "embeddings it makes them about sqrt(C) times longer than the positions, which then "
                "barely count. Add table[ids] and pe[:T] as they are"),
        Mistake("no positions", lambda i, w, p: _embed(i, w, p, positions="none"),
                "you returned the token vectors alone: add the positions pe[:T], or the encoder cannot "
                "tell the order of the tokens"),
    ]
    return run_check("check_embed_with_positions", fn, cases, mistakes)
