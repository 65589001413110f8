"""The linear probe against scikit-learn's LogisticRegression; control labels; pooled features."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from llm_lessons.bert import BertConfig, MaskedLM
from llm_lessons.evaluation.probe import (
    PRESETS,
    LinearProbe,
    ProbeConfig,
    control_labels,
    first_word,
    pooled_features,
    probe_with_control,
)
from llm_lessons.gpt import GPT, GPTConfig
from llm_lessons.tokenizers import CharTokenizer


def _blobs(n, seed, C=12, K=4):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(K, C, generator=torch.Generator().manual_seed(99)) * 1.5
    y = torch.randint(0, K, (n,), generator=g)
    X = (centers[y] + torch.randn(n, C, generator=g)) * torch.linspace(0.1, 10, C)  # badly scaled
    return X, y


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_matches_sklearn_logistic_regression(preset):
    X, y = _blobs(300, 0)
    Xt, yt = _blobs(300, 1)
    config = ProbeConfig.preset(preset)
    probe = LinearProbe(config).fit(X, y)
    Z, Zt = ((X - probe.mean) / probe.std).numpy(), ((Xt - probe.mean) / probe.std).numpy()
    sk = LogisticRegression(C=1 / (config.l2 * len(y)), tol=1e-12, max_iter=10_000).fit(Z, y.numpy())
    assert probe.accuracy(Xt, yt) == pytest.approx(sk.score(Zt, yt.numpy()))
    ours = probe.logits(Xt).softmax(-1).numpy()
    np.testing.assert_allclose(ours, sk.predict_proba(Zt), atol=1e-5)


def test_probe_is_deterministic_and_does_not_modify_inputs():
    X, y = _blobs(100, 2)
    before = X.clone()
    a = LinearProbe().fit(X, y).logits(X)
    b = LinearProbe().fit(X, y).logits(X)
    assert torch.equal(a, b) and torch.equal(X, before)


def test_control_labels_are_a_function_of_type_with_the_task_distribution():
    rng = np.random.default_rng(0)
    types = [f"w{i}" for i in rng.integers(0, 3000, 20_000)]
    labels = torch.tensor(rng.choice(3, 20_000, p=[0.6, 0.3, 0.1]))
    control = control_labels(types, labels, seed=1)
    by_type = {}
    for t, c in zip(types, control.tolist(), strict=True):
        assert by_type.setdefault(t, c) == c  # one label per type
    per_type = np.bincount(list(by_type.values()), minlength=3) / len(by_type)
    np.testing.assert_allclose(per_type, [0.6, 0.3, 0.1], atol=0.03)
    assert torch.equal(control, control_labels(types, labels, seed=1))


def test_selectivity_separates_a_real_signal_from_memorisation():
    # features encode the task label; the control label is a random function of a type that the
    # features do not encode, so a probe cannot do better than the control's majority class
    X, y = _blobs(600, 3)
    types = [f"t{i % 50}" for i in range(600)]
    res = probe_with_control(X[:400], y[:400], types[:400], X[400:], y[400:], types[400:])
    assert res.task_accuracy > 0.9
    assert res.control_accuracy < 0.6
    assert res.selectivity == pytest.approx(res.task_accuracy - res.control_accuracy)
    assert 0.15 < res.majority_baseline < 0.4


def test_first_word():
    assert first_word("And yet, my lord") == "and" and first_word("--- 123") == ""


@pytest.mark.parametrize("kind", ["gpt", "bert"])
def test_pooled_features_do_not_depend_on_batching_or_padding(kind):
    torch.manual_seed(0)
    tok = CharTokenizer("abcdefgh ")
    if kind == "gpt":
        model = GPT(GPTConfig.preset("nano", vocab_size=tok.vocab_size, block_size=16, n_layer=1))
    else:
        model = MaskedLM(BertConfig.preset("nano", vocab_size=tok.vocab_size, block_size=16, n_layer=1))
    texts = ["abc", "a bad cafe had a face bed", "h"]
    batched = pooled_features(model, tok, texts, batch_size=3)
    assert model.training  # features are read in eval mode, then the model's mode is restored
    single = torch.cat([pooled_features(model.eval(), tok, [t]) for t in texts])
    assert not model.training
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-5)
    assert batched.shape == (3, 128)
    if kind == "gpt":  # an independent path: the final LayerNorm applied by hand, mean over positions
        ids = torch.tensor([tok.encode("abc")])
        pos = torch.arange(3)
        x = model.wte(ids) + model.wpe(pos)
        for block in model.blocks:
            x = block(x)
        torch.testing.assert_close(batched[0], model.ln_f(x)[0].mean(0).double(), atol=1e-5, rtol=1e-5)
        assert not model.ln_f._forward_hooks  # the hook is removed


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        LinearProbe().fit(torch.zeros(3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="integer tensor"):
        LinearProbe().fit(torch.zeros(3, 2), torch.zeros(3))
    with pytest.raises(ValueError, match=r"\(N,\) = \(3,\)"):
        LinearProbe().fit(torch.zeros(3, 2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(RuntimeError, match="fit"):
        LinearProbe().predict(torch.zeros(1, 2))
    probe = LinearProbe().fit(torch.randn(4, 2), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="C=3"):
        probe.predict(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="one type per label"):
        control_labels(["a"], torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="l2"):
        ProbeConfig(l2=-1.0)
    with pytest.raises(ValueError, match="non-empty list"):
        pooled_features(GPT(GPTConfig.preset("nano", vocab_size=3)), CharTokenizer("abc"), "abc")
