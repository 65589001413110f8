"""The shipped GPT exported to ONNX and run by ONNX Runtime, an implementation independent of
PyTorch's kernels: the same logits within 1e-4 for every batch size and length up to the block
size, the same greedy text, a well-formed graph holding the weights once, and bad input refused
with the messages ``GPT.forward`` gives."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
onnx = pytest.importorskip("onnx")

from llm_lessons.gpt import GPT, GPTConfig  # noqa: E402
from llm_lessons.interop.onnx_export import (  # noqa: E402
    export_gpt_onnx,
    onnx_generate,
    onnx_logits,
    onnx_session,
)
from llm_lessons.resources import load_gpt_shakespeare  # noqa: E402

# float32 logits of size ~10 computed with different summation orders (ORT's MatMul and fused
# LayerNormalization against ATen's) differ by a few 1e-6; 1e-4 leaves a 20x margin and is still
# 1000x below the gap between the top two logits that greedy decoding depends on.
TOL = 1e-4


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    model, tok = load_gpt_shakespeare()
    path = export_gpt_onnx(model, tmp_path_factory.mktemp("onnx") / "gpt.onnx")
    return model, tok, path, onnx_session(path)


@pytest.mark.parametrize("B,T", [(1, 1), (1, 64), (3, 17), (5, 2), (2, 64)])
def test_logits_match_pytorch_for_every_batch_and_length(shipped, B, T):
    model, _, _, session = shipped
    idx = torch.randint(0, model.config.vocab_size, (B, T), generator=torch.Generator().manual_seed(T))
    got = onnx_logits(session, idx)
    assert got.shape == (B, T, model.config.vocab_size) and got.dtype == torch.float32
    with torch.no_grad():
        want, _ = model(idx)
    assert (got - want).abs().max().item() < TOL


def test_greedy_text_is_the_same_as_pytorchs(shipped):
    model, tok, _, session = shipped
    for prompt in ("ROMEO:\n", "KING HENRY V:\nOnce more unto the breach", "O"):
        idx = torch.tensor([tok.encode(prompt)])
        theirs = onnx_generate(session, idx, 120)  # past the block size: the window slides
        ours = model.generate(idx, 120, greedy=True)
        assert torch.equal(theirs, ours), prompt


def test_the_graph_is_valid_dynamic_and_holds_each_weight_once(shipped):
    model, _, path, _ = shipped
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    dims = [d.dim_param for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "time"]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["block_size"] == "64" and meta["vocab_size"] == str(model.config.vocab_size)
    stored = sum(onnx.numpy_helper.to_array(t).nbytes for t in proto.graph.initializer)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())  # tied: counted once
    assert weights <= stored < weights + 1024  # plus a few scalar constants
    assert not any(n.metadata_props for n in proto.graph.node)  # no stack traces with local paths


def test_a_random_gpt_round_trips_and_keeps_its_mode(tmp_path):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=7, block_size=8, n_layer=1, n_head=2, n_embd=8, dropout=0.1))
    model.train()
    session = onnx_session(export_gpt_onnx(model, tmp_path / "tiny.onnx"))
    assert model.training  # exported in eval mode (no dropout), mode put back
    model.eval()
    for B, T in [(1, 1), (4, 8), (2, 5)]:
        idx = torch.randint(0, 7, (B, T))
        assert (onnx_logits(session, idx) - model(idx)[0]).abs().max().item() < TOL
    assert torch.equal(onnx_generate(session, torch.tensor([[1, 2]]), 0), torch.tensor([[1, 2]]))


def test_bad_input_is_refused(shipped, tmp_path):
    model, _, path, session = shipped
    with pytest.raises(ValueError, match="sequence length 65 exceeds block_size 64"):
        onnx_logits(session, torch.zeros(1, 65, dtype=torch.long))
    with pytest.raises(TypeError, match="integer tensor"):
        onnx_logits(session, torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"shape \(B, T\)"):
        onnx_logits(session, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"shape \(B, T\)"):
        onnx_logits(session, torch.zeros(2, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="range"):
        onnx_logits(session, torch.tensor([[0, model.config.vocab_size]]))
    with pytest.raises(ValueError, match="max_new_tokens"):
        onnx_generate(session, torch.tensor([[1]]), -1)
    with pytest.raises(TypeError, match="InferenceSession"):
        onnx_logits(path, torch.tensor([[1]]))
    with pytest.raises(TypeError, match="llm_lessons.gpt.GPT"):
        export_gpt_onnx(torch.nn.Linear(2, 2), tmp_path / "x.onnx")
    with pytest.raises(ValueError, match="must end in .onnx"):
        export_gpt_onnx(model, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="does not exist"):
        export_gpt_onnx(model, tmp_path / "missing" / "x.onnx")
    with pytest.raises(ValueError, match="no ONNX file"):
        onnx_session(tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="threads"):
        onnx_session(path, threads=0)


def test_a_file_from_elsewhere_is_refused_before_it_runs(tmp_path):
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["idx"], ["logits"])], "g",
                              [helper.make_tensor_value_info("idx", TensorProto.INT64, [1, 1])],
                              [helper.make_tensor_value_info("logits", TensorProto.INT64, [1, 1])])
    path = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    with pytest.raises(ValueError, match="not written by export_gpt_onnx"):
        onnx_logits(onnx_session(path), torch.tensor([[1]]))
