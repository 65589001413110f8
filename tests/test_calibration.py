"""ECE and reliability bins against torchmetrics; a calibrated simulation; next-token predictions."""

import math

import pytest
import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import multiclass_calibration_error

from llm_lessons.evaluation.calibration import (
    confidences,
    expected_calibration_error,
    next_token_predictions,
    reliability_bins,
)
from llm_lessons.evaluation.likelihood import UniformLM
from llm_lessons.gpt import GPT, GPTConfig


@pytest.mark.parametrize("n_bins", [1, 5, 10, 15, 33])
@pytest.mark.parametrize("norm", ["l1", "max"])
def test_matches_torchmetrics(n_bins, norm):
    g = torch.Generator().manual_seed(n_bins)
    for scale in (0.5, 3.0, 30.0):  # from nearly uniform to nearly one-hot (confidence 1.0 occurs)
        probs = (torch.randn(2000, 9, generator=g) * scale).softmax(-1)
        target = torch.randint(0, 9, (2000,), generator=g)
        ours = expected_calibration_error(*confidences(probs, target), n_bins=n_bins, norm=norm)
        theirs = multiclass_calibration_error(probs, target, num_classes=9, n_bins=n_bins, norm=norm)
        assert ours == pytest.approx(theirs.item(), abs=1e-6)


def test_exact_one_confidence_has_its_own_bin_like_torchmetrics():
    probs = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.55, 0.45]])
    target = torch.tensor([0, 1, 0])
    bins = reliability_bins(*confidences(probs, target), n_bins=2)
    assert bins.count.tolist() == [0.0, 1.0, 2.0]  # [0, .5), [.5, 1), exactly 1
    theirs = multiclass_calibration_error(probs, target, num_classes=2, n_bins=2).item()
    assert bins.ece() == pytest.approx(theirs) == pytest.approx(2 / 3 * 0.5 + 1 / 3 * 0.45)


def test_hand_worked_bins():
    conf = torch.tensor([0.05, 0.15, 0.25, 0.95, 0.85])
    correct = torch.tensor([0, 0, 1, 1, 0])
    bins = reliability_bins(conf, correct, n_bins=2)  # [0, .5): 3 predictions, [.5, 1): 2
    assert bins.count.tolist()[:2] == [3.0, 2.0]
    assert bins.confidence[0].item() == pytest.approx(0.15)
    assert bins.accuracy[0].item() == pytest.approx(1 / 3)
    assert bins.ece() == pytest.approx(3 / 5 * abs(1 / 3 - 0.15) + 2 / 5 * abs(0.5 - 0.9))
    assert expected_calibration_error(conf, correct, 2, "max") == pytest.approx(0.4)


def test_a_calibrated_predictor_has_small_ece_and_an_overconfident_one_does_not():
    g = torch.Generator().manual_seed(0)
    conf = torch.rand(200_000, generator=g, dtype=torch.float64)
    correct = torch.rand(200_000, generator=g, dtype=torch.float64) < conf  # right with probability conf
    assert expected_calibration_error(conf, correct) < 0.01
    over = conf.sqrt()  # claims more than it delivers
    assert expected_calibration_error(over, correct) > 0.1


def test_next_token_predictions_match_cross_entropy():
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("nano", vocab_size=11, block_size=8, n_layer=1))
    ids = torch.randint(0, 11, (8 * 5 + 3,))
    conf, correct, nll = next_token_predictions(model, ids, batch_size=2)
    assert conf.shape == correct.shape == nll.shape == (40,)  # 5 full windows; 2 leftover tokens unscored
    logits, _ = model(ids[:40].view(5, 8))
    expected = F.cross_entropy(logits.double().reshape(40, 11), ids[1:41], reduction="none")
    # float32 logits from batches of another size: equal to rounding (1e-7 holds on one CPU only)
    torch.testing.assert_close(nll, expected, rtol=1e-5, atol=1e-6)
    assert torch.equal(correct, logits.argmax(-1).flatten() == ids[1:41])
    hot_conf, hot_correct, hot_nll = next_token_predictions(model, ids, temperature=2.0)
    hot = F.cross_entropy(logits.double().reshape(40, 11) / 2, ids[1:41], reduction="none")
    torch.testing.assert_close(hot_nll, hot, rtol=1e-5, atol=1e-6)
    assert torch.equal(hot_correct, correct) and bool((hot_conf < conf).all())  # same argmax, less confident
    u_conf, _, u_nll = next_token_predictions(UniformLM(7, block_size=4), torch.arange(9) % 7)
    assert torch.allclose(u_conf, torch.full((8,), 1 / 7, dtype=torch.float64))
    assert torch.allclose(u_nll, torch.full((8,), math.log(7), dtype=torch.float64))


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="same length"):
        expected_calibration_error(torch.tensor([0.5, 0.6]), torch.tensor([True]))
    with pytest.raises(ValueError, match="empty"):
        expected_calibration_error(torch.tensor([]), torch.tensor([]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        expected_calibration_error(torch.tensor([1.5]), torch.tensor([True]))
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error(torch.tensor([0.5]), torch.tensor([True]), n_bins=0)
    with pytest.raises(ValueError, match="norm"):
        expected_calibration_error(torch.tensor([0.5]), torch.tensor([True]), norm="l3")
    with pytest.raises(ValueError, match="softmax"):
        confidences(torch.tensor([[2.0, -1.0]]), torch.tensor([0]))
    with pytest.raises(ValueError, match=r"targets must be a tensor \(N,\)"):
        confidences(torch.tensor([[0.5, 0.5]]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="block_size"):
        next_token_predictions(UniformLM(3, block_size=8), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="temperature"):
        next_token_predictions(UniformLM(3, block_size=2), torch.tensor([0, 1, 2]), temperature=0)
