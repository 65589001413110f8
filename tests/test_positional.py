"""Positional encodings against the article's formula, closed forms, an independent RoPE
(complex numbers; Hugging Face's LLaMA rotary code) and the properties they are chosen for."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_lessons.positional import (
    LearnedPositionalEmbedding,
    apply_rope,
    inverse_frequencies,
    sinusoidal_encoding,
)


def formula_table(n_positions, d_model, base=10000.0):
    """PE(pos, 2i) = sin(pos / base^(2i/d)), PE(pos, 2i+1) = cos(same), one entry at a time."""
    pe = np.zeros((n_positions, d_model))
    for pos in range(n_positions):
        for i in range(d_model // 2):
            angle = pos / base ** (2 * i / d_model)
            pe[pos, 2 * i] = math.sin(angle)
            pe[pos, 2 * i + 1] = math.cos(angle)
    return pe


@pytest.mark.parametrize("n, d, base", [(1, 2, 10000.0), (50, 16, 10000.0), (2048, 8, 10000.0),
                                        (30, 10, 100.0)])
def test_sinusoidal_equals_the_formula(n, d, base):
    pe = sinusoidal_encoding(n, d, base)
    assert pe.shape == (n, d) and pe.dtype == torch.float32
    np.testing.assert_allclose(pe.numpy(), formula_table(n, d, base), atol=1e-6)


@pytest.mark.parametrize("d", [7, 1, 0, -2])
def test_odd_or_non_positive_d_model_raises(d):
    with pytest.raises(ValueError, match=f"d_model must be a positive even integer.*{d}"):
        sinusoidal_encoding(10, d)


def test_dot_product_between_positions_depends_only_on_the_offset():
    pe = sinusoidal_encoding(200, 32).double()
    gram = pe @ pe.T  # (T, T)
    omega = inverse_frequencies(32)
    offsets = torch.arange(200, dtype=torch.float64)[:, None] - torch.arange(200)[None, :]
    closed_form = torch.cos(offsets[..., None] * omega).sum(dim=-1)  # sum_i cos(k omega_i)
    torch.testing.assert_close(gram, closed_form, atol=1e-5, rtol=0)


def test_a_fixed_rotation_maps_every_position_to_position_plus_k():
    d, k = 16, 7
    pe = sinusoidal_encoding(100, d).double()
    M = torch.zeros(d, d, dtype=torch.float64)  # block-diagonal, independent of the position
    for i, w in enumerate(inverse_frequencies(d).tolist()):
        c, s = math.cos(k * w), math.sin(k * w)
        M[2 * i:2 * i + 2, 2 * i:2 * i + 2] = torch.tensor([[c, s], [-s, c]])
    torch.testing.assert_close(pe[:-k] @ M.T, pe[k:], atol=1e-6, rtol=0)  # PE(pos+k) = M PE(pos)


def test_learned_embedding_adds_its_table_rows_from_start():
    emb = LearnedPositionalEmbedding(10, 4)
    x = torch.randn(2, 3, 4)
    torch.testing.assert_close(emb(x), x + emb.table.weight[:3])
    torch.testing.assert_close(emb(x, start=7), x + emb.table.weight[7:10])
    out = emb(x).sum()
    out.backward()
    assert emb.table.weight.grad[:3].abs().sum() > 0 and (emb.table.weight.grad[3:] == 0).all()


def test_learned_embedding_beyond_its_table_raises_naming_the_shapes():
    emb = LearnedPositionalEmbedding(8, 4)
    with pytest.raises(ValueError, match=r"positions 0\.\.8 \(x of shape \(1, 9, 4\).*8 learned"):
        emb(torch.zeros(1, 9, 4))
    with pytest.raises(ValueError, match=r"positions 6\.\.8"):
        emb(torch.zeros(1, 3, 4), start=6)
    with pytest.raises(ValueError, match=r"\(B, T, 4\).*\(1, 3, 5\)"):
        emb(torch.zeros(1, 3, 5))


def rope_by_complex_numbers(x, positions, base=10000.0):
    """RoPE as in the RoFormer paper: pair (x_2i, x_2i+1) is the complex number x_2i + j x_2i+1,
    multiplied by exp(j * pos * theta_i)."""
    hs = x.shape[-1]
    theta = base ** (-torch.arange(0, hs, 2, dtype=torch.float64) / hs)
    z = torch.view_as_complex(x.double().reshape(*x.shape[:-1], hs // 2, 2).contiguous())
    turned = z * torch.polar(torch.ones((), dtype=torch.float64), positions.double()[:, None] * theta)
    return torch.view_as_real(turned).reshape(x.shape)


def test_rope_equals_complex_multiplication():
    x = torch.randn(2, 3, 11, 16, dtype=torch.float64)
    pos = torch.arange(11) * 37  # far positions too
    torch.testing.assert_close(apply_rope(x, pos), rope_by_complex_numbers(x, pos))
    torch.testing.assert_close(apply_rope(x), rope_by_complex_numbers(x, torch.arange(11)))


def test_rope_equals_hugging_face_llama_up_to_the_pair_layout():
    ml = pytest.importorskip("transformers.models.llama.modeling_llama")
    from transformers import LlamaConfig

    hs, T = 16, 9
    cfg = LlamaConfig(hidden_size=2 * hs, num_attention_heads=2, head_dim=hs)
    cos, sin = ml.LlamaRotaryEmbedding(cfg)(torch.zeros(1), torch.arange(T)[None])  # (1, T, hs)
    x = torch.randn(1, 2, T, hs)
    halves = torch.cat([x[..., 0::2], x[..., 1::2]], dim=-1)  # LLaMA pairs i with i + hs/2
    hf, _ = ml.apply_rotary_pos_emb(halves, halves, cos, sin)
    back = torch.stack([hf[..., : hs // 2], hf[..., hs // 2:]], dim=-1).flatten(-2)
    torch.testing.assert_close(apply_rope(x), back, atol=1e-5, rtol=1e-5)


@settings(max_examples=40, deadline=None)
@given(m=st.integers(0, 4000), n=st.integers(0, 4000), shift=st.integers(-1000, 1000),
       seed=st.integers(0, 2**16))
def test_rope_dot_products_depend_only_on_the_offset(m, n, shift, seed):
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(2, 1, 32, generator=g, dtype=torch.float64)
    def score(a, b):
        return (apply_rope(q, torch.tensor([a])) * apply_rope(k, torch.tensor([b]))).sum()
    shifted = score(m + shift, n + shift) if min(m, n) + shift >= 0 else score(m, n)
    torch.testing.assert_close(score(m, n), shifted)
    torch.testing.assert_close(score(m, n), (q * apply_rope(k, torch.tensor([n - m]))).sum())


@settings(max_examples=30, deadline=None)
@given(T=st.integers(1, 20), half=st.integers(1, 16), seed=st.integers(0, 2**16))
def test_rope_preserves_norms_and_position_zero_is_identity(T, half, seed):
    x = torch.randn(3, T, 2 * half, generator=torch.Generator().manual_seed(seed))
    y = apply_rope(x)
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(y[:, 0], x[:, 0])


def test_rope_bad_input_raises():
    with pytest.raises(ValueError, match=r"even head size.*\(2, 5, 7\)"):
        apply_rope(torch.randn(2, 5, 7))
    with pytest.raises(ValueError, match=r"\(T,\) = \(5,\).*\(4,\)"):
        apply_rope(torch.randn(2, 5, 8), positions=torch.arange(4))
    with pytest.raises(TypeError, match="floating-point"):
        apply_rope(torch.ones(2, 5, 8, dtype=torch.long))


def test_encoding_window_figure_and_explorer():
    pytest.importorskip("ipywidgets")
    import matplotlib.pyplot as plt

    from llm_lessons.plotting.widgets import draw_encoding_window, encoding_explorer

    ax = draw_encoding_window(d_model=64, dim=5, start=10, stop=30)
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["dim 4 (sin)", "dim 5 (cos)"]  # the pair of dim 5
    expected = sinusoidal_encoding(30, 64)[10:, 5].numpy()
    np.testing.assert_allclose(lines[1].get_ydata(), expected, atol=1e-6)
    assert f"wavelength {2 * math.pi * 10000 ** (4 / 64):.1f} positions" in ax.get_title()  # pair 2
    explorer = encoding_explorer(d_model=16, max_position=100)
    assert explorer.children[0].max == 15 and explorer.children[1].max == 99
    plt.close("all")
    with pytest.raises(ValueError, match="dim=70"):
        draw_encoding_window(d_model=64, dim=70, start=0, stop=10)
