"""The decoding playground and its figure show exactly what generate() and the filters compute."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from llm_lessons.gpt import GPT, GPTConfig  # noqa: E402
from llm_lessons.plotting import plot_distribution_filter  # noqa: E402
from llm_lessons.plotting.playground import (  # noqa: E402
    DecodingSettings,
    continue_text,
    decoding_playground,
    draw_decoding,
)
from llm_lessons.sampling import generate, process_logits  # noqa: E402
from llm_lessons.tokenizers import CharTokenizer  # noqa: E402


@pytest.fixture(scope="module")
def model_and_tok():
    tok = CharTokenizer("abcdefgh ROMEO:\n")
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=16))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.4)
    return model, tok


def test_continue_text_is_generate_and_process_logits(model_and_tok):
    model, tok = model_and_tok
    s = DecodingSettings(temperature=0.8, top_k=5, repetition_penalty=1.2, seed=3, max_new_tokens=20)
    logits, filtered, text = continue_text(model, tok, "ROMEO:\nab", s)
    idx = torch.tensor([tok.encode("ROMEO:\nab")])
    with torch.no_grad():
        assert torch.allclose(logits, model(idx)[0][0, -1])
    ref = process_logits(logits, idx[0], temperature=0.8, top_k=5, repetition_penalty=1.2)
    assert torch.equal(filtered, ref)
    out = generate(model, idx, 20, temperature=0.8, top_k=5, repetition_penalty=1.2,
                   generator=torch.Generator().manual_seed(3))
    assert text == tok.decode(out[0, idx.shape[1]:].tolist())
    with pytest.raises(ValueError, match="empty"):
        continue_text(model, tok, "", s)


def test_presets():
    assert DecodingSettings.preset("greedy").temperature == 0.0
    assert DecodingSettings.preset("nucleus", seed=4).seed == 4
    with pytest.raises(ValueError, match="unknown decoding preset"):
        DecodingSettings.preset("wild")


def test_figure_shows_both_distributions(model_and_tok):
    model, tok = model_and_tok
    axes = draw_decoding(model, tok, "ROMEO:\n", DecodingSettings(top_k=3, max_new_tokens=10), top=8)
    heights = np.array([p.get_height() for p in axes[0].patches])
    before, after = heights[:8], heights[8:]
    assert (after > 0).sum() == 3 and after.sum() == pytest.approx(1.0, abs=1e-6)
    assert np.all(np.diff(before) <= 1e-12)  # most likely first
    assert "ROMEO:\n|" in axes[1].texts[0].get_text()


def test_plot_distribution_filter_checks_shapes():
    with pytest.raises(ValueError, match="same length"):
        plot_distribution_filter([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="labels"):
        plot_distribution_filter([1.0, 2.0], [1.0, 2.0], ["a"])


def test_playground_builds(model_and_tok):
    pytest.importorskip("ipywidgets")
    model, tok = model_and_tok
    box = decoding_playground(model, tok, prompt="ab", settings=DecodingSettings(max_new_tokens=5))
    controls = box.children[0]
    names = [w.description for column in controls.children for w in column.children]
    assert names[:2] == ["prompt", "temperature"] and "seed" in names
