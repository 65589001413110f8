"""The book's corpus as a Hugging Face ``datasets.DatasetDict``: one row per speech, split by
whole plays exactly as the book splits it, stored as Arrow files, all offline.

Columns: ``play``, ``genre`` (the corpus's folder: comedies, histories, problems, roman,
romances, tragedies), ``speaker`` and ``text`` (the speech's lines, as the book's dialogue text
holds them). The rows of a play, joined back as ``SPEAKER:\\ntext`` blocks, are that play's
text in :func:`llm_lessons.data.load_plays` character for character, so whatever a model learns
from the dataset it would learn from the book's corpus. ``datasets`` then gives the tools a
practitioner uses on any corpus: ``filter``, ``map`` (batched), ``train_test_split``,
``save_to_disk`` / ``load_from_disk`` (memory-mapped Arrow, nothing loaded twice).

>>> rows = speech_rows({"hamlet": "HAMLET:\\nTo be, or not to be\\n\\nOPHELIA:\\nGood my lord,\\n"},
...                    {"hamlet": "tragedies"})
>>> [(r["speaker"], r["text"]) for r in rows]
[('HAMLET', 'To be, or not to be'), ('OPHELIA', 'Good my lord,')]
"""

from __future__ import annotations

from llm_lessons.data import load_plays, play_genres, train_val_split


def speech_rows(plays: dict[str, str], genres: dict[str, str]) -> list[dict[str, str]]:
    """Rows of ``{play, genre, speaker, text}`` from dialogue texts (``SPEAKER:\\nlines\\n``
    blocks separated by blank lines, the book's format)."""
    rows = []
    for play, text in plays.items():
        for block in text.split("\n\n"):
            speaker, sep, lines = block.partition(":\n")
            if not sep or not lines.strip():
                raise ValueError(f"{play}: a block that is not 'SPEAKER:\\nlines': {block[:60]!r}")
            rows.append({"play": play, "genre": genres[play], "speaker": speaker,
                         "text": lines.removesuffix("\n")})
    return rows


def play_text(rows: list[dict[str, str]]) -> str:
    """The dialogue text of one play's rows: the inverse of :func:`speech_rows`."""
    return "\n".join(f"{r['speaker']}:\n{r['text']}\n" for r in rows)


def corpus_dataset(val_fraction: float = 0.1, seed: int = 1337, names: list[str] | None = None):
    """``DatasetDict({"train", "validation"})`` of speeches, the plays split as
    :func:`llm_lessons.data.train_val_split` splits them (same arguments, same plays)."""
    from datasets import Dataset, DatasetDict  # noqa: PLC0415 (only this function needs datasets)

    split = train_val_split(val_fraction=val_fraction, seed=seed, names=names)
    plays, genres = load_plays(names), play_genres()
    return DatasetDict({
        "train": Dataset.from_list(speech_rows({p: plays[p] for p in split.train_plays}, genres)),
        "validation": Dataset.from_list(speech_rows({p: plays[p] for p in split.val_plays}, genres)),
    })
