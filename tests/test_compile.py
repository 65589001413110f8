"""``torch.compile`` computes what eager PyTorch computes (7.3): the book's GPT through Dynamo's
graphs gives eager's loss and gradients, and Inductor's generated kernels give eager's outputs
and gradients for the GPT's feed-forward layer, within float rounding. Kept small: compiling is
slow. Inductor on a CPU needs a C++ compiler; the graph-capture tests need none."""

import copy
import logging
import shutil

import pytest
import torch
import torch._inductor.config

from llm_lessons.gpt import GPT, GPTConfig

logging.getLogger("torch._dynamo").setLevel(logging.ERROR)  # the input checks break the graph


def _model_and_batch():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16))
    g = torch.Generator().manual_seed(1)
    return model.train(), torch.randint(11, (4, 8), generator=g), torch.randint(11, (4, 8), generator=g)


def _loss_and_grads(model, x, y):
    model.zero_grad(set_to_none=True)
    _, loss = model(x, y)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


def test_the_compiled_gpt_graphs_give_eagers_loss_and_gradients():
    """aot_eager: Dynamo's graphs and AOTAutograd's backward graph, run by eager kernels."""
    model, x, y = _model_and_batch()
    compiled = torch.compile(copy.deepcopy(model), backend="aot_eager")
    loss, grads = _loss_and_grads(model, x, y)
    compiled_loss, compiled_grads = _loss_and_grads(compiled, x, y)
    torch.testing.assert_close(compiled_loss, loss, atol=1e-6, rtol=1e-6)
    for got, want in zip(compiled_grads, grads, strict=True):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                    reason="Inductor's CPU kernels need a C++ compiler")
def test_inductor_feed_forward_layer_equals_eager_forward_and_backward():
    model, _, _ = _model_and_batch()
    mlp = model.blocks[0].mlp  # Linear -> GELU (tanh) -> Linear
    fast = torch.compile(copy.deepcopy(mlp))  # the default backend, Inductor
    h = torch.randn(4, 8, 16, generator=torch.Generator().manual_seed(2))
    results = []
    # The generated-code cache's key leaves out ATEN_CPU_CAPABILITY (torch 2.13): on the
    # perturbed numeric path it would hand back this CPU's vector code. Generate afresh.
    with torch._inductor.config.patch(fx_graph_cache=False):
        for layer in (mlp, fast):
            inputs = h.clone().requires_grad_()
            out = layer(inputs)
            out.square().mean().backward()
            results.append((out.detach(), inputs.grad, [p.grad for p in layer.parameters()]))
    (out, grad, weight_grads), (fast_out, fast_grad, fast_weight_grads) = results
    torch.testing.assert_close(fast_out, out, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(fast_grad, grad, atol=1e-7, rtol=1e-3)
    for got, want in zip(fast_weight_grads, weight_grads, strict=True):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-3)


def test_the_graph_breaks_are_the_input_checks_and_the_model_is_one_graph():
    model, x, y = _model_and_batch()
    explained = torch._dynamo.explain(model)(x, y)
    assert explained.graph_break_count == explained.graph_count - 1 >= 1
    names = {r.user_stack[-1].name for r in explained.break_reasons}
    assert all("check" in name for name in names), names
    sizes = sorted(len(g.graph.nodes) for g in explained.graphs)
    assert sizes[-1] > 50 and sizes[-2] < 10  # the Transformer, then the small pieces between checks
