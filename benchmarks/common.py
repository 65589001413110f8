"""What the benchmarks share: a peak-memory reading and interleaved training steps.

Imported by the scripts beside it (``python benchmarks/NAME.py`` puts this folder on sys.path).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable

import torch


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB.

    Linux's VmHWM belongs to the current program image; ``ru_maxrss`` is the fallback elsewhere,
    but it survives ``exec`` and so can report the parent's larger peak in a subprocess.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def training_step(model, loss_fn: Callable, opt, x, y, grad_clip: float) -> None:
    """One optimizer step as :func:`llm_lessons.training.train` takes it: loss, backward,
    global-norm clipping, update."""
    loss = loss_fn(x, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()


def interleaved_training_steps(runs: dict, opts: dict, batch_fn: Callable, steps: int,
                               grad_clip: float) -> tuple[dict, dict]:
    """Time ``steps`` training steps of every model on the same batches, taking turns.

    ``runs`` maps a name to ``(model, loss_fn(x, y))``, ``opts`` a name to its optimizer and
    ``batch_fn()`` returns the next ``(x, y)``. Interleaving exposes both models to the same
    background load. Returns per-step wall seconds and CPU seconds, each a dict of lists.
    """
    wall = {name: [] for name in runs}
    cpu = {name: [] for name in runs}  # CPU seconds: less sensitive than wall time to other load
    for _ in range(steps):
        x, y = batch_fn()
        for name, (model, loss_fn) in runs.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            training_step(model, loss_fn, opts[name], x, y, grad_clip)
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - cpu_start)
    return wall, cpu

