"""Our GPT against Hugging Face's GPT2LMHeadModel with copied weights (both directions)."""

import pytest
import torch

transformers = pytest.importorskip("transformers")

from llm_lessons.gpt import GPT, GPTConfig  # noqa: E402
from llm_lessons.interop.gpt2 import (  # noqa: E402
    _gpt2_table,
    gpt2_config,
    gpt_from_hf,
    gpt_to_hf,
    load_gpt2,
)

CFG = GPTConfig(vocab_size=61, block_size=24, n_layer=3, n_head=4, n_embd=32)


def _random_gpt(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    model = GPT(CFG).eval()
    with torch.no_grad():  # biases and norm gains away from their 0/1 init, so a swap would show
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def _random_hf(seed: int = 1):
    torch.manual_seed(seed)
    hf = transformers.GPT2LMHeadModel(gpt2_config(CFG)).eval()
    with torch.no_grad():
        for p in hf.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return hf


def _hf_greedy(hf, idx, n):
    out = hf.generate(idx, attention_mask=torch.ones_like(idx), max_new_tokens=n, do_sample=False,
                      pad_token_id=0)
    return out


def test_ours_to_hf_same_logits_loss_and_greedy():
    ours = _random_gpt()
    hf = gpt_to_hf(ours)
    idx = torch.randint(CFG.vocab_size, (3, CFG.block_size), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits, loss = ours(idx[:, :-1], idx[:, 1:])
        out = hf(idx[:, :-1], labels=idx[:, :-1])  # HF shifts labels itself
    assert torch.allclose(logits, out.logits, atol=1e-5, rtol=0)
    # HF's loss drops the last position (no next token), so compare on the first T-2 targets.
    _, loss_head = ours(idx[:, :-2], idx[:, 1:-1])
    assert abs(loss_head.item() - out.loss.item()) < 1e-5
    assert loss.item() > 0
    prompt = idx[:, :5]
    assert torch.equal(ours.generate(prompt, 12, greedy=True), _hf_greedy(hf, prompt, 12))


def test_hf_to_ours_same_logits_and_greedy():
    hf = _random_hf()
    ours = gpt_from_hf(hf)
    idx = torch.randint(CFG.vocab_size, (2, CFG.block_size), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.allclose(ours(idx)[0], hf(idx).logits, atol=1e-5, rtol=0)
    prompt = idx[:, :4]
    assert torch.equal(ours.generate(prompt, 15, greedy=True), _hf_greedy(hf, prompt, 15))


def test_round_trip_is_exact_and_covers_every_tensor():
    ours = _random_gpt(5)
    back = gpt_from_hf(gpt_to_hf(ours))
    for (name, a), b in zip(ours.state_dict().items(), back.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    hf_names = set(gpt_to_hf(ours).state_dict())
    table_names = {theirs for _, theirs, _ in _gpt2_table(CFG.n_layer)}
    assert hf_names - table_names == {"lm_head.weight"}  # tied to wte on both sides
    assert table_names <= hf_names
    assert back.lm_head.weight is back.wte.weight


def test_parameter_count_matches_hf():
    ours = GPT(CFG)
    hf = gpt_to_hf(ours)
    assert ours.num_params() == hf.num_parameters()


def test_load_gpt2_from_a_local_folder(tmp_path):
    hf = _random_hf(7)
    hf.save_pretrained(tmp_path)
    ours = load_gpt2(str(tmp_path))
    idx = torch.randint(CFG.vocab_size, (1, 10), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.allclose(ours(idx)[0], hf(idx).logits, atol=1e-5, rtol=0)


def test_unsupported_shapes_are_refused():
    with pytest.raises(ValueError, match="bias"):
        gpt_to_hf(GPT(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=8, bias=False)))
    silu = transformers.GPT2Config(vocab_size=10, n_positions=8, n_layer=1, n_head=2, n_embd=8,
                                   activation_function="silu")
    with pytest.raises(ValueError, match="activation_function"):
        gpt_from_hf(transformers.GPT2LMHeadModel(silu))
    with pytest.raises(ValueError, match="GPTConfig.activation must be one of"):
        GPTConfig(vocab_size=10, activation="swish")


@pytest.mark.parametrize("activation", ["gelu", "relu"])
def test_other_activations_convert_both_ways_with_the_same_logits(activation):
    torch.manual_seed(5)
    ours = GPT(GPTConfig(vocab_size=61, block_size=24, n_layer=2, n_head=4, n_embd=32,
                         activation=activation)).eval()
    hf = gpt_to_hf(ours)
    assert hf.config.activation_function == activation
    idx = torch.randint(61, (2, 24), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        assert torch.allclose(ours(idx)[0], hf(idx).logits, atol=1e-5, rtol=0)
        back = gpt_from_hf(hf)
        assert back.config.activation == activation
        assert torch.equal(back(idx)[0], ours(idx)[0])
    with pytest.raises(TypeError, match="our GPT"):
        gpt_to_hf(torch.nn.Linear(2, 2))


def test_load_gpt2_checks_the_sha256_of_local_weights(tmp_path):
    import hashlib

    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=13, n_positions=8, n_embd=8, n_layer=1, n_head=2))
    hf.save_pretrained(tmp_path, safe_serialization=True)
    digest = hashlib.sha256((tmp_path / "model.safetensors").read_bytes()).hexdigest()
    ours = load_gpt2(str(tmp_path), sha256=digest)
    idx = torch.tensor([[1, 2, 3, 4]])
    hf.eval()
    torch.testing.assert_close(ours(idx)[0], hf(idx).logits, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="sha256"):
        load_gpt2(str(tmp_path), sha256="0" * 64)
