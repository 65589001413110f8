"""The modern decoder (chapter 8) against independent implementations: PyTorch's RMSNorm,
Hugging Face's Llama, Mistral and Mixtral with copied weights (both directions), grouped-query
attention against the same attention with its key/value heads copied out, a mixture of experts
against its explicit weighted sum, and its own uncached forward."""

import pytest
import torch
import torch.nn.functional as F

transformers = pytest.importorskip("transformers")

from llm_lessons.frontiers.gqa import GroupedQueryAttention  # noqa: E402
from llm_lessons.frontiers.layers import RMSNorm, SwiGLU, swiglu_hidden  # noqa: E402
from llm_lessons.frontiers.modern_gpt import ModernConfig, ModernGPT  # noqa: E402
from llm_lessons.interop.llama import (  # noqa: E402
    halves_to_pairs,
    llama_config,
    modern_from_hf,
    modern_to_hf,
    pairs_to_halves,
)
from llm_lessons.sampling import generate  # noqa: E402

SHAPES = {"mha": dict(n_kv_head=4, tie_weights=False), "gqa": dict(n_kv_head=2, tie_weights=True),
          "mqa": dict(n_kv_head=1, tie_weights=False)}


def _config(**kw) -> ModernConfig:
    return ModernConfig(**{**dict(vocab_size=61, block_size=32, n_layer=2, n_head=4, n_embd=32,
                                  rope_base=500.0), **kw})


def _jitter(module, seed):
    torch.manual_seed(seed)
    with torch.no_grad():  # norm gains away from 1, so a swapped or missing gain would show
        for p in module.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return module.eval()


def _ids(B, T, seed=2):
    return torch.randint(61, (B, T), generator=torch.Generator().manual_seed(seed))


def test_rmsnorm_equals_pytorch_and_is_scale_invariant():
    x = torch.randn(3, 5, 16, generator=torch.Generator().manual_seed(0))
    ours, theirs = RMSNorm(16, eps=1e-6), torch.nn.RMSNorm(16, eps=1e-6)
    with torch.no_grad():
        ours.weight.uniform_(0.5, 1.5)
        theirs.weight.copy_(ours.weight)
    assert torch.allclose(ours(x), theirs(x), atol=1e-6)
    assert torch.allclose(ours(7.0 * x), ours(x), atol=1e-5)  # no mean, no bias: only the scale goes
    with pytest.raises(ValueError, match="RMSNorm over 16 channels"):
        ours(torch.zeros(2, 8))


def test_swiglu_matches_its_formula_and_gpt2s_parameter_budget():
    mlp = SwiGLU(128)
    x = torch.randn(2, 3, 128, generator=torch.Generator().manual_seed(1))
    by_hand = (F.silu(x @ mlp.gate.weight.T) * (x @ mlp.up.weight.T)) @ mlp.down.weight.T
    assert torch.allclose(mlp(x), by_hand, atol=1e-5)
    assert swiglu_hidden(128) == 352 and swiglu_hidden(4096, 256) == 11008  # Llama 7B's width
    gpt2_mlp = 2 * 128 * 4 * 128
    assert abs(sum(p.numel() for p in mlp.parameters()) / gpt2_mlp - 1) < 0.04


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_ours_to_llama_same_logits_loss_and_greedy(shape):
    ours = _jitter(ModernGPT(_config(**SHAPES[shape])), seed=0)
    hf = modern_to_hf(ours)
    idx = _ids(3, 32)
    with torch.no_grad():
        logits, _ = ours(idx)
        out = hf(idx, labels=idx)
        _, loss = ours(idx[:, :-1], idx[:, 1:])  # HF shifts the labels itself
    assert torch.allclose(logits, out.logits, atol=1e-5, rtol=0)
    assert abs(loss.item() - out.loss.item()) < 1e-5
    prompt = idx[:, :5]
    theirs = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=20,
                         do_sample=False, pad_token_id=0)
    assert torch.equal(generate(ours, prompt, 20, greedy=True), theirs)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_llama_to_ours_same_logits_and_a_round_trip_is_exact(shape):
    torch.manual_seed(3)
    hf = _jitter(transformers.LlamaForCausalLM(llama_config(_config(**SHAPES[shape]))), seed=4)
    ours = modern_from_hf(hf)
    idx = _ids(2, 32, seed=5)
    with torch.no_grad():
        assert torch.allclose(ours(idx)[0], hf(idx).logits, atol=1e-5, rtol=0)
    back = modern_to_hf(ours)
    for name, tensor in hf.state_dict().items():
        assert torch.equal(back.state_dict()[name], tensor), name


def test_the_rope_permutation_is_a_permutation_and_its_own_inverse_pair():
    w = torch.arange(2 * 8 * 3, dtype=torch.float32).view(16, 3)  # 2 heads of size 8
    halves = pairs_to_halves(w, n_head=2)
    assert torch.equal(halves_to_pairs(halves, n_head=2), w)
    assert torch.equal(halves[:, 0].sort().values, w[:, 0])  # the same rows, reordered
    assert torch.equal(halves[:8, 0], torch.tensor([0.0, 6, 12, 18, 3, 9, 15, 21]))  # heads stay whole


def test_grouped_query_attention_equals_full_attention_with_shared_heads_copied():
    """nkv = 2 serving nh = 4 is multi-head attention whose heads 0,1 and 2,3 have equal keys
    and values: copying each key/value head to its group gives an nkv = nh layer, computing the
    same output."""
    gqa = _jitter(GroupedQueryAttention(32, n_head=4, n_kv_head=2), seed=6)
    mha = GroupedQueryAttention(32, n_head=4, n_kv_head=4)
    hs = 8
    with torch.no_grad():
        for name in ("q", "o"):
            getattr(mha, name).weight.copy_(getattr(gqa, name).weight)
        for name in ("k", "v"):
            heads = getattr(gqa, name).weight.view(2, hs, 32)  # (nkv, hs, C)
            getattr(mha, name).weight.copy_(heads.repeat_interleave(2, dim=0).reshape(4 * hs, 32))
    x = torch.randn(2, 9, 32, generator=torch.Generator().manual_seed(7))
    assert torch.allclose(gqa(x), mha(x), atol=1e-6)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_cached_decoding_equals_the_full_forward_with_a_smaller_cache(shape):
    model = _jitter(ModernGPT(_config(**SHAPES[shape])), seed=8)
    idx = _ids(2, 20, seed=9)
    cache = model.new_cache()
    with torch.no_grad():
        full, _ = model(idx)
        steps = [model(idx[:, :7], cache=cache)[0]] + [model(idx[:, t:t + 1], cache=cache)[0]
                                                         for t in range(7, 20)]
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)
    assert cache[0].k.shape == (2, SHAPES[shape]["n_kv_head"], 20, 8)  # (B, nkv, S, hs)
    assert torch.equal(generate(model, idx[:, :3], 25, greedy=True),
                       generate(model, idx[:, :3], 25, greedy=True, use_cache=False))


def test_later_tokens_never_move_earlier_logits():
    model = _jitter(ModernGPT(_config()), seed=10)
    idx = _ids(1, 16, seed=11)
    changed = idx.clone()
    changed[:, 9:] = (changed[:, 9:] + 1) % 61
    with torch.no_grad():
        assert torch.equal(model(idx)[0][:, :9], model(changed)[0][:, :9])
        assert not torch.allclose(model(idx)[0][:, 9:], model(changed)[0][:, 9:])


def test_tied_weights_are_one_tensor_and_the_config_round_trips():
    tied, untied = ModernGPT(_config(tie_weights=True)), ModernGPT(_config())
    assert tied.lm_head.weight is tied.wte.weight
    assert untied.num_params() - tied.num_params() == 61 * 32
    cfg = _config(n_kv_head=2)
    assert ModernConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("kw, message", [
    (dict(n_kv_head=3), r"n_head \(4\) must be a multiple of n_kv_head \(3\)"),
    (dict(n_embd=12, n_head=4), "RoPE needs an even head size"),
    (dict(rope_base=1.0), "rope_base"),
])
def test_bad_configs_are_refused_by_name(kw, message):
    with pytest.raises((ValueError, TypeError), match=message):
        _config(**kw)


def test_bad_input_is_refused_by_name():
    model = ModernGPT(_config())
    with pytest.raises(ValueError, match="^sequence length 33 exceeds block_size 32"):
        model(_ids(1, 33))
    with pytest.raises(TypeError, match="ModernConfig"):
        ModernGPT(transformers.LlamaConfig())
    hf = transformers.LlamaForCausalLM(llama_config(_config()))
    hf.config.hidden_act = "gelu"
    with pytest.raises(ValueError, match="hidden_act='gelu' is not supported"):
        modern_from_hf(hf)


# --------------------------------------------------------------------------------------------
# Mixture of experts (Mixtral) and sliding windows (Mistral)

from llm_lessons.frontiers.gqa import window_mask  # noqa: E402
from llm_lessons.frontiers.moe import MoEFeedForward, load_balancing_loss  # noqa: E402

FAMILIES = {"mixtral": dict(n_expert=4, expert_top_k=2, n_kv_head=2),
            "mixtral-window": dict(n_expert=3, expert_top_k=1, sliding_window=5),
            "mistral": dict(n_kv_head=2, sliding_window=6, tie_weights=True)}


@pytest.mark.parametrize("family", FAMILIES, ids=str)
def test_experts_and_windows_equal_mixtral_and_mistral_both_ways(family):
    ours = _jitter(ModernGPT(_config(**FAMILIES[family])), seed=12)
    hf = modern_to_hf(ours)
    assert hf.config.model_type == family.split("-")[0]
    idx = _ids(2, 32, seed=13)
    with torch.no_grad():
        logits, _ = ours(idx)
        out = hf(idx, output_router_logits=True) if ours.config.n_expert else hf(idx)
    assert torch.allclose(logits, out.logits, atol=1e-5, rtol=0)
    if ours.config.n_expert:  # the load-balancing loss, pooled over layers as Mixtral pools it
        assert abs(ours.aux_loss.item() - out.aux_loss.item()) < 1e-5
    prompt = idx[:, :4]
    theirs = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=16,
                         do_sample=False, pad_token_id=0)
    assert torch.equal(generate(ours, prompt, 16, greedy=True), theirs)
    back = modern_from_hf(_jitter(hf, seed=14))  # and from their weights to ours
    with torch.no_grad():
        assert torch.allclose(back(idx)[0], hf(idx).logits, atol=1e-5, rtol=0)
    assert all(torch.equal(modern_to_hf(back).state_dict()[k], v) for k, v in hf.state_dict().items())


def test_a_mixture_with_every_expert_chosen_is_their_softmax_weighted_sum():
    moe = _jitter(MoEFeedForward(16, hidden=24, n_expert=3, top_k=3), seed=15)
    x = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(16))
    weights = torch.softmax(x @ moe.router.weight.T, dim=-1)  # (B, T, E)
    expected = sum(weights[..., e:e + 1] * moe.experts[e](x) for e in range(3))
    assert torch.allclose(moe(x), expected, atol=1e-5)
    one = _jitter(MoEFeedForward(16, hidden=24, n_expert=1, top_k=1), seed=17)
    assert torch.allclose(one(x), one.experts[0](x), atol=1e-6)  # a single expert is a dense layer


def test_the_load_balancing_loss_is_k_when_balanced_and_e_when_collapsed():
    uniform = torch.zeros(40, 8)
    assert load_balancing_loss(uniform, top_k=2).item() == pytest.approx(2.0)
    collapsed = torch.zeros(40, 8)
    collapsed[:, 3] = 30.0  # every token's router is sure of expert 3
    assert load_balancing_loss(collapsed, top_k=1).item() == pytest.approx(8.0, rel=1e-6)
    balanced = torch.full((40, 8), -30.0)
    balanced[torch.arange(40), torch.arange(40) % 8] = 30.0  # each expert sure for 5 tokens
    assert load_balancing_loss(balanced, top_k=1).item() == pytest.approx(1.0, rel=1e-6)


def test_the_training_loss_adds_the_router_loss_and_the_evaluation_loss_does_not():
    model = _jitter(ModernGPT(_config(n_expert=4, router_aux_coef=0.5)), seed=18)
    idx = _ids(2, 16, seed=19)
    _, eval_loss = model(idx[:, :-1], idx[:, 1:])
    model.train()
    _, train_loss = model(idx[:, :-1], idx[:, 1:])
    assert train_loss.item() == pytest.approx(eval_loss.item() + 0.5 * model.aux_loss.item(), abs=1e-5)
    train_loss.backward()
    assert model.blocks[0].mlp.router.weight.grad.abs().sum() > 0


def test_a_sliding_window_limits_how_far_back_each_layer_reaches():
    assert torch.equal(window_mask(5, 5, window=5), window_mask(5, 5))  # W >= T: plain causal
    assert torch.equal(window_mask(2, 6, window=3).int(), torch.tensor([[0, 0, 1, 1, 1, 0],
                                                                        [0, 0, 0, 1, 1, 1]]))
    model = _jitter(ModernGPT(_config(sliding_window=4)), seed=20)  # 2 layers: reach 2 * 3 back
    idx = _ids(1, 16, seed=21)
    changed = idx.clone()
    changed[0, 0] = (changed[0, 0] + 1) % 61
    with torch.no_grad():
        delta = (model(idx)[0] - model(changed)[0]).abs().amax(dim=-1)[0]  # (T,)
    assert delta[6] > 0 and torch.all(delta[7:] == 0), delta
    cache = model.new_cache()
    with torch.no_grad():
        steps = torch.cat([model(idx[:, t:t + 1], cache=cache)[0] for t in range(16)], dim=1)
        assert torch.allclose(steps, model(idx)[0], atol=1e-5)


# --------------------------------------------------------------------------------------------
# Efficient attention: the online softmax against PyTorch's fused attention, and the cache size

from llm_lessons.frontiers.flash_attention import memory_traffic, online_softmax_attention  # noqa: E402
from llm_lessons.frontiers.modern_gpt import kv_cache_bytes_per_token  # noqa: E402


@pytest.mark.parametrize("T, block_q, block_k", [(1, 4, 4), (17, 4, 5), (33, 8, 8), (20, 64, 3)])
@pytest.mark.parametrize("causal", [False, True])
def test_the_online_softmax_equals_sdpa_forward_and_backward(T, block_q, block_k, causal):
    g = torch.Generator().manual_seed(T)
    q, k, v = (torch.randn(2, 3, T, 8, generator=g, dtype=torch.float64, requires_grad=True)
               for _ in range(3))
    ours = online_softmax_attention(q, k, v, block_q=block_q, block_k=block_k, causal=causal)
    theirs = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    assert torch.allclose(ours, theirs, atol=1e-10)
    upstream = torch.randn(ours.shape, generator=g, dtype=torch.float64)
    grads = torch.autograd.grad((ours * upstream).sum(), (q, k, v))
    expected = torch.autograd.grad((theirs * upstream).sum(), (q, k, v))
    assert all(torch.allclose(a, b, atol=1e-10) for a, b in zip(grads, expected, strict=True))


def test_large_scores_do_not_overflow_the_running_sums():
    q = torch.full((1, 1, 6, 4), 40.0)  # scores of 3,200: exp would overflow without the max
    k, v = q.clone(), torch.randn(1, 1, 6, 4, generator=torch.Generator().manual_seed(0))
    out = online_softmax_attention(q, k, v, block_q=2, block_k=2, causal=True)
    assert torch.isfinite(out).all()
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-5)


def test_the_traffic_counted_in_the_loop_is_the_formula_and_has_no_square_term():
    q = k = v = torch.zeros(1, 1, 100, 8)
    for block_q in (1, 16, 100):
        counted = [0, 0]
        online_softmax_attention(q, k, v, block_q=block_q, block_k=7, traffic=counted)
        formula = memory_traffic(100, 8, block_q=block_q, block_k=7)
        assert counted == [formula.reads, formula.writes]
    causal = [0, 0]
    online_softmax_attention(q, k, v, block_q=10, block_k=10, causal=True, traffic=causal)
    assert causal[0] < 0.6 * memory_traffic(100, 8, 10, 10).reads  # tiles above the diagonal skipped
    plain = memory_traffic(100, 8)
    assert plain.total == 4 * 100 * 100 + 4 * 100 * 8
    ratios = [memory_traffic(T, 64).total / memory_traffic(T, 64, block_q=256, block_k=64).total
              for T in (1024, 4096, 65536)]  # the advantage tends to 2 Bq / hs = 8, not with T
    assert 6.5 < ratios[0] < ratios[1] < ratios[2] < 8.0 and ratios[2] > 7.9


def test_online_softmax_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="share one shape"):
        online_softmax_attention(torch.zeros(1, 1, 4, 8), torch.zeros(1, 1, 5, 8), torch.zeros(1, 1, 5, 8))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_the_cache_grows_by_the_predicted_bytes_per_token(shape):
    model = ModernGPT(_config(**SHAPES[shape]))
    cache = model.new_cache()
    with torch.no_grad():
        model(_ids(1, 12), cache=cache)
    measured = sum(c.k.nbytes + c.v.nbytes for c in cache) / 12
    assert measured == kv_cache_bytes_per_token(model.config)
    assert kv_cache_bytes_per_token(model.config) * SHAPES[shape]["n_kv_head"] ** -1 == 2 * 2 * 8 * 4
