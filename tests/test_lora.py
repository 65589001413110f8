"""LoRA from scratch (chapter 8) against peft's LoRA on the same model with the same adapter
weights: same outputs, same gradients; merging equals the adapted forward."""

import copy

import pytest
import torch

peft = pytest.importorskip("peft")

from llm_lessons.frontiers.lora import (  # noqa: E402
    LoRALinear,
    add_lora,
    lora_layers,
    merge_lora,
    trainable_parameters,
    unmerge_lora,
)
from llm_lessons.gpt import GPT, GPTConfig  # noqa: E402

CFG = GPTConfig(vocab_size=31, block_size=16, n_layer=2, n_head=2, n_embd=16, dropout=0.0)
TARGETS = ["attn.qkv", "mlp.fc"]


def _pair(r=4, alpha=8.0, seed=0):
    """Our adapted GPT and peft's, built on copies of one base model, with equal, non-zero adapters."""
    torch.manual_seed(seed)
    base = GPT(CFG)
    ours, theirs = copy.deepcopy(base), copy.deepcopy(base)
    names = add_lora(ours, TARGETS, r=r, alpha=alpha)
    peft.inject_adapter_in_model(peft.LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0,
                                                 target_modules=["qkv", "fc"]), theirs)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name in names:
            layer = ours.get_submodule(name)
            layer.lora_B.copy_(0.1 * torch.randn(layer.lora_B.shape, generator=g))  # B = 0 would hide A
            theirs.get_submodule(f"{name}.lora_A.default").weight.copy_(layer.lora_A)
            theirs.get_submodule(f"{name}.lora_B.default").weight.copy_(layer.lora_B)
    return base, ours, theirs, names


def test_the_same_outputs_and_gradients_as_peft():
    _, ours, theirs, names = _pair()
    idx = torch.randint(31, (3, 16), generator=torch.Generator().manual_seed(2))
    logits, loss = ours(idx[:, :-1], idx[:, 1:])
    ref_logits, ref_loss = theirs(idx[:, :-1], idx[:, 1:])
    assert torch.allclose(logits, ref_logits, atol=1e-6)
    loss.backward()
    ref_loss.backward()
    for name in names:
        layer = ours.get_submodule(name)
        assert torch.allclose(layer.lora_A.grad, theirs.get_submodule(f"{name}.lora_A.default").weight.grad,
                              atol=1e-6)
        assert torch.allclose(layer.lora_B.grad, theirs.get_submodule(f"{name}.lora_B.default").weight.grad,
                              atol=1e-6)
    assert trainable_parameters(ours)[0] == sum(p.numel() for p in theirs.parameters() if p.requires_grad)


def test_only_the_adapters_train_and_their_size_is_r_times_in_plus_out():
    base, ours, _, names = _pair(r=2)
    trainable, total = trainable_parameters(ours)
    assert trainable == CFG.n_layer * ((16 + 48) * 2 + (16 + 64) * 2)  # r (in + out); qkv 16->48, fc 16->64
    assert total == base.num_params() + trainable
    optimizer = torch.optim.AdamW([p for p in ours.parameters() if p.requires_grad], lr=0.1)
    idx = torch.randint(31, (2, 16), generator=torch.Generator().manual_seed(3))
    ours(idx[:, :-1], idx[:, 1:])[1].backward()
    optimizer.step()
    frozen = {n: p for n, p in ours.named_parameters() if "lora_" not in n}
    for name, p in base.named_parameters():  # the wrapped weights live under ".base." now
        assert torch.equal(frozen[name.replace("qkv.", "qkv.base.").replace("fc.", "fc.base.")], p)


def test_a_fresh_adapter_leaves_the_model_unchanged_and_merging_changes_nothing_but_cost():
    torch.manual_seed(4)
    base = GPT(CFG)
    fresh = copy.deepcopy(base)
    add_lora(fresh, TARGETS, r=4, alpha=8)
    idx = torch.randint(31, (2, 16), generator=torch.Generator().manual_seed(5))
    assert torch.equal(fresh(idx)[0], base(idx)[0])  # B starts at zero
    _, ours, _, _ = _pair()
    with torch.no_grad():
        adapted = ours(idx)[0]
        merge_lora(ours)
        assert all(layer.merged for layer in lora_layers(ours))
        assert torch.allclose(ours(idx)[0], adapted, atol=1e-5)
        weights = [layer.base.weight.clone() for layer in lora_layers(ours)]
        merge_lora(ours)  # merging twice must not add the update twice
        layers = lora_layers(ours)
        assert all(torch.equal(w, layer.base.weight) for w, layer in zip(weights, layers, strict=True))
        unmerge_lora(ours)
        assert torch.allclose(ours(idx)[0], adapted, atol=1e-5)


def test_bad_requests_are_refused_by_name():
    model = GPT(CFG)
    with pytest.raises(ValueError, match=r"no nn.Linear matches \['attn.q'\].*'qkv'"):
        add_lora(model, ["attn.q"])
    with pytest.raises(ValueError, match="r"):
        LoRALinear(torch.nn.Linear(4, 3), r=4, alpha=1.0)
    with pytest.raises(TypeError, match="wraps an nn.Linear"):
        LoRALinear(torch.nn.Embedding(4, 3), r=1, alpha=1.0)
