"""For teachers: the student edition of the notebooks, the answer key, and the autograder.

    python scripts/classroom.py student OUT           # OUT/notebooks/*.ipynb (stubs) + OUT/answer_key/*.md
    python scripts/classroom.py grade NOTEBOOK SUBMISSIONS OUT [--timeout 60]
    python scripts/classroom.py book OUT              # OUT/_build/html: the book, no solutions

``student`` writes every notebook of ``_toc.yml`` with its answers replaced by stubs that raise
``NotImplementedError`` and its hidden tests removed, and one answer key per notebook (keep the
key to yourself). ``grade`` runs every ``*.ipynb`` in SUBMISSIONS (one per student, named after
the student) against the instructor notebook NOTEBOOK (e.g. ``notebooks/04_1_attention.ipynb``)
and writes ``OUT/grades.csv`` and ``OUT/<student>.feedback.md``. The notebooks use nbgrader's
markers and metadata, so nbgrader can import them as they are (``llm_lessons.exercises.notebooks``).
``book`` builds both editions of the book for students (``book/_ext/student_book.py``): the pages
without their solution dropdowns, the notebooks as their student editions.
"""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

import nbformat
from toc_notebooks import notebook_paths  # scripts/ is on the path when this script runs

from llm_lessons.exercises import grading, notebooks


def write_student_edition(out: Path) -> list[Path]:
    written = []
    for path in notebook_paths():
        nb = nbformat.read(path, as_version=4)
        target = out / "notebooks" / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebooks.student_edition(nb), target)
        key = out / "answer_key" / f"{path.stem}.md"
        key.parent.mkdir(parents=True, exist_ok=True)
        key.write_text(notebooks.answer_key(nb, path.stem), encoding="utf-8")
        written.append(target)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    student = sub.add_parser("student")
    student.add_argument("out", type=Path)
    grade = sub.add_parser("grade")
    grade.add_argument("notebook", type=Path)
    grade.add_argument("submissions", type=Path)
    grade.add_argument("out", type=Path)
    grade.add_argument("--timeout", type=int, default=60, help="seconds per cell")
    book = sub.add_parser("book")
    book.add_argument("out", type=Path)
    args = parser.parse_args()
    if args.command == "student":
        written = write_student_edition(args.out)
        print(f"wrote {len(written)} student notebooks to {args.out / 'notebooks'} and their "
              f"answer keys to {args.out / 'answer_key'}")
    elif args.command == "book":  # the usual build, with book/_ext/student_book.py switched on
        root = Path(__file__).resolve().parent.parent
        env = {**os.environ, "LLM_LESSONS_STUDENT_BOOK": "1"}
        subprocess.run(["bash", str(root / "scripts" / "build_book.sh"), str(args.out.resolve())],
                       cwd=root, env=env, check=True)
    else:
        grades = grading.grade_folder(args.notebook, args.submissions, args.out, args.timeout)
        students = sorted({g.student for g in grades})
        print(f"graded {len(students)} submissions: {args.out / 'grades.csv'}")


if __name__ == "__main__":
    main()
