"""The checkers of chapters 2.2, 2.3, 2.4b and 5 (greedy generation with a cropped context, the
MLM targets, BLEU's brevity penalty, the article's embedding read batch-first): an independent
solution passes, a stub is "not implemented yet", each plausible wrong answer fails with words
that name its mistake, and the functions that are the answer cannot be used to pass."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from checker_contract import contract

from llm_lessons import sampling
from llm_lessons.data import mask_tokens
from llm_lessons.evaluation import text_metrics
from llm_lessons.exercises.checking import ExerciseFailed
from llm_lessons.exercises.generation_steps import (
    check_brevity_penalty,
    check_embed_with_positions,
    check_greedy_generate,
    check_mlm_targets,
    fake_causal_lm,
)
from llm_lessons.exercises.transformer import sinusoidal_table
from llm_lessons.positional import sinusoidal_encoding

# --- greedy generation ---


def my_generate(logits_fn, ids, n_new, block_size):
    out = ids.tolist()
    for _ in range(n_new):
        context = torch.tensor(out[max(0, len(out) - block_size):])[None]  # (1, <= block_size)
        out.append(int(logits_fn(context)[0, -1].argmax()))
    return torch.tensor(out)


def generate_first_block(logits_fn, ids, n_new, block_size):
    for _ in range(n_new):
        nxt = logits_fn(ids[:block_size][None])[0, -1].argmax()
        ids = torch.cat([ids, nxt[None]])
    return ids


def generate_row_0(logits_fn, ids, n_new, block_size):
    for _ in range(n_new):
        nxt = logits_fn(ids[-block_size:][None])[0, 0].argmax()
        ids = torch.cat([ids, nxt[None]])
    return ids


def generate_new_only(logits_fn, ids, n_new, block_size):
    return my_generate(logits_fn, ids, n_new, block_size)[len(ids):]


def generate_never_cropped(logits_fn, ids, n_new, block_size):
    for _ in range(n_new):
        ids = torch.cat([ids, logits_fn(ids[None])[0, -1].argmax()[None]])
    return ids


class AsModel:  # the book's model interface around a logits function
    def __init__(self, logits_fn, block_size):
        self.logits_fn, self.block_size = logits_fn, block_size

    def __call__(self, idx):
        return self.logits_fn(idx), None


def generate_with_package(logits_fn, ids, n_new, block_size):
    model = AsModel(logits_fn, block_size)
    return sampling.generate(model, ids[None], n_new, greedy=True, use_cache=False)[0]


# --- the MLM targets ---


def my_targets(original, corrupted, selected):
    targets = torch.full_like(original, -100)
    targets[selected] = original[selected]
    return targets


def targets_zero_elsewhere(original, corrupted, selected):
    return original * selected


def targets_from_input(original, corrupted, selected):
    return torch.where(selected, corrupted, -100)


def targets_inverted(original, corrupted, selected):
    return torch.where(selected, -100, original)


def targets_where_changed(original, corrupted, selected):
    return torch.where(corrupted != original, original, -100)


# --- the brevity penalty ---


def my_bp(c, r):
    return 0.0 if c == 0 else min(1.0, math.exp(1 - r / c))


def bp_reversed(c, r):
    if c > r:
        return 1.0
    return math.exp(1 - c / r) if c else 0.0


def bp_always(c, r):
    return math.exp(1 - r / c) if c else 0.0


def bp_without_exp(c, r):
    if c > r:
        return 1.0
    return r / c if c else 0.0


def bp_with_package(c, r):
    cand, ref = " ".join(f"w{i}" for i in range(c)), " ".join(f"w{i}" for i in range(r))
    return text_metrics.bleu([cand], [ref]) / 100


# --- the embedding with positions ---


def my_embed(ids, table, pe):
    return F.embedding(ids, table) + pe[: ids.shape[1]].unsqueeze(0)  # (B, T, C) + (1, T, C)


def embed_like_the_listing(ids, table, pe):
    x = F.embedding(ids, table)  # (B, T, C), but the listing's PositionalEncoding takes dim 0 as time
    return x + pe[: x.size(0)].unsqueeze(1)  # (B, 1, C)


def embed_scaled(ids, table, pe):
    return F.embedding(ids, table) * math.sqrt(table.shape[1]) + pe[: ids.shape[1]]


def embed_without_positions(ids, table, pe):
    return table[ids]


CHECKERS = {
    check_greedy_generate: (my_generate, [(generate_first_block, "FIRST block_size tokens"),
                                          (generate_row_0, "took row 0"),
                                          (generate_new_only, "only the new tokens")]),
    check_mlm_targets: (my_targets, [(targets_zero_elsewhere, "put 0 at the unselected"),
                                     (targets_from_input, "corrupted input"),
                                     (targets_inverted, "selection is inverted"),
                                     (targets_where_changed, "only where the input changed")]),
    check_brevity_penalty: (my_bp, [(bp_reversed, "ratio is reversed"), (bp_always, "longer candidates too"),
                                    (bp_without_exp, "r / c without the exponential")]),
    check_embed_with_positions: (my_embed, [(embed_like_the_listing, "batch was read as time"),
                                            (embed_scaled, "sqrt(C)"),
                                            (embed_without_positions, "token vectors alone")]),
}

(test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
 test_each_wrong_answer_is_named) = contract(CHECKERS)


def test_the_fake_model_refuses_what_a_real_one_refuses():
    model = fake_causal_lm(7, 4, torch.Generator().manual_seed(0))
    assert model(torch.tensor([[1, 2, 3, 4]])).shape == (1, 4, 7)
    with pytest.raises(ValueError, match="at most block_size = 4"):
        model(torch.tensor([[1, 2, 3, 4, 5]]))
    with pytest.raises(ValueError, match=r"ids\[None\]"):
        model(torch.tensor([1, 2]))
    # where a token sits matters (learned positions), so the window must be the last tokens
    assert not torch.allclose(model(torch.tensor([[3, 5]]))[0, -1], model(torch.tensor([[0, 3, 5]]))[0, -1])


def test_never_cropping_fails_with_the_models_own_error():
    with pytest.raises(ExerciseFailed, match="raised ValueError: this model reads at most block_size"):
        check_greedy_generate(generate_never_cropped)


def test_the_generation_checker_agrees_with_the_package_decoder():
    """Outside the check, sampling.generate(greedy=True) gives the checker's answers; inside, it
    is refused."""
    g = torch.Generator().manual_seed(5)
    for V, block_size, T0, n_new in [(6, 3, 2, 6), (9, 4, 7, 5), (5, 1, 3, 3)]:
        model, ids = fake_causal_lm(V, block_size, g), torch.randint(0, V, (T0,), generator=g)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a prompt longer than block_size is cropped, with a warning
            assert torch.equal(generate_with_package(model, ids, n_new, block_size),
                               my_generate(model, ids, n_new, block_size))
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.sampling.generate"):
        check_greedy_generate(generate_with_package)


def test_the_targets_checker_agrees_with_mask_tokens():
    """The labels of data.mask_tokens are exactly the targets of its selection."""
    ids = torch.randint(4, 30, (200,), generator=torch.Generator().manual_seed(0))
    inputs, labels = mask_tokens(ids, mask_id=3, vocab_size=30, special_ids=(0, 1, 2), p=0.3,
                                 generator=torch.Generator().manual_seed(1))
    assert ((inputs == ids) & (labels != -100)).any()  # some selected tokens stay unchanged
    assert torch.equal(my_targets(ids, inputs, labels != -100), labels)


def test_the_brevity_penalty_checker_agrees_with_bleu_and_sacrebleu():
    """BLEU of a prefix of the reference (every n-gram precision 1) is 100 times the penalty;
    sacrebleu's compute_bleu reports the same penalty; inside the check both are refused."""
    from sacrebleu.metrics.bleu import BLEU

    for c, r in [(0, 5), (4, 5), (5, 5), (6, 5), (1, 10), (10, 1), (9, 12)]:
        assert math.isclose(BLEU.compute_bleu([1] * 4, [1] * 4, c, r).bp, my_bp(c, r), rel_tol=1e-12)
        if 4 <= c <= r:
            assert math.isclose(bp_with_package(c, r), my_bp(c, r), rel_tol=1e-9)
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.evaluation.text_metrics.bleu"):
        check_brevity_penalty(bp_with_package)
    with pytest.raises(ExerciseFailed, match="without calling sacrebleu.metrics.bleu.BLEU.compute_bleu"):
        check_brevity_penalty(lambda c, r: BLEU.compute_bleu([1] * 4, [1] * 4, c, r).bp)
    assert isinstance(vars(BLEU)["compute_bleu"], staticmethod)  # put back as it was


def test_the_positions_are_the_books_and_the_listings_layout_fix_is_right():
    """The checker's tables are positional.sinusoidal_encoding; the listing's PositionalEncoding
    (pe of shape (max_len, 1, C), data (T, B, C)) gives the right answer once the batch is
    transposed to sequence-first at the boundary (defect 5's fix)."""
    for n, C in [(1, 2), (5, 4), (9, 16)]:
        torch.testing.assert_close(sinusoidal_table(n, C), sinusoidal_encoding(n, C))
    g = torch.Generator().manual_seed(0)
    ids, table = torch.randint(0, 11, (3, 7), generator=g), torch.randn(11, 8, generator=g)
    pe = sinusoidal_table(9, 8)  # (max_len, C)
    sequence_first = F.embedding(ids.T, table) + pe[:, None, :][: ids.shape[1]]  # (T, B, C)
    torch.testing.assert_close(sequence_first.transpose(0, 1), my_embed(ids, table, pe))
    assert "all 12 cases passed" in check_embed_with_positions(
        lambda i, w, p: (F.embedding(i.T, w) + p[:, None, :][: i.shape[1]]).transpose(0, 1))
