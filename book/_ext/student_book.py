"""The student book: both editions built without their solutions, for a teacher to hand out.

``python scripts/classroom.py book OUT`` builds the book with ``LLM_LESSONS_STUDENT_BOOK=1``;
this extension then changes each source as Sphinx reads it, and does nothing without the
variable:

- a page loses every ``{dropdown} Solution`` block (the exercises stay);
- a notebook becomes its student edition (``llm_lessons.exercises.notebooks.student_edition``,
  the same function ``scripts/classroom.py student`` uses): each answer is a stub that raises
  ``NotImplementedError``, shown rather than folded, hidden tests and written answers are gone,
  and the checks have no saved output.

- the copies of the sources that Sphinx publishes for download (``_sources/``) are rewritten
  the same way once the build finishes: they are the files a student's "download .ipynb" gets;
- the launch buttons (Colab, Binder) and the repository button go: they open the repository's
  notebooks, which are the instructor edition.

Nothing else changes: same prose, same figures, same outputs elsewhere, and the Chinese edition
drops the same blocks (their messages are simply never used).

>>> page = "1. Why?\\n\\n   ```{dropdown} Solution\\n   Because.\\n   ```\\n\\n2. Next.\\n"
>>> print(without_solutions(page))
1. Why?
<BLANKLINE>
<BLANKLINE>
2. Next.
<BLANKLINE>
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat

from llm_lessons.exercises.notebooks import is_solution, student_edition

# A fenced dropdown titled "Solution", closed by a fence at its own indentation (the pages put
# them inside list items, indented three spaces).
SOLUTION = re.compile(r"^(?P<indent>[ \t]*)```\{dropdown\} Solution[ \t]*\n.*?^(?P=indent)```[ \t]*\n",
                      re.M | re.S)
VARIABLE = "LLM_LESSONS_STUDENT_BOOK"


def without_solutions(markdown: str) -> str:
    """The page with its solution dropdowns cut out."""
    return SOLUTION.sub("", markdown)


def student_notebook(text: str) -> str:
    """A notebook's JSON, as its student edition, with the stubs unfolded."""
    student = student_edition(nbformat.reads(text, as_version=4))
    for cell in student.cells:
        if cell.cell_type == "code" and is_solution(cell):
            tags = cell.metadata.get("tags", [])
            cell.metadata["tags"] = [t for t in tags if t != "hide-input"]
    return nbformat.writes(student)


def _student_source(app, docname: str, source: list[str]) -> None:
    if str(app.env.doc2path(docname)).endswith(".ipynb"):
        source[0] = student_notebook(source[0])
    else:
        source[0] = without_solutions(source[0])


def student_sources(folder: Path) -> int:
    """Rewrite the published sources under ``folder`` as their student editions; returns how many."""
    count = 0
    for path in sorted(folder.rglob("*")):
        if path.suffix == ".ipynb":
            path.write_text(student_notebook(path.read_text(encoding="utf-8")), encoding="utf-8")
        elif path.suffix in (".md", ".txt"):
            path.write_text(without_solutions(path.read_text(encoding="utf-8")), encoding="utf-8")
        else:
            continue
        count += 1
    return count


def _no_instructor_links(app, config) -> None:
    options = config.html_theme_options
    options["launch_buttons"] = {}
    options["use_repository_button"] = False
    options["use_source_button"] = False
    options["use_edit_page_button"] = False


def _rewrite_published_sources(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        student_sources(Path(app.outdir) / "_sources")


def setup(app):
    if os.environ.get(VARIABLE) == "1":
        app.connect("config-inited", _no_instructor_links)
        app.connect("source-read", _student_source)
        app.connect("build-finished", _rewrite_published_sources)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
