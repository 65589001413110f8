"""The checkers of the likelihood exercises (a causal model's log-probability of a text, a masked
LM's pseudo-log-likelihood, the MLM loss and masked accuracy): an independent solution passes, a
stub is "not implemented yet", each plausible wrong answer fails with words that name its
mistake, the references agree with the package's models and functions, and the package
functions that are the answer cannot be used to pass."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from checker_contract import contract
from torch import nn

from llm_lessons import mlm_decoding
from llm_lessons.bert import BertConfig, MaskedLM
from llm_lessons.evaluation import likelihood
from llm_lessons.exercises import likelihoods as lk
from llm_lessons.exercises.checking import ExerciseFailed
from llm_lessons.gpt import GPT, GPTConfig
from llm_lessons.transformer import lm_loss

# --- the log-probability of a text (chain rule) ---


def my_log_prob(logits, ids):
    return -F.cross_entropy(logits, ids[1:], reduction="sum").item()


def log_prob_unshifted(logits, ids):
    return -F.cross_entropy(logits, ids[:-1], reduction="sum").item()


def log_prob_of_raw_logits(logits, ids):
    return logits.gather(1, ids[1:, None]).sum().item()


def log_prob_over_positions(logits, ids):
    return logits.log_softmax(dim=0).gather(1, ids[1:, None]).sum().item()


def probability_product(logits, ids):
    return logits.softmax(-1).gather(1, ids[1:, None]).prod().item()


def log_prob_per_token(logits, ids):
    return -F.cross_entropy(logits, ids[1:]).item()


def log_prob_with_the_package(logits, ids):
    class Fixed(nn.Module):  # a "model" that answers with the given logits
        block_size = len(logits)

        def forward(self, idx, targets=None):
            return logits[None, : idx.shape[1]], None

    return -float(likelihood.corpus_token_nll(Fixed(), [ids])[0].sum())


# --- the pseudo-log-likelihood of a masked LM ---


def my_pll(logits_fn, ids, mask_id):
    total = 0.0
    for t in range(len(ids)):  # one forward pass per masked position
        hidden = ids.clone()
        hidden[t] = mask_id
        row = logits_fn(hidden[None])[0, t].double()
        row[mask_id] = -math.inf
        total += row.log_softmax(-1)[ids[t]].item()
    return total


def pll_unmasked(logits_fn, ids, mask_id):
    logits = logits_fn(ids[None])[0].double()  # (T, V)
    logits[:, mask_id] = -math.inf
    return logits.log_softmax(-1).gather(1, ids[:, None]).sum().item()


def pll_all_masked(logits_fn, ids, mask_id):
    logits = logits_fn(torch.full_like(ids, mask_id)[None])[0].double()
    logits[:, mask_id] = -math.inf
    return logits.log_softmax(-1).gather(1, ids[:, None]).sum().item()


def pll_with_mask_column(logits_fn, ids, mask_id):
    copies = ids.repeat(len(ids), 1)
    copies.fill_diagonal_(mask_id)
    logp = logits_fn(copies).log_softmax(-1)  # (T, T, V)
    return logp.diagonal(0, 0, 1).T.gather(1, ids[:, None]).sum().item()


def wrapped(logits_fn, V):
    class Wrapped(nn.Module):
        block_size, vocab_size = 16, V

        def forward(self, idx, targets=None):
            return logits_fn(idx), None

    return Wrapped()


def pll_with_the_package(logits_fn, ids, mask_id):
    V = logits_fn(ids[None]).shape[-1]
    return mlm_decoding.pseudo_log_likelihood(wrapped(logits_fn, V), ids, mask_id).item()


# --- the MLM loss ---


def my_mlm_loss(logits, targets):
    chosen = targets != -100
    logp = logits[chosen].log_softmax(-1)  # (N, V): the selected positions of every row
    return -logp.gather(1, targets[chosen][:, None]).mean()


def mlm_loss_with_torch(logits, targets):
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)


def mlm_loss_over_all_positions(logits, targets):
    total = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100, reduction="sum")
    return total / targets.numel()


def mlm_loss_per_sequence(logits, targets):
    rows = [F.cross_entropy(z, y, ignore_index=-100) for z, y in zip(logits, targets, strict=True)]
    return torch.stack(rows).mean()


def mlm_loss_summed(logits, targets):
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100, reduction="sum")


def mlm_loss_clamped(logits, targets):
    return F.cross_entropy(logits.flatten(0, 1), targets.clamp(min=0).flatten())


# --- masked accuracy ---


def my_accuracy(logits, targets):
    hits = selected = 0
    for z, y in zip(logits.reshape(-1, logits.shape[-1]), targets.flatten().tolist(), strict=True):
        if y != -100:
            selected += 1
            hits += int(z.argmax()) == y
    return hits / selected


def accuracy_of_all_positions(logits, targets):
    return (logits.argmax(-1) == targets).float().mean().item()


def accuracy_over_positions(logits, targets):
    chosen = targets != -100
    return ((logits.argmax(1) == targets) & chosen).sum().item() / chosen.sum().item()


def accuracy_per_sequence(logits, targets):
    chosen = targets != -100
    hits = (logits.argmax(-1) == targets) & chosen
    return (hits.sum(1) / chosen.sum(1)).mean().item()


CHECKERS = {
    lk.check_sequence_log_prob: (my_log_prob, [(log_prob_unshifted, "the NEXT token"),
                                               (log_prob_of_raw_logits, "summed raw logits"),
                                               (log_prob_over_positions, "over dim 0"),
                                               (probability_product, "product of the probabilities"),
                                               (log_prob_per_token, "averaged the log-probabilities")]),
    lk.check_pseudo_log_likelihood: (my_pll, [(pll_unmasked, "reads the answer"),
                                              (pll_all_masked, "masked every position at once"),
                                              (pll_with_mask_column, "includes the [MASK] column")]),
    lk.check_mlm_loss: (my_mlm_loss, [(mlm_loss_over_all_positions, "all B * T positions"),
                                      (mlm_loss_per_sequence, "averaged each sequence first"),
                                      (mlm_loss_summed, "is their MEAN"),
                                      (mlm_loss_clamped, "as token 0")]),
    lk.check_masked_accuracy: (my_accuracy, [(accuracy_of_all_positions, "dilute the accuracy"),
                                             (accuracy_over_positions, "raised RuntimeError"),
                                             (accuracy_per_sequence, "per-sequence accuracies")]),
}

(test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
 test_each_wrong_answer_is_named) = contract(CHECKERS)


def test_the_log_prob_reference_agrees_with_a_real_gpt():
    """On a tiny GPT's logits, the chain rule is minus the summed cross-entropy of the shifted text."""
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("nano", vocab_size=11, block_size=16, n_layer=1)).eval()
    ids = torch.randint(0, 11, (10,), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = model(ids[None, :-1])[0][0]  # (T, V): the inputs are every token but the last
    want = -F.cross_entropy(logits.double(), ids[1:], reduction="sum").item()
    assert math.isclose(lk._seq_logp(logits, ids), want, rel_tol=1e-9)
    assert math.isclose(my_log_prob(logits, ids), want, rel_tol=1e-5)


def test_the_package_nll_is_the_answer_and_is_refused():
    logits, ids = torch.randn(5, 7), torch.tensor([1, 6, 0, 3, 3, 2])
    assert math.isclose(log_prob_with_the_package(logits, ids), lk._seq_logp(logits, ids), rel_tol=1e-6)
    with pytest.raises(ExerciseFailed, match="solve it without calling .*corpus_token_nll"):
        lk.check_sequence_log_prob(log_prob_with_the_package)


def test_the_pll_reference_agrees_with_the_package_on_a_real_bert():
    torch.manual_seed(0)
    model = MaskedLM(BertConfig.preset("nano", vocab_size=10, block_size=8, n_layer=1)).eval()
    ids = torch.tensor([3, 1, 4, 1, 5, 2])

    def logits_fn(x):
        with torch.no_grad():
            return model(x)[0]

    want = mlm_decoding.pseudo_log_likelihood(model, ids, mask_id=9).item()
    assert math.isclose(lk._pll(logits_fn, ids, 9), want, rel_tol=1e-5)
    assert math.isclose(my_pll(logits_fn, ids, 9), want, rel_tol=1e-5)


def test_the_pll_reference_agrees_with_the_package_on_the_fake_mlm():
    logits_fn = lk.fake_mlm(8, torch.Generator().manual_seed(0))
    ids, mask_id = torch.tensor([0, 5, 2, 2, 6, 1, 4]), 7
    want = pll_with_the_package(logits_fn, ids, mask_id)
    assert math.isclose(lk._pll(logits_fn, ids, mask_id), want, rel_tol=1e-5)
    # the fake model reads its own position: a token it can see is far more likely
    assert pll_unmasked(logits_fn, ids, mask_id) > want + 1


def test_the_package_pll_is_the_answer_and_is_refused():
    with pytest.raises(ExerciseFailed, match="solve it without calling llm_lessons.mlm_decoding.pseudo_log"):
        lk.check_pseudo_log_likelihood(pll_with_the_package)


def test_the_mlm_loss_reference_is_cross_entropy_with_ignore_index():
    g = torch.Generator().manual_seed(0)
    logits, targets = lk._batch(g, 3, 7, 9)
    want = F.cross_entropy(logits.double().flatten(0, 1), targets.flatten(), ignore_index=-100).item()
    assert math.isclose(lk._mlm_loss(logits, targets), want, rel_tol=1e-12)
    assert math.isclose(lm_loss(logits, targets).item(), want, rel_tol=1e-5)  # the models' own loss
    assert "all 12 cases passed" in lk.check_mlm_loss(mlm_loss_with_torch)  # a fair answer
