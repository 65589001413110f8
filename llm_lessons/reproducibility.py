"""Running a lesson the same way anywhere: device choice, seeds, eval mode, and which numbers
repeat on another machine.

**Where a lesson runs.** :func:`get_device` picks cuda, then mps, then cpu (overridable by an
argument or ``$LLM_LESSONS_DEVICE``); a GPU runs a bigger config, never another code path.
:func:`model_device` says where a model's weights are, and :func:`eval_mode` switches dropout
off for a block and restores the previous mode afterwards.

>>> set_seed(0)
>>> get_device("cpu")
device(type='cpu')

**Which numbers repeat, and how to check a re-run against a saved one.** Floating-point
addition is not associative, so the same program can print different low-order bits on two
CPUs: PyTorch picks vector kernels by what the processor offers (ATen's "CPU capability":
AVX512, AVX2, or plain C++), and the BLAS library behind every matrix product picks its own
code path too. One seeded training run therefore gives bit-identical weights on one machine,
and slightly different ones elsewhere; after a thousand optimiser steps the tiny differences
have grown into a visibly different model (a few hundredths of a nat, a different sampled
sentence), though an equally good one.

The book's rule: a saved output is either rounded to a precision that holds on every numeric
path, or a checked statement, or (rarely) a machine-specific figure whose claim is asserted.
This module provides the pieces for the last case when a notebook re-trains a shipped model:

- :func:`numeric_fingerprint` — what decides the bits: torch version, ATen capability, BLAS
  and its mode, the processor's vector features, the thread count. It is recorded in a
  checkpoint at save time.
- :func:`compare_to_reference` — bit-identity when this machine's fingerprint equals the
  recorded one; otherwise agreement within stated tolerances (validation loss and top-1
  predictions), with a report that says which case ran.

Two environment variables simulate another CPU on one machine (the test command uses them):
``ATEN_CPU_CAPABILITY=default`` (ATen's plain kernels: different bits for ``torch.randn`` and
elementwise ops) and ``MKL_CBWR=COMPATIBLE`` (MKL's portable path: different matmul bits).

>>> fp = numeric_fingerprint()
>>> sorted(fp)
['blas', 'blas_mode', 'cpu', 'cpu_capability', 'cpu_features', 'threads', 'torch']
>>> same_numeric_path(fp, fp), same_numeric_path(None, fp)
(True, False)
"""

from __future__ import annotations

import os
import platform
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

import numpy as np
import torch

DEVICE_ENV = "LLM_LESSONS_DEVICE"


def _available(kind: str) -> bool:
    if kind == "cpu":
        return True
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    return False


def get_device(prefer: str | None = None) -> torch.device:
    """Pick the device a lesson runs on: cuda, then mps, then cpu.

    An explicit ``prefer`` (or the ``LLM_LESSONS_DEVICE`` environment variable, which is
    read when ``prefer`` is None) overrides the automatic choice. Asking for a device this
    machine does not have raises instead of quietly falling back, so a reader who asked for
    a GPU never trains on the CPU without knowing it.

    >>> get_device("cpu")
    device(type='cpu')
    """
    request = prefer if prefer is not None else os.environ.get(DEVICE_ENV) or None
    if request is None:
        for kind in ("cuda", "mps"):
            if _available(kind):
                return torch.device(kind)
        return torch.device("cpu")
    device = torch.device(request)  # raises RuntimeError on a malformed string
    if not _available(device.type):
        source = f"${DEVICE_ENV}" if prefer is None else "prefer"
        raise RuntimeError(
            f"device {request!r} (from {source}) is not available on this machine; "
            "use 'cpu' or leave it unset to choose automatically"
        )
    return device


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices) so a lesson's numbers repeat exactly."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def model_device(model) -> torch.device:
    """The device a model's parameters live on; the CPU for a model without any (an n-gram).

    >>> model_device(torch.nn.Linear(2, 2))
    device(type='cpu')
    """
    p = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
    return p.device if p is not None else torch.device("cpu")


@contextmanager
def eval_mode(model) -> Iterator[None]:
    """Put ``model`` in eval mode (no dropout) for the block, then restore its previous mode.

    Models without ``train``/``eval`` (a plain function, say) pass through untouched.

    >>> m = torch.nn.Dropout(0.5)
    >>> with eval_mode(m):
    ...     m.training
    False
    >>> m.training
    True
    """
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        yield
    finally:
        if hasattr(model, "train"):
            model.train(was_training)


#: Processor features that change which kernels ATen and the BLAS library run.
_VECTOR_FEATURES = re.compile(r"^(avx\w*|fma\w*|amx\w*|sse4\w*|f16c|asimd\w*|sve\w*|neon)$")


@cache
def _cpu() -> tuple[str, str]:
    """(model name, sorted vector features) of this processor, from /proc/cpuinfo where it exists."""
    name, flags = platform.processor() or platform.machine(), ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            info = f.read()
    except OSError:
        return name, flags
    for key, value in re.findall(r"^([^\n:]+?)\s*:\s*(.*)$", info, flags=re.M):
        if key in ("model name", "Model") and name in (platform.processor(), platform.machine()):
            name = value.strip()
        if key in ("flags", "Features") and not flags:
            flags = " ".join(sorted(f for f in value.split() if _VECTOR_FEATURES.match(f)))
    return name, flags


def _blas() -> str:
    """The BLAS library torch was built with, as torch reports it (e.g. 'mkl 2024.2')."""
    config = torch.__config__.show()
    mkl = re.search(r"Math Kernel Library Version (\S+)", config)
    if mkl:
        return f"mkl {mkl.group(1)}"
    info = re.search(r"BLAS_INFO=(\w+)", config)
    return info.group(1) if info else "unknown"


def numeric_fingerprint() -> dict[str, str]:
    """What decides the bits of a CPU computation here; equal fingerprints give equal bits.

    The thread count is part of it: a large reduction split across threads adds its partial
    sums in another order. (The book's notebooks print the same figures with one and two
    threads, which the test command checks, but a re-run is bit-identical only to a run with
    the same count.)
    """
    cpu, features = _cpu()
    return {
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "blas": _blas(),
        "blas_mode": os.environ.get("MKL_CBWR", "auto"),
        "cpu": cpu,
        "cpu_features": features,
        "threads": str(torch.get_num_threads()),
    }


def same_numeric_path(recorded: dict | None, current: dict | None = None) -> bool:
    """True when a recorded fingerprint equals this machine's (``current`` defaults to it)."""
    current = numeric_fingerprint() if current is None else current
    return isinstance(recorded, dict) and recorded == current


@dataclass
class Agreement:
    """How a re-trained model compares with a reference (shipped) one. See compare_to_reference."""

    same_path: bool  #: this machine's fingerprint equals the one recorded with the reference
    bit_identical: bool  #: every weight equal to the last bit
    loss: float  #: the re-trained model's loss on the comparison batch (nats per token)
    reference_loss: float  #: the reference model's loss on the same batch
    top1: float  #: fraction of positions where both models' most likely token is the same
    loss_tol: float
    top1_min: float

    @property
    def ok(self) -> bool:
        """Bit-identical on the same numeric path; within the tolerances on any other."""
        if self.same_path:
            return self.bit_identical
        return abs(self.loss - self.reference_loss) <= self.loss_tol and self.top1 >= self.top1_min

    def report(self) -> str:
        """One line saying which check ran and its result."""
        if self.same_path:
            return f"same numeric path as the saved run: bit-identical weights: {self.bit_identical}"
        return (f"another numeric path than the saved run's (see numeric_fingerprint): loss "
                f"{self.loss:.3f} vs {self.reference_loss:.3f} nats (tolerance {self.loss_tol}), "
                f"same top-1 prediction at {self.top1:.1%} of positions (at least {self.top1_min:.0%})")


def compare_to_reference(model: torch.nn.Module, reference: torch.nn.Module, x: torch.Tensor,
                         y: torch.Tensor, recorded: dict | None, loss_tol: float = 0.03,
                         top1_min: float = 0.87) -> Agreement:
    """Compare ``model`` with ``reference`` on inputs ``x`` (B, T) and targets ``y`` (B, T).

    Both follow the book's interface ``forward(idx, targets) -> (logits, loss)``. Positions
    whose target is -100 are ignored in the top-1 count, as in the loss. The default
    tolerances were measured, not guessed, on 64 validation windows of 64 characters: the
    shipped nano GPT and the same seeded 1,200-step run on a simulated other CPU
    (``ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE``) were 0.001 nats apart and chose the
    same next character at 91.7% of positions. A run from another *initial seed* was 0.019 nats
    apart, inside the loss tolerance, but agreed at only 83.6%: the loss says "equally good",
    the top-1 agreement tells a faithful re-run from an unrelated model. (The shipped masked LM
    drifts far less: its re-run on the simulated CPU matched 99.9% of the best guesses on the
    4,825 held-out masked characters, with the same loss to 1e-4.)

    >>> from llm_lessons.gpt import GPT, GPTConfig
    >>> _ = torch.manual_seed(0)
    >>> a = GPT(GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=4))
    >>> x = torch.randint(0, 5, (2, 4))
    >>> same = compare_to_reference(a, a, x, x, recorded=numeric_fingerprint())
    >>> same.ok, same.report()
    (True, 'same numeric path as the saved run: bit-identical weights: True')
    >>> compare_to_reference(a, a, x, x, recorded={"torch": "0.0"}).ok  # other path: tolerances
    True
    """
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"x and y must both be (B, T); got {tuple(x.shape)} and {tuple(y.shape)}")
    ours, theirs = model.state_dict(), reference.state_dict()
    if ours.keys() != theirs.keys():
        raise ValueError("the two models have different parameters: "
                         f"{sorted(set(ours) ^ set(theirs))}")
    identical = all(torch.equal(ours[k].cpu(), theirs[k].cpu()) for k in ours)
    with eval_mode(model), eval_mode(reference), torch.no_grad():
        logits, loss = model(x.to(model_device(model)), y.to(model_device(model)))  # (B, T, V)
        ref_logits, ref_loss = reference(x.to(model_device(reference)), y.to(model_device(reference)))
    keep = y.cpu() != -100  # (B, T)
    same_top1 = logits.argmax(-1).cpu()[keep] == ref_logits.argmax(-1).cpu()[keep]
    return Agreement(same_path=same_numeric_path(recorded), bit_identical=identical,
                     loss=loss.item(), reference_loss=ref_loss.item(),
                     top1=same_top1.float().mean().item(), loss_tol=loss_tol, top1_min=top1_min)
