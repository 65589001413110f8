"""The checkers of chapter 1's arithmetic of scale and chapter 2.4's text measures (the
compute-optimal size, a doubling time, distinct-n, BLEU's clipped precision): an independent
solution passes, a stub is "not implemented yet", each plausible wrong answer fails with words
that name its mistake, the checkers' references agree with the package's functions, and those
functions cannot be used to pass."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from checker_contract import contract

from llm_lessons import scale
from llm_lessons.evaluation import text_metrics, text_stats
from llm_lessons.exercises import scale_and_quality as sq
from llm_lessons.exercises.checking import ExerciseFailed

# --- the compute-optimal model ---


def my_compute_optimal(C):
    N = (C / 6 / 20) ** 0.5  # C = 6 N D with D = 20 N
    return N, 20 * N


def optimal_without_6(C):
    N = math.sqrt(C / 20)
    return N, 20 * N


def optimal_without_root(C):
    return C / 120, 20 * C / 120


def optimal_tokens_first(C):
    return 20 * math.sqrt(C / 120), math.sqrt(C / 120)


# --- the doubling time ---


def my_doubling_time(years, values):
    x = torch.tensor(years, dtype=torch.float64)
    A = torch.stack([torch.ones_like(x), x - x.mean()], dim=1)  # centred: a well-conditioned fit
    y = torch.tensor(values, dtype=torch.float64).log2()
    _, slope = torch.linalg.lstsq(A, y[:, None]).solution[:, 0].tolist()
    return 1 / slope


def doubling_with_ln(years, values):
    return my_doubling_time(years, [2 ** math.log(v) for v in values])  # fits ln(value)


def doublings_per_year(years, values):
    return 1 / my_doubling_time(years, values)


def doubling_from_endpoints(years, values):
    return (years[-1] - years[0]) / math.log2(values[-1] / values[0])


# --- distinct-n ---


def my_distinct_n(samples, n):
    counts = Counter(tuple(s[i:i + n]) for s in samples for i in range(len(s) - n + 1))
    total = sum(counts.values())
    return len(counts) / total if total else 0.0


def distinct_of_joined(samples, n):
    return my_distinct_n([[t for s in samples for t in s]], n)


def distinct_mean_per_sample(samples, n):
    return sum(my_distinct_n([s], n) for s in samples) / len(samples) if samples else 0.0


def distinct_hapaxes(samples, n):
    counts = Counter(tuple(s[i:i + n]) for s in samples for i in range(len(s) - n + 1))
    total = sum(counts.values())
    return sum(1 for c in counts.values() if c == 1) / total if total else 0.0


# --- BLEU's clipped precision ---


def my_clipped_precision(candidate, reference, n):
    grams = [tuple(candidate[i:i + n]) for i in range(len(candidate) - n + 1)]
    if not grams:
        return 0.0
    left = Counter(tuple(reference[i:i + n]) for i in range(len(reference) - n + 1))
    matched = 0
    for gram in grams:  # each reference n-gram can be matched once: the clipping
        if left[gram] > 0:
            left[gram] -= 1
            matched += 1
    return matched / len(grams)


def precision_unclipped(candidate, reference, n):
    grams = [tuple(candidate[i:i + n]) for i in range(len(candidate) - n + 1)]
    found = {tuple(reference[i:i + n]) for i in range(len(reference) - n + 1)}
    return sum(g in found for g in grams) / len(grams) if grams else 0.0


def precision_as_recall(candidate, reference, n):
    c = Counter(tuple(candidate[i:i + n]) for i in range(len(candidate) - n + 1))
    r = Counter(tuple(reference[i:i + n]) for i in range(len(reference) - n + 1))
    return sum((c & r).values()) / sum(r.values()) if r else 0.0


def precision_of_unigrams(candidate, reference, n):
    return my_clipped_precision(candidate, reference, 1)


CHECKERS = {
    sq.check_compute_optimal: (my_compute_optimal, [(optimal_without_6, "left out the 6"),
                                                    (optimal_without_root, "forgot the square root"),
                                                    (optimal_tokens_first, "you returned (D, N)")]),
    sq.check_doubling_time: (my_doubling_time, [(doubling_with_ln, "natural log"),
                                                (doublings_per_year, "doublings PER YEAR"),
                                                (doubling_from_endpoints, "first and the last point")]),
    sq.check_distinct_n: (my_distinct_n, [(distinct_of_joined, "join the samples"),
                                          (distinct_mean_per_sample, "averaged each sample's own ratio"),
                                          (distinct_hapaxes, "exactly once")]),
    sq.check_clipped_precision: (my_clipped_precision, [(precision_unclipped, "clip each"),
                                                        (precision_as_recall, "that is recall"),
                                                        (precision_of_unigrams, "single tokens")]),
}

(test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
 test_each_wrong_answer_is_named) = contract(CHECKERS)


def test_chinchillas_budget_gives_chinchilla():
    N, D = sq._optimal(scale.training_flops(70e9, 1.4e12))
    assert N == pytest.approx(70e9) and D == pytest.approx(1.4e12)
    assert D / N == pytest.approx(scale.CHINCHILLA_TOKENS_PER_PARAMETER)


def test_the_doubling_time_agrees_with_fit_log_growth():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        years = sorted((torch.rand(8, generator=g, dtype=torch.float64) * 12 + 2012).tolist())
        values = (2 ** (torch.tensor(years, dtype=torch.float64) / 1.5 - 1340
                        + torch.randn(8, generator=g, dtype=torch.float64))).tolist()
        fit = scale.fit_log_growth(years, values)
        assert sq._doubling(years, values) == pytest.approx(1 / fit.doublings_per_year, rel=1e-9)
        if fit.orders_per_year > 0:
            assert sq._doubling(years, values) == pytest.approx(fit.doubling_time_months / 12, rel=1e-9)


def test_distinct_n_agrees_with_the_package():
    g = torch.Generator().manual_seed(1)
    for _ in range(50):
        samples = [torch.randint(0, 3, (int(torch.randint(0, 9, (), generator=g)),), generator=g).tolist()
                   for _ in range(int(torch.randint(0, 5, (), generator=g)))]
        for n in (1, 2, 3):
            assert sq._distinct(samples, n) == pytest.approx(text_stats.distinct_n(samples, n))


def test_the_clipped_precision_agrees_with_bleu_and_rouge():
    """bleu(max_n=1) is 100 p_1 when the candidate is at least as long as the reference (no
    brevity penalty); BLEU of orders 1..n over BLEU of orders 1..n-1 then gives p_n. ROUGE-n's
    precision is the same clipped count."""
    pairs = [("the the the the the the the", "the cat is on the mat"),
             ("the cat sat on the mat and the cat sat", "the cat sat on a mat"),
             ("a b a b c a b c d", "a b c d a b")]
    for cand, ref in pairs:
        c, r = cand.split(), ref.split()
        assert sq._precision(c, r, 1) == pytest.approx(text_metrics.bleu([cand], [ref], max_n=1) / 100)
        for n in (1, 2, 3):
            assert sq._precision(c, r, n) == pytest.approx(text_metrics.rouge_n(cand, ref, n).precision)
        if all(sq._precision(c, r, n) > 0 for n in (1, 2, 3)):
            b2, b3 = (text_metrics.bleu([cand], [ref], max_n=k, smooth="none") / 100 for k in (2, 3))
            assert sq._precision(c, r, 3) == pytest.approx(b3 ** 3 / b2 ** 2)


def test_fit_log_growth_passes_when_held_in_a_closure():
    """The forbidden-name search does not see a function held in a closure: so the package's own
    fit, handed in that way, shows that the checker's answers are fit_log_growth's."""
    fit = scale.fit_log_growth
    assert sq.check_doubling_time(lambda years, values: 1 / fit(years, values).doublings_per_year
                                  ).endswith("passed")


def test_the_package_functions_that_are_the_answer_are_refused():
    with pytest.raises(ExerciseFailed, match="solve it without calling llm_lessons.scale.fit_log_growth"):
        sq.check_doubling_time(lambda x, values: 1 / scale.fit_log_growth(x, values).doublings_per_year)
    with pytest.raises(ExerciseFailed, match="solve it without calling llm_lessons.evaluation.text_stats"):
        sq.check_distinct_n(lambda samples, n: text_stats.distinct_n(samples, n))
    with pytest.raises(ExerciseFailed, match="solve it without calling llm_lessons.evaluation.text_metrics"):
        sq.check_clipped_precision(
            lambda c, r, n: text_metrics.rouge_n(" ".join(map(str, c)), " ".join(map(str, r)), n).precision)
    with pytest.raises(ExerciseFailed, match="solve it without calling llm_lessons.evaluation.text_metrics"):
        sq.check_clipped_precision(
            lambda c, r, n: text_metrics.bleu([" ".join(map(str, c))], [" ".join(map(str, r))], max_n=n))
    assert scale.fit_log_growth.__name__ == "fit_log_growth"  # put back afterwards


def test_importing_the_answer_is_refused_too():
    def with_ngrams(samples, n):
        from llm_lessons.evaluation.text_stats import ngrams

        grams = [g for s in samples for g in ngrams(s, n)]
        return len(set(grams)) / len(grams) if grams else 0.0

    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.evaluation.text_stats.ngrams"):
        sq.check_distinct_n(with_ngrams)
