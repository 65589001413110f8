"""Weight quantization (chapter 8) against PyTorch's own quantized tensors, its error bound, and
what it costs the shipped GPT."""

import copy

import pytest
import torch

from llm_lessons.frontiers.quantization import (
    _blocks,
    dequantize,
    quantize,
    quantize_model,
    storage_bytes,
)
from llm_lessons.resources import load_gpt_shakespeare, shakespeare_char_data
from llm_lessons.training import evaluate

CASES = [(8, "tensor", 64), (8, "channel", 64), (8, "group", 16), (4, "tensor", 64), (4, "channel", 64),
         (4, "group", 16)]


def _weight(seed=0):
    w = torch.randn(24, 48, generator=torch.Generator().manual_seed(seed))
    w[3, 5] = 9.0  # an outlier, as trained matrices have
    return w


# PyTorch's quantized tensors are deprecated (torchao takes over), but still the library's own
# statement of what rounding and clamping to qint8 mean.
@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")
@pytest.mark.parametrize("bits, scheme, group", CASES)
def test_the_integers_are_pytorchs_quantization_with_the_same_scales(bits, scheme, group):
    w = _weight()
    q, scale = quantize(w, bits, scheme, group)
    blocks = _blocks(w, scheme, group)  # one row per scale
    theirs = torch.quantize_per_channel(blocks, scale.double(), torch.zeros(len(scale), dtype=torch.long),
                                        axis=0, dtype=torch.qint8).int_repr()
    assert torch.equal(q, theirs.reshape(w.shape))
    Q = 2 ** (bits - 1) - 1
    assert q.abs().max() == Q and q.dtype == torch.int8
    if scheme == "tensor":
        ref = torch.quantize_per_tensor(w, float(scale), 0, torch.qint8).int_repr()
        assert torch.equal(q, ref)


@pytest.mark.parametrize("bits, scheme, group", CASES)
def test_rounding_moves_each_weight_by_at_most_half_a_step(bits, scheme, group):
    w = _weight(1)
    q, scale = quantize(w, bits, scheme, group)
    error = (dequantize(q, scale, scheme, group) - w).abs()
    steps = _blocks(torch.ones_like(w), scheme, group) * scale[:, None]  # each weight's own s
    assert torch.all(error <= steps.reshape(w.shape) / 2 + 1e-6)


def test_finer_blocks_give_smaller_errors_and_cost_a_little_storage():
    w = _weight(2)
    errors = {s: (dequantize(*quantize(w, 4, s, 16), s, 16) - w).pow(2).mean().item()
              for s in ("tensor", "channel", "group")}
    assert errors["tensor"] > errors["channel"] > errors["group"]  # the outlier spoils less and less
    assert storage_bytes((24, 48), 4, "tensor") == 24 * 48 // 2 + 2
    assert storage_bytes((24, 48), 4, "group", 16) == 24 * 48 // 2 + 2 * 24 * 3
    assert storage_bytes((24, 48), 8, "channel") == 24 * 48 + 2 * 24


def test_an_all_zero_block_stays_zero_and_bad_requests_are_refused():
    q, scale = quantize(torch.zeros(2, 4), 8, "channel")
    assert torch.equal(dequantize(q, scale, "channel"), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="bits must be 4 or 8"):
        quantize(torch.ones(2, 4), bits=3)
    with pytest.raises(ValueError, match="must divide the input width"):
        quantize(torch.ones(2, 6), 4, "group", group_size=4)
    with pytest.raises(ValueError, match="scheme must be one of"):
        quantize(torch.ones(2, 4), 8, "row")


def test_the_shipped_gpt_keeps_its_loss_at_int8_and_loses_little_at_int4_in_groups():
    model, _ = load_gpt_shakespeare()
    _, _, val = shakespeare_char_data()
    base = evaluate(model, val, batch_size=32, num_batches=4)
    change = {}
    for bits, scheme, group in [(8, "channel", 64), (4, "tensor", 64), (4, "channel", 64), (4, "group", 32)]:
        quantized = copy.deepcopy(model)
        sizes = quantize_model(quantized, bits, scheme, group)
        change[(bits, scheme)] = evaluate(quantized, val, batch_size=32, num_batches=4) - base
        assert sizes["quantized_bytes"] < sizes["float_bytes"] * bits / 32 * 1.2
    assert abs(change[(8, "channel")]) < 0.003
    assert change[(4, "tensor")] > change[(4, "channel")] > change[(4, "group")] > -0.003
    assert change[(4, "group")] < 0.01


# torchao (PyTorch's quantization library, optional: `pip install torchao`) as a second oracle.
# Its primitives, given the book's symmetric range [-Q, Q], choose the same scales and integers;
# its int8 weight-only recipe (the range -128..127, so s = max|w| / 127.5) runs on the CPU and
# costs the shipped GPT as little as the book's per-channel int8.
@pytest.mark.parametrize("bits, scheme, group", CASES)
def test_torchaos_affine_primitives_give_the_books_scales_and_integers(bits, scheme, group):
    pytest.importorskip("torchao")
    from torchao.quantization.quant_primitives import MappingType, choose_qparams_affine, quantize_affine

    w = _weight(3)
    Q = 2 ** (bits - 1) - 1
    block = {"tensor": list(w.shape), "channel": [1, w.shape[1]], "group": [1, group]}[scheme]
    scale, zero = choose_qparams_affine(w, MappingType.SYMMETRIC, block, torch.int8,
                                        quant_min=-Q, quant_max=Q)
    theirs = quantize_affine(w, block, scale, zero, torch.int8, quant_min=-Q, quant_max=Q)
    q, ours = quantize(w, bits, scheme, group)
    assert torch.equal(zero, torch.zeros_like(zero))
    assert torch.allclose(scale.reshape(-1), ours, rtol=1e-6, atol=0)
    assert torch.equal(theirs, q)


def test_torchaos_int8_weight_only_model_agrees_with_the_books_per_channel_int8():
    pytest.importorskip("torchao")
    from torch import nn
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    model, _ = load_gpt_shakespeare()
    _, _, val = shakespeare_char_data()
    base = evaluate(model, val, batch_size=32, num_batches=4)
    book, ao = copy.deepcopy(model), copy.deepcopy(model)
    quantize_model(book, 8, "channel")
    # the head is tied to the embedding: left in float, as the book does
    quantize_(ao, Int8WeightOnlyConfig(),
              filter_fn=lambda m, fqn: isinstance(m, nn.Linear) and not fqn.endswith("lm_head"))
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and not n.endswith("lm_head")]
    for name in linears:
        w = model.get_submodule(name).weight.detach()
        theirs = ao.get_submodule(name).weight
        layer = book.get_submodule(name)
        assert theirs.qdata.dtype == torch.int8 and theirs.qdata.shape == w.shape
        s = theirs.scale.reshape(-1)  # one scale per output row, as the book's per-channel scheme
        assert torch.allclose(s, layer.scale * 127 / 127.5, rtol=1e-5, atol=0)
        assert (theirs.qdata.int() - layer.q.int()).abs().max() <= 1  # a slightly finer grid
        assert torch.all((theirs.dequantize() - w).abs() <= s[:, None] / 2 + 1e-7)  # half a step
    change_ao = evaluate(ao, val, batch_size=32, num_batches=4) - base
    change_book = evaluate(book, val, batch_size=32, num_batches=4) - base
    assert abs(change_ao) < 0.003 and abs(change_book) < 0.003
    x = val[: 2 * model.block_size].view(2, -1)  # (B, T)
    with torch.no_grad():
        logits_ao, logits_book = ao(x)[0], book(x)[0]
    assert (logits_ao - logits_book).abs().max() < 0.2  # two int8 grids, both close to float
