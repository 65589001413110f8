"""Calibration: when a model says "70 % sure", is it right 70 % of the time?

Shapes use fixed letters: N predictions, V vocabulary (classes), T time, B batch.

A prediction's *confidence* is the probability of its top choice, max_v p(v); it is *correct*
when that top choice is the target. Sort the N predictions into M equal-width confidence bins
B_1..B_M; in each, compare the mean confidence with the accuracy. The expected calibration
error (ECE, Naeini et al., 2015; Guo et al., 2017) is their gap averaged with the bins' shares
of the predictions:

    ECE = Σ_m (|B_m| / N) · |acc(B_m) - conf(B_m)|           (norm "l1")
    MCE = max_m |acc(B_m) - conf(B_m)|                         (norm "max")

Binning follows torchmetrics exactly (so the two agree to rounding): edges linspace(0, 1, M+1),
bin m holds confidences in [e_m, e_{m+1}), and a confidence of exactly 1 gets its own last bin.
A *reliability diagram* draws acc(B_m) against conf(B_m): a calibrated model sits on the diagonal.

>>> conf = torch.tensor([0.9, 0.9, 0.6, 0.6])
>>> correct = torch.tensor([True, True, True, False])
>>> round(expected_calibration_error(conf, correct, n_bins=10), 6)  # 0.5*|1-.9| + 0.5*|.5-.6|
0.1
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from llm_lessons.configs import block_size_of
from llm_lessons.reproducibility import eval_mode, model_device
from llm_lessons.validation import check_batch_size, check_int


def confidences(probs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """(confidence (N,), correct (N,)) from class probabilities (N, V) and targets (N,).

    >>> confidences(torch.tensor([[0.2, 0.8], [0.6, 0.4]]), torch.tensor([1, 1]))
    (tensor([0.8000, 0.6000]), tensor([ True, False]))
    """
    if not isinstance(probs, Tensor) or probs.dim() != 2 or not probs.is_floating_point():
        raise ValueError(f"probs must be a float tensor (N, V), got {getattr(probs, 'shape', type(probs))}")
    if not isinstance(targets, Tensor) or targets.shape != probs.shape[:1]:
        raise ValueError(f"targets must be a tensor (N,) = {tuple(probs.shape[:1])}, "
                         f"got {getattr(targets, 'shape', type(targets))}")
    if probs.numel() and (probs.min() < 0 or (probs.sum(-1) - 1).abs().max() > 1e-3):
        raise ValueError("probs rows must be probability distributions (>= 0, summing to 1): "
                         "apply softmax to logits first")
    conf, pred = probs.max(dim=-1)
    return conf, pred == targets


@dataclass(frozen=True)
class ReliabilityBins:
    """Per-bin statistics (M + 1 entries: the M bins and the "exactly 1" bin); empty bins have
    count 0 and confidence/accuracy 0."""

    edges: Tensor        # (M + 1,) bin edges from 0 to 1
    count: Tensor        # (M + 1,) predictions per bin
    confidence: Tensor   # (M + 1,) mean confidence per bin
    accuracy: Tensor     # (M + 1,) fraction correct per bin

    @property
    def weight(self) -> Tensor:
        return self.count / self.count.sum()

    @property
    def gap(self) -> Tensor:
        """|accuracy - confidence| per bin (0 for empty bins)."""
        return (self.accuracy - self.confidence).abs()

    def ece(self) -> float:
        return float((self.weight * self.gap).sum())

    def mce(self) -> float:
        return float(self.gap[self.count > 0].max())


def _check(conf: Tensor, correct: Tensor, n_bins: int) -> tuple[Tensor, Tensor]:
    conf, correct = torch.as_tensor(conf), torch.as_tensor(correct)
    if conf.dim() != 1 or correct.shape != conf.shape:
        raise ValueError(f"confidences and correct must be 1-D of the same length, got "
                         f"{tuple(conf.shape)} and {tuple(correct.shape)}")
    if conf.numel() == 0:
        raise ValueError("no predictions: confidences is empty")
    if not conf.is_floating_point() or conf.min() < 0 or conf.max() > 1:
        raise ValueError("confidences must be floats in [0, 1]")
    check_int(n_bins, "n_bins", low=1)
    return conf, correct.to(conf.dtype)


def reliability_bins(conf: Tensor, correct: Tensor, n_bins: int = 15) -> ReliabilityBins:
    """Bin (N,) confidences and correctness into ``n_bins`` equal-width bins (see module docstring).

    >>> b = reliability_bins(torch.tensor([0.1, 0.15, 0.95]), torch.tensor([0, 1, 1]), n_bins=2)
    >>> b.count.tolist(), [round(x, 3) for x in b.confidence.tolist()], b.accuracy.tolist()
    ([2.0, 1.0, 0.0], [0.125, 0.95, 0.0], [0.5, 1.0, 0.0])
    """
    conf, correct = _check(conf, correct, n_bins)
    edges = torch.linspace(0, 1, n_bins + 1, dtype=conf.dtype)
    index = torch.bucketize(conf, edges, right=True) - 1  # (N,) bin of each prediction
    count = torch.zeros(n_bins + 1, dtype=conf.dtype).scatter_add_(0, index, torch.ones_like(conf))
    total_conf = torch.zeros_like(count).scatter_add_(0, index, conf)
    total_correct = torch.zeros_like(count).scatter_add_(0, index, correct)
    safe = count.clamp(min=1)  # empty bins: 0 / 1 = 0
    return ReliabilityBins(edges, count, total_conf / safe, total_correct / safe)


def expected_calibration_error(conf: Tensor, correct: Tensor, n_bins: int = 15, norm: str = "l1") -> float:
    """ECE (``norm="l1"``) or MCE (``norm="max"``) of N predictions; see the module docstring."""
    bins = reliability_bins(conf, correct, n_bins)
    if norm == "l1":
        return bins.ece()
    if norm == "max":
        return bins.mce()
    raise ValueError(f"norm must be 'l1' or 'max', got {norm!r}")


@torch.no_grad()
def next_token_predictions(model: nn.Module, ids: Tensor, block_size: int | None = None,
                           batch_size: int = 64, temperature: float = 1.0) -> tuple[Tensor, Tensor, Tensor]:
    """Confidence, correctness and NLL (each (N,)) of a causal LM's next-token predictions.

    ``ids`` (L,) is cut into disjoint windows of ``block_size`` inputs; every token after the
    first in a full window is predicted once. The confidence is the top probability of
    softmax(logits / ``temperature``) (temperature scaling, Guo et al., 2017: one number that
    rescales confidence without changing which token is on top); correct means the top token
    is the actual next token.
    """
    if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or not temperature > 0:
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}")
    if not isinstance(ids, Tensor) or ids.dim() != 1 or ids.is_floating_point():
        raise ValueError(f"ids must be a 1-D integer tensor, got {getattr(ids, 'shape', type(ids))}")
    check_batch_size(batch_size)
    T = block_size or block_size_of(model)
    n = (len(ids) - 1) // T
    if n == 0:
        raise ValueError(f"ids has {len(ids)} tokens: need at least block_size + 1 = {T + 1}")
    x = ids[: n * T].view(n, T)  # (L',) -> (n, T) disjoint windows
    y = ids[1: n * T + 1].view(n, T)  # (n, T) next tokens
    device = model_device(model)  # the CPU for a uniform or n-gram model, which has no weights
    out = []
    with eval_mode(model):
        for i in range(0, n, batch_size):
            logits, _ = model(x[i:i + batch_size].to(device))  # (B, T, V)
            logp = F.log_softmax(logits.double() / temperature, dim=-1).cpu()
            conf, pred = logp.exp().max(dim=-1)  # (B, T)
            nll = -logp.gather(-1, y[i:i + batch_size, :, None]).squeeze(-1)  # (B, T, 1) -> (B, T)
            out.append((conf.flatten(), (pred == y[i:i + batch_size]).flatten(), nll.flatten()))
    return tuple(torch.cat(parts) for parts in zip(*out, strict=True))
