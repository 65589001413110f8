"""Human evaluation: collect ratings and pairwise votes in a notebook, store them, read them back.

Two protocols, each a record type of one JSON-lines file (one JSON object per line):

* **Likert** (single sample): ``{"type": "likert", "rater", "item", "system", "fluency", "relevance"}``,
  scores 1 (bad) to 5 (good).
* **Pairwise A/B**: ``{"type": "pairwise", "rater", "item", "left", "right", "choice"}``, choice
  ``"left"``, ``"right"`` or ``"tie"``. Which system appears on which side is drawn by a seeded
  RNG for every task and *recorded*: raters favour one side (position bias), and only a
  balanced, known assignment lets the analysis see and cancel that bias.

A file may also hold ``{"type": "sample", "item", "system", "prompt", "text"}`` records (what
was rated) and one ``{"type": "header", ...}`` record describing where the votes came from.
:func:`likert_widget` and :func:`pairwise_widget` are small ipywidgets interfaces (imported
inside the functions) that append records as a rater clicks. The analysis helpers turn records
into the arrays :mod:`llm_lessons.evaluation.agreement` expects.

>>> tasks = pairwise_tasks(["p1"], ["A", "B", "C"], seed=0)
>>> len(tasks), {frozenset((t.left, t.right)) for t in tasks} == {
...     frozenset(p) for p in [("A", "B"), ("A", "C"), ("B", "C")]}
(3, True)
>>> outcome(PairwiseTask("p1", left="B", right="A"), "left")   # B was on the left and won
('B', 'A', 1.0)
"""

from __future__ import annotations

import itertools
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llm_lessons.files import read_limited, write_atomic
from llm_lessons.validation import check_int

ASPECTS = ("fluency", "relevance")
CHOICES = ("left", "right", "tie")
SCALE = (1, 2, 3, 4, 5)
SHIPPED_VOTES = "human_votes.jsonl"
MAX_VOTES_BYTES = 256 * 2**20


@dataclass(frozen=True)
class PairwiseTask:
    """One A/B comparison as shown to a rater: ``left`` and ``right`` name systems."""

    item: str
    left: str
    right: str


def pairwise_tasks(items: Sequence[str], systems: Sequence[str], seed: int = 0) -> list[PairwiseTask]:
    """Every pair of systems on every item, in a shuffled order, sides drawn by a seeded coin."""
    if len(items) == 0 or len(set(systems)) < 2:
        raise ValueError(f"need at least one item and two distinct systems, got {list(items)}, "
                         f"{list(systems)}")
    rng = np.random.default_rng(seed)
    tasks = []
    for item in items:
        for a, b in itertools.combinations(list(dict.fromkeys(systems)), 2):
            tasks.append(PairwiseTask(item, a, b) if rng.random() < 0.5 else PairwiseTask(item, b, a))
    return [tasks[i] for i in rng.permutation(len(tasks))]


def outcome(task: PairwiseTask, choice: str) -> tuple[str, str, float]:
    """A rater's choice as ``(left_system, right_system, score_of_left)`` for Bradley–Terry."""
    if choice not in CHOICES:
        raise ValueError(f"choice must be one of {CHOICES}, got {choice!r}")
    return task.left, task.right, {"left": 1.0, "right": 0.0, "tie": 0.5}[choice]


def _check_record(rec: dict, where: str) -> dict:
    if not isinstance(rec, dict):
        raise ValueError(f"{where}: a record must be a JSON object, got {type(rec).__name__}")
    kind = rec.get("type")
    need = {"likert": ("rater", "item", "system", *ASPECTS),
            "pairwise": ("rater", "item", "left", "right", "choice"),
            "sample": ("item", "system", "prompt", "text"), "header": ()}.get(kind)
    if need is None:
        raise ValueError(f"{where}: unknown record type {kind!r}; expected likert, pairwise, "
                         "sample or header")
    missing = [k for k in need if k not in rec]
    if missing:
        raise ValueError(f"{where}: {kind} record lacks {missing}")
    names = {"likert": ("rater", "item", "system"), "pairwise": ("rater", "item", "left", "right")}
    if any(not isinstance(rec[k], str) for k in names.get(kind, ())):
        raise ValueError(f"{where}: {kind} record fields {list(names[kind])} must be strings")
    if kind == "likert":
        for aspect in ASPECTS:
            check_int(rec[aspect], f"{where}: the Likert score {aspect}", low=SCALE[0], high=SCALE[-1])
    if kind == "pairwise" and (rec["choice"] not in CHOICES or rec["left"] == rec["right"]):
        raise ValueError(f"{where}: pairwise record needs two different systems and a choice in {CHOICES}")
    return rec


def append_record(path: str | Path, record: dict) -> None:
    """Validate one record and append it as a line of JSON.

    The file is rewritten atomically (:func:`llm_lessons.files.write_atomic`), so a crash
    never leaves a half-written line; after a line that someone else left unfinished, the new
    record still starts on a line of its own.
    """
    _check_record(record, "record")
    try:
        line = (json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError) as err:
        raise ValueError(f"record is not plain JSON text: {err}") from None
    path = Path(path)
    old = read_limited(path, MAX_VOTES_BYTES) if path.exists() else b""
    if old and not old.endswith(b"\n"):
        old += b"\n"
    write_atomic(path, old + line)


@dataclass(frozen=True)
class Votes:
    """The records of a votes file, by type."""

    header: dict
    samples: list[dict]
    likert: list[dict]
    pairwise: list[dict]

    @property
    def systems(self) -> list[str]:
        named = {s["system"] for s in self.samples} | {r["system"] for r in self.likert}
        return sorted(named | {r[k] for r in self.pairwise for k in ("left", "right")})

    def sample(self, item: str, system: str) -> dict:
        for s in self.samples:
            if s["item"] == item and s["system"] == system:
                return s
        raise KeyError(f"no sample for item {item!r}, system {system!r}")


def load_votes(path: str | Path | None = None, *, skip_invalid: bool = False) -> Votes:
    """Read a votes file (default: the shipped, *simulated* ``resources/human_votes.jsonl``).

    A line that is not a valid record (a half-written last line, say) raises a ValueError
    naming ``file:line``; with ``skip_invalid=True`` such lines are skipped with a warning that
    names them.
    """
    if path is None:
        from llm_lessons.files import resource_path

        path = resource_path(SHIPPED_VOTES)
    groups: dict[str, list[dict]] = {"header": [], "sample": [], "likert": [], "pairwise": []}
    skipped = []
    text = read_limited(Path(path), MAX_VOTES_BYTES).decode("utf-8", errors="replace")
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                try:
                    raw = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}:{n}: not a complete JSON record (a half-written line?): "
                                     f"{err}") from None
                rec = _check_record(raw, f"{path}:{n}")
            except ValueError as err:
                if not skip_invalid:
                    raise ValueError(f"{err} (load_votes(..., skip_invalid=True) skips such lines)") from None
                skipped.append(n)
                continue
            groups[rec["type"]].append(rec)
    if skipped:
        warnings.warn(f"{path}: skipped invalid line(s) {skipped}", stacklevel=2)
    if not (groups["likert"] or groups["pairwise"]):
        raise ValueError(f"{path} holds no likert or pairwise votes")
    return Votes(groups["header"][0] if groups["header"] else {}, groups["sample"],
                 groups["likert"], groups["pairwise"])


def likert_matrix(votes: Votes, aspect: str) -> tuple[np.ndarray, list[str], list[tuple[str, str]]]:
    """(R raters, U units) scores with NaN where a rater skipped a unit; units are (item, system)."""
    if aspect not in ASPECTS:
        raise ValueError(f"aspect must be one of {ASPECTS}, got {aspect!r}")
    raters = sorted({r["rater"] for r in votes.likert})
    units = sorted({(r["item"], r["system"]) for r in votes.likert})
    if not raters:
        raise ValueError("no Likert votes")
    col, row = {u: j for j, u in enumerate(units)}, {r: i for i, r in enumerate(raters)}
    m = np.full((len(raters), len(units)), np.nan)
    for r in votes.likert:
        m[row[r["rater"]], col[(r["item"], r["system"])]] = r[aspect]
    return m, raters, units


def pairwise_outcomes(votes: Votes, rater: str | None = None) -> list[tuple[str, str, float]]:
    """(left, right, score_of_left) triples of all pairwise votes (or one rater's)."""
    return [outcome(PairwiseTask(r["item"], r["left"], r["right"]), r["choice"])
            for r in votes.pairwise if rater is None or r["rater"] == rater]


def left_preference(votes: Votes) -> dict[str, float]:
    """Per rater, the share of decisive (non-tie) votes that went to the left side: 0.5 is unbiased."""
    out = {}
    for rater in sorted({r["rater"] for r in votes.pairwise}):
        decisive = [r["choice"] for r in votes.pairwise if r["rater"] == rater and r["choice"] != "tie"]
        out[rater] = decisive.count("left") / len(decisive) if decisive else float("nan")
    return out


def _card(sample: dict, title: str) -> str:
    from html import escape

    return (f"<b>{escape(title)}</b><br><i>{escape(sample['prompt'])}</i>"
            f"<pre style='white-space:pre-wrap'>{escape(sample['text'])}</pre>")


def likert_widget(samples: Sequence[dict], path: str | Path, rater: str, seed: int = 0):
    """Rate samples one at a time for fluency and relevance (1-5); each "Save" appends a record.

    Samples are shown in a seeded random order with their system hidden (blind rating).
    """
    import ipywidgets as W

    order = [samples[i] for i in np.random.default_rng(seed).permutation(len(samples))]
    state = {"i": 0}
    card = W.HTML()
    sliders = {a: W.IntSlider(value=3, min=1, max=5, description=a) for a in ASPECTS}
    save, status = W.Button(description="Save and next", button_style="primary"), W.Label()

    def show():
        done = state["i"] >= len(order)
        card.value = ("<b>All samples rated, thank you.</b>" if done
                      else _card(order[state["i"]], f"Sample {state['i'] + 1}"))
        save.disabled = done
        status.value = f"{state['i']} / {len(order)} rated -> {path}"

    def on_save(_):
        s = order[state["i"]]
        append_record(path, {"type": "likert", "rater": rater, "item": s["item"], "system": s["system"],
                             **{a: int(w.value) for a, w in sliders.items()}})
        state["i"] += 1
        show()

    save.on_click(on_save)
    show()
    return W.VBox([card, *sliders.values(), save, status])


def pairwise_widget(votes: Votes, tasks: Sequence[PairwiseTask], path: str | Path, rater: str):
    """Show two continuations of the same prompt side by side; a click appends a pairwise record."""
    import ipywidgets as W

    state = {"i": 0}
    left, right = W.HTML(layout=W.Layout(width="50%")), W.HTML(layout=W.Layout(width="50%"))
    buttons = [W.Button(description=d) for d in ("Left is better", "Tie", "Right is better")]
    status = W.Label()

    def show():
        done = state["i"] >= len(tasks)
        if not done:
            t = tasks[state["i"]]
            left.value = _card(votes.sample(t.item, t.left), "Left")
            right.value = _card(votes.sample(t.item, t.right), "Right")
        else:
            left.value, right.value = "<b>All pairs judged, thank you.</b>", ""
        for b in buttons:
            b.disabled = done
        status.value = f"{state['i']} / {len(tasks)} judged -> {path}"

    def choose(choice):
        def handler(_):
            t = tasks[state["i"]]
            append_record(path, {"type": "pairwise", "rater": rater, "item": t.item, "left": t.left,
                                 "right": t.right, "choice": choice})
            state["i"] += 1
            show()
        return handler

    for b, c in zip(buttons, ("left", "tie", "right"), strict=True):
        b.on_click(choose(c))
    show()
    return W.VBox([W.HBox([left, right]), W.HBox(buttons), status])
