"""Automatic metrics of generated text: fluency, diversity, and overlap with a reference.

Shapes use fixed letters: T time (tokens).

* **Fluency** by a reference model: the perplexity a language model gives the continuation
  (given its prompt), :func:`continuation_nll`. Low perplexity means "predictable", which is
  not the same as "good": greedy, repetitive text is the most predictable of all.
* **Diversity**: distinct-n and repetition rate (re-exported from :mod:`llm_lessons.evaluation.text_stats`),
  and self-BLEU (Zhu et al., 2018): each sample's BLEU against the *other* samples; high
  self-BLEU means the samples resemble each other.
* **Overlap with a reference** (machine-translation and summarisation metrics):
  BLEU (Papineni et al., 2002) = BP · exp(mean_n log p_n), with p_n the clipped n-gram
  precision (n = 1..4) and BP = min(1, exp(1 - r/c)) the brevity penalty for a hypothesis of
  c tokens against references of r; chrF (Popović, 2015), a character n-gram F-score; and
  ROUGE (Lin, 2004), n-gram and longest-common-subsequence recall/precision/F1.

:func:`bleu` is written out here from its definition (tokens split on whitespace) and tested
against sacrebleu; for numbers to publish, use :func:`sacre_bleu` / :func:`sacre_chrf`, which
return sacrebleu's *signature* as well: a BLEU score means little without its tokenizer,
smoothing and version.

>>> round(bleu(["the cat sat on the mat"], [["the cat sat on the mat"]]), 6)
100.0
>>> rouge_n("the cat sat", "the cat ran", n=1).fmeasure   # 2 of 3 unigrams shared
0.6666666666666666
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from llm_lessons.configs import block_size_of
from llm_lessons.evaluation.text_stats import distinct_n, ngrams, repetition_rate
from llm_lessons.validation import check_int

__all__ = ["distinct_n", "repetition_rate", "bleu", "self_bleu", "sacre_bleu", "sacre_chrf",
           "rouge_tokenize", "rouge_n", "rouge_l", "Score", "SignedScore", "continuation_nll",
           "dialogue_prompts"]


def _texts(texts, name: str) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence) or len(texts) == 0:
        raise ValueError(f"{name} must be a non-empty list of strings")
    if not all(isinstance(t, str) for t in texts):
        raise TypeError(f"{name} must contain only strings")
    return list(texts)


def _references(hyps: list[str], refs) -> list[list[str]]:
    """One list of references per hypothesis; a flat list of strings means one reference each."""
    refs = list(refs)
    if len(refs) != len(hyps):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} reference entries: one per hypothesis")
    out = [[r] if isinstance(r, str) else list(r) for r in refs]
    if any(len(r) == 0 or not all(isinstance(x, str) for x in r) for r in out):
        raise ValueError("every hypothesis needs at least one reference string")
    return out


def bleu(hyps: Sequence[str], refs, max_n: int = 4, smooth: str = "exp", effective_order: bool = False,
         tokenize: Callable[[str], list[str]] = str.split) -> float:
    """Corpus BLEU in [0, 100] from its definition; equals sacrebleu with ``tokenize="none"``.

    ``refs[i]`` is a reference string or a list of them for ``hyps[i]``. Counts are pooled over
    the corpus before dividing (corpus BLEU is *not* the mean of sentence BLEUs). An n-gram's
    count is clipped at its largest count in any one reference; r sums, per hypothesis, the
    reference length closest to it (the shorter on ties). ``smooth="exp"`` (sacrebleu's
    default) replaces the k-th zero precision by 1 / (2^k · total); ``"none"`` leaves it 0.
    ``effective_order`` drops orders with no n-grams at all (for short sentences).
    """
    hyps = _texts(hyps, "hyps")
    refs = _references(hyps, refs)
    if smooth not in ("exp", "none"):
        raise ValueError(f"smooth must be 'exp' or 'none', got {smooth!r}")
    correct, total = [0] * max_n, [0] * max_n
    c = r = 0
    for hyp, rs in zip(hyps, refs, strict=True):
        h = tokenize(hyp)
        toks = [tokenize(x) for x in rs]
        c += len(h)
        r += min((abs(len(t) - len(h)), len(t)) for t in toks)[1]
        for n in range(1, max_n + 1):
            got = Counter(ngrams(h, n))
            most = Counter()
            for t in toks:
                most |= Counter(ngrams(t, n))  # | keeps the max count of each n-gram
            correct[n - 1] += sum(min(k, most[g]) for g, k in got.items())
            total[n - 1] += sum(got.values())
    if not any(correct):
        return 0.0
    logs, doubling = [], 1.0
    for n in range(max_n):
        if total[n] == 0:
            if effective_order:
                break
            return 0.0
        if correct[n] == 0:
            if smooth == "none":
                return 0.0
            doubling *= 2
            logs.append(math.log(1.0 / (doubling * total[n])))
        else:
            logs.append(math.log(correct[n] / total[n]))
    bp = 1.0 if c >= r else math.exp(1 - r / c) if c > 0 else 0.0
    return 100.0 * bp * math.exp(sum(logs) / len(logs))


def self_bleu(samples: Sequence[str], max_n: int = 4,
              tokenize: Callable[[str], list[str]] = str.split) -> float:
    """Mean sentence BLEU (smoothed, effective order) of each sample against all the others.

    >>> self_bleu(["a b c d", "a b c d", "a b c d"])   # identical samples: no diversity
    100.0
    >>> self_bleu(["a b c d", "e f g h"])              # nothing shared
    0.0
    """
    samples = _texts(samples, "samples")
    if len(samples) < 2:
        raise ValueError("self-BLEU needs at least two samples (each is scored against the others)")
    scores = [bleu([s], [samples[:i] + samples[i + 1:]], max_n, "exp", True, tokenize)
              for i, s in enumerate(samples)]
    return sum(scores) / len(scores)


@dataclass(frozen=True)
class SignedScore:
    """A sacrebleu corpus score with the signature that makes it reproducible."""

    score: float
    signature: str

    def __str__(self) -> str:
        return f"{self.score:.2f}  ({self.signature})"


def _sacre_refs(hyps: list[str], refs) -> list[list[str]]:
    """sacrebleu wants reference *streams*: streams[k][i] is the k-th reference of hypothesis i."""
    per_hyp = _references(hyps, refs)
    if len({len(r) for r in per_hyp}) != 1:
        raise ValueError("sacrebleu needs the same number of references for every hypothesis")
    return [list(stream) for stream in zip(*per_hyp, strict=True)]


def sacre_bleu(hyps: Sequence[str], refs, **options) -> SignedScore:
    """sacrebleu's corpus BLEU (default: 13a tokenizer, exp smoothing) and its signature."""
    from sacrebleu.metrics import BLEU

    hyps = _texts(hyps, "hyps")
    metric = BLEU(**options)
    return SignedScore(metric.corpus_score(hyps, _sacre_refs(hyps, refs)).score, str(metric.get_signature()))


def sacre_chrf(hyps: Sequence[str], refs, **options) -> SignedScore:
    """sacrebleu's corpus chrF (character 6-grams, β = 2: recall weighs more) and its signature."""
    from sacrebleu.metrics import CHRF

    hyps = _texts(hyps, "hyps")
    metric = CHRF(**options)
    return SignedScore(metric.corpus_score(hyps, _sacre_refs(hyps, refs)).score, str(metric.get_signature()))


@dataclass(frozen=True)
class Score:
    """Precision, recall and their harmonic mean F1."""

    precision: float
    recall: float

    @property
    def fmeasure(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r > 0 else 0.0


def rouge_tokenize(text: str, stem: bool = False) -> list[str]:
    """ROUGE's tokens: lower-cased runs of [a-z0-9]; with ``stem``, Porter stems of words longer than 3.

    >>> rouge_tokenize("O Romeo, Romeo! wherefore art thou Romeo?")
    ['o', 'romeo', 'romeo', 'wherefore', 'art', 'thou', 'romeo']
    """
    tokens = re.sub(r"[^a-z0-9]+", " ", text.lower()).split()
    if stem:
        from nltk.stem import porter

        stemmer = porter.PorterStemmer(porter.PorterStemmer.ORIGINAL_ALGORITHM)
        tokens = [stemmer.stem(t) if len(t) > 3 else t for t in tokens]
    return tokens


def rouge_n(hyp: str, ref: str, n: int = 1, stem: bool = False) -> Score:
    """ROUGE-n: shared n-grams (clipped counts) over the hypothesis's (precision) and the
    reference's (recall) n-grams."""
    h, r = Counter(ngrams(rouge_tokenize(hyp, stem), n)), Counter(ngrams(rouge_tokenize(ref, stem), n))
    shared = sum((h & r).values())
    return Score(shared / max(sum(h.values()), 1), shared / max(sum(r.values()), 1))


def lcs_length(a: Sequence, b: Sequence) -> int:
    """Length of the longest common subsequence (not necessarily contiguous), by dynamic programming.

    >>> lcs_length("the cat sat".split(), "the big cat ran".split())
    2
    """
    prev = [0] * (len(b) + 1)
    for x in a:
        row = [0]
        for j, y in enumerate(b):
            row.append(prev[j] + 1 if x == y else max(prev[j + 1], row[j]))
        prev = row
    return prev[-1]


def rouge_l(hyp: str, ref: str, stem: bool = False) -> Score:
    """ROUGE-L: LCS length over the hypothesis's and the reference's token counts."""
    h, r = rouge_tokenize(hyp, stem), rouge_tokenize(ref, stem)
    if not h or not r:
        return Score(0.0, 0.0)
    k = lcs_length(h, r)
    return Score(k / len(h), k / len(r))


@torch.no_grad()
def continuation_nll(model, tokenizer, prompts: Sequence[str], continuations: Sequence[str],
                     block_size: int | None = None, stride: int | None = None) -> list[torch.Tensor]:
    """Per-token NLLs (nats, float64) of each continuation given its prompt, under ``model``.

    Prompt and continuation are encoded together and scored by
    :func:`llm_lessons.evaluation.likelihood.corpus_token_nll` with sliding windows of ``block_size`` inputs
    (default ``model.block_size``) every ``stride`` tokens (default half the window); only the
    continuation's tokens are kept. exp(mean) is the continuation's perplexity under the
    reference model. (An n-gram model reads only its last order - 1 tokens, so give it a
    ``block_size`` that holds the whole text.)
    """
    from llm_lessons.evaluation.likelihood import corpus_token_nll

    prompts, continuations = _texts(prompts, "prompts"), _texts(continuations, "continuations")
    if len(prompts) != len(continuations):
        raise ValueError(f"{len(prompts)} prompts but {len(continuations)} continuations")
    docs, starts = [], []
    for i, (p, c) in enumerate(zip(prompts, continuations, strict=True)):
        ids_p, ids_c = tokenizer.encode(p), tokenizer.encode(c)
        if not ids_p or not ids_c:
            raise ValueError(f"pair {i}: prompt and continuation must each encode to >= 1 token")
        docs.append(ids_p + ids_c)
        starts.append(len(ids_p) - 1)  # nll[k] scores token k + 1: the continuation starts here
    T = block_size or block_size_of(model)
    nlls = corpus_token_nll(model, docs, T, stride if stride is not None else max(1, T // 2))
    return [nll[s:] for nll, s in zip(nlls, starts, strict=True)]


def dialogue_prompts(text: str, n: int, prompt_words: int = 4, reference_chars: int = 160,
                     seed: int = 0, prompt_chars: int | None = None) -> list[tuple[str, str]]:
    """n (prompt, reference) pairs cut from ``SPEAKER:\\nline`` dialogue at held-out places.

    Each cut falls after the first ``prompt_words`` words of a speech; the prompt is the
    speaker's name line and those words (or, with ``prompt_chars``, exactly that many
    characters before the cut, so that all prompts have one length and can be generated as a
    batch), and the reference is the ``reference_chars`` characters the play actually continues
    with. Speeches are drawn without replacement (seeded) and returned in text order.

    >>> dialogue_prompts("A:\\nTo be or not to be, that is the question.\\n", 1, 3, 10)
    [('A:\\nTo be or', ' not to be')]
    >>> dialogue_prompts("A:\\nTo be or not to be, that is the question.\\n", 1, 3, 10, prompt_chars=5)
    [('be or', ' not to be')]
    """
    n = check_int(n, "n", low=1)
    if prompt_words < 1 or reference_chars < 1:
        raise ValueError(f"need prompt_words, reference_chars >= 1, got {prompt_words}, {reference_chars}")
    if prompt_chars is not None and prompt_chars < 1:
        raise ValueError(f"prompt_chars must be >= 1 or None, got {prompt_chars}")
    cuts = []
    for m in re.finditer(r"(?m)^[^\n:]+:\n", text):
        words = list(re.finditer(r"\S+", text[m.end():m.end() + 200].split("\n")[0]))
        if len(words) > prompt_words:  # the prompt ends inside the speech's first line
            end = m.end() + words[prompt_words - 1].end()
            start = m.start() if prompt_chars is None else end - prompt_chars
            if start >= 0 and end + reference_chars <= len(text):
                cuts.append((start, end))
    if len(cuts) < n:
        raise ValueError(f"the text has only {len(cuts)} usable speeches, {n} requested")
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(cuts), n, replace=False).tolist())
    return [(text[a:e], text[e:e + reference_chars]) for a, e in (cuts[i] for i in chosen)]
