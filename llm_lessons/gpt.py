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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from llm_lessons.attention import KVCache
from llm_lessons.reproducibility import eval_mode
from llm_lessons.transformer import ACTIVATIONS, Block, CausalDecoder, TransformerConfig, lm_loss
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
class GPTConfig(TransformerConfig):
    """Sizes of a GPT: :class:`~llm_lessons.transformer.TransformerConfig`'s ``vocab_size,
    block_size, n_layer, n_head, n_embd, dropout``, then ``bias`` and ``activation``.
    ``bias=True`` and ``activation="gelu_tanh"`` (GELU's tanh approximation) match GPT-2;
    ``activation="gelu"`` is the exact erf form, the same function to within 5e-4 and, on CPUs,
    half the cost or less: chapter 3.2's recipe trains with it (``benchmarks/speedrun.py``,
    ``benchmarks/bench_step_vs_nanogpt.py``).
    """

    family: ClassVar[str] = "GPT"
    presets: ClassVar[dict[str, dict]] = PRESETS

    bias: bool = True
    activation: str = "gelu_tanh"

    def __post_init__(self):
        super().__post_init__()
        check_bool(self.bias, "GPTConfig.bias")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"GPTConfig.activation must be one of {sorted(ACTIVATIONS)}, "
                             f"got {self.activation!r}")


class GPT(CausalDecoder):
    """A decoder-only Transformer language model with GPT-2's layout (pre-norm, tied embeddings).

    ``forward(idx, targets=None, cache=None) -> (logits, loss)``: idx (B, T) token ids,
    logits (B, T, V), loss the mean next-token cross-entropy in nats (None without targets;
    target -100 is ignored, as in PyTorch and Hugging Face). Without a cache, T may not exceed
    ``block_size`` (a ValueError, never silent truncation). With a cache from :meth:`new_cache`,
    idx holds only the *new* tokens, placed after the cached ones, and the cache grows in place.
    """

    def __init__(self, config: GPTConfig):
        if not isinstance(config, GPTConfig):
            raise TypeError(f"GPT needs a GPTConfig, got {type(config).__name__}")
        super().__init__(config)
        C = config.n_embd
        self.wte = nn.Embedding(config.vocab_size, C)  # token embedding, also the output matrix
        self.wpe = nn.Embedding(config.block_size, C)  # learned absolute position embedding
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            Block(C, config.n_head, dropout=config.dropout, bias=config.bias, causal=True,
                  activation=config.activation)
            for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(C, bias=config.bias)
        self.lm_head = nn.Linear(C, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying (Press & Wolf, 2017)
        self.apply(self._init_weights)
        for block in self.blocks:  # residual projections: variance kept O(1) as layers add up
            for proj in (block.attn.proj, block.mlp.proj):
                nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * config.n_layer))

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                cache: Sequence[KVCache] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx (B, T) -> logits (B, T, V) and the mean cross-entropy loss (or None)."""
        start = self._check_inputs(idx, targets, cache)
        pos = torch.arange(start, start + idx.shape[1], device=idx.device)  # (T,)
        x = self.drop(self.wte(idx) + self.wpe(pos))  # (B, T, C) + (T, C) -> (B, T, C)
        for i, block in enumerate(self.blocks):
            x = block(x, cache=None if cache is None else cache[i])
        logits = self.lm_head(self.ln_f(x))  # (B, T, C) -> (B, T, V)
        return logits, lm_loss(logits, targets)

    @torch.no_grad()
    def attention_weights(self, idx: torch.Tensor) -> torch.Tensor:
        """Attention weights of every layer and head for idx (B, T): (n_layer, B, nh, T, T).

        Computed in eval mode (no dropout on the weights); the model's mode is restored after.
        """
        return self._attention_maps(self, idx)

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

