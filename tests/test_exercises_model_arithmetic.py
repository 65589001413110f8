"""The checkers of a model's arithmetic (chapter 1's parameter count, chapter 3.1's GELU, chapter
3.2's AdamW step, chapter 3.3's unigram output bias): an independent solution passes, a stub is
"not implemented yet", each plausible wrong answer fails with words that name its mistake, the
checkers' references agree with the package and with PyTorch, and the functions that are the
answer cannot be used to pass."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from checker_contract import contract
from torch import nn

from llm_lessons import bert, scale
from llm_lessons.bert import BertConfig, MaskedLM
from llm_lessons.exercises import model_arithmetic as ma
from llm_lessons.exercises.checking import MISSING, ExerciseFailed, available, forbid
from llm_lessons.gpt import GPT, GPTConfig

# --- the parameter count of a GPT ---


def my_param_count(L, d, V, T):
    qkv, out = 3 * (d * d + d), d * d + d  # Linear layers: weight + bias
    up, down = d * 4 * d + 4 * d, 4 * d * d + d
    block = qkv + out + up + down + 2 * (2 * d)  # and ln_1, ln_2
    return L * block + V * d + T * d + 2 * d  # wte (also lm_head), wpe, ln_f


def count_untied(L, d, V, T):
    return my_param_count(L, d, V, T) + V * d


def count_weights_only(L, d, V, T):
    return 12 * L * d**2 + V * d + T * d


def count_without_positions(L, d, V, T):
    return my_param_count(L, d, V, T) - T * d


def count_with_2x_mlp(L, d, V, T):
    return my_param_count(L, d, V, T) - L * (4 * d * d + 2 * d)


# --- GELU ---


def my_gelu(x):
    return x * torch.special.ndtr(x)  # ndtr: the standard normal CDF, Phi


def gelu_tanh(x):
    inner = math.sqrt(2 / math.pi) * (x + 0.044715 * torch.pow(x, 3))
    return x * (1 + torch.tanh(inner)) / 2


def gelu_sigmoid(x):
    return x / (1 + torch.exp(-1.702 * x))


def gelu_relu(x):
    return torch.relu(x)


def gelu_silu(x):
    return F.silu(x)


# --- the AdamW step ---


def my_adamw(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay):
    param = param * (1 - lr * weight_decay)  # decoupled decay first
    m = torch.lerp(m, grad, 1 - beta1)
    v = v * beta2 + grad * grad * (1 - beta2)
    step_size = lr / (1 - beta1**step)
    denom = v.sqrt() / math.sqrt(1 - beta2**step) + eps
    return param - step_size * m / denom, m, v


def adam_with_l2(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay):
    grad = grad + weight_decay * param
    return my_adamw(param, grad, m, v, step, lr, beta1, beta2, eps, 0.0)


def adamw_without_bias_correction(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    return param * (1 - lr * weight_decay) - lr * m / (v.sqrt() + eps), m, v


def adamw_eps_in_root(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    m_hat, v_hat = m / (1 - beta1**step), v / (1 - beta2**step)
    return param * (1 - lr * weight_decay) - lr * m_hat / torch.sqrt(v_hat + eps), m, v


def adamw_decay_last(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay):
    new, m, v = my_adamw(param, grad, m, v, step, lr, beta1, beta2, eps, 0.0)
    return new * (1 - lr * weight_decay), m, v


def adamw_by_torch(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay):
    p = nn.Parameter(param.clone())
    opt = torch.optim.AdamW([p], lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)
    p.grad = grad.clone()
    opt.step()
    return p.detach(), opt.state[p]["exp_avg"], opt.state[p]["exp_avg_sq"]


# --- the unigram output bias ---


def my_unigram(ids, V):
    counts = torch.zeros(V, dtype=torch.float64).index_add_(0, ids, torch.ones(len(ids), dtype=torch.float64))
    return torch.log((counts + 1) / (counts + 1).sum())


def unigram_unsmoothed(ids, V):
    return torch.log(torch.bincount(ids, minlength=V) / len(ids))


def unigram_not_logged(ids, V):
    return my_unigram(ids, V).exp()


def unigram_over_n(ids, V):
    return torch.log((torch.bincount(ids, minlength=V) + 1.0) / len(ids))


def unigram_log2(ids, V):
    return my_unigram(ids, V) / math.log(2)


CHECKERS = {
    ma.check_gpt_param_count: (my_param_count, [
        (count_untied, "ties it to the token embedding"), (count_weights_only, "only the weight matrices"),
        (count_without_positions, "position embedding"), (count_with_2x_mlp, "2x wide")]),
    ma.check_gelu: (my_gelu, [(gelu_tanh, "tanh approximation"), (gelu_sigmoid, "1.702"),
                              (gelu_relu, "ReLU"), (gelu_silu, "SiLU")]),
    ma.check_adamw_step: (my_adamw, [(adam_with_l2, "Adam with L2"),
                                     (adamw_without_bias_correction, "not bias-corrected"),
                                     (adamw_eps_in_root, "inside the square root"),
                                     (adamw_decay_last, "after the Adam update")]),
    ma.check_unigram_bias: (my_unigram, [(unigram_unsmoothed, "did not smooth"),
                                         (unigram_not_logged, "returned the probabilities"),
                                         (unigram_over_n, "divided by N"), (unigram_log2, "log2")]),
}

(test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
 test_each_wrong_answer_is_named) = contract(CHECKERS)


@pytest.mark.parametrize("L, d, V, T, heads", [(1, 8, 7, 5, 2), (2, 32, 50, 16, 4), (3, 48, 101, 33, 3)])
def test_the_count_is_the_package_gpts(L, d, V, T, heads):
    """The package's GPT has GPT-2's layout (tied, biases, LayerNorms), so its own count agrees."""
    model = GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=L, n_head=heads, n_embd=d))
    assert sum(p.numel() for p in model.parameters()) == my_param_count(L, d, V, T)
    assert scale.gpt_param_count(L, d, V, T, exact=True) == my_param_count(L, d, V, T)


def test_gpt2_small_and_the_forbidden_count():
    assert my_param_count(12, 768, 50257, 1024) == 124439808
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.scale.gpt_param_count"):
        ma.check_gpt_param_count(lambda *a: scale.gpt_param_count(*a, exact=True))


def test_gelu_agrees_with_pytorch_and_pytorchs_is_refused():
    x = torch.linspace(-6, 6, 241, dtype=torch.float64)
    torch.testing.assert_close(my_gelu(x), F.gelu(x), atol=1e-12, rtol=0)
    torch.testing.assert_close(gelu_tanh(x), F.gelu(x, approximate="tanh"), atol=1e-12, rtol=0)
    assert (my_gelu(x) - gelu_tanh(x)).abs().max() > 1e-4  # the tolerance tells them apart
    original = F.gelu
    for answer in (F.gelu, lambda x: F.gelu(x), lambda x: nn.GELU()(x)):  # nn.GELU calls F.gelu
        with pytest.raises(ExerciseFailed, match="without calling torch.nn.functional.gelu"):
            ma.check_gelu(answer)
    assert F.gelu is original  # put back


def test_adamw_agrees_with_pytorch_over_several_steps():
    g = torch.Generator().manual_seed(0)
    for lr, betas, eps, wd in [(1e-2, (0.9, 0.999), 1e-8, 0.1), (0.1, (0.8, 0.95), 1e-3, 0.5)]:
        start = torch.randn(3, 4, generator=g, dtype=torch.float64)
        p = nn.Parameter(start.clone())
        opt = torch.optim.AdamW([p], lr=lr, betas=betas, eps=eps, weight_decay=wd)
        mine, m, v = start, torch.zeros_like(start), torch.zeros_like(start)
        for step in range(1, 7):
            grad = torch.randn(3, 4, generator=g, dtype=torch.float64) * 10 ** -step
            p.grad = grad.clone()
            opt.step()
            mine, m, v = my_adamw(mine, grad, m, v, step, lr, *betas, eps, wd)
            torch.testing.assert_close(mine, p.detach(), atol=1e-12, rtol=1e-10)
            torch.testing.assert_close(m, opt.state[p]["exp_avg"], atol=1e-14, rtol=1e-12)
            torch.testing.assert_close(v, opt.state[p]["exp_avg_sq"], atol=1e-16, rtol=1e-12)


def test_torchs_adamw_is_refused_and_put_back():
    assert "torch.optim.AdamW.step" in available(ma.ADAMW_ANSWERS)
    before = {cls: vars(cls).get("step", MISSING) for cls in (torch.optim.AdamW, torch.optim.Adam)}
    with pytest.raises(ExerciseFailed, match="without calling torch.optim.AdamW.step"):
        ma.check_adamw_step(adamw_by_torch)
    with forbid(("torch.optim.AdamW.step",), "test"), pytest.raises(ExerciseFailed, match="AdamW.step"):
        adamw_by_torch(*[torch.ones(2)] * 4, 1, 0.1, 0.9, 0.999, 1e-8, 0.0)
    after = {cls: vars(cls).get("step", MISSING) for cls in (torch.optim.AdamW, torch.optim.Adam)}
    assert all(after[cls] is before[cls] for cls in before)  # the class's own attribute, or none, again
    param, grad = torch.ones(2, dtype=torch.float64), torch.tensor([0.5, -1.0], dtype=torch.float64)
    args = (param, grad, torch.zeros_like(param), torch.zeros_like(param), 1, 0.1, 0.9, 0.99, 1e-8, 0.1)
    for a, b in zip(adamw_by_torch(*args), my_adamw(*args), strict=True):  # AdamW works again
        torch.testing.assert_close(a, b)


def test_unigram_bias_is_init_output_bias_and_that_is_refused():
    g = torch.Generator().manual_seed(0)
    for V, N in [(3, 4), (10, 7), (25, 200)]:
        ids = torch.randint(0, V, (N,), generator=g)
        model = bert.init_output_bias(MaskedLM(BertConfig(vocab_size=V, n_layer=1, n_embd=8, n_head=2)), ids)
        bias = model.lm_head.bias.detach().double()  # (V,) float32 in the model
        torch.testing.assert_close(bias, my_unigram(ids, V), atol=1e-6, rtol=0)

    def with_the_package(ids, V):
        model = MaskedLM(BertConfig(vocab_size=V, n_layer=1, n_embd=8, n_head=2))
        return bert.init_output_bias(model, ids).lm_head.bias.detach()

    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.bert.init_output_bias"):
        ma.check_unigram_bias(with_the_package)
