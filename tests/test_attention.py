"""Our attention against PyTorch's own (F.scaled_dot_product_attention, nn.MultiheadAttention),
plus the invariants every attention must keep and the errors bad input must raise."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_lessons.attention import (
    KVCache,
    MultiHeadAttention,
    causal_mask,
    padding_mask,
    scaled_dot_product_attention,
)

TOL = {"atol": 1e-5, "rtol": 1e-5}


def qkv(B=2, nh=3, T=5, S=None, hs=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    S = T if S is None else S
    shapes = [(B, nh, T, hs), (B, nh, S, hs), (B, nh, S, hs)]
    return [torch.randn(*s, generator=g, requires_grad=True) for s in shapes]


def lengths_mask(lengths, S):
    """(B, S) 0/1 mask: the first lengths[b] tokens of row b are real (right padding)."""
    return (torch.arange(S)[None, :] < torch.tensor(lengths)[:, None]).long()


def grads(out, *tensors):
    g = torch.Generator().manual_seed(1)
    return torch.autograd.grad(out, tensors, grad_outputs=torch.randn(out.shape, generator=g))


@pytest.mark.parametrize("case", ["none", "causal", "padding", "causal+padding", "cross"])
def test_matches_torch_sdpa_forward_and_gradients(case):
    S = 7 if case == "cross" else 5
    q, k, v = qkv(T=5, S=S)
    mask = None
    if "causal" in case:
        mask = causal_mask(5)
    if "padding" in case:
        pad = padding_mask(lengths_mask([5, 3], S))  # (B, 1, 1, S)
        mask = pad if mask is None else pad & mask
    ours, _ = scaled_dot_product_attention(q, k, v, mask=mask)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(ours, ref, **TOL)
    for a, b in zip(grads(ours, q, k, v), grads(ref, q, k, v), strict=True):
        torch.testing.assert_close(a, b, **TOL)


def test_causal_mask_matches_torch_is_causal():
    q, k, v = qkv(T=6)
    ours, _ = scaled_dot_product_attention(q, k, v, mask=causal_mask(6))
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v, is_causal=True), **TOL)


def test_causal_mask_with_cache_is_bottom_right_aligned():
    # 2 new queries after 3 cached positions: query i sits at absolute position 3 + i
    assert causal_mask(2, 5).int().tolist() == [[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]


def test_identical_keys_give_the_mean_of_the_values():
    q = torch.randn(4, 3)
    k = torch.ones(6, 3)
    v = torch.randn(6, 2)
    out, w = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(w, torch.full((4, 6), 1 / 6))
    torch.testing.assert_close(out, v.mean(dim=0).expand(4, 2))


@settings(max_examples=40, deadline=None)
@given(T=st.integers(1, 6), S=st.integers(1, 6), seed=st.integers(0, 10_000), scale=st.floats(0.1, 30))
def test_weights_are_distributions_with_exact_zeros_where_masked(T, S, seed, scale):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(2, T, 4, generator=g) * scale, torch.randn(2, S, 4, generator=g) * scale,
               torch.randn(2, S, 3, generator=g))
    mask = torch.rand(2, T, S, generator=g) < 0.6
    mask[..., torch.randint(S, (1,), generator=g)] = True  # every row keeps at least one key
    _, w = scaled_dot_product_attention(q, k, v, mask=mask)
    assert (w >= 0).all()
    torch.testing.assert_close(w.sum(dim=-1), torch.ones(2, T))
    assert (w[~mask] == 0).all()
    assert torch.isfinite(w).all()


def copied_torch_mha(ours: MultiHeadAttention) -> torch.nn.MultiheadAttention:
    ref = torch.nn.MultiheadAttention(ours.n_embd, ours.n_head, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(ours.qkv.weight)  # (3C, C): q, k, v stacked in the same order
        ref.in_proj_bias.copy_(ours.qkv.bias)
        ref.out_proj.weight.copy_(ours.proj.weight)
        ref.out_proj.bias.copy_(ours.proj.bias)
    return ref


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("padded", [False, True])
def test_multihead_matches_torch_multiheadattention(fused, causal, padded):
    torch.manual_seed(0)
    B, T, C, nh = 3, 6, 16, 4
    ours = MultiHeadAttention(C, nh, causal=causal, fused=fused).eval()
    ref = copied_torch_mha(ours).eval()
    x = torch.randn(B, T, C, requires_grad=True)
    real = lengths_mask([6, 4, 2], T)  # (B, T), right padding
    mask = padding_mask(real) if padded else None
    torch_kw = {"key_padding_mask": ~real.bool() if padded else None,  # torch: True = ignore
                "attn_mask": ~causal_mask(T) if causal else None, "average_attn_weights": False}
    out = ours(x, mask=mask)
    ref_out, ref_w = ref(x, x, x, need_weights=True, **torch_kw)
    torch.testing.assert_close(out, ref_out, **TOL)
    gx, gw, gb, gp = grads(out, x, ours.qkv.weight, ours.qkv.bias, ours.proj.weight)
    rx, rw, rb, rp = grads(ref_out, x, ref.in_proj_weight, ref.in_proj_bias, ref.out_proj.weight)
    for a, b in [(gx, rx), (gw, rw), (gb, rb), (gp, rp)]:
        torch.testing.assert_close(a, b, **TOL)
    ours.keep_weights = True
    ours(x, mask=mask)
    torch.testing.assert_close(ours.weights, ref_w, **TOL)  # (B, nh, T, T)


@pytest.mark.parametrize("causal", [False, True])
def test_fused_equals_explicit_forward_and_gradients(causal):
    torch.manual_seed(1)
    fused = MultiHeadAttention(24, 3, causal=causal, fused=True)
    explicit = MultiHeadAttention(24, 3, causal=causal, fused=False)
    explicit.load_state_dict(fused.state_dict())
    x = torch.randn(2, 9, 24, requires_grad=True)
    mask = padding_mask(lengths_mask([9, 5], 9))
    for m in (None, mask):
        a, b = fused(x, mask=m), explicit(x, mask=m)
        torch.testing.assert_close(a, b, **TOL)
        for ga, gb in zip(grads(a, x, fused.qkv.weight), grads(b, x, explicit.qkv.weight), strict=True):
            torch.testing.assert_close(ga, gb, **TOL)
    assert fused.weights is None and explicit.weights is None  # kept only when asked


def test_keep_weights_shape_and_causal_zeros():
    mha = MultiHeadAttention(8, 2, causal=True)
    mha.keep_weights = True
    mha(torch.randn(3, 5, 8))
    assert mha.weights.shape == (3, 2, 5, 5)
    assert (mha.weights.triu(diagonal=1) == 0).all()
    assert not mha.weights.requires_grad


@pytest.mark.parametrize("fused", [True, False])
def test_kv_cache_step_by_step_equals_full_causal_pass(fused):
    torch.manual_seed(2)
    mha = MultiHeadAttention(16, 4, causal=True, fused=fused).eval()
    x = torch.randn(2, 7, 16)
    full = mha(x)
    cache = KVCache()
    first = mha(x[:, :3], cache=cache)  # a 3-token prompt, then one token at a time
    steps = [mha(x[:, t:t + 1], cache=cache) for t in range(3, 7)]
    torch.testing.assert_close(torch.cat([first, *steps], dim=1), full, **TOL)
    assert cache.length == 7


def test_fully_masked_row_raises_instead_of_nan():
    q, k, v = qkv(T=3)
    mask = torch.ones(3, 3, dtype=torch.bool)
    mask[1] = False
    with pytest.raises(ValueError, match=r"query row \(1,\).*fully masked"):
        scaled_dot_product_attention(q, k, v, mask=mask)


@pytest.mark.parametrize("fused", [True, False])
def test_left_padding_under_a_causal_mask_raises_in_both_paths(fused):
    # query 0 of the second sequence is padding and may only see key 0, which is padding too
    mha = MultiHeadAttention(8, 2, causal=True, fused=fused)
    left_padded = torch.tensor([[1, 1, 1, 1], [0, 0, 1, 1]])
    with pytest.raises(ValueError, match="fully masked"):
        mha(torch.randn(2, 4, 8), mask=padding_mask(left_padded))


@pytest.mark.parametrize("shapes, message", [
    (((2, 5, 8), (2, 5, 4), (2, 5, 8)), "head size"),
    (((2, 5, 8), (2, 6, 8), (2, 5, 8)), "same number of positions"),
    (((2, 5, 8), (3, 5, 8), (3, 5, 8)), "do not broadcast"),
    (((5,), (5, 8), (5, 8)), "at least 2 dims"),
])
def test_mismatched_shapes_raise_naming_them(shapes, message):
    q, k, v = (torch.randn(*s) for s in shapes)
    with pytest.raises(ValueError, match=message) as err:
        scaled_dot_product_attention(q, k, v)
    assert str(tuple(shapes[1])) in str(err.value)


def test_bad_dtypes_and_masks_raise():
    q, k, v = (torch.randn(2, 4, 8) for _ in range(3))
    with pytest.raises(TypeError, match="floating-point"):
        scaled_dot_product_attention(q.long(), k, v)
    with pytest.raises(TypeError, match="boolean"):
        scaled_dot_product_attention(q, k, v, mask=torch.ones(4, 4))  # a float mask is ambiguous
    with pytest.raises(ValueError, match=r"\(3, 3\).*\(2, 4, 4\)"):
        scaled_dot_product_attention(q, k, v, mask=torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="dropout_p"):
        scaled_dot_product_attention(q, k, v, dropout_p=1.0)
    mha = MultiHeadAttention(8, 2, causal=True)
    with pytest.raises(TypeError, match="boolean"):
        mha(torch.randn(2, 4, 8), mask=torch.ones(2, 4, 4))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 2, 4, 4\)"):
        mha(torch.randn(2, 4, 8), mask=torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(B, T, 8\).*\(2, 4, 6\)"):
        mha(torch.randn(2, 4, 6))
    with pytest.raises(ValueError, match="attention_mask must be"):
        padding_mask(torch.ones(2, 3, 4))
    with pytest.raises(ValueError, match="T=4, S=3"):
        causal_mask(4, 3)


@pytest.mark.parametrize("n_embd, n_head", [(10, 3), (8, 0), (0, 2)])
def test_n_embd_must_be_a_multiple_of_n_head(n_embd, n_head):
    with pytest.raises(ValueError, match=f"n_embd \\({n_embd}\\).*n_head \\({n_head}\\)"):
        MultiHeadAttention(n_embd, n_head)


def test_dropout_only_in_training_and_rescales_kept_weights():
    torch.manual_seed(3)
    q, k, v = (torch.randn(1, 6, 4) for _ in range(3))
    _, clean = scaled_dot_product_attention(q, k, v)
    _, dropped = scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    kept = dropped != 0
    torch.testing.assert_close(dropped[kept], clean[kept] * 2)  # inverted dropout: 1 / (1 - p)
    mha = MultiHeadAttention(8, 2, dropout=0.5).eval()
    x = torch.randn(1, 5, 8)
    torch.testing.assert_close(mha(x), mha(x))  # no dropout in eval mode


def test_attention_explorer_controls_and_figure():
    widgets = pytest.importorskip("ipywidgets")
    import matplotlib.pyplot as plt

    from llm_lessons.plotting.widgets import attention_explorer

    weights = torch.rand(3, 2, 4, 4).softmax(dim=-1)  # (L, nh, T, T)
    calls = []

    def fn(sentence):
        calls.append(sentence)
        return weights, sentence.split()

    explorer = attention_explorer(["a b c d", "e f g h"], fn)
    assert isinstance(explorer, widgets.interactive)
    layer, head = explorer.children[1], explorer.children[2]
    assert (layer.max, head.max) == (2, 1)
    head.value = 1  # moving a control redraws from the remembered result
    ax = plt.gcf().axes[0]
    assert ax.get_title() == "layer 0, head 1"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c", "d"]
    assert calls == ["a b c d"]
    plt.close("all")
    with pytest.raises(ValueError, match="at least one sentence"):
        attention_explorer([], fn)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(0, 3), max_size=4).map(tuple), min_size=1, max_size=3))
def test_shape_broadcasting_rule_matches_torch(shapes):
    from llm_lessons.attention import _broadcast

    try:
        expected = tuple(torch.broadcast_shapes(*shapes))
    except RuntimeError:
        expected = None
    assert _broadcast(*shapes) == expected


def test_attention_figures_label_and_validate():
    import matplotlib.pyplot as plt

    from llm_lessons.plotting import plot_attention, plot_attention_heads

    torch.manual_seed(0)
    _, w = scaled_dot_product_attention(*(torch.randn(3, 4) for _ in range(3)), mask=causal_mask(3))
    ax = plot_attention(w, ["I", "like", "tea"], annotate=True)
    cells = [float(t.get_text()) for t in ax.texts]
    assert cells == [round(x, 2) for x in w.flatten().tolist()]  # row by row, as printed
    assert [t.get_text() for t in ax.get_yticklabels()] == ["I", "like", "tea"]
    with pytest.raises(ValueError, match=r"\(3, 3\).*3 query and 3 key tokens, got 3 and 2"):
        plot_attention(w, ["I", "like"], query_tokens=["I", "like", "tea"])
    with pytest.raises(ValueError, match=r"\(nh, T, S\)"):
        plot_attention_heads(w, ["I", "like", "tea"])
    plt.close("all")


def test_bertviz_view_embeds_rounded_weights_and_tokens():
    pytest.importorskip("bertviz")
    from llm_lessons.plotting import bertviz_view

    w = torch.tensor([[[0.123456, 0.876544], [1.0, 0.0]]])  # (nh=1, T=2, T=2)
    html = bertviz_view(w, ["cat", "sat"], kind="head").data
    assert "0.123" in html and "0.123456" not in html and '"cat"' in html
    assert "bertviz-" in bertviz_view(w[None].expand(2, 1, 2, 2), ["cat", "sat"], kind="model").data
    with pytest.raises(ValueError, match="for 3 tokens"):
        bertviz_view(w, ["a", "b", "c"])
    with pytest.raises(ValueError, match="kind"):
        bertviz_view(w, ["a", "b"], kind="neuron")
