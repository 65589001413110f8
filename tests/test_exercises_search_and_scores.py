"""The checkers of chapters 2.4 and 4.3's search and scoring exercises (min-p, the repetition
penalty, a beam-search step, windowed NLL, Cohen's κ): an independent solution passes, a stub is
"not implemented yet", each plausible wrong answer fails with words that name its mistake, and
the package function that is the answer cannot be used to pass."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from checker_contract import contract

from llm_lessons import beam_search, sampling
from llm_lessons.evaluation import agreement, likelihood
from llm_lessons.exercises import search_and_scores as ss
from llm_lessons.exercises.checking import ExerciseFailed

NEG_INF = float("-inf")


# --- min-p ---

def my_min_p(logits, p):
    probs = torch.softmax(logits, -1)
    return torch.where(probs >= p * probs.max(), logits, torch.full_like(logits, NEG_INF))


def min_p_unscaled(logits, p):
    return logits.masked_fill(torch.softmax(logits, -1) < p, NEG_INF)


def min_p_on_logits(logits, p):
    return logits.masked_fill(logits < p, NEG_INF)


def min_p_zeros(logits, p):
    probs = torch.softmax(logits, -1)
    return torch.where(probs >= p * probs.max(), logits, torch.zeros_like(logits))


# --- the repetition penalty ---

def my_penalty(logits, prev_ids, penalty):
    seen = torch.zeros(len(logits), dtype=torch.bool)
    seen[prev_ids] = True
    return torch.where(seen, torch.where(logits > 0, logits / penalty, logits * penalty), logits)


def penalty_divides_all(logits, prev_ids, penalty):
    out = logits.clone()
    for i in set(prev_ids.tolist()):
        out[i] = out[i] / penalty
    return out


def penalty_per_occurrence(logits, prev_ids, penalty):
    out = logits.clone()
    for i in prev_ids.tolist():
        out[i] = out[i] / penalty if out[i] > 0 else out[i] * penalty
    return out


def penalty_reversed(logits, prev_ids, penalty):
    seen = torch.zeros(len(logits), dtype=torch.bool)
    seen[prev_ids] = True
    return torch.where(seen, torch.where(logits > 0, logits * penalty, logits / penalty), logits)


def penalty_subtracted(logits, prev_ids, penalty):
    out = logits.clone()
    out[prev_ids.unique()] -= penalty
    return out


# --- one beam-search step ---

def my_beam_step(beams, next_logprobs, width):
    W, V = next_logprobs.shape
    totals = torch.tensor([score for _, score in beams], dtype=torch.float64)[:, None]  # (W, 1)
    flat = (totals + next_logprobs.double()).view(-1)  # (W, V) -> (W*V,)
    order = torch.sort(flat, descending=True, stable=True).indices[:width].tolist()
    return [(tuple(beams[c // V][0]) + (c % V,), flat[c].item()) for c in order]


def beam_greedy_per_beam(beams, next_logprobs, width):
    out = []
    for (tokens, score), row in zip(beams, next_logprobs, strict=True):
        best = int(row.argmax())
        out.append((tuple(tokens) + (best,), score + float(row[best])))
    return sorted(out, key=lambda c: -c[1])[:width]


def beam_without_previous_score(beams, next_logprobs, width):
    V = next_logprobs.shape[1]
    flat = next_logprobs.reshape(-1)
    order = torch.sort(flat, descending=True, stable=True).indices[:width].tolist()
    return [(tuple(beams[c // V][0]) + (c % V,), flat[c].item()) for c in order]


def beam_ascending(beams, next_logprobs, width):
    V = next_logprobs.shape[1]
    flat = (torch.tensor([s for _, s in beams])[:, None] + next_logprobs).view(-1)
    order = torch.sort(flat, stable=True).indices[:width].tolist()
    return [(tuple(beams[c // V][0]) + (c % V,), flat[c].item()) for c in order]


def beam_ties_to_the_last(beams, next_logprobs, width):
    cands = [(s + float(next_logprobs[b, v]), b, v) for b, (_, s) in enumerate(beams)
             for v in range(next_logprobs.shape[1])]
    cands.sort(reverse=True)
    return [(tuple(beams[b][0]) + (v,), s) for s, b, v in cands[:width]]


# --- windowed NLL ---

def my_windowed_nll(nll_fn, n_tokens, block_size, stride):
    total, scored_up_to = 0.0, 0  # predictions at positions < scored_up_to are counted
    for begin in range(0, n_tokens - 1, stride):
        end = min(begin + block_size, n_tokens - 1)
        total += sum(nll_fn(begin, end, scored_up_to))
        scored_up_to = end
        if end == n_tokens - 1:
            break
    return total


def windows_ignore_stride(nll_fn, n_tokens, block_size, stride):
    return sum(sum(nll_fn(b, min(b + block_size, n_tokens - 1), b))
               for b in range(0, n_tokens - 1, block_size))


def windows_score_everything(nll_fn, n_tokens, block_size, stride):
    total = 0.0
    for begin in range(0, n_tokens - 1, stride):
        end = min(begin + block_size, n_tokens - 1)
        total += sum(nll_fn(begin, end, begin))
        if end == n_tokens - 1:
            break
    return total


def windows_miss_the_last_token(nll_fn, n_tokens, block_size, stride):
    return my_windowed_nll(nll_fn, n_tokens - 1, block_size, stride) if n_tokens > 2 else 0.0


def windows_first_scores_only_stride(nll_fn, n_tokens, block_size, stride):
    total, prev = 0.0, 0
    for begin in range(0, n_tokens - 1, stride):
        end = min(begin + block_size, n_tokens - 1)
        total += sum(nll_fn(begin, end, max(prev, end - stride)))
        prev = end
        if end == n_tokens - 1:
            break
    return total


def windows_hugging_face_end(nll_fn, n_tokens, block_size, stride):  # end may reach n_tokens
    total, prev = 0.0, 0
    for begin in range(0, n_tokens, stride):
        end = min(begin + block_size, n_tokens)
        total += sum(nll_fn(begin, end, prev))
        prev = end
    return total


# --- Cohen's kappa ---

def my_kappa(a, b):
    n, labels = len(a), set(a) | set(b)
    p_o = sum(x == y for x, y in zip(a, b, strict=True)) / n
    p_e = sum(a.count(c) * b.count(c) for c in labels) / n ** 2
    return (p_o - p_e) / (1 - p_e)


def scotts_pi(a, b):
    n, labels = len(a), set(a) | set(b)
    p_o = sum(x == y for x, y in zip(a, b, strict=True)) / n
    p_e = sum(((a.count(c) + b.count(c)) / (2 * n)) ** 2 for c in labels)
    return (p_o - p_e) / (1 - p_e)


def kappa_uniform_chance(a, b):
    p_o = sum(x == y for x, y in zip(a, b, strict=True)) / len(a)
    p_e = 1 / len(set(a) | set(b))
    return (p_o - p_e) / (1 - p_e)


# checker -> (a correct solution written here, [(a wrong answer, words its failure must say)])
CASES = {
    ss.check_min_p: (my_min_p, [
        (min_p_unscaled, "p times the top token's probability"),
        (min_p_on_logits, "compared the logits with p"),
        (min_p_zeros, "not 0"),
        (lambda lg, p: sampling.min_p_filter(lg, p), "without calling llm_lessons.sampling.min_p_filter"),
    ]),
    ss.check_repetition_penalty: (my_penalty, [
        (penalty_divides_all, "MORE likely"),
        (penalty_per_occurrence, "penalised twice"),
        (penalty_subtracted, "subtracted the penalty"),
        (penalty_reversed, "favours repeats"),
        (lambda z, prev, r: sampling.apply_repetition_penalty(z, prev, r),
         "without calling llm_lessons.sampling.apply_repetition_penalty"),
    ]),
    ss.check_beam_step: (my_beam_step, [
        (beam_greedy_per_beam, "greedy per beam"),
        (beam_without_previous_score, "forgot to add the beam's previous score"),
        (beam_ascending, "sorted ascending"),
        (lambda bm, lp, w: my_beam_step(bm, lp, w)[::-1], "expected"),  # no hint: the first wrong case
        (beam_ties_to_the_last, "lower beam index"),
        (lambda bm, lp, w: beam_search.beam_search(None, None, 1, w),
         "without calling llm_lessons.beam_search.beam_search"),
    ]),
    ss.check_windowed_nll: (my_windowed_nll, [
        (windows_ignore_stride, "ignored the stride"),
        (windows_score_everything, "counted twice"),
        (windows_miss_the_last_token, "last token is never scored"),
        (windows_first_scores_only_stride, "the first window scored only its last stride"),
        (windows_hugging_face_end, "stop before the last token, which is only a target"),
        (lambda nll, n, bs, s: sum(sum(nll(w.start, w.stop, w.stop - w.n_scored))
                                   for w in likelihood.token_windows(n, bs, s)),
         "without calling llm_lessons.evaluation.likelihood.token_windows"),
    ]),
    ss.check_cohen_kappa: (my_kappa, [
        (scotts_pi, "Scott's pi"),
        (lambda a, b: sum(x == y for x, y in zip(a, b, strict=True)) / len(a), "observed agreement p_o"),
        (kappa_uniform_chance, "1 / (number of labels)"),
        (lambda a, b: agreement.cohen_kappa(a, b),
         "without calling llm_lessons.evaluation.agreement.cohen_kappa"),
    ]),
}
(test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
 test_each_wrong_answer_is_named) = contract(CASES)


def test_the_package_functions_agree_with_the_checkers():
    """The checkers' own references and the package's functions give the same answers (the
    package function is held in a closure, which the forbidden-name search does not see)."""
    min_p, penalty, kappa = sampling.min_p_filter, sampling.apply_repetition_penalty, agreement.cohen_kappa
    windows = likelihood.token_windows
    assert ss.check_min_p(lambda lg, p: min_p(lg, p)).endswith("passed")
    assert ss.check_repetition_penalty(lambda z, prev, r: penalty(z, prev, r)).endswith("passed")
    assert ss.check_cohen_kappa(lambda a, b: kappa(a, b)).endswith("passed")
    assert ss.check_windowed_nll(lambda nll, n, bs, s: sum(
        sum(nll(w.start, w.stop, w.stop - w.n_scored)) for w in windows(n, bs, s))).endswith("passed")


def test_one_beam_step_of_width_one_is_greedy():
    beams = [((3,), -0.5), ((4,), -0.7)]
    logprobs = torch.tensor([[0.6, 0.4], [0.9, 0.1]]).log()
    # beam 1 extended by token 0 scores -0.7 + log 0.9 = -0.805, beam 0's best -0.5 + log 0.6 = -1.011
    ((tokens, score),) = my_beam_step(beams, logprobs, 1)
    assert tokens == (4, 0) and abs(score - (-0.7 + torch.tensor(0.9).log().item())) < 1e-6
    assert ss.check_beam_step(my_beam_step).endswith("passed")


def test_the_fake_model_charges_for_short_context_and_refuses_impossible_windows():
    model = ss.fake_nll_fn(5, 3, torch.Generator().manual_seed(0))
    assert len(model(1, 4, 2)) == 2 and model(1, 4, 4) == []
    (long,), (short,) = model(1, 4, 3), model(3, 4, 3)  # position 3 predicted after 3 inputs, then 1
    assert short - long == pytest.approx(2 / 1 - 2 / 3)
    with pytest.raises(ValueError, match="only a target"):
        model(2, 5, 2)
    with pytest.raises(ValueError, match="more than block_size"):
        model(0, 4, 0)


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="scikit-learn not installed")
def test_scikit_learns_kappa_is_forbidden_even_when_imported_inside_the_function():
    def with_sklearn(a, b):
        from sklearn.metrics import cohen_kappa_score

        return cohen_kappa_score(a, b)

    with pytest.raises(ExerciseFailed, match="without calling sklearn.metrics.cohen_kappa_score"):
        ss.check_cohen_kappa(with_sklearn)
