"""Save and load models as safetensors (the weights) plus JSON (the config): no pickle.

``save(model, "run.safetensors")`` writes ``run.safetensors`` and ``run.json``. The JSON holds
the model's class name, its config, the SHA-256 of the weights file and any ``extra`` you pass
(a tokenizer's characters, a training summary). The pair is committed atomically
(:func:`llm_lessons.files.write_pair_atomic`): a save that fails or is killed half-way leaves
the previous pair loadable.

``load`` treats both files as untrusted. Before allocating anything it checks the JSON's config
against fixed bounds, the file's SHA-256, and every tensor's dtype, shape and byte range in the
safetensors header against the model the config describes (built on the ``meta`` device, which
allocates nothing); then it refuses tensors holding NaN or inf. Every refusal names what is
wrong. Only the classes in :data:`REGISTRY` can be built, whatever the JSON says.

Why not ``torch.save``? It pickles, and unpickling a file can run arbitrary code; safetensors
is a plain header plus raw tensor bytes.

>>> import tempfile, pathlib
>>> from llm_lessons.gpt import GPT, GPTConfig
>>> model = GPT(GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=4))
>>> path = save(model, pathlib.Path(tempfile.mkdtemp()) / "tiny", extra={"note": "hello"})
>>> path.name, path.with_suffix(".json").exists()
('tiny.safetensors', True)
>>> again = load(path)
>>> all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
True
>>> load_metadata(path)["extra"]
{'note': 'hello'}
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes
from torch import nn

from llm_lessons.bert import BertConfig, MaskedLM
from llm_lessons.files import pending_sidecar, read_json_sidecar, write_pair_atomic
from llm_lessons.gpt import GPT, GPTConfig

FORMAT = "llm_lessons.checkpoint/1"

#: Model classes a checkpoint may name: class name -> (model class, config class). Only these
#: are ever built, whatever a JSON file says: no import path is read from a file.
REGISTRY: dict[str, tuple[type[nn.Module], type]] = {
    "GPT": (GPT, GPTConfig),
    "MaskedLM": (MaskedLM, BertConfig),
}

MAX_SIDECAR_BYTES = 16 * 2**20  # a config plus a tokenizer's characters: kilobytes in practice
MAX_HEADER_BYTES = 16 * 2**20  # safetensors' own limit is 100 MB; ours hold a few hundred names
DTYPES = {"F32": (torch.float32, 4)}  # what the models are built with; nothing is converted


def _paths(path: str | Path) -> tuple[Path, Path]:
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_name(path.name + ".safetensors")
    return path, path.with_suffix(".json")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):  # streamed: no copy of a large file in memory
            digest.update(block)
    return digest.hexdigest()


def unique_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict without aliases: a tied weight (GPT's lm_head = wte) is stored once.

    Aliases are the same Parameter object, so this also works on the ``meta`` device."""
    seen, out = set(), {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        if id(tensor) not in seen:
            seen.add(id(tensor))
            out[name] = tensor.detach()
    return out



def save(model: nn.Module, path: str | Path, extra: dict | None = None) -> Path:
    """Write ``path`` (.safetensors, added if missing) and its .json sidecar; returns the weights path.

    Everything is serialised and checked in memory first (``extra`` must be JSON: no tensors,
    no NaN, valid Unicode), so a refused save touches no file.
    """
    name = type(model).__name__
    if name not in REGISTRY or type(model) is not REGISTRY[name][0]:
        raise TypeError(f"cannot checkpoint a {name}: known model classes are {sorted(REGISTRY)}")
    if extra is not None and not isinstance(extra, dict):
        raise TypeError(f"extra must be a dict of JSON values or None, got {type(extra).__name__}")
    weights, sidecar = _paths(path)
    config = model.config.to_dict()
    tensors = {k: v.to("cpu").contiguous() for k, v in unique_tensors(model).items()}
    for k, v in tensors.items():
        if v.dtype != torch.float32:
            raise ValueError(f"tensor {k} is {v.dtype}; checkpoints hold float32 (call model.float())")
        if not torch.isfinite(v).all():
            raise ValueError(f"tensor {k} holds NaN or inf: refusing to save a broken model")
    data = safetensors_bytes(tensors, metadata={"format": FORMAT, "model": name,
                                                "config": json.dumps(config, sort_keys=True)})
    payload = {"format": FORMAT, "model": name, "config": config,
               "sha256": hashlib.sha256(data).hexdigest(), "extra": extra or {}}
    try:
        text = json.dumps(payload, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
        encoded = text.encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError) as err:
        raise TypeError(f"extra must hold only JSON values (str, numbers, lists, dicts; no tensors, "
                        f"NaN or lone surrogates): {err}") from None
    write_pair_atomic(weights, data, sidecar, encoded)
    return weights


def _read_sidecar(sidecar: Path) -> dict:
    return read_json_sidecar(sidecar, MAX_SIDECAR_BYTES, FORMAT, "an llm_lessons checkpoint config")


def _sidecar(path: str | Path) -> tuple[dict, Path]:
    """The sidecar that belongs to the weights: the committed one, or the pending one of a save
    interrupted between its last two steps (whose weights are then already in place)."""
    weights, sidecar = _paths(path)
    pending = pending_sidecar(sidecar)
    if pending.exists() and weights.exists():
        digest = _sha256(weights)
        for candidate in (sidecar, pending):
            if candidate.exists():
                try:
                    payload = _read_sidecar(candidate)
                except ValueError:
                    continue
                if payload.get("sha256") == digest:
                    return payload, candidate
    if not sidecar.exists():
        raise FileNotFoundError(f"checkpoint config {sidecar} not found (it is written beside the "
                                ".safetensors file by checkpoint.save)")
    return _read_sidecar(sidecar), sidecar


def load_metadata(path: str | Path) -> dict:
    """The JSON sidecar of a checkpoint: ``model``, ``config``, ``sha256`` and ``extra``."""
    return _sidecar(path)[0]


def _header(weights: Path) -> tuple[dict, dict]:
    """(tensor entries, metadata) of a safetensors file, every byte range checked, nothing loaded."""
    size = weights.stat().st_size
    with open(weights, "rb") as f:
        head = f.read(8)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        if not 0 < n <= min(MAX_HEADER_BYTES, size - 8):
            raise ValueError(f"{weights} is not a readable safetensors file (truncated or corrupted?): "
                             f"header length {n} for a file of {size} bytes")
        try:
            header = json.loads(f.read(n).decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ValueError(f"{weights} is not a readable safetensors file: "
                             "its header is not JSON") from None
    if not isinstance(header, dict):
        raise ValueError(f"{weights} is not a readable safetensors file: its header is not a dict")
    meta = header.pop("__metadata__", None) or {}
    ranges = []
    for name, entry in header.items():
        ok = isinstance(entry, dict) and entry.get("dtype") in DTYPES and isinstance(entry.get("shape"), list)
        ok = ok and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in entry["shape"])
        if not ok:
            dtype = entry.get("dtype") if isinstance(entry, dict) else None
            raise ValueError(f"{weights.name}: tensor {name!r} has dtype {dtype!r} or a malformed shape; "
                             f"checkpoints hold {sorted(DTYPES)} tensors only (nothing is converted)")
        offsets = entry.get("data_offsets")
        nbytes = math.prod(entry["shape"]) * DTYPES[entry["dtype"]][1]
        ints = isinstance(offsets, list) and len(offsets) == 2 and all(
            isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        if not (ints and offsets[1] - offsets[0] == nbytes):
            raise ValueError(f"{weights} is not a readable safetensors file (truncated or corrupted?): "
                             f"tensor {name!r} has byte range {offsets} for {nbytes} bytes")
        ranges.append(tuple(offsets))
    data_bytes, end = size - 8 - n, 0
    for begin, stop in sorted(ranges):  # the tensors must tile the data exactly: no gap, no overlap
        if begin != end:
            raise ValueError(f"{weights} is not a readable safetensors file (truncated or corrupted?): "
                             f"tensor bytes overlap or leave a gap at byte {end}")
        end = stop
    if end != data_bytes:
        raise ValueError(f"{weights} is not a readable safetensors file (truncated or corrupted?): "
                         f"the header describes {end} bytes of tensors, the file holds {data_bytes}")
    return header, meta


def _config(meta: dict, sidecar: Path):
    config_cls = REGISTRY[meta["model"]][1]
    values = meta.get("config")
    known = sorted(config_cls.field_names())
    if not isinstance(values, dict) or set(values) - set(known):
        raise ValueError(f"{sidecar}: config must be a dict of {config_cls.__name__} fields {known}")
    try:
        return config_cls(**values)  # the config's own checks bound every number
    except (TypeError, ValueError) as err:
        raise ValueError(f"{sidecar}: invalid config: {err}") from None


def load(path: str | Path, device: torch.device | str | None = None) -> nn.Module:
    """Rebuild the model saved at ``path`` and load its weights (in eval mode).

    Raises ValueError if the weights file is corrupted, truncated, or does not match the config.
    """
    weights, _ = _paths(path)
    meta, sidecar = _sidecar(weights)
    if meta.get("model") not in REGISTRY:
        raise ValueError(f"{sidecar} names model {meta.get('model')!r}; known: {sorted(REGISTRY)}")
    config = _config(meta, sidecar)
    if not weights.exists():
        raise FileNotFoundError(f"checkpoint weights {weights} not found")
    if _sha256(weights) != meta.get("sha256"):
        raise ValueError(f"{weights} does not match the SHA-256 recorded in {sidecar.name}: the file "
                         "is corrupted, truncated, or from another save")
    header, stored = _header(weights)
    try:
        stored_config = json.loads(stored.get("config", "null"))
    except json.JSONDecodeError:
        stored_config = None
    if stored.get("model") != meta["model"] or stored_config != meta["config"]:
        raise ValueError(f"{weights.name} was saved for {stored.get('model')} {stored_config}, "
                         f"but {sidecar.name} says {meta['model']} {meta['config']}")
    model_cls = REGISTRY[meta["model"]][0]
    with torch.device("meta"):  # shapes only: no memory, whatever sizes the config names
        expected = {k: tuple(v.shape) for k, v in unique_tensors(model_cls(config)).items()}
    found = {k: tuple(v["shape"]) for k, v in header.items()}
    missing, unexpected = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{weights.name} does not fit {model_cls.__name__}({config}): missing tensors "
                         f"{missing}, unexpected tensors {unexpected}")
    wrong = [f"{k}: file {found[k]} vs config {shape}" for k, shape in expected.items() if found[k] != shape]
    if wrong:
        raise ValueError(f"{weights.name} has tensors whose shapes contradict the config: {wrong}")
    model = model_cls(config)  # built as before (same random draws), then overwritten
    try:
        with safe_open(str(weights), framework="pt") as f:
            state = {k: f.get_tensor(k) for k in found}
    except SafetensorError as err:
        raise ValueError(f"{weights} is not a readable safetensors file (truncated or corrupted?): "
                         f"{err}") from None
    broken = [k for k, v in state.items() if not torch.isfinite(v).all()]
    if broken:
        raise ValueError(f"{weights.name} holds NaN or inf in {broken}: refusing a broken model")
    model.load_state_dict(state, strict=False)  # tied aliases are filled through their twin
    return model.to(device or "cpu").eval()
