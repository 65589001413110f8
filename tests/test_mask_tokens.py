"""BERT's 80/10/10 masking rule, checked by counting over a large batch."""

import pytest
import torch

from llm_lessons.data import mask_tokens

V = 1000
SPECIALS = (0, 1, 2, 3)
MASK = 1


def _batch(seed=0, shape=(256, 512)):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(len(SPECIALS), V, shape, generator=g)
    # sprinkle special tokens over ~10% of positions: they must never be selected
    specials = torch.rand(shape, generator=g) < 0.1
    ids[specials] = torch.randint(0, len(SPECIALS), (int(specials.sum()),), generator=g)
    return ids


def test_rates_match_15_percent_and_80_10_10():
    ids = _batch()
    inputs, labels = mask_tokens(ids, MASK, V, SPECIALS, p=0.15, generator=torch.Generator().manual_seed(1))
    eligible = ~torch.isin(ids, torch.tensor(SPECIALS))
    selected = labels != -100
    rate = selected.sum().item() / eligible.sum().item()
    assert abs(rate - 0.15) < 0.005
    n = selected.sum().item()
    as_mask = (selected & (inputs == MASK)).sum().item() / n
    unchanged = (selected & (inputs == ids)).sum().item() / n
    random = (selected & (inputs != MASK) & (inputs != ids)).sum().item() / n
    assert abs(as_mask - 0.8) < 0.01
    # a random draw equals the original with probability 1/996: "unchanged" gains ~0.0001
    assert abs(random - 0.1) < 0.01 and abs(unchanged - 0.1) < 0.01
    assert abs(as_mask + unchanged + random - 1.0) < 1e-12


def test_labels_specials_and_untouched_positions():
    ids = _batch(seed=2, shape=(64, 128))
    inputs, labels = mask_tokens(ids, MASK, V, SPECIALS, generator=torch.Generator().manual_seed(3))
    special = torch.isin(ids, torch.tensor(SPECIALS))
    assert special.any()
    assert (labels[special] == -100).all() and (inputs[special] == ids[special]).all()
    selected = labels != -100
    assert (labels[selected] == ids[selected]).all()
    assert (inputs[~selected] == ids[~selected]).all()
    # a random replacement is an ordinary token: never a special id, never the mask
    replaced = selected & (inputs != ids) & (inputs != MASK)
    assert replaced.any() and not torch.isin(inputs[replaced], torch.tensor(SPECIALS)).any()
    assert inputs.shape == ids.shape and inputs.dtype == ids.dtype and labels.dtype == ids.dtype


@pytest.mark.parametrize("p", [0.05, 0.5, 0.9])
def test_other_rates(p):
    ids = torch.randint(0, 50, (128, 256), generator=torch.Generator().manual_seed(4))
    _, labels = mask_tokens(ids, 50, 51, p=p, generator=torch.Generator().manual_seed(5))
    assert abs((labels != -100).float().mean().item() - p) < 0.01


def test_same_seed_same_masks_other_seed_other_masks():
    ids = _batch(seed=6, shape=(16, 64))
    a = mask_tokens(ids, MASK, V, SPECIALS, generator=torch.Generator().manual_seed(7))
    b = mask_tokens(ids, MASK, V, SPECIALS, generator=torch.Generator().manual_seed(7))
    c = mask_tokens(ids, MASK, V, SPECIALS, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])


def test_one_dimensional_and_int32_input():
    ids = torch.arange(4, 104, dtype=torch.int32)
    inputs, labels = mask_tokens(ids, MASK, V, SPECIALS, p=0.3, generator=torch.Generator().manual_seed(0))
    assert inputs.shape == (100,) and inputs.dtype == torch.int32
    assert 10 < (labels != -100).sum() < 50


def test_bad_input():
    ids = torch.tensor([[4, 5, 6]])
    for p in (0, 1, 1.5, -0.1):
        with pytest.raises(ValueError, match="p"):
            mask_tokens(ids, MASK, V, p=p)
    with pytest.raises(ValueError, match="mask_id"):
        mask_tokens(ids, V, V)
    with pytest.raises(ValueError, match="mask_id"):
        mask_tokens(ids, -1, V)
    with pytest.raises(ValueError, match="special_ids"):
        mask_tokens(ids, MASK, V, special_ids=(V + 3,))
    with pytest.raises(ValueError, match="range"):
        mask_tokens(torch.tensor([1, V]), MASK, V)
    with pytest.raises(TypeError, match="integer"):
        mask_tokens(ids.float(), MASK, V)
    with pytest.raises(ValueError, match="ordinary"):
        mask_tokens(torch.tensor([0, 1]), 1, 2, special_ids=(0,))
