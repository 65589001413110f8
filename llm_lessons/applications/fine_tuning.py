"""Fine-tuning a pretrained encoder for classification (微调): a head on the book's masked LM.

Shapes use fixed letters: N examples, B batch, T time (characters), C channels, K classes.

A pretrained encoder turns each position into a vector; a classifier needs one vector per
passage, so :class:`BertClassifier` averages them over the positions (mean pooling) and puts
one linear layer, the **classification head** (分类头), on top. :func:`fine_tune` then trains
every weight on the labels, the new head with a larger learning rate than the encoder, which
only needs nudging. The model keeps the book's interface, ``forward(idx, targets=None) ->
(logits, loss)``, so the same loss and evaluation code applies (6.4).

>>> from llm_lessons.bert import BertConfig, MaskedLM
>>> _ = torch.manual_seed(0)
>>> encoder = MaskedLM(BertConfig(vocab_size=5, block_size=8, n_layer=1, n_head=2, n_embd=8))
>>> clf = BertClassifier(encoder, n_classes=3)
>>> logits, loss = clf(torch.zeros(4, 8, dtype=torch.long), torch.tensor([0, 1, 2, 0]))
>>> tuple(logits.shape), loss.dim()
((4, 3), 0)
>>> predict(clf, torch.zeros(2, 8, dtype=torch.long)).shape
(2,)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from llm_lessons.reproducibility import eval_mode, model_device
from llm_lessons.validation import check_batch_size, check_int, check_real


class BertClassifier(nn.Module):
    """A pretrained :class:`~llm_lessons.bert.MaskedLM` encoder, its vectors averaged over the
    positions and a linear layer on top: ``forward(idx, targets=None) -> (logits (B, K), loss)``.
    """

    def __init__(self, encoder: nn.Module, n_classes: int):
        super().__init__()
        if not hasattr(encoder, "encode") or not hasattr(encoder, "block_size"):
            raise TypeError(f"encoder must be a MaskedLM (with encode and block_size), got "
                            f"{type(encoder).__name__}")
        self.encoder = encoder
        self.block_size = encoder.block_size
        self.head = nn.Linear(encoder.config.n_embd, check_int(n_classes, "n_classes", low=2))

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        x = self.encoder.encode(idx)  # (B, T) -> (B, T, C)
        logits = self.head(x.mean(1))  # (B, T, C) -> (B, C) -> (B, K)
        if targets is None:
            return logits, None
        if targets.shape != logits.shape[:1]:
            raise ValueError(f"targets shape {tuple(targets.shape)} must be ({logits.shape[0]},)")
        return logits, F.cross_entropy(logits, targets)


@dataclass
class FineTuneConfig:
    """Steps, batch and AdamW settings of :func:`fine_tune`; ``preset("cpu" | "gpu")``. The new
    head starts from random weights and gets a larger learning rate (``head_lr``) than the
    pretrained encoder (``lr``), which only needs nudging."""

    steps: int = 60
    batch_size: int = 32
    lr: float = 5e-4
    head_lr: float = 3e-3
    weight_decay: float = 0.01
    seed: int = 0
    presets: ClassVar[dict[str, dict]] = {"cpu": {}, "gpu": dict(steps=300, batch_size=64)}

    def __post_init__(self):
        check_int(self.steps, "steps", low=1)
        check_batch_size(self.batch_size)
        check_real(self.lr, "lr", low=0.0, low_open=True)
        check_real(self.head_lr, "head_lr", low=0.0, low_open=True)
        check_real(self.weight_decay, "weight_decay", low=0.0)

    @classmethod
    def preset(cls, name: str, **overrides) -> FineTuneConfig:
        if name not in cls.presets:
            raise ValueError(f"unknown preset {name!r}; choose from {sorted(cls.presets)}")
        return cls(**{**cls.presets[name], **overrides})


def fine_tune(model: nn.Module, ids: torch.Tensor, labels: torch.Tensor,
              config: FineTuneConfig | None = None) -> list[float]:
    """Train every weight of ``model`` (a :class:`BertClassifier`) on (ids (N, T), labels (N,))
    with AdamW, batches drawn by a generator seeded from the config (the same batches on every
    machine). Returns the losses.
    """
    config = config or FineTuneConfig()
    if ids.dim() != 2 or labels.shape != ids.shape[:1] or len(ids) == 0:
        raise ValueError(f"need ids (N, T) and labels (N,), got {tuple(ids.shape)} and "
                         f"{tuple(labels.shape)}")
    device = model_device(model)
    g = torch.Generator().manual_seed(config.seed)
    groups = [{"params": model.encoder.parameters(), "lr": config.lr},
              {"params": model.head.parameters(), "lr": config.head_lr}]
    opt = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    model.train()
    losses = []
    for _ in range(config.steps):
        rows = torch.randint(len(ids), (config.batch_size,), generator=g)
        _, loss = model(ids[rows].to(device), labels[rows].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    return losses


@torch.no_grad()
def predict(model: nn.Module, ids: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """The model's class for each row of ids (N, T): (N,) int64, computed in eval mode."""
    if ids.dim() != 2 or len(ids) == 0:
        raise ValueError(f"ids must be a non-empty (N, T) tensor, got shape {tuple(ids.shape)}")
    device, out = model_device(model), []
    with eval_mode(model):
        for i in range(0, len(ids), check_batch_size(batch_size)):
            logits, _ = model(ids[i:i + batch_size].to(device))  # (B, K)
            out.append(logits.argmax(1).cpu())
    return torch.cat(out).numpy()
