"""A BERT-style masked language model: a bidirectional Transformer encoder with an MLM head.

Shapes use fixed letters: B batch, T time (positions), C channels (``n_embd``), V vocabulary,
nh heads.

Where a GPT predicts x_{t+1} from x_1..x_t, a masked language model (掩码语言模型) sees the
whole sequence with some tokens hidden and predicts each hidden token from *both* sides:

    L_MLM = - 1/|M| sum_{t in M} log p(x_t | x~)    (M: the masked positions, x~: the corrupted input)

The encoder is the same :class:`llm_lessons.transformer.Block` as the GPT's, built with
``causal=False`` (every position attends to every position) and ``norm_first=False``
(post-norm, as in BERT), exact GELU, and LayerNorm eps 1e-12. Targets are -100 wherever no
prediction is asked for, so the loss averages over the masked positions only.

>>> cfg = BertConfig.preset("nano", vocab_size=10, block_size=8)
>>> model = MaskedLM(cfg)
>>> idx = torch.tensor([[1, 2, 9, 4]])                 # 9 plays [MASK]
>>> logits, loss = model(idx, targets=torch.tensor([[-100, -100, 3, -100]]))
>>> logits.shape
torch.Size([1, 4, 10])
>>> abs(loss.item() - math.log(10)) < 0.5              # untrained: near uniform over 10 ids
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from llm_lessons.attention import padding_mask
from llm_lessons.configs import MAX_SIZES
from llm_lessons.transformer import Block, TransformerBase, TransformerConfig, lm_loss
from llm_lessons.validation import check_int, check_real, check_token_tensor

#: Named sizes. ``nano`` matches the GPT's nano preset (same depth, width and block) so the
#: causal and the masked model can be compared on equal terms; ``tiny`` is Google's BERT-Tiny
#: (2 layers, 128 wide); ``base`` is BERT-base's shape (110M parameters with WordPiece's 30522).
PRESETS: dict[str, dict] = {
    "nano": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, dropout=0.0, type_vocab_size=0),
    "tiny": dict(n_layer=2, n_head=2, n_embd=128, block_size=512, dropout=0.1, type_vocab_size=2),
    "base": dict(n_layer=12, n_head=12, n_embd=768, block_size=512, dropout=0.1, type_vocab_size=2,
                 vocab_size=30522),
}


@dataclass
class BertConfig(TransformerConfig):
    """Sizes of a masked LM: :class:`~llm_lessons.transformer.TransformerConfig`'s ``vocab_size,
    block_size, n_layer, n_head, n_embd, dropout``, then ``type_vocab_size`` (0 drops BERT's
    token-type, or segment, embedding) and the LayerNorms' ``norm_eps``.
    """

    family: ClassVar[str] = "BERT"
    presets: ClassVar[dict[str, dict]] = PRESETS

    type_vocab_size: int = 0
    norm_eps: float = 1e-12

    def __post_init__(self):
        super().__post_init__()
        check_int(self.type_vocab_size, "BertConfig.type_vocab_size", low=0,
                  high=MAX_SIZES["type_vocab_size"])
        check_real(self.norm_eps, "BertConfig.norm_eps", low=0.0, high=1.0, low_open=True)


class MaskedLM(TransformerBase):
    """A BERT-style encoder with a masked-LM head (dense, GELU, LayerNorm, tied decoder + bias).

    ``forward(idx, targets=None, token_type_ids=None, attention_mask=None) -> (logits, loss)``:
    idx (B, T) ids, logits (B, T, V), loss the mean cross-entropy over positions whose target
    is not -100 (None without targets). ``attention_mask`` (B, T) is 1 for real tokens and 0
    for padding, which no position may attend to. :meth:`encode` returns the contextual vectors
    (B, T, C); :meth:`attention_weights` the attention of every layer and head, for plots and
    bertviz.
    """

    def __init__(self, config: BertConfig):
        if not isinstance(config, BertConfig):
            raise TypeError(f"MaskedLM needs a BertConfig, got {type(config).__name__}")
        super().__init__(config)
        C, V = config.n_embd, config.vocab_size
        self.wte = nn.Embedding(V, C)  # token embedding, also the output matrix
        self.wpe = nn.Embedding(config.block_size, C)  # learned absolute positions
        self.wtt = nn.Embedding(config.type_vocab_size, C) if config.type_vocab_size else None
        self.ln_emb = nn.LayerNorm(C, eps=config.norm_eps)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            Block(C, config.n_head, dropout=config.dropout, causal=False, norm_first=False,
                  activation="gelu", norm_eps=config.norm_eps)
            for _ in range(config.n_layer))
        self.head = nn.Sequential(nn.Linear(C, C), nn.GELU(), nn.LayerNorm(C, eps=config.norm_eps))
        self.lm_head = nn.Linear(C, V)
        self.lm_head.weight = self.wte.weight  # tied, as in BERT; the bias stays its own
        self.apply(self._init_weights)

    def _check_inputs(self, idx, targets, token_type_ids, attention_mask) -> None:
        """Refuse bad input with a message naming it (ids, lengths, shapes, token types)."""
        self._check_tokens(idx, targets)
        if idx.shape[1] > self.block_size:
            raise ValueError(f"sequence length {idx.shape[1]} exceeds block_size {self.block_size}")
        for name, t in (("token_type_ids", token_type_ids), ("attention_mask", attention_mask)):
            if t is not None and (not isinstance(t, torch.Tensor) or t.shape != idx.shape):
                raise ValueError(f"{name} shape {tuple(getattr(t, 'shape', ()))} must equal idx shape "
                                 f"{tuple(idx.shape)}")
        if token_type_ids is not None:
            if self.config.type_vocab_size == 0:
                raise ValueError("this model has no token-type embedding (type_vocab_size=0)")
            check_token_tensor(token_type_ids, "token_type_ids", self.config.type_vocab_size)

    def encode(self, idx: torch.Tensor, token_type_ids: torch.Tensor | None = None,
               attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The encoder's contextual vectors for idx (B, T): (B, T, C)."""
        self._check_inputs(idx, None, token_type_ids, attention_mask)
        return self._encode(idx, token_type_ids, attention_mask)

    def _encode(self, idx, token_type_ids, attention_mask) -> torch.Tensor:
        T = idx.shape[1]
        pos = torch.arange(T, device=idx.device)  # (T,)
        x = self.wte(idx) + self.wpe(pos)  # (B, T, C) + (T, C) -> (B, T, C)
        if self.wtt is not None:
            types = torch.zeros_like(idx) if token_type_ids is None else token_type_ids
            x = x + self.wtt(types)  # (B, T, C)
        x = self.drop(self.ln_emb(x))
        mask = None if attention_mask is None else padding_mask(attention_mask)  # (B, 1, 1, T)
        for block in self.blocks:
            x = block(x, mask=mask)
        return x

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx (B, T) -> logits (B, T, V) and the mean cross-entropy over labelled positions."""
        self._check_inputs(idx, targets, token_type_ids, attention_mask)
        x = self._encode(idx, token_type_ids, attention_mask)  # embeddings, then blocks: (B, T, C)
        logits = self.lm_head(self.head(x))  # (B, T, C) -> (B, T, V)
        return logits, lm_loss(logits, targets)

    @torch.no_grad()
    def attention_weights(self, idx: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                          attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Attention weights of every layer and head for idx (B, T): (n_layer, B, nh, T, T).

        Computed in eval mode (no dropout on the weights); the model's mode is restored after.
        For bertviz, pass ``tuple(weights)`` (one (B, nh, T, T) tensor per layer) as attention.
        """
        return self._attention_maps(self.encode, idx, token_type_ids, attention_mask)


@torch.no_grad()
def init_positions_sinusoidal(model: MaskedLM) -> MaskedLM:
    """Start the learned position table at the sinusoidal encoding, scaled like the token table.

    The table stays trainable (BERT's learned absolute positions); it only starts with the
    sinusoids' structure, in which neighbouring positions have similar vectors, instead of
    noise. Its root-mean-square entry is set to the token embeddings' standard deviation
    (0.02 at initialisation), so neither table drowns the other in their sum.

    >>> model = init_positions_sinusoidal(MaskedLM(BertConfig(vocab_size=5, block_size=8, n_embd=16)))
    >>> round(model.wpe.weight.pow(2).mean().sqrt().item(), 2), model.wpe.weight.requires_grad
    (0.02, True)
    """
    from llm_lessons.positional import sinusoidal_encoding

    table = sinusoidal_encoding(model.block_size, model.config.n_embd)  # (T, C), RMS entry 1/sqrt(2)
    std = model.wte.weight.std().item()
    model.wpe.weight.copy_(table * std * math.sqrt(2.0))
    return model


@torch.no_grad()
def init_output_bias(model: MaskedLM, ids: torch.Tensor) -> MaskedLM:
    """Start the output bias at the log-frequencies of the tokens in ``ids`` (add-one smoothed).

    An untrained model then predicts the unigram distribution at every position, the level
    an MLM otherwise spends its first steps reaching.

    >>> model = init_output_bias(MaskedLM(BertConfig(vocab_size=3, n_layer=1, n_embd=8, n_head=2)),
    ...                          torch.tensor([0, 0, 0, 1]))
    >>> [round(p, 3) for p in model.lm_head.bias.exp().tolist()]   # (3+1, 1+1, 0+1) / 7
    [0.571, 0.286, 0.143]
    """
    V = model.config.vocab_size
    if ids.dim() != 1 or ids.is_floating_point() or (ids.numel() and int(ids.max()) >= V):
        raise ValueError(f"ids must be a 1-D integer tensor of ids in range(0, {V})")
    counts = torch.bincount(ids, minlength=V).double() + 1.0  # (V,)
    model.lm_head.bias.copy_((counts / counts.sum()).log())
    return model
