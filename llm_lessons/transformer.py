"""The Transformer: the block every model of the book stacks, and what every Transformer LM shares.

Shapes use fixed letters: B batch, T time (positions), C channels (``n_embd``), nh heads,
V vocabulary.

The module reads top to bottom: :class:`MLP` and :class:`Block` (one layer), then what the
GPT (:mod:`llm_lessons.gpt`) and the masked LM (:mod:`llm_lessons.bert`) have in common around
their stacks of blocks: the sizes of :class:`TransformerConfig`, and :class:`TransformerBase`
(weight initialisation, parameter count, token-id checks, attention maps) with :func:`lm_loss`.

Two ways to place the LayerNorm (Xiong et al., 2020, "On Layer Normalization in the
Transformer Architecture")::

    pre-norm  (GPT-2, the default):  x = x + Attn(LN1(x));   x = x + MLP(LN2(x))
    post-norm (original, BERT):      x = LN1(x + Attn(x));   x = LN2(x + MLP(x))

Pre-norm keeps an untouched residual path from input to output, which is why deep pre-norm
stacks train without learning-rate warmup tricks; post-norm is what the 2017 paper and BERT use.
A block maps (B, T, C) to (B, T, C), so blocks stack:

>>> block = Block(n_embd=8, n_head=2)
>>> block(torch.zeros(2, 5, 8)).shape
torch.Size([2, 5, 8])
>>> sum(p.numel() for p in block.parameters()) == 12 * 8 * 8 + 13 * 8   # 12C^2 + 13C
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from llm_lessons.attention import KVCache, MultiHeadAttention
from llm_lessons.configs import ModelConfig
from llm_lessons.reproducibility import eval_mode
from llm_lessons.validation import check_real, check_token_tensor


class ReLUSquared(nn.Module):
    """relu(x)^2 (So et al., 2021, "Primer"): as cheap as ReLU, smooth at 0 to first order.

    >>> ReLUSquared()(torch.tensor([-1.0, 0.5, 2.0]))
    tensor([0.0000, 0.2500, 4.0000])
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x).square()


#: The MLP's non-linearity. GPT-2 uses GELU's tanh approximation ("gelu_new" in Hugging Face);
#: BERT uses the exact erf form; the CPU speedrun (chapter 8) measures ReLU^2 against both.
ACTIVATIONS = {"gelu_tanh": lambda: nn.GELU(approximate="tanh"), "gelu": lambda: nn.GELU(),
               "relu": lambda: nn.ReLU(), "relu2": ReLUSquared}


class MLP(nn.Module):
    """Position-wise feed-forward network: Linear C→4C, GELU, Linear 4C→C, dropout.

    It acts on every position separately (attention is the only place positions mix).

    >>> MLP(n_embd=4)(torch.ones(1, 3, 4)).shape
    torch.Size([1, 3, 4])
    """

    def __init__(self, n_embd: int, dropout: float = 0.0, bias: bool = True,
                 activation: str = "gelu_tanh", expansion: int = 4):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose from {sorted(ACTIVATIONS)}")
        self.fc = nn.Linear(n_embd, expansion * n_embd, bias=bias)
        self.act = ACTIVATIONS[activation]()
        self.proj = nn.Linear(expansion * n_embd, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(self.act(self.fc(x))))  # (B, T, C) -> (B, T, 4C) -> (B, T, C)


class Block(nn.Module):
    """One Transformer layer: multi-head self-attention then an MLP, with residuals and norms.

    ``causal=True`` (a decoder, GPT) lets position t see only positions <= t; ``causal=False``
    (an encoder, BERT) sees both sides. ``norm_first`` picks pre-norm (True, the default) or
    post-norm (False). ``forward`` takes an optional boolean attention ``mask`` (True = may
    attend, e.g. from :func:`llm_lessons.attention.padding_mask`) and an optional ``cache``
    (:class:`llm_lessons.attention.KVCache`) that is extended in place with this call's keys
    and values.

    >>> x = torch.randn(1, 4, 8)
    >>> post = Block(8, 2, norm_first=False)
    >>> post(x).std(dim=-1).mean().item() > 0.9   # post-norm ends with a LayerNorm: unit scale
    True
    """

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, bias: bool = True,
                 causal: bool = True, norm_first: bool = True, activation: str = "gelu_tanh",
                 norm_eps: float = 1e-5, fused: bool = True):
        super().__init__()
        self.norm_first = norm_first
        self.ln_1 = nn.LayerNorm(n_embd, eps=norm_eps, bias=bias)
        self.attn = MultiHeadAttention(n_embd, n_head, causal=causal, dropout=dropout, bias=bias,
                                       fused=fused)
        self.ln_2 = nn.LayerNorm(n_embd, eps=norm_eps, bias=bias)
        self.mlp = MLP(n_embd, dropout=dropout, bias=bias, activation=activation)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                cache: KVCache | None = None) -> torch.Tensor:
        """x: (B, T, C) -> (B, T, C)."""
        if self.norm_first:
            x = x + self.attn(self.ln_1(x), mask=mask, cache=cache)
            return x + self.mlp(self.ln_2(x))
        x = self.ln_1(x + self.attn(x, mask=mask, cache=cache))
        return self.ln_2(x + self.mlp(x))


@dataclass
class TransformerConfig(ModelConfig):
    """The sizes every Transformer LM of the book has; :class:`llm_lessons.gpt.GPTConfig` and
    :class:`llm_lessons.bert.BertConfig` add their own fields after these.

    >>> TransformerConfig(vocab_size=10, n_embd=30, n_head=4)
    Traceback (most recent call last):
    ...
    ValueError: n_embd (30) must be divisible by n_head (4): each head gets n_embd // n_head channels
    """

    vocab_size: int
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0

    def __post_init__(self):
        self.check_positive_ints("vocab_size", "block_size", "n_layer", "n_head", "n_embd")
        if self.n_embd % self.n_head != 0:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}): "
                             "each head gets n_embd // n_head channels")
        check_real(self.dropout, f"{type(self).__name__}.dropout", low=0.0, high=1.0, high_open=True)


def lm_loss(logits: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor | None:
    """Mean cross-entropy (nats) of logits (B, T, V) against targets (B, T); None without targets.

    A target of -100 asks for no prediction (PyTorch's and Hugging Face's convention): the mean
    is over the other positions only. Uniform logits over 4 tokens cost log 4 per position:

    >>> logits = torch.zeros(1, 2, 4)
    >>> round(lm_loss(logits, torch.tensor([[3, -100]])).item(), 4)   # log 4 = 1.3863
    1.3863
    """
    if targets is None:
        return None
    B, T, V = logits.shape
    return F.cross_entropy(logits.view(B * T, V), targets.reshape(B * T), ignore_index=-100)


class TransformerBase(nn.Module):
    """What a GPT and a masked LM share around their ``blocks``: a config, GPT-2's weight
    initialisation, the parameter count, token-id checks and the attention maps.

    A subclass builds its modules, then calls ``self.apply(self._init_weights)``.

    >>> from llm_lessons.gpt import GPT, GPTConfig
    >>> model = GPT(GPTConfig(vocab_size=5, n_layer=1, n_head=2, n_embd=8))
    >>> model.attention_weights(torch.tensor([[1, 2, 3]])).shape   # (n_layer, B, nh, T, T)
    torch.Size([1, 1, 2, 3, 3])
    """

    blocks: nn.ModuleList

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        self.block_size = config.block_size

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        # N(0, 0.02) for every matrix and embedding, zero biases: GPT-2's and BERT's choice
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_params(self) -> int:
        """Number of parameters, the tied embedding/output matrix counted once."""
        return sum(p.numel() for p in self.parameters())

    def _check_tokens(self, idx: torch.Tensor, targets: torch.Tensor | None) -> None:
        """idx (B, T) must hold ids in range(V); targets, if given, the same shape, ids or -100."""
        V = self.config.vocab_size
        check_token_tensor(idx, "idx", V)
        if targets is not None:
            check_token_tensor(targets, "targets", V, ignore_index=-100)
            if targets.shape != idx.shape:
                raise ValueError(f"targets shape {tuple(targets.shape)} must equal idx shape "
                                 f"{tuple(idx.shape)}")
            if not (targets != -100).any():  # the mean over no target would be NaN
                raise ValueError("every target is -100: no position to predict, the loss is undefined")

    def _attention_maps(self, run: Callable[..., object], *inputs) -> torch.Tensor:
        """Call ``run(*inputs)`` with every layer keeping its weights: (n_layer, B, nh, T, T).

        It runs in eval mode, the model's own mode restored after: dropout would show a random
        thinning of the weights rather than the model's attention.
        """
        attns = [block.attn for block in self.blocks]
        for attn in attns:
            attn.keep_weights = True
        try:
            with eval_mode(self):
                run(*inputs)
            return torch.stack([attn.weights for attn in attns])
        finally:  # even after an error, later calls take the fused kernel again
            for attn in attns:
                attn.keep_weights, attn.weights = False, None


class CausalDecoder(TransformerBase):
    """What every decoder-only LM of the book adds to :class:`TransformerBase`: one key-value
    cache per layer for incremental decoding, and the checks that place ``idx`` after the cached
    tokens. :class:`llm_lessons.gpt.GPT` and the modern decoder of chapter 8 share them.
    """

    def new_cache(self) -> list[KVCache]:
        """One empty key/value cache per layer, for incremental decoding with ``forward(cache=...)``."""
        return [KVCache() for _ in self.blocks]

    def _check_inputs(self, idx: torch.Tensor, targets: torch.Tensor | None,
                      cache: Sequence[KVCache] | None) -> int:
        """Refuse bad input with a message naming it; return the position of idx's first token."""
        self._check_tokens(idx, targets)
        B, T = idx.shape
        if cache is None:
            if T > self.block_size:
                raise ValueError(f"sequence length {T} exceeds block_size {self.block_size}; crop the "
                                 f"input to its last {self.block_size} tokens (generate does)")
            return 0
        if len(cache) != len(self.blocks):
            raise ValueError(f"cache has {len(cache)} layers, the model has {len(self.blocks)}")
        start = cache[0].length  # idx continues the cached tokens
        if start + T > self.block_size:
            raise ValueError(f"cache holds {start} tokens; {T} more would exceed block_size "
                             f"{self.block_size}")
        if start and cache[0].k.shape[0] != B:
            raise ValueError(f"cache batch size {cache[0].k.shape[0]} != idx batch size {B}")
        return start
