"""Device choice, seeding and small helpers shared by every lesson.

>>> set_seed(0)
>>> get_device("cpu")
device(type='cpu')
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager

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
