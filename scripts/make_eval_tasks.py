"""Build the local lm-evaluation-harness task data from held-out Shakespeare, deterministically.

Usage:  .venv/bin/python scripts/make_eval_tasks.py [--check]

Writes three JSON-lines files to ``llm_lessons/resources/lm_eval_tasks/`` (the YAML task
definitions beside them are written by hand). Every item comes from the *validation* plays
of ``llm_lessons.data.train_val_split()`` (split by whole plays), so a model trained on the
training plays never saw them:

- ``shakespeare_ppl.jsonl``: a few short documents (runs of whole speeches) for rolling
  perplexity; their lengths differ so that rolling windows end in every possible way.
- ``shakespeare_next_line.jsonl``: a speaker and one to three lines of a speech; which of four
  lines comes next? Distractors are other lines of the same play (lengths vary on purpose:
  that is what separates ``acc`` from the length-normalised ``acc_norm``).
- ``shakespeare_cloze.jsonl``: a line with its last word removed; which of four words ends it?
  Distractors are line-final words of the same play.

``--check`` rebuilds in memory and fails if the shipped files differ (used by the tests).
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

from llm_lessons.data import load_plays, train_val_split
from llm_lessons.files import write_atomic

OUT = Path(__file__).resolve().parent.parent / "llm_lessons" / "resources" / "lm_eval_tasks"
SEED = 2024
PPL_DOCS_PER_PLAY = 2
PPL_LENGTHS = (300, 500, 700, 900, 1100, 1300, 1500, 1700)  # target characters, one per document
MC_ITEMS_PER_PLAY = 15
WORD = re.compile(r"[A-Za-z]+")


def speeches(play: str) -> list[tuple[str, list[str]]]:
    """(speaker, lines) of every speech of a play in ``SPEAKER:\\nline...`` form."""
    out = []
    for block in play.strip("\n").split("\n\n"):
        head, *lines = block.split("\n")
        if head.endswith(":") and lines:
            out.append((head[:-1], lines))
    return out


def ppl_docs(plays: dict[str, str], rng: random.Random) -> list[dict]:
    docs, lengths = [], iter(PPL_LENGTHS)
    for name, text in plays.items():
        sp = speeches(text)
        for _ in range(PPL_DOCS_PER_PLAY):
            target = next(lengths)
            start = rng.randrange(len(sp) - 50)
            parts, size = [], 0
            for speaker, lines in sp[start:]:
                parts.append(speaker + ":\n" + "\n".join(lines))
                size += len(parts[-1]) + 2
                if size >= target:
                    break
            docs.append({"play": name, "text": "\n\n".join(parts)})
    return docs


def next_line_items(plays: dict[str, str], rng: random.Random) -> list[dict]:
    items = []
    for name, text in plays.items():
        sp = speeches(text)
        pool = sorted({ln for _, lines in sp for ln in lines if len(ln) >= 10})
        candidates = [s for s in sp if len(s[1]) >= 3]
        for speaker, lines in rng.sample(candidates, MC_ITEMS_PER_PLAY):
            j = rng.randint(1, min(3, len(lines) - 1))
            gold = lines[j]
            seen = set(lines)
            distractors = []
            while len(distractors) < 3:
                d = rng.choice(pool)
                if d not in seen and d not in distractors:
                    distractors.append(d)
            label = rng.randrange(4)
            choices = distractors[:label] + [gold] + distractors[label:]
            items.append({"play": name, "context": speaker + ":\n" + "\n".join(lines[:j]),
                          "choices": choices, "label": label})
    return items


def cloze_items(plays: dict[str, str], rng: random.Random) -> list[dict]:
    items = []
    for name, text in plays.items():
        sp = speeches(text)
        cases = []  # (speaker, previous line or None, line without last word, last word)
        for speaker, lines in sp:
            for i, line in enumerate(lines):
                words = list(WORD.finditer(line))
                if len(words) >= 4 and len(words[-1].group()) >= 3:
                    last = words[-1]
                    before = line[:last.start()].rstrip()
                    cases.append((speaker, lines[i - 1] if i else None, before, last.group()))
        pool = sorted({c[3] for c in cases})
        for speaker, prev, before, gold in rng.sample(cases, MC_ITEMS_PER_PLAY):
            distractors = []
            while len(distractors) < 3:
                d = rng.choice(pool)
                if d.lower() != gold.lower() and d.lower() not in {x.lower() for x in distractors}:
                    distractors.append(d)
            label = rng.randrange(4)
            choices = distractors[:label] + [gold] + distractors[label:]
            context = speaker + ":\n" + (prev + "\n" if prev else "") + before
            items.append({"play": name, "context": context, "choices": choices, "label": label})
    return items


def build() -> dict[str, str]:
    plays = load_plays(list(train_val_split().val_plays))  # validation plays, one text each
    rng = random.Random(SEED)
    files = {
        "shakespeare_ppl.jsonl": ppl_docs(plays, rng),
        "shakespeare_next_line.jsonl": next_line_items(plays, rng),
        "shakespeare_cloze.jsonl": cloze_items(plays, rng),
    }
    return {name: "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
            for name, rows in files.items()}


def main(argv: list[str]) -> int:
    built = build()
    if "--check" in argv:
        stale = [n for n, text in built.items() if (OUT / n).read_text(encoding="utf-8") != text]
        print("stale:", stale or "none")
        return 1 if stale else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in built.items():
        write_atomic(OUT / name, text)
        print(f"wrote {OUT / name} ({text.count(chr(10))} items)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
