"""Checkers for the arithmetic inside a model: chapter 1's parameter count of a GPT, chapter 3.1's
GELU (the block's MLP), chapter 3.2's AdamW step and chapter 3.3's unigram start for the MLM's
output bias.

Shapes: N tokens, V vocabulary, C channels. Every answer comes from a reference written here in
float64; :func:`llm_lessons.scale.gpt_param_count`, ``torch.nn.functional.gelu`` (which
``nn.GELU`` calls), ``torch.optim.AdamW`` and :func:`llm_lessons.bert.init_output_bias` are
forbidden while the student's code runs: each of them is the answer.

>>> import math, torch
>>> check_gelu(lambda x: 0.5 * x * (1 + torch.erf(x / math.sqrt(2))))
'check_gelu: all 10 cases passed'
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from llm_lessons.exercises.checking import Case, Mistake, available, random_int, run_check


def _params(L, d, V, T, tied=True, exact=True, positions=True, widen=4):
    """Parameters of a GPT-2-style decoder; the flags give the usual wrong versions."""
    attention = 4 * d * d + (4 * d if exact else 0)  # query, key, value, output: weights + biases
    mlp = 2 * widen * d * d + ((widen + 1) * d if exact else 0)  # d -> widen d -> d
    norms = 4 * d if exact else 0  # two LayerNorms per block: a gain and a bias each
    count = L * (attention + mlp + norms) + V * d  # the token embedding, also the output matrix
    count += (T * d if positions else 0) + (2 * d if exact else 0)  # positions, final LayerNorm
    return count + (0 if tied else V * d)


def check_gpt_param_count(fn: Callable, n_cases: int = 10, seed: int = 0) -> str:
    """``fn(n_layer, d_model, vocab_size, block_size)``: the exact number of parameters of a
    GPT-2-style decoder: token and position embeddings (V d + T d), the output matrix tied to the
    token embedding (no extra parameters), and per layer attention (4 d^2 weights + 4 d biases),
    an MLP d -> 4d -> d (8 d^2 weights + 5 d biases) and two LayerNorms (2 d each); a final
    LayerNorm (2 d) before the output. Per layer 12 d^2 + 13 d. For n_layer = d_model =
    vocab_size = block_size = 1: 12 + 13 + 1 + 1 + 2 = 29; GPT-2 small (12, 768, 50257, 1024):
    124439808."""
    g = torch.Generator().manual_seed(seed)
    fixed = [((12, 768, 50257, 1024), "GPT-2 small"), ((24, 1024, 50257, 1024), "GPT-2 medium"),
             ((4, 128, 65, 64), "a nano GPT for characters"), ((1, 1, 1, 1), "everything 1")]
    while len(fixed) < n_cases:
        fixed.append(((random_int(g, 1, 13), 8 * random_int(g, 1, 65), random_int(g, 2, 4000),
                       random_int(g, 8, 1025)), ""))
    cases = [Case(args, _params(*args), f"{what + ': ' if what else ''}(n_layer, d_model, vocab_size, "
                  f"block_size) = {args}") for args, what in fixed]
    mistakes = [
        Mistake("untied", lambda *a: _params(*a, tied=False),
                "you counted the output matrix separately: GPT-2 ties it to the token embedding "
                "(one V x d matrix used twice), so count V d once"),
        Mistake("weights only", lambda *a: _params(*a, exact=False),
                "you counted only the weight matrices (12 L d^2 + V d + T d): the exact count adds "
                "every bias (9 d per layer) and the LayerNorms' gains and biases (4 d per layer, 2 d "
                "for the final one)"),
        Mistake("no positions", lambda *a: _params(*a, positions=False),
                "you left out the position embedding: GPT-2 learns one d-vector per position, "
                "T d parameters (block_size x d_model)"),
        Mistake("2x MLP", lambda *a: _params(*a, widen=2),
                "your MLP is 2x wide: GPT-2's goes d -> 4d -> d, 8 d^2 weights and 4d + d biases"),
    ]
    return run_check("check_gpt_param_count", fn, cases, mistakes,
                     forbidden=("llm_lessons.scale.gpt_param_count",), atol=0.5, rtol=0.0)


def gelu(x, kind="exact"):
    """GELU of x in float64; kind gives the usual wrong versions."""
    x = x.double()
    if kind == "tanh":
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    if kind == "sigmoid":
        return x * torch.sigmoid(1.702 * x)
    if kind == "relu":
        return x.clamp(min=0)
    if kind == "silu":
        return x * torch.sigmoid(x)
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))  # x * Phi(x), Phi the normal CDF


def check_gelu(fn: Callable, n_cases: int = 10, seed: int = 1) -> str:
    """``fn(x)``: the exact GELU of a float tensor, elementwise, same shape and dtype:
    x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2))), Phi the standard normal CDF. For x = [-1, 0, 2]:
    [-0.158655, 0, 1.954500]. The inputs are float64 and the tolerance 1e-7, so the tanh
    approximation (off by up to 5e-4 near |x| = 2.7) does not pass."""
    g = torch.Generator().manual_seed(seed)
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    inputs = [(t([-1.0, 0.0, 2.0]), "x = [-1, 0, 2]"),
              (t([-2.7, -2.0, -1.5, 1.5, 2.0, 2.7]), "x near +-2, where the approximations are worst"),
              (t([-8.0, -5.0, 5.0, 8.0]), "large |x|: GELU is nearly 0 and nearly x"),
              (torch.linspace(-4, 4, 33, dtype=torch.float64).reshape(3, 11), "a (3, 11) grid")]
    while len(inputs) < n_cases:
        shape = tuple(random_int(g, 1, 6) for _ in range(random_int(g, 1, 4)))
        inputs.append((torch.randn(shape, generator=g, dtype=torch.float64) * 2.5, f"random, shape {shape}"))
    cases = [Case((x,), gelu(x), label) for x, label in inputs]
    mistakes = [
        Mistake("tanh", lambda x: gelu(x, "tanh"),
                "you used the tanh approximation (GPT-2's): close, but off by up to 5e-4. The "
                "exact GELU is 0.5 x (1 + erf(x / sqrt(2))): use torch.erf"),
        Mistake("sigmoid 1.702", lambda x: gelu(x, "sigmoid"),
                "you used the sigmoid approximation x * sigmoid(1.702 x): off by up to 0.02. The "
                "exact GELU is x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2)))"),
        Mistake("relu", lambda x: gelu(x, "relu"),
                "you computed ReLU, max(0, x): GELU weighs x by the probability Phi(x) that a "
                "standard normal is below it, so it is smooth and slightly negative for x < 0"),
        Mistake("silu", lambda x: gelu(x, "silu"),
                "you computed SiLU (Swish), x * sigmoid(x): GELU weighs x by the normal CDF, "
                "0.5 (1 + erf(x / sqrt(2))), not by the logistic sigmoid"),
    ]
    return run_check("check_gelu", fn, cases, mistakes, forbidden=("torch.nn.functional.gelu",),
                     atol=1e-7, rtol=1e-7)


ADAMW_ANSWERS = ("torch.optim.AdamW.step", "torch.optim.Adam.step", "torch.optim.adamw.adamw",
                 "torch.optim.adam.adam")


def _adamw(param, grad, m, v, step, lr, beta1, beta2, eps, wd, decay="before", correct=True,
           eps_inside=False):
    """One AdamW step as torch.optim.AdamW takes it; the flags give the usual wrong versions."""
    param, grad, m, v = param.double(), grad.double(), m.double(), v.double()
    if decay == "l2":  # Adam with L2: the decay joins the gradient and so the moments
        grad = grad + wd * param
    elif decay == "before":  # decoupled: shrink the weights, apart from the gradient's moments
        param = param * (1 - lr * wd)
    elif decay == "without lr":
        param = param * (1 - wd)
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    m_hat, v_hat = (m / (1 - beta1**step), v / (1 - beta2**step)) if correct else (m, v)
    denom = (v_hat + eps).sqrt() if eps_inside else v_hat.sqrt() + eps
    new = param - lr * m_hat / denom
    if decay == "after":
        new = new * (1 - lr * wd)
    return new, m, v


def check_adamw_step(fn: Callable, n_cases: int = 12, seed: int = 2) -> str:
    """``fn(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay)``: one AdamW step as
    ``torch.optim.AdamW`` takes it. param, grad, m (first moment), v (second moment) are float
    tensors of one shape; step counts from 1 (this is the step-th update). Returns
    ``(new_param, new_m, new_v)``:
    param <- param (1 - lr wd); m <- beta1 m + (1 - beta1) grad; v <- beta2 v + (1 - beta2) grad^2;
    m_hat = m / (1 - beta1^step); v_hat = v / (1 - beta2^step);
    param <- param - lr m_hat / (sqrt(v_hat) + eps).
    Step 1 from m = v = 0 moves each weight by about lr against its gradient's sign."""
    g = torch.Generator().manual_seed(seed)
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    fixed = [((t([1.0, -2.0]), t([0.5, -0.1]), t([0.0, 0.0]), t([0.0, 0.0]), 1, 0.1, 0.9, 0.999, 1e-8, 0.0),
              "step 1 from m = v = 0, no weight decay"),
             ((t([1.0, -2.0]), t([0.5, -0.1]), t([0.0, 0.0]), t([0.0, 0.0]), 1, 0.1, 0.9, 0.999, 1e-8, 0.5),
              "step 1 from m = v = 0, weight_decay 0.5"),
             ((t([[0.3, 0.0], [-1.0, 2.0]]), t([[1e-3, 0.0], [0.2, -3.0]]), t([[0.1, 0.0], [0.0, -0.2]]),
               t([[1e-4, 0.0], [0.01, 0.5]]), 3, 0.05, 0.9, 0.95, 1e-2, 0.1),
              "step 3, eps 1e-2 and a zero gradient with zero moments")]
    while len(fixed) < n_cases:
        shape = tuple(random_int(g, 1, 6) for _ in range(random_int(g, 1, 3)))
        scale = 10 ** float(torch.empty(()).uniform_(-4, 0, generator=g))  # gradients of every size
        param, grad = torch.randn(shape, generator=g, dtype=torch.float64), torch.randn(
            shape, generator=g, dtype=torch.float64) * scale
        m = torch.randn(shape, generator=g, dtype=torch.float64) * scale * 0.5
        v = (torch.randn(shape, generator=g, dtype=torch.float64) * scale) ** 2  # >= 0
        hyper = (random_int(g, 1, 60), round(10 ** float(torch.empty(()).uniform_(-3, -1, generator=g)), 5),
                 0.9, [0.95, 0.999][random_int(g, 0, 2)], [1e-8, 1e-6, 1e-3][random_int(g, 0, 3)],
                 [0.01, 0.1, 0.5][random_int(g, 0, 3)])
        fixed.append(((param, grad, m, v, *hyper), f"shape {shape}, (step, lr, beta1, beta2, eps, "
                                                   f"weight_decay) = {hyper}"))
    cases = [Case(args, _adamw(*args), label) for args, label in fixed]
    mistakes = [
        Mistake("no bias correction", lambda *a: _adamw(*a, correct=False),
                "your moments are not bias-corrected: m and v start at 0, so early on they are too "
                "small. Divide m by (1 - beta1^step) and v by (1 - beta2^step) before the update"),
        Mistake("L2", lambda *a: _adamw(*a, decay="l2"),
                "you added weight_decay * param to the gradient: that is Adam with L2, whose decay "
                "Adam's scaling then distorts. AdamW decouples it: param *= 1 - lr * weight_decay, "
                "and the moments see the raw gradient"),
        Mistake("eps inside", lambda *a: _adamw(*a, eps_inside=True),
                "you put eps inside the square root, sqrt(v_hat + eps): torch adds it after, "
                "sqrt(v_hat) + eps"),
        Mistake("decay after", lambda *a: _adamw(*a, decay="after"),
                "you applied the weight decay after the Adam update: torch.optim.AdamW shrinks "
                "the parameter first, param * (1 - lr * weight_decay), then subtracts the update"),
        Mistake("decay without lr", lambda *a: _adamw(*a, decay="without lr"),
                "your decay ignores the learning rate: torch.optim.AdamW multiplies by "
                "1 - lr * weight_decay, not 1 - weight_decay"),
    ]
    return run_check("check_adamw_step", fn, cases, mistakes, forbidden=available(ADAMW_ANSWERS),
                     atol=1e-9, rtol=1e-7)


def _unigram(ids, V, smooth=True, log="e", total="N + V"):
    """Add-one smoothed log-frequencies (V,); the flags give the usual wrong versions."""
    counts = torch.bincount(ids, minlength=V).double()  # (V,)
    if smooth:  # one pseudo-count per token: the V counts then sum to N + V
        p = (counts + 1) / (len(ids) + (V if total == "N + V" else 0))
    else:
        p = counts / len(ids)  # raw frequencies: 0 for every unseen token
    return {"e": p.log(), "2": p.log2(), "none": p}[log]


def check_unigram_bias(fn: Callable, n_cases: int = 12, seed: int = 3) -> str:
    """``fn(ids, V)``: ids (N,) a long tensor of token ids in range(V), N >= 1. Returns the (V,)
    add-one smoothed log-frequencies log((count_v + 1) / (N + V)), natural log, the start for
    an MLM's output bias. For ids = [0, 0, 0, 1], V = 3: log([4/7, 2/7, 1/7])."""
    g = torch.Generator().manual_seed(seed)
    t = torch.tensor
    fixed = [(t([0, 0, 0, 1]), 3, "token 2 never appears"), (t([2]), 5, "a single id"),
             (t([1, 1, 1, 1, 1, 1]), 2, "one token only"), (t([0, 1, 2, 3]), 4, "every token once"),
             (t([7, 3, 7]), 40, "most tokens unseen")]
    while len(fixed) < n_cases:
        V, N = random_int(g, 2, 31), random_int(g, 1, 80)
        weights = torch.rand(V, generator=g) ** 4  # skewed: a few frequent tokens, some unseen
        fixed.append((torch.multinomial(weights, N, replacement=True, generator=g), V, "random"))
    cases = [Case((ids, V), _unigram(ids, V), f"{what}, V = {V}, ids = {ids.tolist()}")
             for ids, V, what in fixed]
    mistakes = [
        Mistake("no smoothing", lambda i, V: _unigram(i, V, smooth=False),
                "you did not smooth: an unseen token gets log(0) = -inf, a bias no training step can "
                "move. Add one to every count: log((count + 1) / (N + V))"),
        Mistake("not logged", lambda i, V: _unigram(i, V, log="none"),
                "you returned the probabilities: the bias is added to logits, so it must be their "
                "natural log (softmax of log p gives back p)"),
        Mistake("over N", lambda i, V: _unigram(i, V, total="N"),
                "you divided by N: with one added to each of the V counts, the counts sum to N + V, "
                "so divide by N + V (otherwise exp of the bias does not sum to 1)"),
        Mistake("log2", lambda i, V: _unigram(i, V, log="2"),
                "you took log2: logits are in nats, so use the natural log (torch.log)"),
    ]
    return run_check("check_unigram_bias", fn, cases, mistakes,
                     forbidden=("llm_lessons.bert.init_output_bias",))
