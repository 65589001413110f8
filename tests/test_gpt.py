"""The GPT model: config checks, parameter count, causality, KV cache, loss, generation, bad input."""

import math

import pytest
import torch
import torch.nn.functional as F

from llm_lessons.gpt import GPT, PRESETS, GPTConfig

CFG = GPTConfig(vocab_size=23, block_size=16, n_layer=2, n_head=4, n_embd=32)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return GPT(CFG).eval()


def _ids(*shape, seed=0, V=CFG.vocab_size):
    return torch.randint(V, shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("bias", [True, False])
def test_param_count_formula(bias):
    cfg = GPTConfig(vocab_size=23, block_size=16, n_layer=3, n_head=2, n_embd=12, bias=bias)
    V, T, L, C = 23, 16, 3, 12
    # per layer: qkv 3C^2, proj C^2, fc 4C^2, fc2 4C^2 (12C^2); with bias: 3C + C + 4C + C biases
    # and two LayerNorms (2C each); without: two LayerNorm gains (C each). Tied output head.
    per_layer = 12 * C * C + (13 * C if bias else 2 * C)
    expected = V * C + T * C + L * per_layer + (2 * C if bias else C)
    assert GPT(cfg).num_params() == expected


def test_nano_preset_size():
    cfg = GPTConfig.preset("nano", vocab_size=73)
    assert (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.block_size) == (4, 4, 128, 64)
    assert 0.7e6 < GPT(cfg).num_params() < 0.9e6
    assert PRESETS["gpt2"]["vocab_size"] == 50257


def test_weights_are_tied(model):
    assert model.lm_head.weight is model.wte.weight


def test_causality_every_position(model):
    T = CFG.block_size
    idx = _ids(2, T)
    logits, _ = model(idx)
    for t in range(T - 1):
        changed = idx.clone()
        shift = 1 + _ids(2, T - t - 1, seed=t, V=CFG.vocab_size - 1)  # 1..V-1: every token changes
        changed[:, t + 1:] = (changed[:, t + 1:] + shift) % CFG.vocab_size
        assert (changed[:, t + 1:] != idx[:, t + 1:]).all()
        new_logits, _ = model(changed)
        assert torch.allclose(new_logits[:, : t + 1], logits[:, : t + 1], atol=1e-6), t
        assert not torch.allclose(new_logits[:, t + 1:], logits[:, t + 1:], atol=1e-6)


def test_kv_cache_equals_full_forward(model):
    idx = _ids(3, CFG.block_size, seed=1)
    full, _ = model(idx)
    cache = model.new_cache()
    assert len(cache) == CFG.n_layer and all(c.length == 0 for c in cache)
    pieces, start = [], 0
    for size in (5, 1, 1, 4, 5):  # prompt, then single tokens, then chunks: 16 in all
        logits, _ = model(idx[:, start:start + size], cache=cache)
        pieces.append(logits)
        start += size
    assert cache[0].length == CFG.block_size
    assert torch.allclose(torch.cat(pieces, dim=1), full, atol=1e-5)
    with pytest.raises(ValueError, match="exceed block_size"):
        model(idx[:, :1], cache=cache)
    with pytest.raises(ValueError, match="layers"):
        model(idx[:, :1], cache=model.new_cache()[:1])


def test_loss_is_cross_entropy_of_next_tokens(model):
    x, y = _ids(2, 10, seed=2), _ids(2, 10, seed=3)
    logits, loss = model(x, y)
    by_hand = -logits.log_softmax(-1).gather(-1, y[..., None]).mean()
    assert torch.allclose(loss, by_hand, atol=1e-6)
    y_ignored = y.clone()
    y_ignored[:, :4] = -100
    _, loss_ignored = model(x, y_ignored)
    assert torch.allclose(loss_ignored, F.cross_entropy(logits[:, 4:].reshape(-1, 23), y[:, 4:].reshape(-1)))


def test_untrained_loss_near_uniform():
    torch.manual_seed(0)
    _, loss = GPT(CFG)(_ids(4, 16), _ids(4, 16, seed=9))
    assert abs(loss.item() - math.log(CFG.vocab_size)) < 0.3


def test_attention_weights_are_causal_distributions(model):
    idx = _ids(2, 7, seed=4)
    w = model.attention_weights(idx)
    assert w.shape == (CFG.n_layer, 2, CFG.n_head, 7, 7)
    assert torch.allclose(w.sum(-1), torch.ones(CFG.n_layer, 2, CFG.n_head, 7), atol=1e-6)
    assert (w.triu(diagonal=1) == 0).all()
    assert all(not b.attn.keep_weights and b.attn.weights is None for b in model.blocks)
    # the explicit (weights-keeping) path computes the same logits as the fused kernel
    for b in model.blocks:
        b.attn.keep_weights = True
    explicit, _ = model(idx)
    for b in model.blocks:
        b.attn.keep_weights = False
    assert torch.allclose(explicit, model(idx)[0], atol=1e-5)


def test_attention_weights_of_layer_one_by_hand():
    torch.manual_seed(1)
    model = GPT(GPTConfig(vocab_size=23, block_size=16, n_layer=2, n_head=4, n_embd=32, dropout=0.5))
    model.train()  # attention_weights switches dropout off and restores the mode
    idx = _ids(1, 6, seed=8)
    w = model.attention_weights(idx)
    assert model.training
    with torch.no_grad():
        x = model.wte(idx) + model.wpe(torch.arange(6))  # (1, T, C)
        q, k, _ = model.blocks[0].attn.qkv(model.blocks[0].ln_1(x)).split(32, dim=-1)  # (1, T, C) each
        q, k = (t.view(1, 6, 4, 8).transpose(1, 2) for t in (q, k))  # (1, nh, T, hs)
        future = torch.ones(6, 6).triu(1).bool()  # (T, S): key after query
        scores = (q @ k.transpose(-2, -1) / math.sqrt(8)).masked_fill(future, -math.inf)
    assert torch.allclose(w[0], scores.softmax(-1), atol=1e-6)


def test_attention_weights_in_train_mode_are_the_eval_weights():
    """Dropout 0.5 left on: the maps are still the model's attention, the same on every call."""
    torch.manual_seed(2)
    model = GPT(GPTConfig(vocab_size=23, block_size=16, n_layer=2, n_head=4, n_embd=32, dropout=0.5))
    model.train()
    idx = _ids(2, 9, seed=10)
    with torch.no_grad():
        assert not torch.equal(model(idx)[0], model(idx)[0])  # dropout really is active
    first, second = model.attention_weights(idx), model.attention_weights(idx)
    assert model.training  # the mode is restored
    assert torch.equal(first, second)
    model.eval()
    assert torch.equal(first, model.attention_weights(idx))
    assert not model.training

def _manual_greedy(model, idx, n):
    for _ in range(n):
        logits, _ = model(idx[:, -model.block_size:])
        idx = torch.cat([idx, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return idx


def test_generate_greedy_crops_context_from_the_left(model):
    prompt = _ids(2, 12, seed=5)
    out = model.generate(prompt, 10, greedy=True)  # 22 > block_size 16: the context is cropped
    assert out.shape == (2, 22) and torch.equal(out[:, :12], prompt)
    assert torch.equal(out, _manual_greedy(model, prompt, 10))
    assert torch.equal(model.generate(prompt, 0), prompt)


def test_generate_sampling_is_reproducible_and_top1_is_greedy(model):
    prompt = _ids(1, 3, seed=6)
    a = model.generate(prompt, 20, generator=torch.Generator().manual_seed(1))
    b = model.generate(prompt, 20, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert torch.equal(model.generate(prompt, 20, top_k=1), model.generate(prompt, 20, greedy=True))
    model.train()
    model.generate(prompt, 1)
    assert model.training  # mode restored


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_embd=30, n_head=4), "divisible"),
    (dict(n_layer=0), "positive"),
    (dict(vocab_size=-1), "positive"),
    (dict(dropout=1.0), "dropout"),
])
def test_bad_config(kwargs, match):
    values = {**CFG.to_dict(), **kwargs}
    with pytest.raises(ValueError, match=match):
        GPTConfig(**values)


def test_bad_presets():
    with pytest.raises(ValueError, match="unknown GPT preset"):
        GPTConfig.preset("huge", vocab_size=5)
    with pytest.raises(ValueError, match="vocab_size"):
        GPTConfig.preset("nano")
    with pytest.raises(ValueError, match="unknown GPTConfig field"):
        GPTConfig.from_dict({**CFG.to_dict(), "n_heads": 2})


def test_bad_inputs(model):
    with pytest.raises(ValueError, match="exceeds block_size 16"):
        model(_ids(1, 17))
    with pytest.raises(ValueError, match=r"range\(0, 23\)"):
        model(torch.tensor([[1, 23]]))
    with pytest.raises(ValueError, match=r"range\(0, 23\)"):
        model(torch.tensor([[-1, 2]]))
    with pytest.raises(TypeError, match="integer"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        model(torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="targets shape"):
        model(_ids(1, 4), _ids(1, 3))
    with pytest.raises(ValueError, match="targets"):
        model(_ids(1, 4), torch.full((1, 4), 23))
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.generate(_ids(1, 2), -1)
    with pytest.raises(ValueError, match="temperature"):
        model.generate(_ids(1, 2), 3, temperature=0.0)
    with pytest.raises(ValueError, match="top_k"):
        model.generate(_ids(1, 2), 3, top_k=0)
    with pytest.raises(TypeError, match="GPTConfig"):
        GPT({"vocab_size": 3})
