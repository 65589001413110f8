"""Bad input gets a clear ValueError/TypeError naming the argument, never a NaN or a crash deep
in torch; and one definition of top-k, of temperature, of non-finite logits everywhere."""

import math

import pytest
import torch

from llm_lessons import sampling
from llm_lessons.bert import BertConfig, MaskedLM
from llm_lessons.evaluation import likelihood as metrics
from llm_lessons.gpt import GPT, GPTConfig
from llm_lessons.mlm_data import masked_token_scores
from llm_lessons.mlm_decoding import fill_mask, pseudo_log_likelihood, top_predictions
from llm_lessons.ngram import NGramLM
from llm_lessons.training import evaluate

V = 7
CFG = GPTConfig(vocab_size=V, block_size=8, n_layer=1, n_head=2, n_embd=8)


@pytest.fixture(scope="module")
def gpt():
    torch.manual_seed(0)
    return GPT(CFG).eval()


class Constant(torch.nn.Module):
    """A model whose every next-token logit row is ``row`` (NaN and inf allowed)."""

    def __init__(self, row):
        super().__init__()
        self.row, self.block_size = torch.tensor(row, dtype=torch.float), 8

    def forward(self, idx, targets=None):
        return self.row.expand(*idx.shape, len(self.row)).clone(), None


# --- item 5: non-finite logits, one behaviour for greedy, sampling and top-k -----------------

@pytest.mark.parametrize("row", [[0.0, float("nan"), 1.0], [0.0, float("inf"), 1.0]])
@pytest.mark.parametrize("kwargs", [{"greedy": True}, {}, {"top_k": 2}, {"temperature": 0.5}])
def test_non_finite_logits_raise_the_same_error_in_every_decoder(row, kwargs):
    with pytest.raises(ValueError, match="generation step 0 contain NaN or \\+inf"):
        sampling.generate(Constant(row), torch.zeros(1, 2, dtype=torch.long), 3, **kwargs)


def test_gpt_generate_refuses_nan_logits(gpt):
    broken = GPT(CFG).eval()
    with torch.no_grad():
        broken.lm_head.weight.fill_(float("nan"))
    for kwargs in ({"greedy": True}, {}, {"top_k": 2}):
        with pytest.raises(ValueError, match="generation step 0 contain NaN"):
            broken.generate(torch.zeros(1, 2, dtype=torch.long), 2, **kwargs)


@pytest.mark.parametrize("t", [1e-300, 1e-310, 5e-324])
def test_tiny_temperature_stays_finite_and_tends_to_greedy(t):
    z = torch.tensor([[2.0, 1.0, 3.0], [-1.0, -2.0, -5.0]])
    out = sampling.apply_temperature(z, t)
    assert not torch.isposinf(out).any() and not torch.isnan(out).any()
    sampling._check_logits(out)  # the module's own check accepts what it produced
    assert torch.equal(out.softmax(-1), torch.nn.functional.one_hot(z.argmax(-1), 3).float())


def test_ordinary_temperature_is_exactly_a_division():
    z = torch.randn(4, 9, generator=torch.Generator().manual_seed(0))
    assert torch.equal(sampling.apply_temperature(z, 0.7), z / 0.7)


# --- item 6: one top-k rule, exactly k kept ---------------------------------------------------

def test_gpt_generate_top_k_keeps_exactly_k_like_sampling():
    """Logits [3, 1, 1, 1]: top_k=2 keeps token 0 and the first of the tied 1s, nothing else."""
    class Tied(GPT):
        def forward(self, idx, targets=None, cache=None):
            row = torch.tensor([3.0, 1.0, 1.0, 1.0] + [-9.0] * (V - 4))
            return row.expand(*idx.shape, V).clone(), None

    model = Tied(CFG).eval()
    gen = torch.Generator().manual_seed(0)
    drawn = model.generate(torch.zeros(1, 1, dtype=torch.long), 400, top_k=2, generator=gen)
    assert set(drawn[0, 1:].tolist()) == {0, 1}
    gen = torch.Generator().manual_seed(0)
    via_sampling = sampling.generate(model, torch.zeros(1, 1, dtype=torch.long), 400, top_k=2,
                                     generator=gen, use_cache=False)
    assert torch.equal(drawn, via_sampling)


# --- item 8: NaN where an error belongs --------------------------------------------------------

def test_gpt_loss_with_every_target_ignored_raises_like_bert(gpt):
    idx = torch.zeros(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="every target is -100"):
        gpt(idx, torch.full_like(idx, -100))
    bert = MaskedLM(BertConfig(vocab_size=V, block_size=8, n_layer=1, n_head=2, n_embd=8))
    with pytest.raises(ValueError, match="every target is -100"):
        bert(idx, torch.full_like(idx, -100))


@pytest.mark.parametrize("row", [[0.0, float("nan"), 1.0], [float("inf"), 0.0, 0.0]])
def test_perplexity_of_a_broken_model_raises(row):
    with pytest.raises(ValueError, match="NaN or \\+inf"):
        metrics.perplexity(Constant(row), [0, 1, 2, 1])


def test_perplexity_of_an_ngram_uses_its_full_context():
    ids = [0, 1, 2, 0, 1, 2, 1, 0, 2, 2, 1, 0, 0, 1]
    lm = NGramLM(order=3, smoothing="add_k", vocab_size=3).fit(ids[:10])
    expected = math.exp(-float(lm.token_log_probs(ids)[1:].mean()))  # tokens 1.. with their context
    assert math.isclose(metrics.perplexity(lm, ids), expected, rel_tol=1e-5)


# --- item 9: silent coercions ------------------------------------------------------------------

def test_float_and_str_token_ids_are_refused(gpt):
    for bad in ([1.7, 2, 3], [1.0, 2, 3], "123", [True, 1, 2]):
        with pytest.raises(TypeError, match="token ids"):
            metrics.token_nll(gpt, bad)
    assert metrics.token_nll(gpt, [1, 2, 3]).shape == (2,)


@pytest.mark.parametrize("field, value", [("bias", "no"), ("bias", 1), ("dropout", "0.1"),
                                          ("n_layer", 2.0), ("n_head", True)])
def test_gpt_config_refuses_coercible_values(field, value):
    with pytest.raises((TypeError, ValueError), match=field):
        GPTConfig(**{**CFG.to_dict(), field: value})


# --- item 10: obscure crashes replaced by messages naming the argument -------------------------

def test_model_inputs_name_the_argument_and_range(gpt):
    with pytest.raises(ValueError, match=r"idx must have shape \(B, T\) with B >= 1"):
        gpt(torch.zeros(0, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"targets must hold ids in range\(0, 7\) or -100"):
        gpt(torch.zeros(1, 3, dtype=torch.long), torch.tensor([[1, 7, 2]]))
    with pytest.raises(ValueError, match=r"idx must hold ids in range\(0, 7\)"):
        sampling.generate(gpt, torch.tensor([[9]]), 2)
    with pytest.raises(ValueError, match="idx must have shape"):
        sampling.generate(gpt, torch.zeros(0, 2, dtype=torch.long), 2)
    with pytest.raises(ValueError, match=r"token id 7 .* outside the vocabulary range\(0, 7\)"):
        metrics.token_nll(gpt, [1, 7, 2])


def test_batch_size_zero_is_refused_by_every_helper(gpt):
    data = torch.arange(40) % V
    bert = MaskedLM(BertConfig(vocab_size=V, block_size=8, n_layer=1, n_head=2, n_embd=8))
    calls = [lambda: evaluate(gpt, data, batch_size=0),
             lambda: metrics.token_nll(gpt, data, batch_size=0),
             lambda: masked_token_scores(bert, torch.zeros(2, 3, dtype=torch.long),
                                         torch.ones(2, 3, dtype=torch.long), batch_size=0),
             lambda: pseudo_log_likelihood(bert, torch.tensor([1, 2]), mask_id=6, batch_size=0)]
    for call in calls:
        with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):
            call()


def test_top_predictions_k_larger_than_the_vocabulary():
    bert = MaskedLM(BertConfig(vocab_size=V, block_size=8, n_layer=1, n_head=2, n_embd=8))
    ids = torch.tensor([1, 6, 2])
    with pytest.raises(ValueError, match=r"k must be an int in \[1, 6\], got 9"):
        top_predictions(bert, ids, mask_id=6, k=9)
    positions, top, p = top_predictions(bert, ids, mask_id=6, k=6)
    assert 6 not in top.tolist()[0] and math.isclose(float(p.sum()), 1.0, rel_tol=1e-5)
    with pytest.raises(ValueError, match="top_k must be an int >= 1"):
        fill_mask(bert, ids, mask_id=6, temperature=1.0, top_k=0)


# --- item 2: conversions refuse every config they cannot reproduce -----------------------------

@pytest.mark.parametrize("change", [{"tie_word_embeddings": False}, {"is_decoder": True},
                                    {"hidden_act": "gelu_new"}, {"attention_probs_dropout_prob": 0.2}])
def test_bert_from_hf_refuses_what_it_would_convert_wrong(change):
    transformers = pytest.importorskip("transformers")
    from llm_lessons.interop.bert import bert_from_hf

    torch.manual_seed(0)
    hf = transformers.BertForMaskedLM(transformers.BertConfig(
        vocab_size=11, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=8, **change))
    with pytest.raises(ValueError, match=next(iter(change))):
        bert_from_hf(hf)


def test_gpt_from_hf_refuses_separate_dropouts():
    transformers = pytest.importorskip("transformers")
    from llm_lessons.interop.gpt2 import gpt_config_from_gpt2

    with pytest.raises(ValueError, match="attn_pdrop"):
        gpt_config_from_gpt2(transformers.GPT2Config(n_embd=8, n_head=2, n_layer=1, attn_pdrop=0.3))
