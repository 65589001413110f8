"""Re-execute notebooks in place, top to bottom in a fresh kernel, for authors.

Usage:  .venv/bin/python scripts/execute_notebooks.py [notebooks/NAME.ipynb ...]
(no argument: every notebook in _toc.yml). Widget state is stored in the notebook so the
rendered book shows the widgets' last state. Runs on the CPU with one thread, as CI does:
committed outputs must come from this machine's CPU, never from a GPU.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time

import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parent.parent


def execute(path: pathlib.Path) -> float:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    nbformat.write(nb, path)
    return seconds


def main(argv: list[str]) -> None:
    os.environ.update(LLM_LESSONS_DEVICE="cpu", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                      MPLBACKEND="module://matplotlib_inline.backend_inline",
                      HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONHASHSEED="0")
    if argv:
        paths = [pathlib.Path(a).resolve() for a in argv]
    else:
        listed = subprocess.run([sys.executable, str(ROOT / "scripts/toc_notebooks.py")],
                                capture_output=True, text=True, check=True).stdout.split()
        paths = [ROOT / p for p in listed]
    for path in paths:
        print(f"{path.relative_to(ROOT)}: {execute(path):.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
