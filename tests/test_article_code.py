"""The article's section 5 listing, run as written: each defect the book reports, asserted.

The listing is read from ``notebooks/05_article_code.ipynb`` (the cell that assigns
``ARTICLE_LISTING``), so the lesson, the book page and these tests always examine the same code.
Running the listing means executing its text: that is the point here, and the only ``exec`` in
the project's tests.
"""

from __future__ import annotations

import ast
import json
import math
import pathlib
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from llm_lessons.attention import causal_mask
from llm_lessons.positional import sinusoidal_encoding

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "05_article_code.ipynb"
BOOK_PAGE = ROOT / "book" / "05_project.md"
SIZES = dict(vocab_size=11, d_model=16, nhead=4, num_layers=2, dim_feedforward=32, dropout=0.1)


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


def run_listing(source: str, **names) -> dict:
    namespace = dict(names)
    exec(compile(source, "article_section5.py", "exec"), namespace)  # the listing, as a file
    return namespace


def edit(source: str, *edits: tuple[str, str]) -> str:
    for old, new in edits:
        assert source.count(old) == 1, old
        source = source.replace(old, new)
    return source


class PositionalEncoding(nn.Module):
    """The class the listing assumes: sinusoids added to x of shape (T, B, C), then dropout."""

    def __init__(self, d_model: int, dropout: float = 0.1, max_len: int = 512):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("pe", sinusoidal_encoding(max_len, d_model)[:, None, :])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(x + self.pe[: x.size(0)])  # (T, B, C) + (T, 1, C)


NAMES = dict(PositionalEncoding=PositionalEncoding, math=math, F=F)  # what the listing lacks
D_MODEL = ("        super().__init__()\n        self.embedding",
           "        super().__init__()\n        self.d_model = d_model\n        self.embedding")
MASK = [
    ("    def forward(self, src):\n        attended = self.self_attn(src, src, src)[0]",
     "    def forward(self, src, mask=None):\n"
     "        attended = self.self_attn(src, src, src, attn_mask=mask)[0]"),
    ("            src = layer(src)", "            src = layer(src, mask)"),
    ("    def forward(self, src):\n        for layer", "    def forward(self, src, mask=None):\n"
     "        for layer"),
    ("        output = self.encoder(src)",
     "        mask = nn.Transformer.generate_square_subsequent_mask(src.size(0))\n"
     "        output = self.encoder(src, mask)"),
]


def model(source: str | None = None, seed: int = 0, **names) -> nn.Module:
    """A model of the listing (by default with d_model stored), the missing names supplied."""
    source = edit(article_listing(), D_MODEL) if source is None else source
    torch.manual_seed(seed)
    return run_listing(source, **{**NAMES, **names})["TransformerLM"](**SIZES).eval()


def tokens(T: int, B: int, seed: int) -> torch.Tensor:
    return torch.randint(SIZES["vocab_size"], (T, B), generator=torch.Generator().manual_seed(seed))


def self_attributes(node: ast.AST) -> set[str]:
    return {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Name) and n.value.id == "self"}


def test_the_notebook_holds_the_articles_listing():
    tree = ast.parse(article_listing())
    imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    assert [(a.name, a.asname) for n in imports for a in n.names] == [("torch", None),
                                                                      ("torch.nn", "nn")]
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    assert list(classes) == ["TransformerEncoderLayer", "TransformerEncoder", "TransformerLM"]

    def args(cls: str, method: str) -> list[str]:
        fn = next(n for n in classes[cls].body if isinstance(n, ast.FunctionDef) and n.name == method)
        return [a.arg for a in fn.args.args]

    assert args("TransformerEncoderLayer", "__init__") == ["self", "d_model", "nhead",
                                                          "dim_feedforward", "dropout"]
    assert args("TransformerEncoder", "__init__") == ["self", "num_layers", "d_model", "nhead",
                                                     "dim_feedforward", "dropout"]
    assert args("TransformerLM", "__init__") == ["self", "vocab_size", "d_model", "nhead",
                                                "num_layers", "dim_feedforward", "dropout"]
    for cls in classes:
        assert args(cls, "forward") == ["self", "src"]  # no mask argument anywhere
    assert "mask" not in article_listing()
    assert {"self_attn", "linear1", "dropout", "linear2", "norm1", "norm2"} <= self_attributes(
        classes["TransformerEncoderLayer"])
    assert "layers" in self_attributes(classes["TransformerEncoder"])
    lm = self_attributes(classes["TransformerLM"])
    assert {"embedding", "pos_encoder", "encoder", "decoder", "d_model"} <= lm
    stored = {t.attr for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets
              if isinstance(t, ast.Attribute)}
    assert "d_model" not in stored  # read in forward, never assigned
    attention = next(n for n in ast.walk(tree) if isinstance(n, ast.Call)
                     and ast.unparse(n.func) == "nn.MultiheadAttention")
    assert [k.arg for k in attention.keywords] == ["dropout"]  # default layout: sequence first


def test_the_book_quotes_the_notebooks_listing():
    blocks = re.findall(r"```python\n(.*?)```", BOOK_PAGE.read_text(encoding="utf-8"), re.S)
    assert blocks and blocks[0].strip() == article_listing().strip()


def test_the_file_runs_and_defines_its_classes():
    namespace = run_listing(article_listing())
    assert {"TransformerEncoderLayer", "TransformerEncoder", "TransformerLM"} <= set(namespace)


def test_building_the_model_needs_the_undefined_positional_encoding():
    TransformerLM = run_listing(article_listing())["TransformerLM"]
    with pytest.raises(NameError, match="name 'PositionalEncoding' is not defined"):
        TransformerLM(**SIZES)


def test_forward_meets_math_then_d_model_then_F():
    x = tokens(5, 2, seed=0)
    listing = article_listing()
    with pytest.raises(NameError, match="name 'math' is not defined"):
        run_listing(listing, PositionalEncoding=PositionalEncoding)["TransformerLM"](**SIZES)(x)
    with pytest.raises(AttributeError, match="d_model"):
        run_listing(listing, PositionalEncoding=PositionalEncoding, math=math)[
            "TransformerLM"](**SIZES)(x)
    no_f = run_listing(edit(listing, D_MODEL), PositionalEncoding=PositionalEncoding, math=math)
    lm = no_f["TransformerLM"](**SIZES)  # F is not needed to build: only forward looks it up
    with pytest.raises(NameError, match="name 'F' is not defined"):
        lm(x)


def test_batch_first_input_mixes_the_sequences_of_a_batch():
    m = model()
    batch = tokens(8, 2, seed=1).T  # (B, T): how batches usually come, and what the listing misreads
    other = batch.clone()
    other[1] = (other[1] + 1) % SIZES["vocab_size"]  # change sequence 1 only
    with torch.no_grad():
        misread = (m(batch)[0] - m(other)[0]).abs().max()  # dim 0 taken as time: row 0 moves
        right = (m(batch.T)[:, 0] - m(other.T)[:, 0]).abs().max()  # (T, B) as documented
    assert misread > 1e-3
    assert right == 0


def test_batch_first_input_keeps_the_characters_of_a_sequence_apart():
    m, batch = model(), tokens(8, 3, seed=2).T  # (B, T) = (3, 8)
    changed = batch.clone()
    changed[:, 5] = (changed[:, 5] + 1) % SIZES["vocab_size"]
    with torch.no_grad():
        moved = (m(batch) - m(changed)).abs().amax(dim=(0, 2))  # per position t
    assert moved[5] > 1e-3 and torch.all(moved[torch.arange(8) != 5] < 1e-6)


def test_scaled_default_embeddings_are_much_longer_than_positions():
    m = model()
    token = (m.embedding.weight * math.sqrt(SIZES["d_model"])).norm(dim=1).mean()
    position = m.pos_encoder.pe[:32, 0].norm(dim=1).mean()
    assert token / position > 3  # sqrt(d_model) * N(0, 1) rows: length ~ d_model, vs sqrt(d/2)


@pytest.mark.parametrize("seed", [0, 1])
def test_only_the_mask_keeps_later_tokens_out_of_earlier_logits(seed):
    unmasked = model(seed=seed)
    masked = model(edit(article_listing(), D_MODEL, *MASK), seed=seed)
    src, t = tokens(10, 3, seed), 6  # (T, B): the layout the listing documents
    changed = src.clone()
    changed[t] = (changed[t] + 1) % SIZES["vocab_size"]
    with torch.no_grad():
        leak = (unmasked(src)[:t] - unmasked(changed)[:t]).abs().max()
        masked_leak = (masked(src)[:t] - masked(changed)[:t]).abs().max()
    assert leak > 1e-3         # the listing: positions before t read the token at t
    assert masked_leak == 0    # with the mask: the causal invariant holds exactly


def test_only_the_masked_model_predicts_each_position_from_its_prefix():
    # A causal model's logits at t are the same whether or not tokens after t are present,
    # so one pass over the whole window equals T passes over growing prefixes.
    unmasked = model()
    masked = model(edit(article_listing(), D_MODEL, *MASK))
    src = tokens(9, 2, seed=3)
    with torch.no_grad():
        full = masked(src)
        for t in range(src.shape[0]):
            assert torch.allclose(masked(src[: t + 1])[t], full[t], atol=1e-5)
        assert not torch.allclose(unmasked(src[:3])[2], unmasked(src)[2], atol=1e-3)


def test_pytorch_square_subsequent_mask_is_the_books_causal_mask():
    for T in (1, 2, 7):
        mask = nn.Transformer.generate_square_subsequent_mask(T)
        assert torch.equal(mask == 0, causal_mask(T))
        assert torch.isneginf(mask[~causal_mask(T)]).all()
