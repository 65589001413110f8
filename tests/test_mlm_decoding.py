"""MLM decoding and scoring, against hand-built toy models and independent loops."""

import itertools

import pytest
import torch
from torch import nn

from llm_lessons.bert import BertConfig, MaskedLM
from llm_lessons.mlm_decoding import (
    fill_mask,
    iterative_refinement,
    left_to_right_log_likelihood,
    prefix_constrained,
    pseudo_log_likelihood,
    top_predictions,
)

K = 6  # ordinary ids 0..5
MASK = 6
V = 7


class Successor(nn.Module):
    """A toy MLM of the common interface: at position t it predicts (x_{t-1} + 1) mod K, sure of
    it, when the left neighbour is visible; with no visible left neighbour it is unsure."""

    block_size = 12

    def forward(self, idx, targets=None):
        B, T = idx.shape
        logits = torch.zeros(B, T, V)
        logits[..., 0] = 0.5  # a weak default guess
        left = torch.cat([torch.full((B, 1), MASK), idx[:, :-1]], dim=1)  # (B, T)
        known = left != MASK
        nxt = (left.clamp(max=K - 1) + 1) % K
        logits[known] += 8 * nn.functional.one_hot(nxt[known], V).float()
        return logits, None


def _bert(seed=0, block_size=8):
    torch.manual_seed(seed)
    model = MaskedLM(BertConfig(vocab_size=V, block_size=block_size, n_layer=2, n_head=2, n_embd=16))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # sharpen the random model so its predictions differ clearly
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.3)
    return model.eval()


def test_independent_vs_left_to_right_filling():
    ids = torch.tensor([2, MASK, MASK, MASK, 0])
    model = Successor()
    # one pass: only the mask next to the visible 2 knows what it is
    assert fill_mask(model, ids, MASK).tolist() == [2, 3, 0, 0, 0]
    # one at a time: each filled token becomes the next one's left context
    assert fill_mask(model, ids, MASK, order="left_to_right").tolist() == [2, 3, 4, 5, 0]
    assert fill_mask(model, ids, MASK, order="confidence").tolist() == [2, 3, 4, 5, 0]
    batch = torch.stack([ids, torch.tensor([MASK, 1, MASK, 4, MASK])])
    out = fill_mask(model, batch, MASK, order="left_to_right")
    assert out.tolist() == [[2, 3, 4, 5, 0], [0, 1, 2, 4, 5]]


def test_confidence_order_fills_the_surest_mask_first():
    # masks at 0, 3, 4: the one after the visible 4 is sure (5) and goes first; then the one
    # after that 5 (sure: 0); the first mask, with no left neighbour, is least sure and comes last
    ids = torch.tensor([MASK, 2, 4, MASK, MASK])
    out = fill_mask(Successor(), ids, MASK, order="confidence")
    assert out.tolist() == [0, 2, 4, 5, 0]


def test_fill_mask_independent_is_one_argmax_pass_on_a_real_model():
    model = _bert()
    ids = torch.tensor([[1, MASK, 3, MASK, 0, MASK]])
    logits, _ = model(ids)
    logits[..., MASK] = float("-inf")
    want = torch.where(ids == MASK, logits.argmax(-1), ids)
    assert torch.equal(fill_mask(model, ids, MASK), want)
    for order in ("independent", "left_to_right", "confidence"):
        out = fill_mask(model, ids, MASK, order=order)
        assert (out != MASK).all() and torch.equal(out[ids != MASK], ids[ids != MASK])


def test_top_predictions_are_sorted_probabilities():
    model = _bert()
    ids = torch.tensor([1, MASK, 3, MASK])
    pos, tok, p = top_predictions(model, ids, MASK, k=3)
    assert pos.tolist() == [1, 3]
    logits, _ = model(ids[None])
    probs = logits[0, :, :MASK].softmax(-1)  # over ordinary ids only
    torch.testing.assert_close(p, probs[pos].topk(3).values)
    assert torch.equal(tok, probs[pos].topk(3).indices)


def test_iterative_refinement_schedule_and_fixed_positions():
    model = _bert()
    template = torch.tensor([3, MASK, MASK, MASK, MASK, 1, MASK, MASK])
    n_free = int((template == MASK).sum())
    I = 4
    r = iterative_refinement(model, template, I, MASK)
    assert r.tokens.shape == r.confidence.shape == r.masked.shape == (I, 8)
    want = [n_free] + [n_free * (I - i) // I for i in range(1, I)]
    assert r.masked.sum(dim=1).tolist() == want
    assert (r.tokens[:, template != MASK] == template[template != MASK]).all()
    assert (r.ids != MASK).all() and torch.equal(r.ids, r.tokens[-1])
    for i in range(1, I):
        # the positions re-masked for iteration i were the least confident after iteration i - 1
        conf = r.confidence[i - 1][template == MASK]
        remasked = r.masked[i][template == MASK]
        assert conf[remasked].max() <= conf[~remasked].min()
    # one iteration is exactly independent filling
    assert torch.equal(iterative_refinement(model, template, 1, MASK).ids, fill_mask(model, template, MASK))
    assert iterative_refinement(model, 5, 2, MASK).ids.shape == (5,)


def test_prefix_constrained_keeps_the_prefix():
    prefix = torch.tensor([[1, 2], [4, 5]])
    out = prefix_constrained(Successor(), prefix, 4, MASK)
    assert out.tolist() == [[1, 2, 3, 4, 5, 0], [4, 5, 0, 1, 2, 3]]
    model = _bert()
    for method in ("left_to_right", "iterative"):
        out = prefix_constrained(model, torch.tensor([1, 2, 3]), 5, MASK, method=method, iterations=3)
        assert out.shape == (8,) and out[:3].tolist() == [1, 2, 3] and (out != MASK).all()


def test_sampling_is_reproducible_with_a_generator():
    model = _bert()
    runs = [prefix_constrained(model, torch.tensor([1]), 7, MASK, temperature=1.0, top_k=4,
                               generator=torch.Generator().manual_seed(s)) for s in (0, 0, 1)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_pseudo_log_likelihood_equals_its_definition():
    model = _bert()
    ids = torch.tensor([[1, 4, 0, 3, 2, 5, 5], [0, 0, 1, 2, 3, 4, 1]])
    expected = torch.zeros(ids.shape)
    for b in range(ids.shape[0]):
        for t in range(ids.shape[1]):  # mask position t alone, read log p of the true token there
            x = ids[b].clone()
            x[t] = MASK
            logits, _ = model(x[None])
            expected[b, t] = logits[0, t, :MASK].log_softmax(-1)[ids[b, t]]
    torch.testing.assert_close(pseudo_log_likelihood(model, ids, MASK, reduction="none"), expected)
    torch.testing.assert_close(pseudo_log_likelihood(model, ids, MASK, batch_size=3), expected.sum(1))
    torch.testing.assert_close(pseudo_log_likelihood(model, ids[1], MASK), expected[1].sum())


def test_special_positions_are_not_scored():
    model = _bert()
    cls = 5  # pretend id 5 is a [CLS]-like special token
    ids = torch.tensor([cls, 1, 2, 3, 0])
    per = pseudo_log_likelihood(model, ids, MASK, special_ids=(cls,), reduction="none")
    assert per[0] == 0 and (per[1:] < 0).all()


def test_left_to_right_is_a_normalised_distribution_and_pll_is_not():
    """Summed over every sequence of length 3, chain-rule probabilities give exactly 1."""
    model = _bert(block_size=4)
    special = (3, 4, 5)  # leave 3 ordinary ids: 27 sequences
    seqs = torch.tensor(list(itertools.product(range(3), repeat=3)))
    chain = left_to_right_log_likelihood(model, seqs, MASK, special_ids=special).sum(1).exp().sum()
    pll = pseudo_log_likelihood(model, seqs, MASK, special_ids=special).exp().sum()
    assert abs(chain.item() - 1.0) < 1e-5
    assert abs(pll.item() - 1.0) > 0.01


def test_left_to_right_log_likelihood_reads_a_mask_after_the_prefix():
    model = _bert()
    ids = torch.tensor([2, 0, 4, 1])
    got = left_to_right_log_likelihood(model, ids, MASK)
    for t in range(4):
        probe = torch.cat([ids[:t], torch.tensor([MASK])])
        logits, _ = model(probe[None])
        assert abs(got[t] - logits[0, -1, :MASK].log_softmax(-1)[ids[t]]) < 1e-5


def test_bad_input():
    model = _bert()
    with pytest.raises(ValueError, match="no \\[MASK\\]"):
        fill_mask(model, torch.tensor([1, 2]), MASK)
    with pytest.raises(ValueError, match="without any \\[MASK\\]"):
        iterative_refinement(model, torch.tensor([[1, MASK], [1, 2]]), 2, MASK)
    with pytest.raises(ValueError, match="iterations"):
        iterative_refinement(model, 4, 0, MASK)
    with pytest.raises(ValueError, match="block_size"):
        iterative_refinement(model, 9, 2, MASK)
    with pytest.raises(ValueError, match="block_size"):
        prefix_constrained(model, torch.tensor([1, 2, 3]), 6, MASK)
    with pytest.raises(ValueError, match="block_size"):
        pseudo_log_likelihood(model, torch.zeros(9, dtype=torch.long), MASK)
    with pytest.raises(ValueError, match="mask_id"):
        fill_mask(model, torch.tensor([1, 2]), V)
    with pytest.raises(ValueError, match="order"):
        fill_mask(model, torch.tensor([1, MASK]), MASK, order="random")
    with pytest.raises(ValueError, match="temperature"):
        fill_mask(model, torch.tensor([1, MASK]), MASK, temperature=-1)
    with pytest.raises(ValueError, match="method"):
        prefix_constrained(model, torch.tensor([1]), 2, MASK, method="beam")
    with pytest.raises(TypeError, match="integer"):
        pseudo_log_likelihood(model, torch.tensor([1.0, 2.0]), MASK)
    with pytest.raises(TypeError, match="template"):
        iterative_refinement(model, [MASK, MASK], 2, MASK)
