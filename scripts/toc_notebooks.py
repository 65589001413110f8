"""Print, one per line, the notebooks that _toc.yml puts in the book (in book order).

``notebook_paths()`` gives the same list to Python callers (scripts/classroom.py, the tests).
"""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def notebook_paths() -> list[pathlib.Path]:
    """The notebooks of ``_toc.yml``, in the book's order."""
    refs = re.findall(r"file:\s*([\w./-]+)", (ROOT / "_toc.yml").read_text())
    return [ROOT / f"{ref}.ipynb" for ref in refs if (ROOT / f"{ref}.ipynb").exists()]


if __name__ == "__main__":
    for path in notebook_paths():
        print(path.relative_to(ROOT).as_posix())
