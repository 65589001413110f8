"""Checkers for chapter 7.1's exercises: the fill-mask pipeline's top k, a safetensors header
read by hand, and greedy decoding with a cropped context.

Each is what a ``transformers`` tool does behind one call, written again in a few lines: the
fill-mask pipeline turns one row of logits into the k most likely tokens and their
probabilities; ``from_pretrained`` finds each tensor's bytes in a safetensors file from its
header; ``generate(do_sample=False)`` appends the argmax again and again. The answers come from
references written here, never from :func:`llm_lessons.mlm_decoding.top_predictions`,
:func:`llm_lessons.sampling.generate` or the ``safetensors`` loaders (all forbidden).

>>> def fill_mask_top_k(logits, position, k):
...     probs = logits[position].softmax(-1)
...     top = probs.topk(k)
...     return top.values, top.indices
>>> check_fill_mask_top_k(fill_mask_top_k)
'check_fill_mask_top_k: all 8 cases passed'
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable

import torch
from torch import nn

from llm_lessons.exercises.checking import Case, Mistake, available, random_int, run_check

# --- the fill-mask pipeline's top k ---


def _top_k(logits, position, k, axis="vocabulary", scores="probabilities"):
    """(probs (k,), ids (k,)) at ``position`` of logits (T, V); the flags give the wrong versions."""
    logits = logits.double()
    if axis == "positions":  # softmax down the column: each token compared across positions
        probs = torch.exp(logits - logits.logsumexp(dim=0, keepdim=True))[position]  # (V,)
    else:
        probs = torch.exp(logits[position] - logits[position].logsumexp(dim=0))  # (V,)
    order = sorted(range(probs.numel()), key=lambda v: (-float(probs[v]), v))[:k]
    ids = torch.tensor(order)
    if scores == "logits":
        return logits[position, ids].float(), ids
    if scores == "renormalised":  # softmax over the k winners only
        chosen = logits[position, ids]
        return torch.exp(chosen - chosen.logsumexp(dim=0)).float(), ids
    if scores == "log":
        return torch.log(probs[ids]).float(), ids
    return probs[ids].float(), ids


def check_fill_mask_top_k(fn: Callable, n_cases: int = 8, seed: int = 0) -> str:
    """``fn(logits, position, k)`` for the logits (T, V) of one text and the position of its
    [MASK] returns ``(probs, ids)``, both of shape (k,): the k most likely tokens at that position
    under the softmax over the vocabulary, most likely first, with their probabilities, as
    ``pipeline("fill-mask", top_k=k)`` reports them (every token of the vocabulary counts,
    special tokens included)."""
    g = torch.Generator().manual_seed(seed)
    hand = torch.tensor([[0.0, 0.0, 0.0, 0.0], [2.0, 0.0, 1.0, -1.0], [0.0, 3.0, 0.0, 0.0]])
    cases = [Case((hand, 1, 2), _top_k(hand, 1, 2),
                  "logits [[0, 0, 0, 0], [2, 0, 1, -1], [0, 3, 0, 0]], position 1, k = 2"),
             Case((hand, 1, 4), _top_k(hand, 1, 4), "the same logits, k = V = 4 (every token)")]
    while len(cases) < n_cases:
        T, V = random_int(g, 2, 12), random_int(g, 5, 40)
        logits = torch.randn(T, V, generator=g) * 3
        position = (0, T - 1, random_int(g, 0, T))[len(cases) % 3]
        k = random_int(g, 1, min(V, 8) + 1)
        cases.append(Case((logits, position, k), _top_k(logits, position, k),
                          f"random logits ({T}, {V}), position {position}, k = {k}"))

    def answer(logits, position, k):
        probs, ids = fn(logits, position, k)
        return torch.as_tensor(probs).reshape(-1).float(), torch.as_tensor(ids).reshape(-1).long()

    mistakes = [
        Mistake("positions", lambda x, p, k: _top_k(x, p, k, axis="positions"),
                "your softmax ran over the positions (dim 0): each probability must compare the "
                "tokens of the vocabulary at the masked position, softmax over the last dimension"),
        Mistake("logits", lambda x, p, k: _top_k(x, p, k, scores="logits"),
                "you returned the logits themselves; the pipeline's score is a probability, the "
                "softmax of the row"),
        Mistake("renormalised", lambda x, p, k: _top_k(x, p, k, scores="renormalised"),
                "you took the softmax of the k winners only, so your k probabilities sum to 1; "
                "take the softmax over the whole vocabulary first, then the top k"),
        Mistake("log", lambda x, p, k: _top_k(x, p, k, scores="log"),
                "you returned log-probabilities (log_softmax); the pipeline reports probabilities"),
    ]
    forbidden = available(("llm_lessons.mlm_decoding.top_predictions",))
    return run_check("check_fill_mask_top_k", answer, cases, mistakes, forbidden=forbidden,
                     atol=1e-6, rtol=1e-4, student=fn)


# --- a safetensors header read by hand ---

_DTYPES = {torch.float32: ("F32", 4), torch.int64: ("I64", 8), torch.float16: ("F16", 2),
           torch.uint8: ("U8", 1)}


def _write(tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> tuple[bytes, dict]:
    """The bytes of a safetensors file holding ``tensors`` in the given order, and where each
    tensor's bytes are in the file: {name: (dtype, shape, start, end)}."""
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        dtype, size = _DTYPES[t.dtype]
        blob = t.contiguous().numpy().tobytes()  # little-endian on every machine torch runs on
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the format pads the header to a multiple of 8 bytes
    base = 8 + len(text)
    where = {name: (e["dtype"], tuple(e["shape"]), base + e["data_offsets"][0], base + e["data_offsets"][1])
             for name, e in header.items() if name != "__metadata__"}
    return struct.pack("<Q", len(text)) + text + b"".join(blobs), where


def _ranges(data: bytes, base="file", end="offset") -> dict:
    """The reference parse of ``data``; flags give the wrong versions."""
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    start = {"file": 8 + n, "header": n, "data": 0}[base]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        lo, hi = e["data_offsets"]
        out[name] = (e["dtype"], tuple(e["shape"]), start + lo, start + (lo + hi if end == "length" else hi))
    return out


def check_safetensors_ranges(fn: Callable, n_cases: int = 6, seed: int = 1) -> str:
    """``fn(data)`` for the bytes of a safetensors file returns ``{name: (dtype, shape, start,
    end)}`` for every tensor: ``data[start:end]`` are the tensor's bytes. The file is an 8-byte
    little-endian unsigned integer N, then N bytes of JSON (each tensor's ``dtype``, ``shape``
    and ``data_offsets`` [begin, end), counted from the first byte *after* the header; an
    optional ``"__metadata__"`` entry is not a tensor), then the data."""
    g = torch.Generator().manual_seed(seed)
    one, where = _write({"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)})
    cases = [Case((one,), where, "one float32 tensor 'w' of shape (2, 3)")]
    two, where = _write({"b": torch.ones(3), "ids": torch.tensor([7, 8], dtype=torch.int64)},
                        {"format": "pt"})
    cases.append(Case((two,), where, "a float32 and an int64 tensor with __metadata__"))
    empty, where = _write({"empty": torch.zeros(0), "x": torch.ones(1)})
    cases.append(Case((empty,), where, "a tensor with no elements (begin == end) then another"))
    from safetensors.torch import save  # the library's own writer: its layout, its order

    library = {"layer.weight": torch.randn(4, 5, generator=g), "layer.bias": torch.randn(4, generator=g),
               "steps": torch.tensor([3], dtype=torch.int64)}
    cases.append(Case((save(library, metadata={"format": "pt"}),),
                      _ranges(save(library, metadata={"format": "pt"})),
                      "a file written by safetensors.torch.save (three tensors, __metadata__)"))
    while len(cases) < n_cases:
        tensors = {f"t{i}": torch.randn(random_int(g, 1, 5), random_int(g, 1, 5), generator=g).to(
            (torch.float32, torch.float16, torch.uint8)[i % 3]) for i in range(random_int(g, 2, 6))}
        data, where = _write(tensors)
        cases.append(Case((data,), where, f"{len(tensors)} random tensors of mixed dtypes"))

    def answer(data):
        got = fn(data)
        if not isinstance(got, dict):
            return got
        return {k: (str(v[0]), tuple(int(s) for s in v[1]), int(v[2]), int(v[3])) if len(v) == 4 else v
                for k, v in got.items()}

    mistakes = [
        Mistake("data offsets", lambda d: _ranges(d, base="data"),
                "you returned data_offsets as stored; they count from the end of the header, so "
                "add 8 + N to both ends to get positions in the file"),
        Mistake("no prefix", lambda d: _ranges(d, base="header"),
                "your positions are 8 bytes early: you added the header's length N but forgot the "
                "8 bytes that hold N at the start of the file"),
        Mistake("length", lambda d: _ranges(d, end="length"),
                "you read data_offsets as (begin, length); both numbers are offsets, [begin, end)"),
    ]
    forbidden = available(("safetensors.safe_open", "safetensors.torch.load", "safetensors.torch.load_file",
                           "safetensors.numpy.load", "llm_lessons.checkpoint._header"))
    return run_check("check_safetensors_ranges", answer, cases, mistakes, forbidden=forbidden,
                     student=fn)


# --- greedy decoding with a cropped context ---


class _ToyLM(nn.Module):
    """A model of the book's interface whose logits at t depend on tokens t and t - 1 (a fixed
    random table each), and which refuses more than ``block_size`` tokens, as a GPT does."""

    def __init__(self, vocab_size: int, block_size: int, g: torch.Generator):
        super().__init__()
        self.block_size = block_size
        self.now = torch.randn(vocab_size, vocab_size, generator=g)  # (V, V)
        self.prev = torch.randn(vocab_size, vocab_size, generator=g)  # (V, V)

    def forward(self, idx, targets=None):
        B, T = idx.shape
        if T > self.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size {self.block_size}: crop the "
                             "context to its last block_size tokens")
        before = torch.zeros(B, T, self.now.shape[1])  # (B, T, V): nothing before the first token
        before[:, 1:] = self.prev[idx[:, :-1]]
        return self.now[idx] + before, None


def _greedy(model, idx, n, crop="last", read="last", keep="all"):
    """(B, T + n) greedy continuation; flags give the wrong versions."""
    out = idx.clone()
    with torch.no_grad():
        for _ in range(n):
            context = out[:, -model.block_size:] if crop == "last" else out[:, :model.block_size]
            logits = model(context)[0]  # (B, t, V)
            row = logits[:, -1] if read == "last" else logits[:, 0]  # (B, V)
            nxt = torch.tensor([max(range(row.shape[1]), key=lambda v, r=r: (float(r[v]), -v)) for r in row])
            out = torch.cat([out, nxt[:, None]], dim=1)
    return out if keep == "all" else out[:, idx.shape[1]:]


def check_greedy_decode(fn: Callable, seed: int = 2) -> str:
    """``fn(model, idx, max_new_tokens)`` for a model of the book's interface (``model(idx)`` gives
    ``(logits, loss)`` with logits (B, T, V); ``model.block_size``) and prompts idx (B, T) returns
    (B, T + max_new_tokens): the prompts followed by the argmax token, appended one at a time.
    The model reads at most ``block_size`` tokens: feed it the last ``block_size`` of the
    sequence so far, as the book's ``generate`` and ``transformers``' ``generate`` do greedily."""
    from llm_lessons.gpt import GPT, GPTConfig

    g = torch.Generator().manual_seed(seed)
    toy = _ToyLM(7, 4, g)
    cases = [Case((toy, torch.tensor([[1, 2]]), 2), _greedy(toy, torch.tensor([[1, 2]]), 2),
                  "one prompt [1, 2], 2 new tokens (no cropping needed)"),
             Case((toy, torch.tensor([[3, 1, 4]]), 0), torch.tensor([[3, 1, 4]]),
                  "max_new_tokens = 0: the prompt, unchanged")]
    toy = _ToyLM(11, 5, g)
    prompts = torch.randint(0, 11, (3, 4), generator=g)
    cases.append(Case((toy, prompts, 6), _greedy(toy, prompts, 6),
                      "three prompts of 4 tokens, 6 new tokens, block_size 5 (crop after one step)"))
    prompts = torch.randint(0, 11, (2, 5), generator=g)
    cases.append(Case((toy, prompts, 4), _greedy(toy, prompts, 4),
                      "two prompts of exactly block_size = 5 tokens, 4 new tokens"))
    torch.manual_seed(seed)  # the GPT's initial weights
    gpt = GPT(GPTConfig(vocab_size=13, block_size=6, n_layer=1, n_head=2, n_embd=16, dropout=0.0)).eval()
    prompt = torch.randint(0, 13, (1, 3), generator=g)
    cases.append(Case((gpt, prompt, 7), _greedy(gpt, prompt, 7),
                      "a small random book GPT (block_size 6), prompt of 3 tokens, 7 new tokens"))
    mistakes = [
        Mistake("first block", lambda m, x, n: _greedy(m, x, n, crop="first"),
                "once the sequence is longer than block_size you fed the model its *first* "
                "block_size tokens; crop from the left: seq[:, -block_size:]"),
        Mistake("first position", lambda m, x, n: _greedy(m, x, n, read="first"),
                "you took the argmax of the logits at position 0; the next token is predicted by "
                "the *last* position, logits[:, -1]"),
        Mistake("new only", lambda m, x, n: _greedy(m, x, n, keep="new"),
                "you returned only the new tokens; return the prompt followed by them, "
                "(B, T + max_new_tokens), as generate does"),
    ]
    forbidden = available(("llm_lessons.sampling.generate", "llm_lessons.sampling.StepDecoder",
                           "llm_lessons.beam_search.beam_search"))
    return run_check("check_greedy_decode", fn, cases, mistakes, forbidden=forbidden, atol=0, rtol=0)


__all__ = ["check_fill_mask_top_k", "check_greedy_decode", "check_safetensors_ranges"]
