"""Atomic file writes, reading untrusted files within a size limit, and the files we ship.

A file written in place (``open(path, "w")``) is empty or half-written while it is being
written: a crash, a full disk or Ctrl-C at that moment destroys the previous good version.
Every file the package writes goes through :func:`write_atomic` instead: the bytes go to a
temporary file *in the same folder* (a rename across file systems is not atomic), are flushed
to disk with ``fsync``, and only then does ``os.replace`` swap the new file in, which readers
see as all or nothing.

Two files that belong together (a checkpoint's weights and its JSON) cannot both be swapped in
one step. :func:`write_pair_atomic` commits the JSON under a *pending* name first, then the
weights, then the JSON: whatever moment a crash hits, either the old pair is intact or the new
weights lie beside a complete pending JSON, which :func:`pending_sidecar` finds.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "note.txt"
>>> write_atomic(path, "hello")
>>> read_limited(path, 100).decode()
'hello'
>>> sorted(p.name for p in path.parent.iterdir())      # no temporary file left behind
['note.txt']
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from importlib import resources
from pathlib import Path

PENDING = ".pending"


def _fsync_dir(folder: Path) -> None:
    # makes the rename itself durable; not possible (nor needed) on every OS
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_temp(path: Path, data: bytes) -> Path:
    """``data`` in a new temporary file beside ``path``, flushed to disk; returns its path."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return Path(tmp)


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Replace ``path`` by ``data`` (str is written as UTF-8) all at once, or not at all."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")  # a lone surrogate fails here, before any file is touched
    tmp = _write_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def pending_sidecar(sidecar: Path) -> Path:
    """Where :func:`write_pair_atomic` keeps the new sidecar until the pair is committed."""
    return sidecar.with_name(sidecar.name + PENDING)


def write_pair_atomic(main: Path, main_data: bytes, sidecar: Path, sidecar_data: bytes) -> None:
    """Commit ``main`` and its ``sidecar`` so that a crash leaves a loadable pair, old or new.

    1. new sidecar -> ``sidecar.pending`` (atomic): the old pair is untouched;
    2. new main file -> ``main`` (atomic): the old sidecar no longer matches, but the pending
       one does, and is complete;
    3. ``sidecar.pending`` -> ``sidecar`` (atomic): the new pair is committed.
    """
    pending = pending_sidecar(sidecar)
    tmp_main = _write_temp(main, main_data)
    try:
        write_atomic(pending, sidecar_data)
        os.replace(tmp_main, main)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_main)
        raise
    os.replace(pending, sidecar)
    _fsync_dir(main.parent)


def read_limited(path: str | Path, max_bytes: int) -> bytes:
    """The bytes of ``path``, refusing (before reading) a file larger than ``max_bytes``."""
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise ValueError(f"{path} has {size} bytes, more than the {max_bytes} this loader reads "
                         "(a file of this kind is never that large: refusing it)")
    return path.read_bytes()


def read_json_sidecar(path: str | Path, max_bytes: int, fmt: str, what: str) -> dict:
    """An untrusted JSON sidecar: size-limited, valid UTF-8 JSON, a dict whose ``format`` is ``fmt``.

    ``what`` names the kind of file in the error ("an llm_lessons checkpoint config", say).
    """
    try:
        payload = json.loads(read_limited(path, max_bytes).decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise ValueError(f"{path} is not {what} (format {fmt!r})")
    return payload


def resource_path(name: str):
    """Path of a file shipped in ``llm_lessons/resources`` (checkpoints, tables, votes).

    >>> resource_path("model_sizes.csv").name
    'model_sizes.csv'
    """
    path = resources.files("llm_lessons") / "resources" / name
    if not path.is_file():
        raise FileNotFoundError(f"{name} is not shipped in llm_lessons/resources; run "
                                "scripts/train_checkpoints.py to create it")
    return path
