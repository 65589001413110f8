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
