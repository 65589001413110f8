"""A GPT: token and position embeddings, a stack of causal Transformer blocks, a tied output head.

Shapes use fixed letters: B batch, T time (positions), C channels (``n_embd``), V vocabulary.

The model computes, for every position t of its input, a distribution over the next token
p(x_{t+1} | x_1..x_t) as V logits. Its loss is the mean cross-entropy of the true next tokens
(in nats), exactly the chain rule of probability turned into a training objective.

>>> cfg = GPTConfig.preset("nano", vocab_size=10, block_size=8)
>>> model = GPT(cfg)
>>> idx = torch.tensor([[1, 2, 3, 4]])
>>> logits, loss = model(idx, targets=torch.tensor([[2, 3, 4, 5]]))
>>> logits.shape
torch.Size([1, 4, 10])
>>> abs(loss.item() - math.log(10)) < 0.5   # untrained: close to uniform over 10 tokens
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from llm_lessons.attention import KVCache
from llm_lessons.configs import ModelConfig
from llm_lessons.reproducibility import eval_mode
from llm_lessons.transformer import Block
from llm_lessons.validation import check_bool, check_int, check_logits, check_real, check_token_tensor

#: Named sizes. ``nano`` trains on a laptop CPU in about a minute; ``small`` is the usual
#: single-GPU character model (nanoGPT's Shakespeare-char size); ``gpt2`` is GPT-2 small's shape
#: (124M parameters with its 50257-token vocabulary) for loading real weights.
PRESETS: dict[str, dict] = {
    "nano": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, dropout=0.0),
    "small": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.2),
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768, block_size=1024, dropout=0.0, vocab_size=50257),
}


@dataclass
class GPTConfig(ModelConfig):
    """Sizes of a GPT. ``bias=True`` matches GPT-2 (needed to convert to Hugging Face)."""

    family: ClassVar[str] = "GPT"
    presets: ClassVar[dict[str, dict]] = PRESETS

    vocab_size: int
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True

    def __post_init__(self):
        self.check_positive_ints("vocab_size", "block_size", "n_layer", "n_head", "n_embd")
        if self.n_embd % self.n_head != 0:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}): "
                             "each head gets n_embd // n_head channels")
        check_real(self.dropout, "GPTConfig.dropout", low=0.0, high=1.0, high_open=True)
        check_bool(self.bias, "GPTConfig.bias")


class GPT(nn.Module):
    """A decoder-only Transformer language model with GPT-2's layout (pre-norm, tied embeddings).

    ``forward(idx, targets=None, cache=None) -> (logits, loss)``: idx (B, T) token ids,
    logits (B, T, V), loss the mean next-token cross-entropy in nats (None without targets;
    target -100 is ignored, as in PyTorch and Hugging Face). Without a cache, T may not exceed
    ``block_size`` (a ValueError, never silent truncation). With a cache from :meth:`new_cache`,
    idx holds only the *new* tokens, placed after the cached ones, and the cache grows in place.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"GPT needs a GPTConfig, got {type(config).__name__}")
        self.config = config
        self.block_size = config.block_size
        C = config.n_embd
        self.wte = nn.Embedding(config.vocab_size, C)  # token embedding, also the output matrix
        self.wpe = nn.Embedding(config.block_size, C)  # learned absolute position embedding
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            Block(C, config.n_head, dropout=config.dropout, bias=config.bias, causal=True)
            for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(C, bias=config.bias)
        self.lm_head = nn.Linear(C, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying (Press & Wolf, 2017)
        self.apply(self._init_weights)
        for block in self.blocks:  # residual projections: variance kept O(1) as layers add up
            for proj in (block.attn.proj, block.mlp.proj):
                nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_params(self) -> int:
        """Number of parameters, the tied embedding/output matrix counted once."""
        return sum(p.numel() for p in self.parameters())

    def new_cache(self) -> list[KVCache]:
        """One empty key/value cache per layer, for incremental decoding with ``forward(cache=...)``."""
        return [KVCache() for _ in self.blocks]

    def _check_inputs(self, idx: torch.Tensor, targets: torch.Tensor | None) -> None:
        V = self.config.vocab_size
        check_token_tensor(idx, "idx", V)
        if targets is not None:
            check_token_tensor(targets, "targets", V, ignore_index=-100)
            if targets.shape != idx.shape:
                raise ValueError(f"targets shape {tuple(targets.shape)} must equal idx shape "
                                 f"{tuple(idx.shape)}")
            if not (targets != -100).any():  # the mean over no target would be NaN
                raise ValueError("every target is -100: no position to predict, the loss is undefined")

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                cache: list[KVCache] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx (B, T) -> logits (B, T, V) and the mean cross-entropy loss (or None)."""
        self._check_inputs(idx, targets)
        B, T = idx.shape
        start = 0
        if cache is None:
            if T > self.block_size:
                raise ValueError(f"sequence length {T} exceeds block_size {self.block_size}; crop the "
                                 f"input to its last {self.block_size} tokens (GPT.generate does)")
        else:
            if len(cache) != len(self.blocks):
                raise ValueError(f"cache has {len(cache)} layers, the model has {len(self.blocks)}")
            start = cache[0].length
            if start + T > self.block_size:
                raise ValueError(f"cache holds {start} tokens; {T} more would exceed block_size "
                                 f"{self.block_size}")
            if start and cache[0].k.shape[0] != B:
                raise ValueError(f"cache batch size {cache[0].k.shape[0]} != idx batch size {B}")
        pos = torch.arange(start, start + T, device=idx.device)  # (T,)
        x = self.drop(self.wte(idx) + self.wpe(pos))  # (B, T, C) + (T, C) -> (B, T, C)
        for i, block in enumerate(self.blocks):
            x = block(x, cache=None if cache is None else cache[i])
        logits = self.lm_head(self.ln_f(x))  # (B, T, C) -> (B, T, V)
        loss = None
        if targets is not None:
            V = logits.shape[-1]
            loss = F.cross_entropy(logits.view(B * T, V), targets.reshape(B * T), ignore_index=-100)
        return logits, loss

    @torch.no_grad()
    def attention_weights(self, idx: torch.Tensor) -> torch.Tensor:
        """Attention weights of every layer and head for idx (B, T): (n_layer, B, nh, T, T).

        Computed in eval mode (no dropout on the weights); the model's mode is restored after.
        """
        attns = [block.attn for block in self.blocks]
        was_training = self.training
        self.eval()
        for attn in attns:
            attn.keep_weights = True
        try:
            self(idx)
            return torch.stack([attn.weights for attn in attns])
        finally:
            for attn in attns:
                attn.keep_weights, attn.weights = False, None
            self.train(was_training)

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, greedy: bool = False,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Append ``max_new_tokens`` tokens to idx (B, T), one at a time; returns (B, T + n).

        Each step feeds at most the last ``block_size`` tokens (older context is cropped from
        the left) and picks the next token greedily (argmax) or by sampling from
        softmax(logits / temperature), optionally restricted to the ``top_k`` most likely
        (exactly k, as :func:`llm_lessons.sampling.top_k_filter` defines it for the whole book).
        The model runs in eval mode (no dropout) and is put back in its previous mode.
        :func:`llm_lessons.sampling.generate` is the full-featured decoder.
        """
        from llm_lessons.sampling import apply_temperature, top_k_filter  # one definition each

        check_token_tensor(idx, "idx", self.config.vocab_size)
        check_int(max_new_tokens, "max_new_tokens", low=0)
        check_bool(greedy, "greedy")
        if not greedy:
            try:
                check_real(temperature, "temperature", low=0.0, low_open=True)
            except ValueError as err:
                raise ValueError(f"{err} (use greedy=True for argmax)") from None
        if top_k is not None:
            check_int(top_k, "top_k", low=1)
        with eval_mode(self):
            for step in range(max_new_tokens):
                logits, _ = self(idx[:, -self.block_size:])
                logits = logits[:, -1, :]  # (B, T, V) -> (B, V): the next-token scores
                check_logits(logits, f"the model's logits at generation step {step}")
                if greedy:
                    nxt = logits.argmax(dim=-1, keepdim=True)  # (B, 1)
                else:
                    logits = apply_temperature(logits, temperature)  # z / t, safe for a tiny t
                    if top_k is not None:
                        logits = top_k_filter(logits, top_k)
                    nxt = torch.multinomial(logits.softmax(dim=-1), 1, generator=generator)  # (B, 1)
                idx = torch.cat([idx, nxt], dim=1)
        return idx

