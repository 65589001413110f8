"""The book's notebooks as classroom material: every checked exercise is well formed, its answer
is folded in the book and absent from the student edition, and its check ran and passed; every
open exercise (an experiment or a question) has a written answer, folded and withheld the same way,
and so has every exercise on the book's pages."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

from llm_lessons.exercises.notebooks import (
    BEGIN,
    END,
    FOLD,
    WITHHELD,
    is_check,
    is_solution,
    nbgrader,
    student_edition,
)

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("toc_notebooks", ROOT / "scripts" / "toc_notebooks.py")
toc_notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(toc_notebooks)
NOTEBOOKS = toc_notebooks.notebook_paths()


def answers(cell) -> list[str]:
    """The marked answers of a solution cell (the code between the markers)."""
    return [m.group(1).strip("\n") for m in re.finditer(
        rf"{re.escape(BEGIN)}[^\n]*\n(.*?)\n[ \t]*{re.escape(END)}", cell.source, re.S)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_answer_is_followed_by_its_check(path):
    cells = nbformat.read(path, as_version=4).cells
    for i, cell in enumerate(cells):
        if cell.cell_type == "code" and is_solution(cell):
            gid = nbgrader(cell)["grade_id"]
            assert gid.endswith("-solution"), gid
            assert cell.source.count(BEGIN) == cell.source.count(END) >= 1, gid
            assert "hide-input" in cell.metadata.get("tags", []), f"{gid}: not folded in the book"
            check = cells[i + 1]
            assert is_check(check) and nbgrader(check)["grade_id"] == gid.removesuffix("-solution")
        if is_check(cell):
            printed = "".join(o.get("text", "") for o in cell.get("outputs", []))
            assert "check_" in cell.source and re.search(r"check_\w+: all \d+ \w+ passed", printed), (
                f"{nbgrader(cell)['grade_id']}: the saved check must run a checker and pass")


def open_questions(source: str) -> int:
    """How many open exercises a markdown cell sets: "**Exercises.** (1) ... (2) ..." in a summary,
    or a numbered list under "## Exercises" or "## Try it" (0 for any other cell)."""
    if "**Exercises.**" in source:
        return len(re.findall(r"\((\d+)\) ", source.split("**Exercises.**", 1)[1]))
    heading = re.search(r"^## (?:Exercises|Try it)\s*\n(.*)", source, re.S | re.M)
    return len(re.findall(r"^\d+\. ", heading.group(1), re.M)) if heading else 0


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_open_exercise_has_a_folded_written_answer(path):
    nb = nbformat.read(path, as_version=4)
    student = "\n".join(c.source for c in student_edition(nb).cells)
    for i, cell in enumerate(nb.cells):
        asked = open_questions(cell.source) if cell.cell_type == "markdown" else 0
        if not asked:
            continue
        answer = nb.cells[i + 1]
        assert answer.cell_type == "markdown" and is_solution(answer), f"{path.stem}: no written answer"
        meta = nbgrader(answer)
        assert meta.get("grade") and meta.get("points") == asked, f"{path.stem}: {meta}"
        assert FOLD.match(answer.source), f"{path.stem}: the answers are not folded"
        numbers = re.findall(r"^\*\*\((\d+)\)\*\* ", answer.source, re.M)
        assert numbers == [str(k) for k in range(1, asked + 1)], (path.stem, asked, numbers)
        paragraphs = [p for p in FOLD.match(answer.source).group(1).split("\n\n") if p.strip()]
        assert all(len(p.split()) >= 12 for p in paragraphs if p.startswith("**(")), "a token answer"
        assert not any(p.strip() in student for p in paragraphs), f"{path.stem}: an answer leaked"
        assert WITHHELD in student


@pytest.mark.parametrize("page", sorted((ROOT / "book").glob("*.md")), ids=lambda p: p.stem)
def test_every_page_exercise_has_a_solution(page):
    text = page.read_text(encoding="utf-8")
    for section in re.findall(r"^#{2,3} Exercises\n(.*?)(?=^#{1,3} |\Z)", text, re.S | re.M):
        items = [item for item in re.split(r"^(?=\d+\. )", section, flags=re.M) if item[:1].isdigit()]
        assert items, f"{page.stem}: an Exercises section without exercises"
        for item in items:
            assert "```{dropdown} Solution" in item, f"{page.stem}: no solution for {item[:60]!r}"


def test_exercise_ids_are_unique_in_the_book():
    ids = [nbgrader(c).get("grade_id") for p in NOTEBOOKS
           for c in nbformat.read(p, as_version=4).cells if nbgrader(c).get("grade_id")]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_student_edition_holds_no_answer(path):
    nb = nbformat.read(path, as_version=4)
    student = "\n".join(c.source for c in student_edition(nb).cells)
    for cell in nb.cells:
        for answer in answers(cell) if cell.cell_type == "code" and is_solution(cell) else []:
            gid = nbgrader(cell)["grade_id"]
            assert answer not in student, f"{gid}: its answer is in the student edition"
            assert answer.strip(), f"{gid}: an empty answer"
    assert BEGIN not in student and END not in student


def test_every_notebook_ends_with_checked_exercises():
    """The classroom bar: at least three checked exercises in every notebook, sixty in the book,
    each statement graded easy / medium / hard and numbered in the book's order."""
    total = 0
    for path in NOTEBOOKS:
        cells = nbformat.read(path, as_version=4).cells
        checks = [i for i, c in enumerate(cells) if is_check(c)]
        assert len(checks) >= 3, f"{path.stem}: {len(checks)} checked exercises"
        for i in checks:  # the statement is the markdown cell before the answer cell
            statement = cells[i - 2]
            assert statement.cell_type == "markdown", (path.stem, i)
            assert re.match(r"\*\*Exercise [\w.]+ \((easy|medium|hard)\): ", statement.source), (
                path.stem, statement.source[:60])
        total += len(checks)
    assert total >= 60, f"{total} checked exercises in the book"


_ext = importlib.util.spec_from_file_location("student_book", ROOT / "book" / "_ext" / "student_book.py")
student_book = importlib.util.module_from_spec(_ext)
_ext.loader.exec_module(student_book)


@pytest.mark.parametrize("page", sorted((ROOT / "book").glob("*.md")), ids=lambda p: p.stem)
def test_the_student_book_drops_every_page_solution_and_nothing_else(page):
    text = page.read_text(encoding="utf-8")
    lines, kept, inside = text.splitlines(keepends=True), [], None
    for line in lines:  # an independent cut: from the opening fence to the fence at its indent
        if inside is None and line.strip() == "```{dropdown} Solution":
            inside = line[: len(line) - len(line.lstrip())]
        elif inside is not None and line.rstrip("\n") == inside + "```":
            inside = None
        elif inside is None:
            kept.append(line)
    student = student_book.without_solutions(text)
    assert student == "".join(kept)
    assert "{dropdown} Solution" not in student
    assert student.count("\n1. ") == text.count("\n1. "), "an exercise went with its solution"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_student_book_renders_each_notebook_as_its_student_edition(path):
    nb = nbformat.read(path, as_version=4)
    student = nbformat.reads(student_book.student_notebook(nbformat.writes(nb)), as_version=4)
    text = "\n".join(c.source for c in student.cells)
    for cell in nb.cells:
        for answer in answers(cell) if cell.cell_type == "code" and is_solution(cell) else []:
            assert answer not in text
    stubs = [c for c in student.cells if c.cell_type == "code" and is_solution(c)]
    assert stubs and all("hide-input" not in c.metadata.get("tags", []) for c in stubs)
    assert all(not c.outputs for c in student.cells if is_check(c)), "a check kept the teacher's output"


def test_the_student_book_extension_examples():
    import doctest

    assert doctest.testmod(student_book).failed == 0


def test_the_student_book_rewrites_the_sources_it_publishes(tmp_path):
    """Sphinx copies every source to _sources/ for download; the student book must not ship the
    instructor's copies there (they hold every answer)."""
    nb_path = NOTEBOOKS[0]
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "book").mkdir()
    (tmp_path / "notebooks" / nb_path.name).write_text(nb_path.read_text(encoding="utf-8"), encoding="utf-8")
    page = "1. Why?\n\n   ```{dropdown} Solution\n   Because.\n   ```\n"
    (tmp_path / "book" / "page.md").write_text(page, encoding="utf-8")
    assert student_book.student_sources(tmp_path) == 2
    assert "Because." not in (tmp_path / "book" / "page.md").read_text(encoding="utf-8")
    published = nbformat.read(tmp_path / "notebooks" / nb_path.name, as_version=4)
    original = nbformat.read(nb_path, as_version=4)
    text = "\n".join(c.source for c in published.cells)
    for cell in original.cells:
        if is_solution(cell) and cell.cell_type == "markdown":
            assert cell.source not in text
        for answer in answers(cell) if cell.cell_type == "code" and is_solution(cell) else []:
            assert answer not in text


def test_the_student_book_drops_the_buttons_that_open_the_instructor_notebooks():
    class Config:
        html_theme_options = {"launch_buttons": {"colab_url": "https://colab.research.google.com"},
                              "use_repository_button": True, "use_issues_button": True}

    config = Config()
    student_book._no_instructor_links(None, config)
    assert config.html_theme_options["launch_buttons"] == {}
    assert config.html_theme_options["use_repository_button"] is False
