"""The classroom tools: the student edition hides every answer and still runs, the answer key
holds every answer, and the autograder scores a class of synthetic submissions as expected."""

from __future__ import annotations

import csv
import os

import nbformat
import pytest

from llm_lessons.exercises import grading
from llm_lessons.exercises.notebooks import (
    BEGIN_HIDDEN,
    END_HIDDEN,
    WITHHELD,
    answer_key,
    exercise_cells,
    is_check,
    nbgrader,
    strip_solution,
    student_edition,
    written_answer_cell,
)

MASK_BODY = "return torch.ones(T, T, dtype=torch.bool).tril()"
TOP_K_BODY = ("kth = torch.topk(logits, k).values[-1]\n"
              "    return logits.masked_fill(logits < kth, float('-inf'))")


def instructor_notebook():
    """Two exercises, a hidden test, a written answer and ordinary cells, like a book notebook."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(nbformat.v4.new_code_cell(
        "import torch\nfrom llm_lessons.exercises import check_causal_mask, check_top_k"))
    nb.cells.append(nbformat.v4.new_markdown_cell("**Exercise 1 (easy).** Write the causal mask."))
    nb.cells += exercise_cells("ex-mask", f"def my_mask(T):\n    {MASK_BODY}",
                               f"print(check_causal_mask(my_mask))\n{BEGIN_HIDDEN}\n"
                               f"assert my_mask(3).sum() == 6\n{END_HIDDEN}")
    nb.cells.append(nbformat.v4.new_markdown_cell("**Exercise 2 (medium).** Keep the top k."))
    nb.cells += exercise_cells("ex-top-k", f"def my_top_k(logits, k):\n    {TOP_K_BODY}",
                               "print(check_top_k(my_top_k))", points=2)
    nb.cells.append(written_answer_cell("ex-written", ["**(1)** Because the mask must hide the future."]))
    nb.cells.append(nbformat.v4.new_code_cell("print('the end')"))
    return nb


def test_strip_solution_keeps_the_signature_and_indentation():
    source = "def f(x):\n    ### BEGIN SOLUTION\n    y = x + 1\n    return y\n    ### END SOLUTION"
    assert strip_solution(source) == "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()"
    with pytest.raises(ValueError, match="unbalanced"):
        strip_solution("def f():\n    ### BEGIN SOLUTION\n    return 1")


def test_the_student_edition_holds_no_answer_and_the_key_holds_them_all():
    nb = instructor_notebook()
    student = student_edition(nb)
    text = "\n".join(cell.source for cell in student.cells)
    for body_line in [MASK_BODY, *TOP_K_BODY.splitlines()]:
        assert body_line.strip() not in text
    assert "assert my_mask(3).sum() == 6" not in text, "a hidden test leaked"
    assert "hide the future" not in text and WITHHELD in text, "a written answer leaked"
    assert text.count("raise NotImplementedError()") == 2
    key = answer_key(nb, "test")
    for body_line in [MASK_BODY, *TOP_K_BODY.splitlines(), "**(1)** Because the mask must hide the future."]:
        assert body_line.strip() in key
    assert "{dropdown}" not in key, "the key is for reading: no fold"
    assert [nbgrader(c).get("grade_id") for c in student.cells] == [
        nbgrader(c).get("grade_id") for c in nb.cells], "the cells must stay matchable"


def _run(nb, folder, timeout=60):
    """Execute ``nb`` in ``folder``; the (grade_id, error output) of every cell that raised."""
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(folder)}}).execute()
    return [(nbgrader(c).get("grade_id"), o) for c in nb.cells for o in c.get("outputs", [])
            if o.get("output_type") == "error"]


@pytest.fixture
def one_numeric_path():
    if os.environ.get("ATEN_CPU_CAPABILITY") == "default":
        pytest.skip("runs Jupyter kernels, nothing numeric: one numeric path is enough")


def test_the_student_edition_runs_with_stubs_failing_only_in_exercise_cells(tmp_path,
                                                                          one_numeric_path):
    errors = _run(student_edition(instructor_notebook()), tmp_path)
    assert [gid for gid, _ in errors] == ["ex-mask", "ex-top-k"]
    assert all("not implemented yet" in o["evalue"] for _, o in errors)


def test_the_autograder_grades_a_class(tmp_path, one_numeric_path):
    instructor = instructor_notebook()
    (tmp_path / "instructor.ipynb").write_text(nbformat.writes(instructor), encoding="utf-8")
    subs = tmp_path / "submissions"
    subs.mkdir()

    def submit(name, nb):
        (subs / f"{name}.ipynb").write_text(nbformat.writes(nb), encoding="utf-8")

    submit("all_correct", instructor_notebook())
    submit("all_stubs", student_edition(instructor_notebook()))
    mixed = student_edition(instructor_notebook())
    mixed.cells[2].source = f"def my_mask(T):\n    {MASK_BODY}"
    mixed.cells[3].source = "print('I removed the check')"  # restored by the grader
    submit("mixed", mixed)
    wrong = student_edition(instructor_notebook())
    wrong.cells[2].source = "def my_mask(T):\n    return torch.ones(T, T, dtype=torch.bool).triu()"
    submit("wrong_mask", wrong)
    crash = student_edition(instructor_notebook())
    crash.cells[2].source = "import os\nos._exit(1)"
    submit("crashes", crash)
    loop = instructor_notebook()
    loop.cells[5].source = "def my_top_k(logits, k):\n    while True:\n        pass"
    submit("loops", loop)
    (subs / "unreadable.ipynb").write_text("{ not a notebook", encoding="utf-8")

    grading.grade_folder(tmp_path / "instructor.ipynb", subs, tmp_path / "out", cell_timeout=8)
    rows = list(csv.DictReader((tmp_path / "out" / "grades.csv").open(encoding="utf-8")))
    got = {(r["student"], r["exercise"]): (float(r["points"]), r["feedback"]) for r in rows}
    assert len(rows) == 7 * 2

    def points(student):
        return got[(student, "ex-mask")][0], got[(student, "ex-top-k")][0]

    assert points("all_correct") == (1, 2)
    assert points("all_stubs") == (0, 0)
    assert "not implemented yet" in got[("all_stubs", "ex-mask")][1]
    assert points("mixed") == (1, 0), "the grader's own check cell must come back"
    assert points("wrong_mask") == (0, 0)
    assert "upper-triangular" in got[("wrong_mask", "ex-mask")][1]
    assert points("crashes") == (0, 0)
    assert "kernel died" in got[("crashes", "ex-mask")][1]
    assert points("loops") == (1, 0)
    assert "endless loop" in got[("loops", "ex-top-k")][1]
    assert points("unreadable") == (0, 0)
    assert "could not read" in got[("unreadable", "ex-mask")][1]
    feedback = (tmp_path / "out" / "wrong_mask.feedback.md").read_text(encoding="utf-8")
    assert feedback.startswith("# Feedback for wrong_mask: 0 / 3")


@pytest.mark.parametrize("name", ["01_scale", "02_2_autoregressive"])
def test_a_real_student_edition_runs_top_to_bottom(name, tmp_path, one_numeric_path):
    """A book notebook's student edition, as a student gets it: every cell runs, and only the
    checks of the unanswered exercises fail, each saying the function is not implemented yet.
    (Two of the quickest notebooks; test_classroom checks every notebook's cells statically.)"""
    folder = os.path.join(os.path.dirname(__file__), os.pardir, "notebooks")
    instructor = nbformat.read(os.path.join(folder, f"{name}.ipynb"), as_version=4)
    checks = [nbgrader(c)["grade_id"] for c in instructor.cells if is_check(c)]
    errors = _run(student_edition(instructor), folder, timeout=120)
    assert len(checks) >= 2 and [gid for gid, _ in errors] == checks
    assert all("not implemented yet" in o["evalue"] for _, o in errors), [o["evalue"] for _, o in errors]
