"""Chapter 8.2's checkers (RMSNorm, SwiGLU, repeating key/value heads): an independent solution
passes, a stub is "not implemented yet", each plausible wrong answer fails with words that name
its mistake, and the functions that are the answer cannot be used to pass."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from checker_contract import contract

from llm_lessons.exercises.checking import ExerciseFailed
from llm_lessons.exercises.modern_decoder import check_repeat_kv, check_rms_norm, check_swiglu
from llm_lessons.frontiers import layers
from llm_lessons.frontiers.gqa import GroupedQueryAttention
from llm_lessons.frontiers.layers import RMSNorm as imported_rmsnorm
from llm_lessons.positional import apply_rope

# --- RMSNorm ---


def my_rms_norm(x, weight, eps):
    rms = torch.sqrt(x.pow(2).sum(-1, keepdim=True) / x.shape[-1] + eps)
    return weight * (x / rms)


def rms_norm_centred(x, weight, eps):
    x = x - x.mean(-1, keepdim=True)
    return my_rms_norm(x, weight, eps)


def rms_norm_eps_outside(x, weight, eps):
    return weight * x / (x.pow(2).mean(-1, keepdim=True).sqrt() + eps)


def rms_norm_over_dim_0(x, weight, eps):
    return weight * x / torch.sqrt(x.pow(2).mean(0, keepdim=True) + eps)


def rms_norm_without_gain(x, weight, eps):
    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def rms_norm_by_package(x, weight, eps):
    norm = layers.RMSNorm(x.shape[-1], eps=eps)
    with torch.no_grad():
        norm.weight.copy_(weight)
        return norm(x)


def rms_norm_by_torch(x, weight, eps):
    return F.rms_norm(x, (x.shape[-1],), weight, eps)


# --- SwiGLU ---


def my_swiglu(x, w_gate, w_up, w_down):
    gate = x @ w_gate.T
    return (gate * torch.sigmoid(gate) * (x @ w_up.T)) @ w_down.T


def swiglu_swapped(x, w_gate, w_up, w_down):
    return my_swiglu(x, w_up, w_gate, w_down)


def glu_with_sigmoid(x, w_gate, w_up, w_down):
    return (torch.sigmoid(x @ w_gate.T) * (x @ w_up.T)) @ w_down.T


def swiglu_silu_after(x, w_gate, w_up, w_down):
    return F.silu((x @ w_gate.T) * (x @ w_up.T)) @ w_down.T


def silu_mlp(x, w_gate, w_up, w_down):
    return F.silu(x @ w_gate.T) @ w_down.T


def swiglu_by_package(x, w_gate, w_up, w_down):
    mlp = layers.SwiGLU(x.shape[-1], hidden=w_gate.shape[0])
    with torch.no_grad():
        mlp.gate.weight.copy_(w_gate)
        mlp.up.weight.copy_(w_up)
        mlp.down.weight.copy_(w_down)
        return mlp(x)


# --- repeating key/value heads ---


def my_repeat_kv(k, n_head):
    B, nkv, T, hs = k.shape
    g = n_head // nkv
    return k[:, :, None].expand(B, nkv, g, T, hs).reshape(B, n_head, T, hs)  # copies after each head


def repeat_kv_tiled(k, n_head):
    return k.repeat(1, n_head // k.shape[1], 1, 1)


def repeat_kv_tiled_by_expand(k, n_head):
    B, nkv, T, hs = k.shape
    return k[:, None].expand(B, n_head // nkv, nkv, T, hs).reshape(B, n_head, T, hs)


def repeat_kv_nkv_times(k, n_head):
    return k.repeat_interleave(k.shape[1], dim=1)


# checker -> (a correct solution written here, [(a wrong answer, words its failure must say)])
CASES = {
    check_rms_norm: (my_rms_norm, [
        (rms_norm_centred, "you subtracted the mean first"),
        (rms_norm_eps_outside, "you added eps after the square root"),
        (rms_norm_over_dim_0, "averaged over the first dimension"),
        (rms_norm_without_gain, "you left out the gain"),
        (rms_norm_by_package, "without calling llm_lessons.frontiers.layers.RMSNorm"),
        (rms_norm_by_torch, "without calling torch.nn.functional.rms_norm"),
    ]),
    check_swiglu: (my_swiglu, [
        (swiglu_swapped, "gate and up are swapped"),
        (glu_with_sigmoid, "the original GLU"),
        (swiglu_silu_after, "applied SiLU to the product"),
        (silu_mlp, "left out the up projection"),
        (swiglu_by_package, "without calling llm_lessons.frontiers.layers.SwiGLU"),
    ]),
    check_repeat_kv: (my_repeat_kv, [
        (repeat_kv_tiled, "repeat_interleave(g, dim=1)"),
        (repeat_kv_tiled_by_expand, "wrong order"),
        (repeat_kv_nkv_times, "repeated each head n_kv_head times"),
    ]),
}
(test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
 test_each_wrong_answer_is_named) = contract(CASES)


def cheat_with_an_imported_rmsnorm(x, weight, eps):
    norm = imported_rmsnorm(x.shape[-1], eps=eps)  # bound before the check: patching cannot reach it
    return norm(x) * weight


def test_a_forbidden_class_held_under_a_global_name_is_caught():
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.frontiers.layers.RMSNorm"):
        check_rms_norm(cheat_with_an_imported_rmsnorm)


def test_pytorchs_rmsnorm_module_is_refused_too():
    def with_module(x, weight, eps):
        norm = torch.nn.RMSNorm(x.shape[-1], eps=eps)
        with torch.no_grad():
            norm.weight.copy_(weight)
            return norm(x)

    with pytest.raises(ExerciseFailed, match="without calling torch.nn.RMSNorm"):
        check_rms_norm(with_module)


def test_the_references_match_the_package():
    # the checkers' conventions are the book's: nn.Linear weight layouts, Llama's head grouping
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 16, generator=g)
    norm = layers.RMSNorm(16, eps=0.3)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5, generator=g)
    assert torch.allclose(my_rms_norm(x, norm.weight.detach(), 0.3), norm(x).detach(), atol=1e-6)
    mlp = layers.SwiGLU(16, hidden=24)
    assert torch.allclose(my_swiglu(x, mlp.gate.weight, mlp.up.weight, mlp.down.weight), mlp(x), atol=1e-6)
    # GQA with heads repeated by my_repeat_kv equals the package's layer
    attn = GroupedQueryAttention(16, n_head=4, n_kv_head=2).eval()
    B, T = x.shape[:2]
    q = attn.q(x).view(B, T, 4, 4).transpose(1, 2)  # (B, nh, T, hs)
    k = attn.k(x).view(B, T, 2, 4).transpose(1, 2)  # (B, nkv, T, hs)
    v = attn.v(x).view(B, T, 2, 4).transpose(1, 2)
    pos = torch.arange(T)
    q, k = apply_rope(q, pos), apply_rope(k, pos)
    y = F.scaled_dot_product_attention(q, my_repeat_kv(k, 4), my_repeat_kv(v, 4), is_causal=True)
    assert torch.allclose(attn.o(y.transpose(1, 2).reshape(B, T, 16)), attn(x), atol=1e-6)


def test_layer_norm_is_rms_norm_of_the_centred_vector_plus_a_bias():
    # notebook 8.2, section 2: the one step between the two norms, against PyTorch's LayerNorm
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 7, 32, generator=g) * 3 + 2
    ln = torch.nn.LayerNorm(32, eps=1e-5)
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5, generator=g)
        ln.bias.uniform_(-1.0, 1.0, generator=g)
        centred = x - x.mean(-1, keepdim=True)
        assert torch.allclose(my_rms_norm(centred, ln.weight, ln.eps) + ln.bias, ln(x), atol=1e-5)
        # and RMSNorm alone is not LayerNorm when the mean is far from 0
        assert not torch.allclose(my_rms_norm(x, ln.weight, ln.eps) + ln.bias, ln(x), atol=1e-2)
