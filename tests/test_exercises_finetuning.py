"""The checkers of chapter 8.5 (LoRA's trainable-parameter count, the adapted layer's forward
pass, the merged weight): an independent solution passes, a stub is "not implemented yet", each
plausible wrong answer fails with words that name its mistake, and the package functions that
are the answer cannot be used to pass. The references also agree with the package's LoRA."""

from __future__ import annotations

import pytest
import torch
from checker_contract import contract
from torch import nn

from llm_lessons.exercises.checking import ExerciseFailed
from llm_lessons.exercises.finetuning import (
    _count,
    _forward,
    _merge,
    check_lora_count,
    check_lora_forward,
    check_lora_merge,
)
from llm_lessons.frontiers.lora import LoRALinear, add_lora, trainable_parameters
from llm_lessons.gpt import GPT, GPTConfig

# --- the trainable-parameter count ---

SIZES = {"attn.qkv": (1, 3), "attn.proj": (1, 1), "mlp.fc": (1, 4), "mlp.proj": (4, 1)}


def my_count(n_layer, n_embd, r, targets):
    return n_layer * sum(r * n_embd * (SIZES[t][0] + SIZES[t][1]) for t in targets)


def count_product(n_layer, n_embd, r, targets):
    return n_layer * sum(r * n_embd**2 * SIZES[t][0] * SIZES[t][1] for t in targets)


def count_one_layer(n_layer, n_embd, r, targets):
    return my_count(1, n_embd, r, targets)


def count_qkv_square(n_layer, n_embd, r, targets):
    return my_count(n_layer, n_embd, r, targets) - n_layer * r * 2 * n_embd * targets.count("attn.qkv")


def count_with_package(n_layer, n_embd, r, targets):
    model = GPT(GPTConfig(vocab_size=5, block_size=4, n_layer=n_layer, n_head=1, n_embd=n_embd))
    add_lora(model, targets, r=r)
    return trainable_parameters(model)[0]


# --- the adapted forward pass ---


def my_forward(x, W, b, A, B, alpha):
    r = A.shape[0]
    return x @ W.T + b + (alpha / r) * (x @ A.T) @ B.T


def forward_alpha(x, W, b, A, B, alpha):
    return x @ W.T + b + alpha * (x @ A.T) @ B.T


def forward_no_bias(x, W, b, A, B, alpha):
    return x @ W.T + (alpha / A.shape[0]) * (x @ A.T) @ B.T


def forward_with_package(x, W, b, A, B, alpha):
    layer = LoRALinear(nn.Linear(W.shape[1], W.shape[0]), r=A.shape[0], alpha=alpha)
    return layer(x)


# --- merging ---


def my_merge(W, A, B, alpha):
    return W + (alpha / A.shape[0]) * B @ A


def merge_unscaled(W, A, B, alpha):
    return W + B @ A


def merge_subtracting(W, A, B, alpha):
    return W - (alpha / A.shape[0]) * B @ A


def merge_in_place(W, A, B, alpha):
    W += (alpha / A.shape[0]) * B @ A
    return W


CHECKERS = {
    check_lora_count: (my_count, [(count_product, "r * in * out"), (count_one_layer, "one block's"),
                                  (count_qkv_square, "fused matrix C -> 3C")]),
    check_lora_forward: (my_forward, [(forward_alpha, "scaled the update by alpha;"),
                                      (forward_no_bias, "bias is missing")]),
    check_lora_merge: (my_merge, [(merge_unscaled, "without its scale"),
                                  (merge_subtracting, "that is unmerging")]),
}

(test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
 test_each_wrong_answer_is_named) = contract(CHECKERS)


@pytest.mark.parametrize("checker, cheat", [(check_lora_count, count_with_package),
                                            (check_lora_forward, forward_with_package)],
                         ids=["count", "forward"])
def test_the_package_functions_that_are_the_answer_are_refused(checker, cheat):
    with pytest.raises(ExerciseFailed, match="solve it without calling llm_lessons.frontiers.lora"):
        checker(cheat)


def test_a_merge_that_changes_w_in_place_is_refused():
    with pytest.raises(ExerciseFailed, match="changed W in place"):
        check_lora_merge(merge_in_place)


def test_the_references_agree_with_the_package_lora():
    """The checkers' float64 references are the package's LoRA, computed independently."""
    g = torch.Generator().manual_seed(0)
    for targets in (["attn.qkv"], ["attn.proj", "mlp.fc"], ["attn.qkv", "attn.proj", "mlp.fc", "mlp.proj"]):
        assert _count(3, 16, 2, targets) == count_with_package(3, 16, 2, targets)
    layer = LoRALinear(nn.Linear(6, 5), r=3, alpha=4.0)
    with torch.no_grad():
        layer.lora_B.copy_(torch.randn(5, 3, generator=g))
    x = torch.randn(2, 4, 6, generator=g)
    W, b, A, B = (t.detach() for t in (layer.base.weight, layer.base.bias, layer.lora_A, layer.lora_B))
    with torch.no_grad():
        assert torch.allclose(_forward(x, W, b, A, B, 4.0), layer(x), atol=1e-5)
        merged = _merge(W, A, B, 4.0)
        layer.merge()
        assert torch.allclose(merged, layer.base.weight, atol=1e-6)
