"""Chapter 8.4's checkers (confident errors, the contamination rate, the cost of a training run):
an independent solution passes, a stub is "not implemented yet", each plausible wrong answer
fails with words that name its mistake, and the functions that are the answer cannot be used to
pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from checker_contract import contract

from llm_lessons import scale
from llm_lessons.evaluation import calibration, contamination
from llm_lessons.evaluation.contamination import overlap_fraction as imported_overlap
from llm_lessons.exercises.challenges import (
    check_confident_errors,
    check_contamination_rate,
    check_training_cost,
)
from llm_lessons.exercises.checking import ExerciseFailed
from llm_lessons.frontiers.scaling import exact_training_flops

# --- confidently wrong ---


def my_confident_errors(probs, targets, threshold):
    conf, pred = probs.max(dim=1)
    sure = conf >= threshold
    if not sure.any():
        return sure.float().mean().item(), 0.0
    return sure.float().mean().item(), (pred[sure] != targets[sure]).float().mean().item()


def confidence_of_the_target(probs, targets, threshold):
    conf = probs[torch.arange(len(targets)), targets]
    sure = conf >= threshold
    wrong = sure & (probs.argmax(1) != targets)
    return sure.float().mean().item(), wrong.sum().item() / max(int(sure.sum()), 1)


def strictly_above(probs, targets, threshold):
    conf, pred = probs.max(dim=1)
    sure = conf > threshold
    wrong = sure & (pred != targets)
    return sure.float().mean().item(), wrong.sum().item() / max(int(sure.sum()), 1)


def errors_over_everything(probs, targets, threshold):
    conf, pred = probs.max(dim=1)
    sure = conf >= threshold
    return sure.float().mean().item(), (sure & (pred != targets)).float().mean().item()


def confident_errors_by_package(probs, targets, threshold):
    conf, correct = calibration.confidences(probs, targets)
    sure = conf >= threshold
    return sure.float().mean().item(), (~correct[sure]).float().mean().nan_to_num().item()


# --- contamination ---


def my_overlap(train_docs, eval_docs, n):
    seen = set()
    for doc in train_docs:
        seen.update(tuple(doc[i:i + n]) for i in range(len(doc) - n + 1))
    hits = total = 0
    for doc in eval_docs:
        for i in range(len(doc) - n + 1):
            hits += tuple(doc[i:i + n]) in seen
            total += 1
    return hits / total


def overlap_of_joined_documents(train_docs, eval_docs, n):
    return my_overlap([sum(map(list, train_docs), [])], [sum(map(list, eval_docs), [])], n)


def overlap_of_distinct_ngrams(train_docs, eval_docs, n):
    seen = {tuple(d[i:i + n]) for d in train_docs for i in range(len(d) - n + 1)}
    grams = {tuple(d[i:i + n]) for d in eval_docs for i in range(len(d) - n + 1)}
    return len(grams & seen) / len(grams)


def mean_of_document_overlaps(train_docs, eval_docs, n):
    shares = [my_overlap(train_docs, [d], n) for d in eval_docs if len(d) >= n]
    return float(np.mean(shares))


def overlap_by_package(train_docs, eval_docs, n):
    vocab = {}
    ids = [[[vocab.setdefault(t, len(vocab)) for t in d] for d in docs] for docs in (train_docs, eval_docs)]
    return contamination.overlap_fraction(*ids, n)


# --- the cost of a training run ---


def my_training_cost(n_layer, n_embd, vocab_size, block_size, tokens, flops_per_joule):
    N = 12 * n_layer * n_embd ** 2 + (vocab_size + block_size) * n_embd
    C = 6 * N * tokens
    return N, C, C / flops_per_joule / 3.6e6


def cost_forward_only(n_layer, n_embd, vocab_size, block_size, tokens, flops_per_joule):
    N, C, _ = my_training_cost(n_layer, n_embd, vocab_size, block_size, tokens, flops_per_joule)
    return N, C / 3, C / 3 / flops_per_joule / 3.6e6


def cost_without_embeddings(n_layer, n_embd, vocab_size, block_size, tokens, flops_per_joule):
    N = 12 * n_layer * n_embd ** 2
    return N, 6 * N * tokens, 6 * N * tokens / flops_per_joule / 3.6e6


def cost_in_watt_hours(n_layer, n_embd, vocab_size, block_size, tokens, flops_per_joule):
    N, C, kwh = my_training_cost(n_layer, n_embd, vocab_size, block_size, tokens, flops_per_joule)
    return N, C, kwh * 1000


def cost_by_package(n_layer, n_embd, vocab_size, block_size, tokens, flops_per_joule):
    N = scale.gpt_param_count(n_layer, n_embd, vocab_size, block_size)
    C = scale.training_flops(N, tokens)
    return N, C, C / flops_per_joule / 3.6e6


# checker -> (a correct solution written here, [(a wrong answer, words its failure must say)])
CASES = {
    check_confident_errors: (my_confident_errors, [
        (confidence_of_the_target, "probability of the *target*"),
        (strictly_above, "use >=, not >"),
        (errors_over_everything, "divided the confident errors by all N"),
        (confident_errors_by_package, "without calling llm_lessons.evaluation.calibration.confidences"),
    ]),
    check_contamination_rate: (my_overlap, [
        (overlap_of_joined_documents, "run across document boundaries"),
        (overlap_of_distinct_ngrams, "each distinct evaluation n-gram once"),
        (mean_of_document_overlaps, "averaged the documents' shares"),
        (overlap_by_package,
         "without calling llm_lessons.evaluation.contamination.overlap_fraction"),
    ]),
    check_training_cost: (my_training_cost, [
        (cost_forward_only, "the forward pass alone"),
        (cost_without_embeddings, "leaves out the embeddings"),
        (cost_in_watt_hours, "watt-hours"),
        (cost_by_package, "without calling llm_lessons.scale.gpt_param_count"),
    ]),
}
(test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
 test_each_wrong_answer_is_named) = contract(CASES)


def test_the_references_match_the_package():
    # the checkers' definitions are the book's: pooled n-gram overlap, chapter 1's N and 6ND
    g = torch.Generator().manual_seed(0)
    train = [torch.randint(0, 4, (30,), generator=g).tolist() for _ in range(3)]
    evaluation = [torch.randint(0, 4, (12,), generator=g).tolist() for _ in range(4)]
    for n in (2, 3, 5):
        assert my_overlap(train, evaluation, n) == pytest.approx(
            contamination.overlap_fraction(train, evaluation, n))
    N, C, _ = my_training_cost(4, 128, 73, 64, 614_400, 1e9)
    assert N == scale.gpt_param_count(4, 128, 73, 64)
    assert C == pytest.approx(scale.training_flops(N, 614_400))
    # the exact count adds attention's scores, a few percent for the nano model
    assert 1.0 < exact_training_flops(4, 128, 64, 73, 614_400) / C < 1.2


def test_confidence_is_the_packages_top_probability():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.3, 0.3, 0.4]])
    targets = torch.tensor([1, 2])
    conf, correct = calibration.confidences(probs, targets)
    share, wrong = my_confident_errors(probs, targets, 0.5)
    assert share == float((conf >= 0.5).float().mean())
    assert wrong == float((~correct[conf >= 0.5]).float().mean())


def cheat_with_an_imported_overlap(train_docs, eval_docs, n):
    return imported_overlap(train_docs, eval_docs, n)  # bound before the check, so patching cannot reach it


def test_a_forbidden_function_held_under_a_global_name_is_caught():
    with pytest.raises(ExerciseFailed,
                       match="without calling llm_lessons.evaluation.contamination.overlap_fraction"):
        check_contamination_rate(cheat_with_an_imported_overlap)
