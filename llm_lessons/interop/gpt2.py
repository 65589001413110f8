"""Convert our models to and from Hugging Face ``transformers`` models (no download needed).

Shapes use fixed letters: C channels (``n_embd``).

Our :class:`~llm_lessons.gpt.GPT` has GPT-2's layout, so its weights map one to one onto
``transformers.GPT2LMHeadModel``. Two details differ: GPT-2 stores its linear layers as
``Conv1D`` modules whose weight is the *transpose* of ``nn.Linear``'s (C_in, C_out instead of
C_out, C_in), and its MLP activation is called ``"gelu_new"`` (GELU's tanh approximation, our
``nn.GELU(approximate="tanh")``). Each conversion is a table of (our name, their name,
transposed?) rows; a model family is one table plus a config translation, so further families
(BERT, in :mod:`llm_lessons.interop.bert`) follow the same pattern.

Readers who are online can load OpenAI's GPT-2 weights into our code with
``load_gpt2("gpt2")``, and use Hugging Face tooling (``generate``, pipelines, ``lm_eval``) on a
model trained here with ``gpt_to_hf(model)``.

>>> from llm_lessons.gpt import GPT, GPTConfig
>>> ours = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8))
>>> theirs = gpt_to_hf(ours)
>>> idx = torch.tensor([[1, 2, 3]])
>>> torch.allclose(ours(idx)[0], theirs(idx).logits, atol=1e-5)
True
"""

from __future__ import annotations

import torch
from torch import nn

from llm_lessons.gpt import GPT, GPTConfig
from llm_lessons.reproducibility import model_device

# --------------------------------------------------------------------------------------------
# Shared machinery: copy tensors between two state dicts following a name table.


def _copy(dst: nn.Module, src: nn.Module, table: list[tuple[str, str, bool]]) -> None:
    """For each (dst name, src name, transpose) row, copy src's tensor into dst's, checking shapes."""
    dst_state, src_state = dst.state_dict(), src.state_dict()
    with torch.no_grad():
        for dst_name, src_name, transpose in table:
            if src_name not in src_state:
                raise KeyError(f"source model has no tensor {src_name!r} (needed for {dst_name!r})")
            value = src_state[src_name].t() if transpose else src_state[src_name]
            target = dst_state[dst_name]
            if value.shape != target.shape:
                raise ValueError(f"shape mismatch: {src_name} {tuple(value.shape)} -> {dst_name} "
                                 f"{tuple(target.shape)}")
            target.copy_(value)


# --------------------------------------------------------------------------------------------
# GPT-2: our GPT <-> transformers.GPT2LMHeadModel


def _gpt2_table(n_layer: int) -> list[tuple[str, str, bool]]:
    """(our name, GPT-2 name, transposed?) for every tensor; lm_head is tied to wte in both."""
    rows = [("wte.weight", "transformer.wte.weight", False),
            ("wpe.weight", "transformer.wpe.weight", False),
            ("ln_f.weight", "transformer.ln_f.weight", False),
            ("ln_f.bias", "transformer.ln_f.bias", False)]
    layer = [("ln_1.weight", "ln_1.weight", False), ("ln_1.bias", "ln_1.bias", False),
             ("attn.qkv.weight", "attn.c_attn.weight", True), ("attn.qkv.bias", "attn.c_attn.bias", False),
             ("attn.proj.weight", "attn.c_proj.weight", True), ("attn.proj.bias", "attn.c_proj.bias", False),
             ("ln_2.weight", "ln_2.weight", False), ("ln_2.bias", "ln_2.bias", False),
             ("mlp.fc.weight", "mlp.c_fc.weight", True), ("mlp.fc.bias", "mlp.c_fc.bias", False),
             ("mlp.proj.weight", "mlp.c_proj.weight", True), ("mlp.proj.bias", "mlp.c_proj.bias", False)]
    for i in range(n_layer):
        rows += [(f"blocks.{i}.{ours}", f"transformer.h.{i}.{theirs}", t) for ours, theirs, t in layer]
    return rows


#: Our GPTConfig.activation -> GPT2Config.activation_function, and back (two names for the tanh form).
_ACTIVATION_TO_HF = {"gelu_tanh": "gelu_new", "gelu": "gelu", "relu": "relu"}
_ACTIVATION_FROM_HF = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu",
                       "relu": "relu"}


def gpt2_config(config: GPTConfig):
    """The ``transformers.GPT2Config`` with the same shape as our ``GPTConfig``."""
    from transformers import GPT2Config

    if not config.bias:
        raise ValueError("GPT-2 always has biases: only a GPTConfig with bias=True converts")
    return GPT2Config(vocab_size=config.vocab_size, n_positions=config.block_size,
                      n_embd=config.n_embd, n_layer=config.n_layer, n_head=config.n_head,
                      n_inner=4 * config.n_embd, activation_function=_ACTIVATION_TO_HF[config.activation],
                      resid_pdrop=config.dropout, embd_pdrop=config.dropout, attn_pdrop=config.dropout,
                      layer_norm_epsilon=1e-5, tie_word_embeddings=True,
                      bos_token_id=None, eos_token_id=None, pad_token_id=None)


def gpt_config_from_gpt2(hf_config) -> GPTConfig:
    """Our ``GPTConfig`` for a ``GPT2Config``; refuses the GPT-2 variants our GPT cannot express."""
    checks = {"activation_function": (hf_config.activation_function, tuple(_ACTIVATION_FROM_HF)),
              "n_inner": (hf_config.n_inner, (None, 4 * hf_config.n_embd)),
              "layer_norm_epsilon": (hf_config.layer_norm_epsilon, (1e-5,)),
              "scale_attn_weights": (hf_config.scale_attn_weights, (True,)),
              "scale_attn_by_inverse_layer_idx": (hf_config.scale_attn_by_inverse_layer_idx, (False,)),
              "tie_word_embeddings": (getattr(hf_config, "tie_word_embeddings", True), (True,)),
              "add_cross_attention": (getattr(hf_config, "add_cross_attention", False), (False,)),
              "attn_pdrop": (hf_config.attn_pdrop, (hf_config.resid_pdrop,)),  # our GPT: one dropout
              "embd_pdrop": (hf_config.embd_pdrop, (hf_config.resid_pdrop,))}
    for name, (value, allowed) in checks.items():
        if value not in allowed:
            raise ValueError(f"GPT2Config.{name}={value!r} is not supported (our GPT needs one of {allowed})")
    return GPTConfig(vocab_size=hf_config.vocab_size, block_size=hf_config.n_positions,
                     n_layer=hf_config.n_layer, n_head=hf_config.n_head, n_embd=hf_config.n_embd,
                     dropout=hf_config.resid_pdrop, bias=True,
                     activation=_ACTIVATION_FROM_HF[hf_config.activation_function])


def gpt_to_hf(model: GPT):
    """A ``transformers.GPT2LMHeadModel`` holding a copy of our GPT's weights (in eval mode)."""
    from transformers import GPT2LMHeadModel

    if not isinstance(model, GPT):
        raise TypeError(f"gpt_to_hf needs our GPT, got {type(model).__name__}")
    hf = GPT2LMHeadModel(gpt2_config(model.config)).to(model_device(model))
    _copy(hf, model, [(theirs, ours, t) for ours, theirs, t in _gpt2_table(model.config.n_layer)])
    return hf.eval()


def gpt_from_hf(hf_model) -> GPT:
    """Our GPT holding a copy of a ``GPT2LMHeadModel``'s weights (in eval mode)."""
    config = gpt_config_from_gpt2(hf_model.config)
    model = GPT(config).to(model_device(hf_model))
    _copy(model, hf_model, _gpt2_table(config.n_layer))
    return model.eval()


def load_gpt2(name_or_path: str = "gpt2", sha256: str | None = None) -> GPT:
    """Load pretrained GPT-2 weights into our GPT (downloads ``name_or_path`` when online).

    ``name_or_path`` is a Hugging Face Hub id ("gpt2", "gpt2-medium", ...) or a local folder
    written by ``save_pretrained`` (``config.json`` + ``model.safetensors``). Only safetensors
    weights are read, never a pickle. Pass ``sha256`` (the hex digest of ``model.safetensors``,
    shown on the model's Hub page) to refuse any file whose bytes differ. Use GPT-2's own
    tokenizer (``transformers.AutoTokenizer.from_pretrained("gpt2")``) to turn text into ids.
    """
    import hashlib
    import json
    from pathlib import Path

    from safetensors.torch import load_file
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = Path(name_or_path)
    if folder.is_dir():
        weights, config_file = folder / "model.safetensors", folder / "config.json"
        if not weights.is_file():
            raise FileNotFoundError(f"{folder} has no model.safetensors (only safetensors weights are read)")
    else:  # a Hub id: the only code path that touches the network, and never in the tests
        from huggingface_hub import hf_hub_download

        weights = Path(hf_hub_download(name_or_path, "model.safetensors"))
        config_file = Path(hf_hub_download(name_or_path, "config.json"))
    if sha256 is not None:
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()
        if digest != sha256.lower():
            raise ValueError(f"{weights} has sha256 {digest}, expected {sha256}: refusing to load it")
    hf = GPT2LMHeadModel(GPT2Config(**json.loads(config_file.read_text())))
    state = load_file(str(weights))
    state = {k if k.startswith("transformer.") or k.startswith("lm_head.") else f"transformer.{k}": v
             for k, v in state.items()}  # OpenAI's hub file stores names without the prefix
    missing, unexpected = hf.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith(".attn.bias") and k != "lm_head.weight"]
    if missing or unexpected:
        raise ValueError(f"{weights} does not hold GPT-2 weights: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    hf.tie_weights()
    return gpt_from_hf(hf)
