"""LoRA: fine-tune a frozen model through a low-rank update of chosen weight matrices.

Shapes use fixed letters: B batch, T time, r the adapter's rank; a Linear maps ``in`` to ``out``.

Full fine-tuning updates every weight, and stores a whole new model per task. LoRA (Hu et al.,
2021) freezes each chosen weight W (out x in) and learns ``W + (alpha / r) B A`` instead, with
A (r x in) and B (out x r) for a small rank r: r (in + out) trainable numbers instead of
in x out. B starts at zero, so training starts from the pretrained model exactly; A starts
random (Kaiming-uniform, as in ``peft``), so the first gradient of B is not zero. After training
the update can be **merged** into W: the adapted model then costs nothing extra to run.

>>> layer = LoRALinear(nn.Linear(8, 6), r=2, alpha=4)
>>> sum(p.numel() for p in layer.parameters() if p.requires_grad)   # r * (8 + 6), not 8 * 6 + 6
28
>>> x = torch.randn(3, 8)
>>> torch.equal(layer(x), layer.base(x))          # B = 0: the adapted layer starts as the base
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from llm_lessons.validation import check_int, check_real


class LoRALinear(nn.Module):
    """``base(x) + (alpha / r) * dropout(x) A^T B^T`` around a frozen ``nn.Linear``."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRA wraps an nn.Linear, got {type(base).__name__}")
        check_int(r, "r", low=1, high=min(base.in_features, base.out_features),
                  reason="a rank above the matrix's smaller side adds nothing")
        check_real(alpha, "alpha", low=0.0, low_open=True)
        self.base, self.r, self.scaling = base, r, alpha / r
        for p in base.parameters():
            p.requires_grad_(False)
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, device=base.weight.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, device=base.weight.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # nn.Linear's own init, as peft does
        self.dropout = nn.Dropout(dropout)
        self.merged = False

    def delta_weight(self) -> torch.Tensor:
        """The update ``(alpha / r) B A`` (out x in), of rank at most r."""
        return self.scaling * self.lora_B @ self.lora_A

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., in) -> (..., out)."""
        y = self.base(x)
        if self.merged:  # the update already lives in base.weight
            return y
        return y + (self.dropout(x) @ self.lora_A.T @ self.lora_B.T) * self.scaling  # (..., r) -> (..., out)

    @torch.no_grad()
    def merge(self) -> None:
        if not self.merged:
            self.base.weight += self.delta_weight()
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        if self.merged:
            self.base.weight -= self.delta_weight()
            self.merged = False


def add_lora(model: nn.Module, targets: Sequence[str], r: int = 8, alpha: float = 16.0,
             dropout: float = 0.0) -> list[str]:
    """Freeze every parameter of ``model`` and wrap each ``nn.Linear`` whose name ends with one of
    ``targets`` (e.g. ``("attn.qkv", "attn.proj")`` for the GPT's attention) in a LoRALinear.

    Returns the wrapped modules' names; an empty match is an error, not a silent no-op.
    """
    for p in model.parameters():
        p.requires_grad_(False)
    chosen = [name for name, module in model.named_modules()
              if isinstance(module, nn.Linear) and any(name == t or name.endswith("." + t) for t in targets)]
    if not chosen:
        linears = sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules()
                          if isinstance(m, nn.Linear)})
        raise ValueError(f"no nn.Linear matches {list(targets)}; the model's linear layers end in {linears}")
    for name in chosen:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(getattr(parent, child), r, alpha, dropout))
    return chosen


def lora_layers(model: nn.Module) -> list[LoRALinear]:
    return [m for m in model.modules() if isinstance(m, LoRALinear)]


def merge_lora(model: nn.Module) -> None:
    """Fold every adapter into its weight: same outputs, no extra cost per token."""
    for layer in lora_layers(model):
        layer.merge()


def unmerge_lora(model: nn.Module) -> None:
    """Take every merged update back out of its weight (to train or swap adapters again)."""
    for layer in lora_layers(model):
        layer.unmerge()


def trainable_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts; ``parameters()`` yields a shared (tied) tensor once."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
