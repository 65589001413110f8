"""Print, one per line, the notebooks that _toc.yml puts in the book (in book order)."""

import pathlib
import re

root = pathlib.Path(__file__).resolve().parent.parent
for ref in re.findall(r"file:\s*([\w./-]+)", (root / "_toc.yml").read_text()):
    if (root / f"{ref}.ipynb").exists():
        print(f"{ref}.ipynb")
