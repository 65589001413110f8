"""The book's GPT as an ONNX graph, run by ONNX Runtime: export, logits and greedy decoding.

**ONNX** is a file format for a computation graph: the operators (``MatMul``, ``Softmax``...)
and the weights, with no Python left. Any runtime that implements the operators can run the
file; ONNX Runtime (``onnxruntime``) is the usual one. Shape letters: B batch, T time (at most
``block_size``), V vocabulary.

- :func:`export_gpt_onnx` traces a :class:`~llm_lessons.gpt.GPT` with ``torch.export`` (the
  exporter PyTorch uses by default, ``dynamo=True``, which needs ``onnxscript``) and writes
  ``idx (B, T) int64 -> logits (B, T, V) float32``, B and T both **dynamic axes**: one file
  for every batch size and every length up to ``block_size``.
- :func:`onnx_session` opens the file on the CPU with a fixed number of threads.
- :func:`onnx_logits` checks ``idx`` (integer ids in the vocabulary, ``T <= block_size``) and
  runs the graph; :func:`onnx_generate` decodes greedily by re-running the whole window at each
  step (the graph has no key-value cache, so step t costs a forward pass over t tokens).

The model's input checks (ids in range, ``T <= block_size``) read the *values* of ``idx``,
which a traced graph cannot do; the export therefore traces a logits-only view of the model
and the checks move to :func:`onnx_logits`, before the graph runs.

>>> import tempfile, torch
>>> from llm_lessons.gpt import GPT, GPTConfig
>>> model = GPT(GPTConfig(vocab_size=5, block_size=8, n_layer=1, n_head=2, n_embd=8)).eval()
>>> export_gpt_onnx(model, "tiny.pt")
Traceback (most recent call last):
...
ValueError: the ONNX file name must end in .onnx, got 'tiny.pt'
>>> path = export_gpt_onnx(model, tempfile.mkdtemp() + "/tiny.onnx")  # doctest: +SKIP
>>> session = onnx_session(path)                                       # doctest: +SKIP
>>> idx = torch.tensor([[1, 2, 3]])
>>> onnx_logits(session, idx).shape                                    # doctest: +SKIP
torch.Size([1, 3, 5])
>>> bool((onnx_logits(session, idx) - model(idx)[0]).abs().max() < 1e-5)  # doctest: +SKIP
True

(Skipped in the doctest run: an export takes seconds; ``tests/test_onnx_export.py`` runs it.)
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from llm_lessons.files import write_atomic
from llm_lessons.gpt import GPT
from llm_lessons.reproducibility import eval_mode
from llm_lessons.validation import check_int, check_token_tensor

INPUT, OUTPUT = "idx", "logits"
OPSET = 20  # the opset torch.onnx's dynamo exporter targets by default (torch 2.13)


class _LogitsOnly(nn.Module):
    """GPT.forward without its value checks and loss: idx (B, T) -> logits (B, T, V)."""

    def __init__(self, model: GPT):
        super().__init__()
        self.model = model

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        m = self.model
        pos = torch.arange(idx.shape[1], device=idx.device)  # (T,)
        x = m.drop(m.wte(idx) + m.wpe(pos))  # (B, T, C) + (T, C) -> (B, T, C)
        for block in m.blocks:
            x = block(x)
        return m.lm_head(m.ln_f(x))  # (B, T, C) -> (B, T, V)


def export_gpt_onnx(model: GPT, path: str | os.PathLike, *, opset: int = OPSET) -> Path:
    """Write ``model`` as an ONNX file at ``path`` (``.onnx``, in an existing folder).

    The graph maps ``idx`` (B, T) int64 to ``logits`` (B, T, V) float32 with B and T dynamic
    (1 <= T <= ``block_size``); ``block_size`` and ``vocab_size`` are stored in the file's
    metadata, so :func:`onnx_logits` can check inputs without the PyTorch model. The model is
    exported in eval mode (no dropout) and left in its previous mode. Returns the path.
    """
    if not isinstance(model, GPT):
        raise TypeError(f"export_gpt_onnx exports a llm_lessons.gpt.GPT, got {type(model).__name__}")
    path = Path(path)
    if path.suffix != ".onnx":
        raise ValueError(f"the ONNX file name must end in .onnx, got {path.name!r}")
    if not path.parent.is_dir():
        raise ValueError(f"folder {str(path.parent)!r} does not exist")
    check_int(opset, "opset", low=18)
    block_size, vocab_size = model.block_size, model.config.vocab_size
    if block_size < 2:
        raise ValueError(f"block_size {block_size} is too small for a dynamic time axis")
    example = torch.zeros(2, min(8, block_size), dtype=torch.long)  # B, T > 1: no 0/1 special case
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    time = torch.export.Dim("time", min=1, max=block_size)
    quiet = logging.getLogger("torch.onnx")  # "torchvision is not installed" and the like
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with (eval_mode(model), warnings.catch_warnings(),
              contextlib.redirect_stdout(io.StringIO())):
            warnings.simplefilter("ignore")  # the exporter's progress lines and deprecations
            program = torch.onnx.export(
                _LogitsOnly(model), (example,), dynamo=True, opset_version=opset,
                input_names=[INPUT], output_names=[OUTPUT],
                dynamic_shapes={"idx": {0: batch, 1: time}}, verbose=False)
    finally:
        quiet.setLevel(level)
    proto = program.model_proto
    for node in proto.graph.node:  # stack traces naming this machine's folders: not for sharing
        del node.metadata_props[:]
    for key, value in (("block_size", block_size), ("vocab_size", vocab_size)):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    write_atomic(path, proto.SerializeToString())
    return path


def onnx_session(path: str | os.PathLike, threads: int = 1):
    """An ``onnxruntime.InferenceSession`` on the CPU for the file at ``path``, ``threads``
    threads inside each operator (one for the book's timings) and one between operators."""
    import onnxruntime as ort

    check_int(threads, "threads", low=1)
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no ONNX file at {str(path)!r}")
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _sizes(session) -> tuple[int, int]:
    if not hasattr(session, "get_modelmeta"):
        raise TypeError(f"expected an onnxruntime.InferenceSession (from onnx_session), got "
                        f"{type(session).__name__}")
    meta = session.get_modelmeta().custom_metadata_map
    if "block_size" not in meta or "vocab_size" not in meta:
        raise ValueError("this ONNX file was not written by export_gpt_onnx (no block_size and "
                         "vocab_size in its metadata)")
    return int(meta["block_size"]), int(meta["vocab_size"])


def onnx_logits(session, idx: torch.Tensor) -> torch.Tensor:
    """idx (B, T) integer ids -> logits (B, T, V) float32, computed by ONNX Runtime.

    Refused, as ``GPT.forward`` refuses them: a non-integer tensor (TypeError), a shape other
    than (B, T) with B, T >= 1, an id outside the vocabulary, and T > ``block_size`` (the
    position table has ``block_size`` rows: crop to the last ``block_size`` tokens).
    """
    block_size, vocab_size = _sizes(session)
    check_token_tensor(idx, "idx", vocab_size)
    if idx.shape[1] > block_size:
        raise ValueError(f"sequence length {idx.shape[1]} exceeds block_size {block_size}; crop the "
                         f"input to its last {block_size} tokens (onnx_generate does)")
    ids = idx.detach().to("cpu", torch.int64).numpy()
    (logits,) = session.run([OUTPUT], {INPUT: ids})
    return torch.from_numpy(logits)  # (B, T, V)


def onnx_generate(session, idx: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
    """Greedy decoding with ONNX Runtime: append ``max_new_tokens`` argmax tokens to idx (B, T).

    No key-value cache: each step runs the graph on the last ``block_size`` tokens, as
    ``GPT.generate(..., greedy=True)`` does, so both give the same tokens. Returns (B, T + n).
    """
    block_size, vocab_size = _sizes(session)
    check_token_tensor(idx, "idx", vocab_size)
    check_int(max_new_tokens, "max_new_tokens", low=0)
    idx = idx.detach().to("cpu", torch.int64)
    for _ in range(max_new_tokens):
        logits = onnx_logits(session, idx[:, -block_size:])  # (B, T, V)
        nxt = logits[:, -1, :].argmax(dim=-1, keepdim=True)  # (B, V) -> (B, 1)
        idx = torch.cat([idx, nxt], dim=1)
    return idx
