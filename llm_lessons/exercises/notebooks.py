"""Two editions of an exercise notebook from one source, with nbgrader's conventions.

The book's notebooks are the *instructor* edition. An exercise is two code cells:

- a **solution** cell, whose answer sits between ``### BEGIN SOLUTION`` and ``### END SOLUTION``
  (cell metadata ``{"nbgrader": {"solution": true, "grade_id": "<id>-solution", ...}}``);
- a **check** cell that calls a ``check_*`` on the student's function, optionally followed by
  tests only the grader sees between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``
  (metadata ``{"nbgrader": {"grade": true, "grade_id": "<id>", "points": 1, "locked": true}}``).

A **written answer** (to an open question or an experiment) is a markdown cell marked as nbgrader
marks a manually graded answer (``{"solution": true, "grade": true, "points": n, ...}``; the tag
``solution`` works too). In the book its text sits in a ``:::{dropdown} Answers`` fence, folded;
``written_answer_cell`` builds one. These are nbgrader's own markers and metadata, so a teacher
who uses nbgrader can import the notebooks as they are.

``student_edition`` replaces each marked answer by nbgrader's stub (``raise
NotImplementedError()``), removes hidden tests and written answers, and clears the outputs of
exercise cells; ``answer_key`` collects every solution, by exercise, for the teacher.

>>> import nbformat
>>> nb = nbformat.v4.new_notebook(cells=[exercise_cells("ex-1", "def f():\\n    return 1",
...                                                     "print(check(f))")[0]])
>>> print(student_edition(nb).cells[0].source)
def f():
    # YOUR CODE HERE
    raise NotImplementedError()
"""

from __future__ import annotations

import copy
import re

import nbformat

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
WITHHELD = "YOUR ANSWER HERE"  # nbgrader's text for a manually graded answer in the student's copy
# The fold around a written answer in the book (MyST's colon fence: in Jupyter or Colab its two
# lines show as text and the answer between them renders as usual).
FOLD = re.compile(r"\A:::\{dropdown\}[^\n]*\n(.*)\n:::\s*\Z", re.S)


def nbgrader(cell) -> dict:
    """The cell's nbgrader metadata ({} for an ordinary cell)."""
    return cell.get("metadata", {}).get("nbgrader", {})


def is_solution(cell) -> bool:
    return bool(nbgrader(cell).get("solution")) or "solution" in cell.get("metadata", {}).get("tags", [])


def is_check(cell) -> bool:
    return bool(nbgrader(cell).get("grade")) and cell.cell_type == "code"


def strip_solution(source: str) -> str:
    """Each BEGIN/END SOLUTION region becomes the stub, indented as the region was.

    >>> print(strip_solution("def f(x):\\n    ### BEGIN SOLUTION\\n    return x\\n    ### END SOLUTION"))
    def f(x):
        # YOUR CODE HERE
        raise NotImplementedError()
    """
    pattern = re.compile(rf"^([ \t]*){re.escape(BEGIN)}[^\n]*\n.*?^[ \t]*{re.escape(END)}[^\n]*$",
                         re.S | re.M)
    stripped = pattern.sub(lambda m: "\n".join(m.group(1) + line for line in STUB.splitlines()),
                           source)
    if BEGIN in stripped or END in stripped:
        raise ValueError(f"unbalanced {BEGIN} / {END} markers in:\n{source}")
    return stripped


def strip_hidden_tests(source: str) -> str:
    """Remove every BEGIN/END HIDDEN TESTS region (markers included)."""
    pattern = re.compile(rf"^[ \t]*{re.escape(BEGIN_HIDDEN)}.*?{re.escape(END_HIDDEN)}[^\n]*\n?",
                         re.S | re.M)
    stripped = pattern.sub("", source).rstrip("\n")
    if BEGIN_HIDDEN in stripped or END_HIDDEN in stripped:
        raise ValueError(f"unbalanced hidden-test markers in:\n{source}")
    return stripped


def student_edition(nb):
    """A copy of ``nb`` with every answer replaced by a stub and every hidden test removed."""
    out = copy.deepcopy(nb)
    for cell in out.cells:
        if cell.cell_type == "code" and is_solution(cell):
            cell.source = strip_solution(cell.source)
            cell.outputs, cell.execution_count = [], None
        elif cell.cell_type == "markdown" and is_solution(cell):
            cell.source = WITHHELD
        elif is_check(cell):
            cell.source = strip_hidden_tests(cell.source)
            cell.outputs, cell.execution_count = [], None
    return out


def answer_key(nb, title: str) -> str:
    """Markdown: every exercise's solution (code and written), in notebook order."""
    parts = [f"# Answer key: {title}\n"]
    for cell in nb.cells:
        if not is_solution(cell):
            continue
        grade_id = nbgrader(cell).get("grade_id", "written answer")
        if cell.cell_type == "code":
            parts.append(f"## {grade_id}\n\n```python\n{cell.source.strip()}\n```\n")
        else:  # the key is for reading, not folding
            unfolded = FOLD.sub(lambda m: m.group(1), cell.source.strip()).strip()
            parts.append(f"## {grade_id}\n\n{unfolded}\n")
    return "\n".join(parts)


def exercise_cells(grade_id: str, solution: str, check: str, points: int = 1) -> list:
    """The solution and check cells of one exercise, with nbgrader's metadata (for authors).

    ``solution`` is the whole cell; the body of its ``def`` becomes the marked answer.
    """
    lines = solution.splitlines()
    header, body = lines[0], lines[1:]
    indent = re.match(r"[ \t]*", body[0]).group(0) if body else "    "
    marked = "\n".join([header, indent + BEGIN, *body, indent + END])
    solution_cell = nbformat.v4.new_code_cell(marked, metadata={"nbgrader": {
        "solution": True, "grade": False, "locked": False, "grade_id": f"{grade_id}-solution",
        "schema_version": 3}, "tags": ["hide-input"]})
    check_cell = nbformat.v4.new_code_cell(check, metadata={"nbgrader": {
        "solution": False, "grade": True, "locked": True, "grade_id": grade_id, "points": points,
        "schema_version": 3}})
    return [solution_cell, check_cell]


def written_answer_cell(grade_id: str, answers: list[str]):
    """A folded markdown cell with the written answers ``(1)``, ``(2)``, ... (for authors).

    >>> print(written_answer_cell("nb-answers", ["**(1)** Yes.", "**(2)** No."]).source)
    :::{dropdown} Answers
    <BLANKLINE>
    **(1)** Yes.
    <BLANKLINE>
    **(2)** No.
    <BLANKLINE>
    :::
    """
    # Blank lines around the answers, so that Jupyter shows each fence line as a paragraph of its own.
    cell = nbformat.v4.new_markdown_cell(":::{dropdown} Answers\n\n" + "\n\n".join(answers) + "\n\n:::")
    cell.metadata["nbgrader"] = {"solution": True, "grade": True, "locked": False,
                                 "points": len(answers), "grade_id": grade_id, "schema_version": 3}
    return cell
