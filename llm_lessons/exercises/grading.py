"""An autograder: run each submitted notebook, score its exercises, explain every lost point.

For every submission in a folder, ``grade_folder``:

1. puts the instructor's check cells back in place of the student's (matched by nbgrader
   ``grade_id``): a student cannot edit a check away, and the hidden tests come back;
2. executes the notebook in a fresh kernel, continuing past errors, with a time limit per cell
   (an endless loop costs that exercise and the ones after it, never the whole class);
3. scores each check cell: full points if it ran without an error, else 0 with the error's last
   line as feedback ("check_attention, q, k, v of shape ...: the scores are not divided by
   sqrt(d_k) ...");
4. writes ``grades.csv`` (student, exercise, points, max_points, feedback) and one
   ``<student>.feedback.md`` per student.

Written answers (markdown cells that nbgrader would call manually graded) are not scored here:
they are the teacher's to read, with the answer key (``scripts/classroom.py student``) beside them.

A submission that cannot be read or started scores 0 on every exercise, with the reason; the
others are graded as usual.

>>> rows = [Grade("ana", "ex-1", 1, 1, "passed")]
>>> print(csv_text(rows).strip())
student,exercise,points,max_points,feedback
ana,ex-1,1,1,passed
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import nbformat

from llm_lessons.exercises.notebooks import is_check, nbgrader


@dataclass(frozen=True)
class Grade:
    """One exercise of one student."""

    student: str
    exercise: str
    points: float
    max_points: float
    feedback: str


def checks_of(instructor) -> dict[str, object]:
    """The instructor's check cells, by grade_id, in notebook order."""
    checks = {nbgrader(c)["grade_id"]: c for c in instructor.cells if is_check(c)}
    if not checks:
        raise ValueError("the instructor notebook has no check cells (nbgrader grade: true)")
    return checks


def restore_checks(submission, checks: dict) -> None:
    """Replace each check cell of the submission by the instructor's (hidden tests included)."""
    for i, cell in enumerate(submission.cells):
        grade_id = nbgrader(cell).get("grade_id")
        if grade_id in checks and cell.cell_type == "code":
            submission.cells[i] = nbformat.from_dict(dict(checks[grade_id]))
            submission.cells[i].outputs = []


def _error_of(cell) -> str | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            value = str(output.get("evalue", "")).strip().splitlines()
            return f"{output.get('ename', 'Error')}: {value[-1] if value else ''}".strip()
    return None


def execute(nb, cwd: Path, cell_timeout: int, kernel: str = "python3") -> str | None:
    """Run ``nb`` in place; None, or why the run stopped early (a cell timed out, the kernel died)."""
    from nbclient import NotebookClient  # noqa: PLC0415 - only the grader needs a kernel
    from nbclient.exceptions import CellTimeoutError, DeadKernelError  # noqa: PLC0415

    # interrupt_on_timeout: a cell that runs too long is interrupted (its exercise scores 0,
    # with a KeyboardInterrupt) and the notebook goes on with the next cell.
    client = NotebookClient(nb, timeout=cell_timeout, kernel_name=kernel, allow_errors=True,
                            interrupt_on_timeout=True, resources={"metadata": {"path": str(cwd)}})
    try:
        client.execute()
    except CellTimeoutError:
        return f"a cell ran longer than {cell_timeout} s and was stopped"
    except DeadKernelError as error:
        return f"the kernel died ({error})"
    return None


def grade_notebook(student: str, path: Path, checks: dict, cell_timeout: int = 60) -> list[Grade]:
    """Every exercise of one submission, scored (never raises for a bad submission)."""
    points = {gid: float(nbgrader(cell).get("points", 1)) for gid, cell in checks.items()}

    def all_zero(reason: str) -> list[Grade]:
        return [Grade(student, gid, 0, points[gid], reason) for gid in checks]

    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as error:  # noqa: BLE001 - any unreadable file scores 0, with the reason
        return all_zero(f"could not read the notebook: {type(error).__name__}: {error}")
    restore_checks(nb, checks)
    present = {nbgrader(c).get("grade_id") for c in nb.cells if is_check(c)}
    try:
        stopped = execute(nb, path.parent, cell_timeout)
    except Exception as error:  # noqa: BLE001 - e.g. no kernel could start
        return all_zero(f"could not run the notebook: {type(error).__name__}: {error}")
    grades = []
    for gid in checks:
        cell = next((c for c in nb.cells if nbgrader(c).get("grade_id") == gid), None)
        if gid not in present or cell is None:
            grades.append(Grade(student, gid, 0, points[gid], "the exercise's check cell is missing"))
        elif cell.get("execution_count") is None:
            reason = stopped or "an earlier cell failed"
            grades.append(Grade(student, gid, 0, points[gid], f"not run: {reason}"))
        elif (error := _error_of(cell)) is not None:
            if error.startswith("KeyboardInterrupt"):
                error = f"stopped after {cell_timeout} s (an endless loop?)"
            grades.append(Grade(student, gid, 0, points[gid], error))
        else:
            grades.append(Grade(student, gid, points[gid], points[gid], "passed"))
    return grades


def csv_text(grades: list[Grade]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student", "exercise", "points", "max_points", "feedback"])
    for g in grades:
        writer.writerow([g.student, g.exercise, f"{g.points:g}", f"{g.max_points:g}", g.feedback])
    return out.getvalue()


def feedback_markdown(student: str, grades: list[Grade]) -> str:
    total, best = sum(g.points for g in grades), sum(g.max_points for g in grades)
    lines = [f"# Feedback for {student}: {total:g} / {best:g}\n"]
    lines += [f"- **{g.exercise}** ({g.points:g}/{g.max_points:g}): {g.feedback}" for g in grades]
    return "\n".join(lines) + "\n"


def grade_folder(instructor_path: Path, submissions: Path, out: Path,
                 cell_timeout: int = 60) -> list[Grade]:
    """Grade every ``*.ipynb`` in ``submissions`` (the file name is the student's name)."""
    checks = checks_of(nbformat.read(instructor_path, as_version=4))
    out.mkdir(parents=True, exist_ok=True)
    grades: list[Grade] = []
    for path in sorted(Path(submissions).glob("*.ipynb")):
        mine = grade_notebook(path.stem, path, checks, cell_timeout)
        (out / f"{path.stem}.feedback.md").write_text(feedback_markdown(path.stem, mine),
                                                      encoding="utf-8")
        grades += mine
    (out / "grades.csv").write_text(csv_text(grades), encoding="utf-8")
    return grades
