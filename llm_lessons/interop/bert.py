"""Convert our :class:`~llm_lessons.bert.MaskedLM` to and from ``transformers.BertForMaskedLM``.

Nothing is downloaded: the Hugging Face model is built from a ``transformers.BertConfig``
derived from ours. The two layouts differ only in names and in one place: Hugging Face keeps
separate query/key/value matrices (C, C) where our attention has one fused ``qkv`` (3C, C),
stacked q | k | v.

    ours                         Hugging Face (bert.encoder.layer.i. ...)
    blocks.i.attn.qkv            attention.self.{query,key,value}
    blocks.i.attn.proj           attention.output.dense
    blocks.i.ln_1 / ln_2         attention.output.LayerNorm / output.LayerNorm
    blocks.i.mlp.fc / mlp.proj   intermediate.dense / output.dense
    head.0 / head.2              cls.predictions.transform.dense / .LayerNorm
    lm_head.bias                 cls.predictions.bias (the decoder weight is the tied embedding)

Our model may have no token-type embedding (``type_vocab_size=0``); Hugging Face always adds
one, so it gets a single all-zero row, which adds nothing.

>>> from llm_lessons.bert import BertConfig, MaskedLM
>>> ours = MaskedLM(BertConfig.preset("nano", vocab_size=12, block_size=8, n_layer=1))
>>> hf = bert_to_hf(ours)
>>> idx = torch.tensor([[1, 2, 3]])
>>> torch.allclose(hf(idx).logits, ours(idx)[0], atol=1e-5)
True
"""

from __future__ import annotations

import torch

from llm_lessons.bert import BertConfig, MaskedLM


def hf_bert_config(config: BertConfig, attn_implementation: str = "sdpa"):
    """The ``transformers.BertConfig`` with the same shape as our ``config``."""
    import transformers

    return transformers.BertConfig(
        vocab_size=config.vocab_size, hidden_size=config.n_embd, num_hidden_layers=config.n_layer,
        num_attention_heads=config.n_head, intermediate_size=4 * config.n_embd, hidden_act="gelu",
        hidden_dropout_prob=config.dropout, attention_probs_dropout_prob=config.dropout,
        max_position_embeddings=config.block_size, type_vocab_size=max(config.type_vocab_size, 1),
        layer_norm_eps=config.norm_eps, pad_token_id=0, attn_implementation=attn_implementation)


def _layer_pairs(i: int) -> list[tuple[str, str]]:
    """(ours, theirs) names of the parameters of layer i that copy one to one."""
    hf = f"bert.encoder.layer.{i}."
    ours = f"blocks.{i}."
    pairs = [("attn.proj", "attention.output.dense"), ("ln_1", "attention.output.LayerNorm"),
             ("mlp.fc", "intermediate.dense"), ("mlp.proj", "output.dense"),
             ("ln_2", "output.LayerNorm")]
    return [(ours + a + suffix, hf + b + suffix) for a, b in pairs for suffix in (".weight", ".bias")]


def _shared_pairs() -> list[tuple[str, str]]:
    pairs = [("wte.weight", "bert.embeddings.word_embeddings.weight"),
             ("wpe.weight", "bert.embeddings.position_embeddings.weight"),
             ("ln_emb.weight", "bert.embeddings.LayerNorm.weight"),
             ("ln_emb.bias", "bert.embeddings.LayerNorm.bias"),
             ("head.0.weight", "cls.predictions.transform.dense.weight"),
             ("head.0.bias", "cls.predictions.transform.dense.bias"),
             ("head.2.weight", "cls.predictions.transform.LayerNorm.weight"),
             ("head.2.bias", "cls.predictions.transform.LayerNorm.bias"),
             ("lm_head.bias", "cls.predictions.bias")]
    return pairs


@torch.no_grad()
def bert_to_hf(model: MaskedLM, attn_implementation: str = "sdpa"):
    """A ``transformers.BertForMaskedLM`` computing the same logits as ``model`` (eval mode)."""
    import transformers

    if not isinstance(model, MaskedLM):
        raise TypeError(f"bert_to_hf needs a MaskedLM, got {type(model).__name__}")
    cfg = model.config
    hf = transformers.BertForMaskedLM(hf_bert_config(cfg, attn_implementation))
    ours, theirs = model.state_dict(), hf.state_dict()
    C = cfg.n_embd
    pairs = _shared_pairs() + [p for i in range(cfg.n_layer) for p in _layer_pairs(i)]
    new = {b: ours[a] for a, b in pairs}
    new["cls.predictions.decoder.weight"] = ours["wte.weight"]
    if "cls.predictions.decoder.bias" in theirs:
        new["cls.predictions.decoder.bias"] = ours["lm_head.bias"]
    types = theirs["bert.embeddings.token_type_embeddings.weight"]
    new["bert.embeddings.token_type_embeddings.weight"] = (
        ours["wtt.weight"] if model.wtt is not None else torch.zeros_like(types))
    for i in range(cfg.n_layer):
        q, k, v = ours[f"blocks.{i}.attn.qkv.weight"].split(C, dim=0)  # (3C, C) -> 3 x (C, C)
        qb, kb, vb = ours[f"blocks.{i}.attn.qkv.bias"].split(C)  # (3C,) -> 3 x (C,)
        for name, w, b in (("query", q, qb), ("key", k, kb), ("value", v, vb)):
            new[f"bert.encoder.layer.{i}.attention.self.{name}.weight"] = w
            new[f"bert.encoder.layer.{i}.attention.self.{name}.bias"] = b
    missing = sorted(set(theirs) - set(new))
    if missing:
        raise RuntimeError(f"no value for Hugging Face parameter(s) {missing}")
    hf.load_state_dict({k: v.detach().clone() for k, v in new.items()}, strict=True)
    return hf.eval()


def _check_hf_config(hc) -> None:
    """Refuse every ``transformers.BertConfig`` setting that would make our model compute
    something else (a value our MaskedLM cannot express), naming the field."""
    required = {  # field: (default when absent, the values our MaskedLM computes exactly)
        "hidden_act": ("gelu", ("gelu",)),  # exact GELU
        "is_decoder": (False, (False,)),  # a decoder masks the future: not bidirectional
        "add_cross_attention": (False, (False,)),
        "tie_word_embeddings": (True, (True,)),  # our decoder *is* the token embedding
        "position_embedding_type": ("absolute", ("absolute",)),  # learned absolute positions
        "is_encoder_decoder": (False, (False,)),
    }
    for name, (default, allowed) in required.items():
        value = getattr(hc, name, default)
        if value not in allowed:
            raise ValueError(f"BertConfig.{name}={value!r} is not supported (our MaskedLM needs one of "
                             f"{allowed}): converting would compute something else")
    if hc.intermediate_size != 4 * hc.hidden_size:
        raise ValueError(f"intermediate_size must be 4 * hidden_size, got {hc.intermediate_size} "
                         f"for hidden_size {hc.hidden_size}")
    if hc.attention_probs_dropout_prob != hc.hidden_dropout_prob:
        raise ValueError(f"attention_probs_dropout_prob ({hc.attention_probs_dropout_prob}) must equal "
                         f"hidden_dropout_prob ({hc.hidden_dropout_prob}): our MaskedLM has one dropout")


@torch.no_grad()
def bert_from_hf(hf) -> MaskedLM:
    """Our :class:`MaskedLM` with the weights of a ``transformers.BertForMaskedLM``.

    Refuses (naming the field) any config our model cannot reproduce exactly, and a decoder
    whose weight or bias is not the tied embedding and the prediction bias.
    """
    hc = hf.config
    _check_hf_config(hc)
    cfg = BertConfig(vocab_size=hc.vocab_size, block_size=hc.max_position_embeddings,
                     n_layer=hc.num_hidden_layers, n_head=hc.num_attention_heads,
                     n_embd=hc.hidden_size, dropout=hc.hidden_dropout_prob,
                     type_vocab_size=hc.type_vocab_size, norm_eps=hc.layer_norm_eps)
    model = MaskedLM(cfg)
    theirs = hf.state_dict()
    decoder = theirs.get("cls.predictions.decoder.weight")
    if decoder is not None and not torch.equal(decoder, theirs["bert.embeddings.word_embeddings.weight"]):
        raise ValueError("the decoder weight differs from the word embeddings (untied): our MaskedLM "
                         "ties them, so converting would change the logits")
    bias = theirs.get("cls.predictions.decoder.bias")
    if bias is not None and not torch.equal(bias, theirs["cls.predictions.bias"]):
        raise ValueError("cls.predictions.decoder.bias differs from cls.predictions.bias")
    pairs = _shared_pairs() + [p for i in range(cfg.n_layer) for p in _layer_pairs(i)]
    new = {a: theirs[b] for a, b in pairs}
    new["wtt.weight"] = theirs["bert.embeddings.token_type_embeddings.weight"]
    for i in range(cfg.n_layer):
        hf_self = f"bert.encoder.layer.{i}.attention.self."
        new[f"blocks.{i}.attn.qkv.weight"] = torch.cat(  # 3 x (C, C) -> (3C, C)
            [theirs[hf_self + n + ".weight"] for n in ("query", "key", "value")], dim=0)
        new[f"blocks.{i}.attn.qkv.bias"] = torch.cat(  # 3 x (C,) -> (3C,)
            [theirs[hf_self + n + ".bias"] for n in ("query", "key", "value")])
    new["lm_head.weight"] = new["wte.weight"]
    model.load_state_dict({k: v.detach().clone() for k, v in new.items()}, strict=True)
    return model.eval()
