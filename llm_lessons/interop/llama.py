"""Our :class:`~llm_lessons.frontiers.modern_gpt.ModernGPT` to and from ``transformers``' Llama
family (no download: the Hugging Face model is built from a translated config).

One ModernGPT class covers three of their architectures: ``LlamaForCausalLM`` (dense, full
attention), ``MistralForCausalLM`` (dense, ``sliding_window``) and ``MixtralForCausalLM``
(``n_expert > 0``: its sparse mixture-of-experts layer, router and load-balancing loss).
:func:`modern_to_hf` picks the one that matches the config.

Shapes use fixed letters: C channels, nh heads, hs head size.

The weights map one to one (same names up to a table, as for GPT-2 in
:mod:`llm_lessons.interop.gpt2`), with one twist: the order of each head's query and key
coordinates. The book's RoPE (:func:`llm_lessons.positional.apply_rope`, as in the RoFormer
paper and Meta's original Llama code) rotates *adjacent* pairs (0, 1), (2, 3), ...; Hugging
Face's Llama rotates coordinate i with coordinate i + hs/2 ("rotate_half"). Both give every pair
the same frequency, so permuting the rows of the query and key projections, head by head, turns
one into the other exactly: adjacent pair j of ours is coordinates (j, j + hs/2) of theirs.

>>> from llm_lessons.frontiers.modern_gpt import ModernConfig, ModernGPT
>>> ours = ModernGPT(ModernConfig(vocab_size=11, block_size=8, n_layer=1, n_head=4, n_kv_head=2,
...                               n_embd=16))
>>> theirs = modern_to_hf(ours)
>>> idx = torch.tensor([[1, 2, 3, 4]])
>>> torch.allclose(ours(idx)[0], theirs(idx).logits, atol=1e-5)
True
"""

from __future__ import annotations

import torch

from llm_lessons.frontiers.modern_gpt import ModernConfig, ModernGPT
from llm_lessons.interop.gpt2 import _copy
from llm_lessons.reproducibility import model_device


def pairs_to_halves(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """Rows of a (nh*hs, C) projection reordered from adjacent RoPE pairs to rotate_half order.

    >>> pairs_to_halves(torch.arange(4.0)[:, None], n_head=1).flatten()   # a0 b0 a1 b1 -> a0 a1 b0 b1
    tensor([0., 2., 1., 3.])
    """
    rows, C = w.shape
    hs = rows // n_head
    # (nh*hs, C) -> (nh, hs/2, 2, C) -> (nh, 2, hs/2, C) -> (nh*hs, C)
    return w.view(n_head, hs // 2, 2, C).transpose(1, 2).reshape(rows, C)


def halves_to_pairs(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """The inverse of :func:`pairs_to_halves`."""
    rows, C = w.shape
    hs = rows // n_head
    # (nh*hs, C) -> (nh, 2, hs/2, C) -> (nh, hs/2, 2, C) -> (nh*hs, C)
    return w.view(n_head, 2, hs // 2, C).transpose(1, 2).reshape(rows, C)


def _table(config: ModernConfig) -> list[tuple[str, str]]:
    """(our name, Llama name) for every tensor except q and k (permuted) and experts (stacked)."""
    rows = [("wte.weight", "model.embed_tokens.weight"), ("ln_f.weight", "model.norm.weight")]
    if not config.tie_weights:
        rows.append(("lm_head.weight", "lm_head.weight"))
    layer = [("ln_1.weight", "input_layernorm.weight"), ("attn.v.weight", "self_attn.v_proj.weight"),
             ("attn.o.weight", "self_attn.o_proj.weight"), ("ln_2.weight", "post_attention_layernorm.weight")]
    if config.n_expert:  # Mixtral calls its router "gate"
        layer.append(("mlp.router.weight", "mlp.gate.weight"))
    else:
        layer += [("mlp.gate.weight", "mlp.gate_proj.weight"), ("mlp.up.weight", "mlp.up_proj.weight"),
                  ("mlp.down.weight", "mlp.down_proj.weight")]
    for i in range(config.n_layer):
        rows += [(f"blocks.{i}.{ours}", f"model.layers.{i}.{theirs}") for ours, theirs in layer]
    return rows


def _copy_qk(dst, src, config: ModernConfig, to_hf: bool) -> None:
    """Copy every layer's q and k projections, permuting the rows of each head."""
    heads = {"q": config.n_head, "k": config.n_kv_head}
    reorder = pairs_to_halves if to_hf else halves_to_pairs
    dst_state, src_state = dst.state_dict(), src.state_dict()
    with torch.no_grad():
        for i in range(config.n_layer):
            for name, n in heads.items():
                ours = f"blocks.{i}.attn.{name}.weight"
                theirs = f"model.layers.{i}.self_attn.{name}_proj.weight"
                src_name, dst_name = (ours, theirs) if to_hf else (theirs, ours)
                dst_state[dst_name].copy_(reorder(src_state[src_name], n))


def _copy_experts(dst, src, config: ModernConfig, to_hf: bool) -> None:
    """Mixtral stacks its experts: gate_up_proj (E, 2H, C) = [gate; up], down_proj (E, C, H)."""
    if not config.n_expert:
        return
    dst_state, src_state = dst.state_dict(), src.state_dict()
    ours, theirs = (src_state, dst_state) if to_hf else (dst_state, src_state)
    with torch.no_grad():
        for i in range(config.n_layer):
            gate_up = theirs[f"model.layers.{i}.mlp.experts.gate_up_proj"]  # (E, 2H, C)
            down = theirs[f"model.layers.{i}.mlp.experts.down_proj"]  # (E, C, H)
            for e in range(config.n_expert):
                name = f"blocks.{i}.mlp.experts.{e}"
                if to_hf:
                    gate_up[e].copy_(torch.cat([ours[f"{name}.gate.weight"], ours[f"{name}.up.weight"]]))
                    down[e].copy_(ours[f"{name}.down.weight"])
                else:
                    gate, up = gate_up[e].chunk(2)  # (2H, C) -> (H, C) twice
                    ours[f"{name}.gate.weight"].copy_(gate)
                    ours[f"{name}.up.weight"].copy_(up)
                    ours[f"{name}.down.weight"].copy_(down[e])


def _require_transformers_5() -> None:
    """Version 5 renamed the RoPE settings (``rope_parameters``) and stacked Mixtral's experts;
    an older library would take the new names silently and compute something else."""
    import transformers

    if int(transformers.__version__.split(".")[0]) < 5:
        raise ImportError(f"the Llama-family bridge needs transformers >= 5, not {transformers.__version__}")


def llama_config(config: ModernConfig):
    """The ``transformers`` config of the same shape: LlamaConfig, MistralConfig (sliding
    window) or MixtralConfig (experts). Dropout is not carried (conversions are for eval mode)."""
    _require_transformers_5()
    from transformers import LlamaConfig, MistralConfig, MixtralConfig

    shared = dict(vocab_size=config.vocab_size, hidden_size=config.n_embd,
                  intermediate_size=config.ffn_hidden, num_hidden_layers=config.n_layer,
                  num_attention_heads=config.n_head, num_key_value_heads=config.n_kv_head,
                  head_dim=config.n_embd // config.n_head, max_position_embeddings=config.block_size,
                  rms_norm_eps=config.norm_eps, tie_word_embeddings=config.tie_weights,
                  rope_parameters={"rope_type": "default", "rope_theta": config.rope_base},
                  hidden_act="silu", attention_dropout=0.0,
                  bos_token_id=None, eos_token_id=None, pad_token_id=None)
    if config.n_expert:
        return MixtralConfig(**shared, sliding_window=config.sliding_window,
                             num_local_experts=config.n_expert, num_experts_per_tok=config.expert_top_k,
                             router_aux_loss_coef=config.router_aux_coef, router_jitter_noise=0.0)
    if config.sliding_window is not None:
        return MistralConfig(**shared, sliding_window=config.sliding_window)
    return LlamaConfig(**shared, attention_bias=False, mlp_bias=False)


def modern_config_from_llama(hf_config) -> ModernConfig:
    """Our ``ModernConfig`` for a ``LlamaConfig``; refuses the variants ModernGPT cannot express."""
    _require_transformers_5()
    rope = dict(getattr(hf_config, "rope_parameters", None) or {})
    head_dim = getattr(hf_config, "head_dim", None) or hf_config.hidden_size // hf_config.num_attention_heads
    if hf_config.model_type not in ("llama", "mistral", "mixtral"):
        raise ValueError(f"a {hf_config.model_type!r} model is not in the Llama family "
                         "(llama, mistral, mixtral) that ModernGPT reproduces")
    experts = getattr(hf_config, "num_local_experts", 0) if hf_config.model_type == "mixtral" else 0
    checks = {"hidden_act": (hf_config.hidden_act, ("silu",)),
              "attention_bias": (getattr(hf_config, "attention_bias", False), (False,)),
              "router_jitter_noise": (getattr(hf_config, "router_jitter_noise", 0.0), (0.0, 0)),
              "mlp_bias": (getattr(hf_config, "mlp_bias", False), (False,)),
              "rope_type": (rope.get("rope_type", "default"), ("default",)),
              "head_dim": (head_dim, (hf_config.hidden_size // hf_config.num_attention_heads,)),
              "pretraining_tp": (getattr(hf_config, "pretraining_tp", 1), (1, None))}
    for name, (value, allowed) in checks.items():
        if value not in allowed:
            raise ValueError(f"LlamaConfig.{name}={value!r} is not supported "
                             f"(ModernGPT needs one of {allowed})")
    return ModernConfig(vocab_size=hf_config.vocab_size, block_size=hf_config.max_position_embeddings,
                        n_layer=hf_config.num_hidden_layers, n_head=hf_config.num_attention_heads,
                        n_embd=hf_config.hidden_size,
                        n_kv_head=hf_config.num_key_value_heads or hf_config.num_attention_heads,
                        ffn_hidden=hf_config.intermediate_size,
                        rope_base=float(rope.get("rope_theta", 10000.0)),
                        norm_eps=hf_config.rms_norm_eps,
                        tie_weights=bool(getattr(hf_config, "tie_word_embeddings", False)),
                        sliding_window=getattr(hf_config, "sliding_window", None), n_expert=experts,
                        expert_top_k=getattr(hf_config, "num_experts_per_tok", 2) if experts else 2,
                        router_aux_coef=getattr(hf_config, "router_aux_loss_coef", 0.01) if experts else 0.01)


def modern_to_hf(model: ModernGPT):
    """A Llama, Mistral or Mixtral ``...ForCausalLM`` holding a copy of our ModernGPT's weights
    (eval mode)."""
    from transformers import AutoModelForCausalLM

    if not isinstance(model, ModernGPT):
        raise TypeError(f"modern_to_hf needs our ModernGPT, got {type(model).__name__}")
    hf = AutoModelForCausalLM.from_config(llama_config(model.config)).to(model_device(model))
    _copy(hf, model, [(theirs, ours, False) for ours, theirs in _table(model.config)])
    _copy_qk(hf, model, model.config, to_hf=True)
    _copy_experts(hf, model, model.config, to_hf=True)
    return hf.eval()


def modern_from_hf(hf_model) -> ModernGPT:
    """Our ModernGPT holding a copy of a Llama, Mistral or Mixtral model's weights (eval mode)."""
    config = modern_config_from_llama(hf_model.config)
    model = ModernGPT(config).to(model_device(hf_model))
    _copy(model, hf_model, [(ours, theirs, False) for ours, theirs in _table(config)])
    _copy_qk(model, hf_model, config, to_hf=False)
    _copy_experts(model, hf_model, config, to_hf=False)
    return model.eval()
