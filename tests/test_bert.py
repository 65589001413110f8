"""The masked LM: equal to Hugging Face's BERT with copied weights, bidirectional, loss on labels only."""

import math

import pytest
import torch
import torch.nn.functional as F

from llm_lessons.bert import BertConfig, MaskedLM, init_output_bias, init_positions_sinusoidal
from llm_lessons.mlm_data import MaskedCharTokenizer, MaskedWindows, masked_token_scores
from llm_lessons.tokenizers import CharTokenizer
from llm_lessons.transformer import Block

transformers = pytest.importorskip("transformers")
from llm_lessons.interop.bert import bert_from_hf, bert_to_hf, hf_bert_config  # noqa: E402

CFG = BertConfig(vocab_size=37, block_size=16, n_layer=2, n_head=4, n_embd=32, type_vocab_size=2)


def _model(cfg=CFG, seed=0):
    torch.manual_seed(seed)
    return MaskedLM(cfg).eval()


def _scramble(module, seed):
    """Random values in *every* parameter (norm gains and biases too), so a wrong mapping shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3 + (1.0 if p.dim() == 1 else 0.0))


def _inputs(B=3, T=11, seed=1):
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, CFG.vocab_size, (B, T), generator=g)
    types = (torch.arange(T) >= T // 2).long().expand(B, T)
    attention = torch.ones(B, T, dtype=torch.long)
    attention[1, -3:] = 0  # the second row is padded
    return idx, types, attention


def test_hf_to_ours_same_logits():
    hf = transformers.BertForMaskedLM(hf_bert_config(CFG, attn_implementation="eager")).eval()
    _scramble(hf, seed=2)
    ours = bert_from_hf(hf)
    idx, types, attention = _inputs()
    with torch.no_grad():
        want = hf(idx, token_type_ids=types, attention_mask=attention).logits
        got, _ = ours(idx, token_type_ids=types, attention_mask=attention)
        plain = hf(idx).logits
    assert want.std() > 1.0  # logits large enough for 1e-5 to be a real test
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours(idx)[0], plain, atol=1e-5, rtol=0)


def test_ours_to_hf_same_logits_and_round_trip():
    ours = _model()
    _scramble(ours, seed=3)
    hf = bert_to_hf(ours)
    idx, types, attention = _inputs(seed=4)
    with torch.no_grad():
        got = hf(idx, token_type_ids=types, attention_mask=attention).logits
        want, _ = ours(idx, token_type_ids=types, attention_mask=attention)
    assert want.std() > 1.0
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    back = bert_from_hf(hf)
    torch.testing.assert_close(back(idx, token_type_ids=types)[0], ours(idx, token_type_ids=types)[0],
                               atol=1e-5, rtol=0)
    assert ours.num_params() == sum(p.numel() for p in hf.parameters())


def test_model_without_token_types_converts_with_a_zero_row():
    cfg = BertConfig(vocab_size=37, block_size=16, n_layer=1, n_head=2, n_embd=16)
    ours = _model(cfg)
    _scramble(ours, seed=5)
    hf = bert_to_hf(ours)
    assert torch.equal(hf.bert.embeddings.token_type_embeddings.weight, torch.zeros(1, 16))
    idx = _inputs()[0]
    torch.testing.assert_close(hf(idx).logits, ours(idx)[0], atol=1e-5, rtol=0)


def test_encoder_is_the_shared_block_post_norm_and_bidirectional():
    model = _model()
    assert all(isinstance(b, Block) and not b.norm_first and not b.attn.causal for b in model.blocks)
    idx = _inputs()[0][:1]
    changed = idx.clone()
    changed[0, -1] = (idx[0, -1] + 1) % CFG.vocab_size
    with torch.no_grad():
        a, b = model(idx)[0], model(changed)[0]
    # the opposite of the causal test: a later token changes *every* earlier prediction
    assert ((a[0, :-1] - b[0, :-1]).abs().amax(dim=-1) > 1e-4).all()
    h = model.encode(idx)  # post-norm: the encoder ends in a LayerNorm (unit gain at init)
    torch.testing.assert_close(h.std(dim=-1, unbiased=False), torch.ones(1, idx.shape[1]), atol=1e-3, rtol=0)


def test_padding_is_invisible_to_real_tokens():
    model = _model()
    idx, _, attention = _inputs()
    other = idx.clone()
    other[1, -3:] = (idx[1, -3:] + 5) % CFG.vocab_size  # change only the padded tokens
    with torch.no_grad():
        a = model(idx, attention_mask=attention)[0]
        b = model(other, attention_mask=attention)[0]
    torch.testing.assert_close(a[1, :-3], b[1, :-3], atol=1e-6, rtol=0)


def test_loss_counts_labelled_positions_only():
    model = _model()
    _scramble(model, seed=6)
    idx = _inputs()[0]
    targets = torch.full_like(idx, -100)
    targets[0, 2], targets[1, 5], targets[2, 0] = 4, 9, 30
    logits, loss = model(idx, targets)
    logits.retain_grad()
    loss.backward()
    # by hand: the mean of -log softmax at the three labelled positions
    logp = logits.detach().log_softmax(-1)
    manual = -(logp[0, 2, 4] + logp[1, 5, 9] + logp[2, 0, 30]) / 3
    assert abs(loss.item() - manual.item()) < 1e-5
    # the loss does not depend on the logits anywhere else: zero gradient there
    labelled = targets != -100
    assert logits.grad[~labelled].abs().max() == 0
    assert (logits.grad[labelled].abs().amax(dim=-1) > 0).all()
    # ... and labelling one more position changes it exactly as the definition says
    targets[2, 7] = 11
    _, loss2 = model(idx, targets)
    want = (3 * manual - logp[2, 7, 11]) / 4
    assert abs(loss2.item() - want.item()) < 1e-5


def test_attention_weights_for_plots_and_bertviz():
    model = _model()
    idx, _, attention = _inputs(T=9)
    w = model.attention_weights(idx, attention_mask=attention)
    assert w.shape == (CFG.n_layer, 3, CFG.n_head, 9, 9)
    torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]))
    assert (w[:, 0, :, 0, 1:] > 0).all()  # no causal mask: position 0 looks to its right
    assert w[:, 1, :, :, -3:].abs().max() == 0  # nobody attends to padding
    assert all(b.attn.weights is None and not b.attn.keep_weights for b in model.blocks)
    from bertviz import head_view

    html = head_view(tuple(w[:, :1]), [str(i) for i in idx[0].tolist()], html_action="return")
    assert "bertviz" in html.data


def test_attention_weights_in_train_mode_are_the_eval_weights():
    """Dropout 0.5 left on: the maps are still the model's attention, the same on every call."""
    torch.manual_seed(2)
    model = MaskedLM(BertConfig(**{**CFG.to_dict(), "dropout": 0.5}))
    model.train()
    idx, types, attention = _inputs(T=9)
    with torch.no_grad():
        assert not torch.equal(model(idx)[0], model(idx)[0])  # dropout really is active
    first = model.attention_weights(idx, types, attention)
    second = model.attention_weights(idx, types, attention)
    assert model.training  # the mode is restored
    assert torch.equal(first, second)
    model.eval()
    assert torch.equal(first, model.attention_weights(idx, types, attention))
    assert not model.training

def test_untrained_loss_near_uniform_and_token_types_matter():
    model = _model()
    idx, types, _ = _inputs()
    targets = idx.clone()
    _, loss = model(idx, targets)
    assert abs(loss.item() - math.log(CFG.vocab_size)) < 0.1
    with torch.no_grad():
        assert not torch.allclose(model(idx)[0], model(idx, token_type_ids=types)[0])


def test_learns_to_use_both_sides():
    """Triples (a, a+5, a+10): the first needs its right neighbour, the last its left one.

    A model that read only one side could get at most ~60% of them (the other side says nothing
    about a); a masked LM gets nearly all.
    """
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 5, (3000,), generator=g)
    data = torch.stack([a, a + 5, a + 10], dim=1).view(-1)
    cfg = BertConfig(vocab_size=16, block_size=6, n_layer=2, n_head=2, n_embd=32)
    model = init_positions_sinusoidal(MaskedLM(cfg))
    batches = MaskedWindows(mask_id=15, vocab_size=16, p=0.15)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(500):
        x, y = batches(data, 64, 6, g)
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = data[:600].view(100, 6).clone()  # windows aligned on triples
    y = torch.full_like(x, -100)
    ends = torch.arange(6) % 3 != 1  # first and last of each triple; the middle stays visible
    y[:, ends] = x[:, ends]
    x[:, ends] = 15
    _, acc = masked_token_scores(model, x, y)
    assert acc > 0.8


def test_tokenizer_keeps_char_ids_and_adds_specials():
    chars = CharTokenizer("to be or not")
    tok = MaskedCharTokenizer(chars)
    assert tok.encode("be not") == chars.encode("be not")
    assert tok.vocab_size == chars.vocab_size + 4
    assert len({tok.pad_id, tok.mask_id, tok.cls_id, tok.sep_id}) == 4
    assert min(tok.special_ids) == chars.vocab_size
    assert tok.decode([tok.cls_id, *tok.encode("to"), tok.mask_id]) == "[CLS]to[MASK]"
    with pytest.raises(ValueError, match="outside"):
        tok.decode([tok.vocab_size])
    with pytest.raises(TypeError):
        MaskedCharTokenizer("abc")


def test_masked_windows_are_windows_of_the_data():
    data = torch.arange(4, 104)
    fn = MaskedWindows(mask_id=0, vocab_size=104, special_ids=(1, 2, 3), p=0.3)
    x, y = fn(data, 8, 10, torch.Generator().manual_seed(0))
    original = torch.where(y != -100, y, x)  # undo the corruption where we know the truth
    assert ((original[:, 1:] - original[:, :-1]) == 1).all()  # consecutive ids: real windows
    x2, y2 = fn(data, 8, 10, torch.Generator().manual_seed(0))
    assert torch.equal(x, x2) and torch.equal(y, y2)


def test_config_presets_and_bad_input():
    assert BertConfig.preset("nano", vocab_size=80).block_size == 64
    assert BertConfig.preset("base").vocab_size == 30522
    assert BertConfig.from_dict(CFG.to_dict()) == CFG
    with pytest.raises(ValueError, match="unknown BERT preset"):
        BertConfig.preset("huge", vocab_size=3)
    with pytest.raises(ValueError, match="vocab_size"):
        BertConfig.preset("nano")
    with pytest.raises(ValueError, match="divisible"):
        BertConfig(vocab_size=5, n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="unknown BertConfig"):
        BertConfig.from_dict({"vocab_size": 5, "n_layers": 2})
    with pytest.raises(TypeError):
        MaskedLM(CFG.to_dict())
    model = _model()
    idx = _inputs()[0]
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="range"):
        model(torch.tensor([[0, 37]]))
    with pytest.raises(TypeError, match="integer"):
        model(idx.float())
    with pytest.raises(ValueError, match="targets shape"):
        model(idx, idx[:, :-1])
    with pytest.raises(ValueError, match="every target is -100"):
        model(idx, torch.full_like(idx, -100))
    with pytest.raises(TypeError, match="targets must be an integer tensor"):
        model(idx, idx.tolist())
    types = torch.full_like(idx, 2)
    types[:, 0] = 0
    with pytest.raises(ValueError, match=r"token_type_ids must hold ids in range\(0, 2\), got ids from 0"):
        model(idx, token_type_ids=types)
    with pytest.raises(TypeError, match="token_type_ids must be an integer tensor"):
        model(idx, token_type_ids=torch.zeros_like(idx, dtype=torch.float))
    with pytest.raises(ValueError, match="no token-type"):
        _model(BertConfig(vocab_size=37, block_size=16, n_layer=1, n_head=2, n_embd=16))(
            idx, token_type_ids=torch.zeros_like(idx))


def test_cross_entropy_ignore_index_matches_our_masking():
    """The loss is PyTorch's cross-entropy with ignore_index=-100, the convention of the trainer."""
    model = _model()
    idx = _inputs()[0]
    targets = torch.where(torch.rand(idx.shape, generator=torch.Generator().manual_seed(9)) < 0.3,
                          idx, torch.full_like(idx, -100))
    logits, loss = model(idx, targets)
    keep = targets != -100
    assert abs(loss.item() - F.cross_entropy(logits[keep], targets[keep]).item()) < 1e-6


def test_output_bias_init_starts_at_the_unigram_loss():
    g = torch.Generator().manual_seed(0)
    probs = torch.tensor([0.5, 0.2, 0.1, 0.1, 0.05, 0.05])
    ids = torch.multinomial(probs, 5000, replacement=True, generator=g)
    cfg = BertConfig(vocab_size=8, block_size=16, n_layer=1, n_head=2, n_embd=16)
    model = init_output_bias(_model(cfg), ids)
    x, y = MaskedWindows(mask_id=7, vocab_size=8, special_ids=(6, 7), p=0.5)(ids, 64, 16, g)
    loss, _ = masked_token_scores(model, x, y)
    # the cross-entropy of the labels under their own (add-one) frequencies, computed directly
    freq = (torch.bincount(ids, minlength=8).double() + 1) / (len(ids) + 8)
    unigram = -freq.log()[y[y != -100]].mean().item()
    assert abs(loss - unigram) < 0.02
    assert abs(_model(cfg)(x, y)[1].item() - math.log(8)) < 0.05  # without it: uniform


def test_sinusoidal_position_init_has_distance_structure():
    model = init_positions_sinusoidal(_model(BertConfig.preset("nano", vocab_size=10)))
    p = F.normalize(model.wpe.weight, dim=-1)  # (T, C)
    sim = p @ p.T  # (T, T) cosine similarities
    near, far = sim.diagonal(1).mean(), sim.diagonal(20).mean()
    assert near > far + 0.1  # neighbours look alike; a random table has no such structure
    rms = model.wpe.weight.pow(2).mean().sqrt().item()
    assert abs(rms - model.wte.weight.std().item()) < 1e-3


def test_masked_token_scores_match_the_model_loss_and_a_hand_count():
    model = _model()
    _scramble(model, seed=8)
    idx = _inputs()[0]
    labels = torch.where(torch.rand(idx.shape, generator=torch.Generator().manual_seed(1)) < 0.4,
                         (idx + 1) % CFG.vocab_size, torch.full_like(idx, -100))
    loss, acc = masked_token_scores(model, idx, labels, batch_size=2)
    with torch.no_grad():
        logits, want = model(idx, labels)
    keep = labels != -100
    assert abs(loss - want.item()) < 1e-5
    assert acc == (logits.argmax(-1)[keep] == labels[keep]).float().mean().item()
