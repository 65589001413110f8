"""Linear probes on frozen features, with a control task: what does a representation encode?

Shapes use fixed letters: N examples, B batch, T time (characters), C channels (feature size),
K classes.

A *probe* is a small classifier trained on a frozen model's hidden vectors to predict some
property (here: which play a line of dialogue comes from). High probe accuracy suggests the
property is linearly readable from the representation, but a flexible enough probe can also
*learn the task itself*. Hewitt & Liang (2019) therefore pair every probing task with a
**control task**: the same inputs, with labels that are a random but fixed function of a
surface *type* of the input (here: of the line's first word), drawn from the task's own label
distribution. Only memorisation solves it. **Selectivity** = task accuracy − control accuracy:
a good probe (and a good representation) scores high on the task and low on the control.

The probe is multinomial logistic regression trained to convergence with L-BFGS in float64,
minimising mean cross-entropy + (l2 / 2)·‖W‖² (bias not penalised): the same objective as
scikit-learn's ``LogisticRegression(C=1 / (l2 · N))``, which the tests use as an oracle.

>>> X = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
>>> probe = LinearProbe(ProbeConfig(l2=1e-4)).fit(X, torch.tensor([0, 0, 1, 1]))
>>> probe.predict(torch.tensor([[0.2], [2.8]])).tolist()
[0, 1]
>>> control_labels(["and", "the", "and"], torch.tensor([0, 1, 1]), seed=0).tolist()  # one per type
[1, 0, 1]
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from llm_lessons.configs import Presets, block_size_of
from llm_lessons.reproducibility import eval_mode, model_device
from llm_lessons.validation import check_batch_size

#: ``default``: mildly regularised; ``strong``: a low-capacity probe (less memorisation).
PRESETS: dict[str, dict] = {"default": dict(), "strong": dict(l2=1e-1)}


@dataclass
class ProbeConfig(Presets):
    """L2 strength (per the mean loss), the L-BFGS budget, and the gradient size that ends it."""

    family: ClassVar[str] = "probe"
    presets: ClassVar[dict[str, dict]] = PRESETS

    l2: float = 1e-3
    max_iter: int = 1000
    tol: float = 1e-9

    def __post_init__(self):
        if self.l2 < 0 or self.max_iter < 1:
            raise ValueError(f"need l2 >= 0 and max_iter >= 1, got {self.l2}, {self.max_iter}")


def _xy(X: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    if not isinstance(X, Tensor) or X.dim() != 2 or X.shape[0] == 0:
        raise ValueError(f"features must be a (N, C) tensor with N >= 1, got {getattr(X, 'shape', type(X))}")
    if y is not None and (not isinstance(y, Tensor) or y.shape != X.shape[:1] or y.is_floating_point()):
        raise ValueError(f"labels must be an integer tensor (N,) = {tuple(X.shape[:1])}, "
                         f"got {getattr(y, 'shape', type(y))}")
    return X.detach().double(), y


class LinearProbe:
    """Multinomial logistic regression on standardised features (mean/std of the training set)."""

    def __init__(self, config: ProbeConfig | None = None):
        self.config = config or ProbeConfig()
        self.linear: nn.Linear | None = None

    def fit(self, X: Tensor, y: Tensor) -> LinearProbe:
        X, y = _xy(X, y)
        if int(y.min()) < 0:
            raise ValueError("labels must be >= 0")
        self.mean, self.std = X.mean(0), X.std(0, unbiased=False).clamp(min=1e-12)
        Z = (X - self.mean) / self.std  # (N, C)
        K = int(y.max()) + 1
        self.linear = nn.Linear(X.shape[1], K).double()
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)  # a convex problem: start at zero, deterministically
        opt = torch.optim.LBFGS(self.linear.parameters(), lr=1, max_iter=self.config.max_iter,
                                tolerance_grad=self.config.tol, tolerance_change=1e-16,
                                history_size=20, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = F.cross_entropy(self.linear(Z), y) + self.config.l2 / 2 * self.linear.weight.pow(2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        return self

    @torch.no_grad()
    def logits(self, X: Tensor) -> Tensor:
        if self.linear is None:
            raise RuntimeError("call fit(X, y) before predicting")
        X, _ = _xy(X)
        if X.shape[1] != self.linear.in_features:
            raise ValueError(f"features have C={X.shape[1]}, the probe was fitted on "
                             f"C={self.linear.in_features}")
        return self.linear((X - self.mean) / self.std)  # (N, C) -> (N, K)

    def predict(self, X: Tensor) -> Tensor:
        return self.logits(X).argmax(-1)

    def accuracy(self, X: Tensor, y: Tensor) -> float:
        _xy(X, y)
        return float((self.predict(X) == y).double().mean())


def control_labels(types: Sequence, labels: Tensor, seed: int = 0) -> Tensor:
    """Hewitt & Liang's control task: each distinct type gets one label, drawn (seeded) from the
    empirical distribution of ``labels``; every example then carries its type's label."""
    if len(types) != len(labels) or len(types) == 0:
        raise ValueError(f"need one type per label and at least one, got {len(types)} types, "
                         f"{len(labels)} labels")
    rng = np.random.default_rng(seed)
    K = int(labels.max()) + 1
    freq = np.bincount(labels.numpy(), minlength=K) / len(labels)
    table: dict = {}
    for t in types:  # first-seen order: reproducible for a given list
        if t not in table:
            table[t] = int(rng.choice(K, p=freq))
    return torch.tensor([table[t] for t in types])


def first_word(line: str) -> str:
    """A line's surface type for the control task: its first word, lower-cased, letters only.

    >>> first_word("  'Tis true, my lord."), first_word("O, Romeo")
    ("'tis", 'o')
    """
    words = re.findall(r"[a-z']+", line.lower())
    return words[0] if words else ""


@dataclass(frozen=True)
class ProbeResult:
    task_accuracy: float
    control_accuracy: float
    majority_baseline: float

    @property
    def selectivity(self) -> float:
        return self.task_accuracy - self.control_accuracy


def probe_with_control(train_X: Tensor, train_y: Tensor, train_types: Sequence,
                       test_X: Tensor, test_y: Tensor, test_types: Sequence,
                       config: ProbeConfig | None = None, seed: int = 0) -> ProbeResult:
    """Fit one probe on the task and one on its control (same features and config); test both."""
    control = control_labels(list(train_types) + list(test_types), torch.cat([train_y, test_y]), seed)
    c_train, c_test = control[:len(train_y)], control[len(train_y):]
    task = LinearProbe(config).fit(train_X, train_y).accuracy(test_X, test_y)
    ctrl = LinearProbe(config).fit(train_X, c_train).accuracy(test_X, c_test)
    majority = float((test_y == torch.bincount(train_y).argmax()).double().mean())
    return ProbeResult(task, ctrl, majority)


@torch.no_grad()
def pooled_features(model: nn.Module, tokenizer, texts: Sequence[str], batch_size: int = 64) -> Tensor:
    """(N, C) mean over positions of a frozen model's last hidden states, one row per text.

    Texts longer than ``model.block_size`` tokens are cut. A masked LM's ``encode`` gives the
    states (padding masked out); a GPT's are read at its final LayerNorm ``ln_f`` (right
    padding cannot affect earlier positions of a causal model).
    """
    if isinstance(texts, str) or len(texts) == 0:
        raise ValueError("texts must be a non-empty list of strings")
    check_batch_size(batch_size)
    T = block_size_of(model)
    ids = [tokenizer.encode(t)[:T] for t in texts]
    if any(len(i) == 0 for i in ids):
        raise ValueError("every text must encode to at least one token")
    captured = []
    hook = None
    if not hasattr(model, "encode"):
        if not hasattr(model, "ln_f"):
            raise TypeError(f"{type(model).__name__} has neither encode() nor ln_f to read "
                            "hidden states from")
        hook = model.ln_f.register_forward_hook(lambda mod, inp, out: captured.append(out))
    device = model_device(model)
    rows = []
    try:
        with eval_mode(model):
            for i in range(0, len(ids), batch_size):
                chunk = ids[i:i + batch_size]
                L = max(map(len, chunk))
                x = torch.zeros(len(chunk), L, dtype=torch.long)  # (B, L) right-padded with id 0
                mask = torch.zeros(len(chunk), L, dtype=torch.long)  # (B, L) 1 on real tokens
                for b, seq in enumerate(chunk):
                    x[b, :len(seq)], mask[b, :len(seq)] = torch.tensor(seq), 1
                if hook is None:
                    h = model.encode(x.to(device), attention_mask=mask.to(device))  # (B, L, C)
                else:
                    captured.clear()
                    model(x.to(device))
                    h = captured[0]  # (B, L, C)
                m = mask.to(h.device, h.dtype)[..., None]  # (B, L, 1)
                rows.append(((h * m).sum(1) / m.sum(1)).double().cpu())  # (B, L, C) -> (B, C)
    finally:
        if hook is not None:
            hook.remove()
    return torch.cat(rows)
