"""The article's section 5 model, run as published: each defect the book reports, asserted.

The listing is read from ``notebooks/05_article_code.ipynb`` (the cell that assigns
``ARTICLE_LISTING``), so the lesson and these tests always examine the same code. Running the
listing means executing its text: that is the point here, and the only ``exec`` in the project's
tests.
"""

from __future__ import annotations

import ast
import json
import math
import pathlib
import warnings

import pytest
import torch
from torch import nn

from llm_lessons.attention import causal_mask
from llm_lessons.positional import sinusoidal_encoding

NOTEBOOK = pathlib.Path(__file__).resolve().parents[1] / "notebooks" / "05_article_code.ipynb"
IMPORTS = "import math\nimport torch\nimport torch.nn as nn\n"
SIZES = dict(vocab_size=11, d_model=16, nhead=4, num_layers=2, dim_feedforward=32)


def article_listing() -> str:
    """The string literal assigned to ARTICLE_LISTING in the notebook."""
    for cell in json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] != "code" or "ARTICLE_LISTING =" not in source:
            continue  # (other cells may hold IPython magics, which are not Python)
        for node in ast.parse(source).body:
            if (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                    and node.targets[0].id == "ARTICLE_LISTING"):
                return ast.literal_eval(node.value)
    raise AssertionError(f"no code cell of {NOTEBOOK.name} assigns ARTICLE_LISTING")


def run_listing(source: str, namespace: dict) -> dict:
    exec(compile(source, "article_section5.py", "exec"), namespace)  # the listing, as a file of its own
    return namespace


class SequenceFirstPositionalEncoding(nn.Module):
    """The class the listing assumes: sinusoids added to x of shape (T, B, C), then dropout."""

    def __init__(self, d_model: int, dropout: float = 0.1, max_len: int = 512):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("pe", sinusoidal_encoding(max_len, d_model)[:, None, :])  # (max_len, 1, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(x + self.pe[: x.size(0)])  # (T, B, C) + (T, 1, C)


def article_class() -> type[nn.Module]:
    """The listing with imports and a PositionalEncoding supplied, nothing else changed."""
    namespace = run_listing(IMPORTS + article_listing(), {})
    namespace["PositionalEncoding"] = SequenceFirstPositionalEncoding
    return namespace["TransformerModel"]


def runnable_model(seed: int = 0) -> nn.Module:
    """The listing plus the two crash fixes (imports, PositionalEncoding, d_model), in eval mode."""
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # nn.TransformerEncoder's batch_first hint
        model = article_class()(**SIZES)
    model.d_model = SIZES["d_model"]
    return model.eval()


def masked_logits(model: nn.Module, src: torch.Tensor) -> torch.Tensor:
    """The listing's forward with the causal mask it lacks; src (T, B) -> logits (T, B, V)."""
    h = model.pos_encoder(model.embedding(src) * math.sqrt(model.d_model))  # (T, B, C)
    mask = nn.Transformer.generate_square_subsequent_mask(src.shape[0])  # (T, T)
    return model.decoder(model.transformer_encoder(h, mask=mask, is_causal=True))


def tokens(T: int, B: int, seed: int) -> torch.Tensor:
    return torch.randint(SIZES["vocab_size"], (T, B), generator=torch.Generator().manual_seed(seed))


def test_the_notebook_holds_the_articles_model():
    tree = ast.parse(article_listing())
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    init = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    assert cls.name == "TransformerModel"
    assert [a.arg for a in init.args.args] == ["self", "vocab_size", "d_model", "nhead", "num_layers",
                                               "dim_feedforward", "dropout"]
    attributes = {n.attr for n in ast.walk(cls) if isinstance(n, ast.Attribute)
                  and isinstance(n.value, ast.Name) and n.value.id == "self"}
    assert {"embedding", "pos_encoder", "transformer_encoder", "decoder", "d_model"} <= attributes


def test_listing_alone_has_no_imports():
    with pytest.raises(NameError, match="name 'nn' is not defined"):
        run_listing(article_listing(), {})


def test_listing_never_defines_positional_encoding():
    TransformerModel = run_listing(IMPORTS + article_listing(), {})["TransformerModel"]
    with pytest.raises(NameError, match="name 'PositionalEncoding' is not defined"):
        TransformerModel(**SIZES)


def test_listing_never_stores_d_model():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = article_class()(**SIZES)
    with pytest.raises(AttributeError, match="d_model"):
        model(tokens(5, 2, seed=0))


def test_batch_first_input_mixes_the_sequences_of_a_batch():
    model = runnable_model()
    batch = tokens(8, 2, seed=1).T  # (B, T): how batches usually come, and what the listing misreads
    other = batch.clone()
    other[1] = (other[1] + 1) % SIZES["vocab_size"]  # change sequence 1 only
    with torch.no_grad():
        misread = (model(batch)[0] - model(other)[0]).abs().max()  # dim 0 taken as time: row 0 moves
        right = (model(batch.T)[:, 0] - model(other.T)[:, 0]).abs().max()  # (T, B) as documented
    assert misread > 1e-3
    assert right == 0


@pytest.mark.parametrize("seed", [0, 1])
def test_without_a_mask_later_tokens_change_earlier_logits(seed):
    model, src, t = runnable_model(seed), tokens(10, 3, seed), 6
    changed = src.clone()
    changed[t] = (changed[t] + 1) % SIZES["vocab_size"]
    with torch.no_grad():
        unmasked = (model(src)[:t] - model(changed)[:t]).abs().max()
        masked = (masked_logits(model, src)[:t] - masked_logits(model, changed)[:t]).abs().max()
    assert unmasked > 1e-3   # the listing: positions before t read the token at t
    assert masked == 0       # with the mask: the causal invariant holds exactly


def test_only_the_masked_model_predicts_each_position_from_its_prefix():
    # A causal model's logits at t are the same whether or not tokens after t are present,
    # so one pass over the whole window equals T passes over growing prefixes.
    model, src = runnable_model(), tokens(9, 2, seed=3)
    with torch.no_grad():
        full, full_unmasked = masked_logits(model, src), model(src)
        for t in range(src.shape[0]):
            prefix = src[: t + 1]
            assert torch.allclose(masked_logits(model, prefix)[t], full[t], atol=1e-5)
        assert not torch.allclose(model(src[:3])[2], full_unmasked[2], atol=1e-3)


def test_pytorch_square_subsequent_mask_is_the_books_causal_mask():
    for T in (1, 2, 7):
        mask = nn.Transformer.generate_square_subsequent_mask(T)
        assert torch.equal(mask == 0, causal_mask(T))
        assert torch.isneginf(mask[~causal_mask(T)]).all()
