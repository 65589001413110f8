"""Re-execute notebooks in place, top to bottom in a fresh kernel, for authors.

Usage:  .venv/bin/python scripts/execute_notebooks.py [notebooks/NAME.ipynb ...]
(no argument: every notebook in _toc.yml). Widget state is stored in the notebook so the
rendered book shows the widgets' last state. Runs on the CPU with one thread, as CI does:
committed outputs must come from this machine's CPU, never from a GPU.
"""

from __future__ import annotations

import os
import pathlib
import resource
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


def peak_child_mib() -> float:
    """Peak resident memory of the largest child process so far (the kernel), in MiB."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


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
    if len(paths) == 1:
        seconds = execute(paths[0])
        print(f"{paths[0].relative_to(ROOT)}: {seconds:.1f} s, kernel peak {peak_child_mib():.0f} MiB",
              flush=True)
        return
    for path in paths:  # one process per notebook, so each peak-memory figure is its own
        subprocess.run([sys.executable, __file__, str(path)], check=True)


if __name__ == "__main__":
    main(sys.argv[1:])
