"""The modern decoder: the book's GPT with Llama's substitutions, each one a config field.

Shapes use fixed letters: B batch, T time, C channels (``n_embd``), V vocabulary.

Every open model a reader meets after this book (Llama, Mistral, Qwen, DeepSeek) is GPT-2's
pre-norm decoder with the same few substitutions:

- LayerNorm with a bias becomes **RMSNorm** without one (field ``norm_eps``);
- the GELU MLP, 4C wide, becomes **SwiGLU**, about (2/3)(4C) wide (``ffn_hidden``);
- learned absolute positions become **RoPE** on queries and keys (``rope_base``);
- nh key/value heads become nkv <= nh, **grouped-query attention** (``n_kv_head``);
- the tied output matrix is untied, as in Llama 2 and 3 (``tie_weights``; small models tie);
- no Linear has a bias.

Two options go further, as Mistral and Mixtral did: ``sliding_window`` limits each query to its
last W positions, and ``n_expert > 0`` replaces every feed-forward layer by a mixture of
experts (:mod:`llm_lessons.frontiers.moe`), ``expert_top_k`` of them per token. In training
mode the loss then adds ``router_aux_coef`` times the load-balancing loss (pooled over the
layers, as Mixtral pools it); in eval mode it is the plain cross-entropy, so a perplexity means
the same thing for every model. ``model.aux_loss`` holds the last forward's value either way.

``transformers.LlamaForCausalLM`` with the same weights computes the same logits
(:mod:`llm_lessons.interop.llama`), which is how the tests check this module.

>>> cfg = ModernConfig.preset("nano", vocab_size=10, block_size=8)
>>> model = ModernGPT(cfg)
>>> logits, loss = model(torch.tensor([[1, 2, 3]]), targets=torch.tensor([[2, 3, 4]]))
>>> logits.shape, cfg.n_kv_head, cfg.ffn_hidden
(torch.Size([1, 3, 10]), 2, 352)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from llm_lessons.attention import KVCache
from llm_lessons.frontiers.gqa import GroupedQueryAttention
from llm_lessons.frontiers.layers import RMSNorm, SwiGLU, swiglu_hidden
from llm_lessons.frontiers.moe import MoEFeedForward, load_balancing_loss
from llm_lessons.transformer import CausalDecoder, TransformerConfig, lm_loss
from llm_lessons.validation import check_bool, check_int, check_real

#: The GPT presets' shapes (so the two models compare at equal width and depth), with two
#: key/value heads for four query heads.
PRESETS: dict[str, dict] = {
    "nano": dict(n_layer=4, n_head=4, n_kv_head=2, n_embd=128, block_size=64, dropout=0.0),
    "small": dict(n_layer=6, n_head=6, n_kv_head=2, n_embd=384, block_size=256, dropout=0.2),
}


@dataclass
class ModernConfig(TransformerConfig):
    """Sizes of a :class:`ModernGPT`: TransformerConfig's fields, then the modern ones.

    ``n_kv_head`` (None: = n_head) must divide n_head; ``ffn_hidden`` (None: Llama's rule,
    :func:`~llm_lessons.frontiers.layers.swiglu_hidden`; each expert's width with experts);
    ``rope_base`` (Llama 2: 10,000, Llama 3: 500,000); ``norm_eps``; ``tie_weights``;
    ``sliding_window`` (None: full causal attention); ``n_expert`` (0: dense), ``expert_top_k``,
    ``router_aux_coef``.
    """

    family: ClassVar[str] = "modern decoder"
    presets: ClassVar[dict[str, dict]] = PRESETS

    n_kv_head: int | None = None
    ffn_hidden: int | None = None
    rope_base: float = 10000.0
    norm_eps: float = 1e-5
    tie_weights: bool = False
    sliding_window: int | None = None
    n_expert: int = 0
    expert_top_k: int = 2
    router_aux_coef: float = 0.01

    def __post_init__(self):
        super().__post_init__()
        self.n_kv_head = self.n_head if self.n_kv_head is None else self.n_kv_head
        self.ffn_hidden = swiglu_hidden(self.n_embd) if self.ffn_hidden is None else self.ffn_hidden
        check_int(self.n_kv_head, "ModernConfig.n_kv_head", low=1)
        check_int(self.ffn_hidden, "ModernConfig.ffn_hidden", low=1)
        if self.n_head % self.n_kv_head != 0:
            raise ValueError(f"n_head ({self.n_head}) must be a multiple of n_kv_head ({self.n_kv_head})")
        if (self.n_embd // self.n_head) % 2 != 0:
            raise ValueError("RoPE needs an even head size, got n_embd // n_head = "
                             f"{self.n_embd // self.n_head}")
        check_real(self.rope_base, "ModernConfig.rope_base", low=1.0, low_open=True)
        check_real(self.norm_eps, "ModernConfig.norm_eps", low=0.0)
        check_bool(self.tie_weights, "ModernConfig.tie_weights")
        if self.sliding_window is not None:
            check_int(self.sliding_window, "ModernConfig.sliding_window", low=1)
        check_int(self.n_expert, "ModernConfig.n_expert", low=0)
        if self.n_expert:
            check_int(self.expert_top_k, "ModernConfig.expert_top_k", low=1, high=self.n_expert)
        check_real(self.router_aux_coef, "ModernConfig.router_aux_coef", low=0.0)


def kv_cache_bytes_per_token(config: ModernConfig, dtype: torch.dtype = torch.float32) -> int:
    """Bytes the key-value cache grows by per generated token: keys and values, every layer,
    ``n_kv_head`` heads of size hs each. Grouped queries divide it by n_head / n_kv_head.

    >>> kv_cache_bytes_per_token(ModernConfig(vocab_size=10, n_layer=4, n_head=4, n_embd=128, n_kv_head=1))
    1024
    """
    hs = config.n_embd // config.n_head
    return 2 * config.n_layer * config.n_kv_head * hs * torch.empty(0, dtype=dtype).element_size()


class ModernBlock(nn.Module):
    """Pre-norm block: x + attn(norm(x)), then x + ffn(norm(x)); (B, T, C) -> (B, T, C)."""

    def __init__(self, config: ModernConfig):
        super().__init__()
        self.ln_1 = RMSNorm(config.n_embd, config.norm_eps)
        self.attn = GroupedQueryAttention(config.n_embd, config.n_head, config.n_kv_head,
                                          config.rope_base, config.dropout, config.sliding_window)
        self.ln_2 = RMSNorm(config.n_embd, config.norm_eps)
        if config.n_expert:
            self.mlp = MoEFeedForward(config.n_embd, config.ffn_hidden, config.n_expert,
                                      config.expert_top_k, config.dropout)
        else:
            self.mlp = SwiGLU(config.n_embd, config.ffn_hidden, config.dropout)

    def forward(self, x: torch.Tensor, start: int = 0, cache: KVCache | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), start=start, cache=cache)
        return x + self.mlp(self.ln_2(x))


class ModernGPT(CausalDecoder):
    """A Llama-style decoder with the book's interface.

    ``forward(idx, targets=None, cache=None) -> (logits, loss)``, as :class:`~llm_lessons.gpt.GPT`:
    idx (B, T) ids, logits (B, T, V), loss the mean next-token cross-entropy in nats (targets
    -100 ignored). Without a cache T may not exceed ``block_size``; with one from
    :meth:`new_cache` (each layer's cache holds n_kv_head heads), idx holds only the new tokens.
    ``llm_lessons.sampling.generate`` decodes it.
    """

    def __init__(self, config: ModernConfig):
        if not isinstance(config, ModernConfig):
            raise TypeError(f"ModernGPT needs a ModernConfig, got {type(config).__name__}")
        super().__init__(config)
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)  # no position table: RoPE
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(ModernBlock(config) for _ in range(config.n_layer))
        self.ln_f = RMSNorm(config.n_embd, config.norm_eps)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_weights:
            self.lm_head.weight = self.wte.weight
        self.apply(self._init_weights)
        for block in self.blocks:  # residual projections scaled down with depth, as in the GPT
            experts = block.mlp.experts if config.n_expert else [block.mlp]
            for proj in (block.attn.o, *(expert.down for expert in experts)):
                nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * config.n_layer))
        self.aux_loss: torch.Tensor | None = None

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                cache: Sequence[KVCache] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx (B, T) -> logits (B, T, V) and the mean cross-entropy loss (or None)."""
        start = self._check_inputs(idx, targets, cache)  # where idx starts: after the cached tokens
        x = self.drop(self.wte(idx))  # (B, T, C)
        for i, block in enumerate(self.blocks):
            x = block(x, start=start, cache=None if cache is None else cache[i])
        logits = self.lm_head(self.ln_f(x))  # (B, T, C) -> (B, T, V)
        loss = lm_loss(logits, targets)
        if self.config.n_expert:
            pooled = torch.cat([block.mlp.router_logits for block in self.blocks])  # (n_layer*N, E)
            self.aux_loss = load_balancing_loss(pooled, self.config.expert_top_k)
            if loss is not None and self.training:
                loss = loss + self.config.router_aux_coef * self.aux_loss
        return logits, loss
