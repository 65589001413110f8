"""Print, one per line, the notebooks that _toc.yml puts in the book (in book order).

``--longest-first`` prints them by the run time each states in its first cell ("**Runs in**
about N s"), longest first: scripts/nbval.sh hands them to its two workers in that order, so
that a long notebook never starts last while the other worker sits idle.

``notebook_paths()`` gives the same list to Python callers (scripts/classroom.py, the tests).
"""

import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def notebook_paths() -> list[pathlib.Path]:
    """The notebooks of ``_toc.yml``, in the book's order."""
    refs = re.findall(r"file:\s*([\w./-]+)", (ROOT / "_toc.yml").read_text())
    return [ROOT / f"{ref}.ipynb" for ref in refs if (ROOT / f"{ref}.ipynb").exists()]


def stated_seconds(path: pathlib.Path) -> int:
    """The N of "**Runs in** about N s" in the notebook's first markdown cell (0 if absent)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    first = next(("".join(c["source"]) for c in cells if c["cell_type"] == "markdown"), "")
    found = re.search(r"\*\*Runs in\*\* about (\d+) s", first)
    return int(found.group(1)) if found else 0


if __name__ == "__main__":
    paths = notebook_paths()
    if "--longest-first" in sys.argv[1:]:
        paths = sorted(paths, key=stated_seconds, reverse=True)  # stable: ties keep book order
    for path in paths:
        print(path.relative_to(ROOT).as_posix())
