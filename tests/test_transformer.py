"""The Transformer block against PyTorch's own nn.TransformerEncoderLayer, plus invariants; and
what the GPT and the masked LM share: their sizes, their loss, their token checks."""

import pytest
import torch
from torch import nn

from llm_lessons.attention import KVCache
from llm_lessons.bert import BertConfig, MaskedLM
from llm_lessons.gpt import GPT, GPTConfig
from llm_lessons.transformer import MLP, Block, TransformerConfig, lm_loss

C, NH = 16, 4


def _perturbed(module: nn.Module, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    with torch.no_grad():  # move norms and biases off their 1/0 init so every parameter matters
        for p in module.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return module.eval()


def _torch_twin(block: Block, norm_first: bool) -> nn.TransformerEncoderLayer:
    """PyTorch's encoder layer with our block's weights (its in_proj is our qkv: q|k|v rows)."""
    twin = nn.TransformerEncoderLayer(C, NH, dim_feedforward=4 * C, dropout=0.0, batch_first=True,
                                      activation=nn.GELU(approximate="tanh"), norm_first=norm_first)
    with torch.no_grad():
        twin.self_attn.in_proj_weight.copy_(block.attn.qkv.weight)
        twin.self_attn.in_proj_bias.copy_(block.attn.qkv.bias)
        twin.self_attn.out_proj.weight.copy_(block.attn.proj.weight)
        twin.self_attn.out_proj.bias.copy_(block.attn.proj.bias)
        for ours, theirs in ((block.mlp.fc, twin.linear1), (block.mlp.proj, twin.linear2),
                             (block.ln_1, twin.norm1), (block.ln_2, twin.norm2)):
            theirs.weight.copy_(ours.weight)
            theirs.bias.copy_(ours.bias)
    # train mode (dropout is 0): eval mode would take PyTorch's fused "fast path", which is only
    # accurate to ~3e-4; the plain path is the reference maths.
    return twin.train()


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("causal", [True, False])
def test_block_equals_pytorch_encoder_layer(norm_first, causal):
    block = _perturbed(Block(C, NH, causal=causal, norm_first=norm_first))
    twin = _torch_twin(block, norm_first)
    x = torch.randn(3, 9, C, generator=torch.Generator().manual_seed(1))
    mask = nn.Transformer.generate_square_subsequent_mask(9) if causal else None
    with torch.no_grad():
        expected = twin(x, src_mask=mask, is_causal=causal)
        assert torch.allclose(block(x), expected, atol=1e-5)


def test_block_padding_mask_equals_pytorch_key_padding_mask():
    block = _perturbed(Block(C, NH, causal=False), seed=3)
    twin = _torch_twin(block, norm_first=True)
    x = torch.randn(2, 6, C, generator=torch.Generator().manual_seed(2))
    real = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    with torch.no_grad():
        ours = block(x, mask=real.bool()[:, None, None, :])  # (B, 1, 1, S): True = may attend
        theirs = twin(x, src_key_padding_mask=~real.bool())  # PyTorch: True = padding
    assert torch.allclose(ours[0, :4], theirs[0, :4], atol=1e-5)  # PyTorch zeroes padded rows
    assert torch.allclose(ours[1], theirs[1], atol=1e-5)


def test_causal_block_ignores_the_future_and_encoder_block_does_not():
    x = torch.randn(1, 8, C, generator=torch.Generator().manual_seed(4))
    later = x.clone()
    later[:, 5:] = torch.randn(1, 3, C)  # (a constant shift would vanish in the LayerNorm)
    causal, bidirectional = _perturbed(Block(C, NH, causal=True)), _perturbed(Block(C, NH, causal=False))
    with torch.no_grad():
        assert torch.allclose(causal(x)[:, :5], causal(later)[:, :5], atol=1e-6)
        assert not torch.allclose(bidirectional(x)[:, :5], bidirectional(later)[:, :5], atol=1e-3)


def test_cache_in_chunks_equals_full_sequence():
    block = _perturbed(Block(C, NH, causal=True), seed=5)
    x = torch.randn(2, 10, C, generator=torch.Generator().manual_seed(6))
    cache = KVCache()
    with torch.no_grad():
        parts = [block(x[:, a:b], cache=cache) for a, b in ((0, 4), (4, 5), (5, 10))]
        assert torch.allclose(torch.cat(parts, dim=1), block(x), atol=1e-5)
    assert cache.length == 10


def test_post_norm_output_is_layer_normalised():
    block = Block(C, NH, norm_first=False).eval()  # fresh LayerNorm: gain 1, bias 0
    y = block(torch.randn(2, 5, C) * 7 + 3)
    assert torch.allclose(y.mean(-1), torch.zeros(2, 5), atol=1e-5)
    assert torch.allclose(y.var(-1, unbiased=False), torch.ones(2, 5), atol=1e-3)


@pytest.mark.parametrize("bias, expected", [(True, 12 * C * C + 13 * C), (False, 12 * C * C + 2 * C)])
def test_block_parameter_count(bias, expected):
    assert sum(p.numel() for p in Block(C, NH, bias=bias).parameters()) == expected


def test_mlp_activations_and_errors():
    x = torch.randn(1, 2, C)
    exact, tanh = MLP(C, activation="gelu"), MLP(C, activation="gelu_tanh")
    tanh.load_state_dict(exact.state_dict())
    assert not torch.equal(exact(x), tanh(x)) and torch.allclose(exact(x), tanh(x), atol=1e-2)
    with pytest.raises(ValueError, match="unknown activation"):
        MLP(C, activation="swish")
    with pytest.raises(ValueError, match="n_head"):
        Block(10, 3)


# --- what every Transformer LM of the book shares ----------------------------------------------

SHARED = ["vocab_size", "block_size", "n_layer", "n_head", "n_embd", "dropout"]


def test_configs_keep_the_shared_sizes_first_in_their_old_order():
    """Checkpoints store ``to_dict()`` and positional construction follows the fields: both stay."""
    assert TransformerConfig.field_names() == SHARED
    assert GPTConfig.field_names() == SHARED + ["bias", "activation"]  # new fields go last
    assert BertConfig.field_names() == SHARED + ["type_vocab_size", "norm_eps"]
    for cls in (GPTConfig, BertConfig):
        with pytest.raises(ValueError, match=rf"^{cls.__name__}\.dropout must be"):
            cls(vocab_size=5, dropout=1.0)
        with pytest.raises(ValueError, match=rf"^{cls.__name__}\.n_layer must be a positive int"):
            cls(vocab_size=5, n_layer=0)
        with pytest.raises(ValueError, match=r"n_embd \(30\) must be divisible by n_head \(4\)"):
            cls(vocab_size=5, n_embd=30, n_head=4)


def test_lm_loss_is_the_mean_negative_log_probability_of_the_labelled_targets():
    logits = torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(7))
    targets = torch.tensor([[1, -100, 4], [-100, -100, 0]])
    logp = logits.log_softmax(-1)
    by_hand = -(logp[0, 0, 1] + logp[0, 2, 4] + logp[1, 2, 0]) / 3
    assert torch.allclose(lm_loss(logits, targets), by_hand, atol=1e-6)
    assert lm_loss(logits, None) is None


SMALL = dict(vocab_size=7, block_size=8, n_layer=1, n_head=2, n_embd=8)


@pytest.mark.parametrize("make", [lambda: GPT(GPTConfig(**SMALL)), lambda: MaskedLM(BertConfig(**SMALL))],
                         ids=["GPT", "MaskedLM"])
def test_both_models_refuse_bad_tokens_with_the_same_messages(make):
    model, idx = make(), torch.tensor([[1, 2, 3]])
    bad = [((torch.tensor([[1, 7]]),), ValueError, r"^idx must hold ids in range\(0, 7\), got ids from 1"),
           ((idx.float(),), TypeError, r"^idx must be an integer tensor"),
           ((idx, torch.tensor([[1, 2]])), ValueError,
            r"^targets shape \(1, 2\) must equal idx shape \(1, 3\)$"),
           ((idx, torch.tensor([[1, 9, -100]])), ValueError,
            r"^targets must hold ids in range\(0, 7\) or -100"),
           ((idx, torch.full_like(idx, -100)), ValueError, "^every target is -100"),
           ((torch.zeros(1, 9, dtype=torch.long),), ValueError, "^sequence length 9 exceeds block_size 8")]
    for args, error, match in bad:
        with pytest.raises(error, match=match):
            model(*args)
    _, loss = model(idx, torch.tensor([[2, -100, 0]]))
    assert loss.item() > 0

