"""Save and load models as safetensors (the weights) plus JSON (the config): no pickle.

``save(model, "run.safetensors")`` writes ``run.safetensors`` and ``run.json``. The JSON holds
the model's class name, its config, the SHA-256 of the weights file and any ``extra`` you pass
(a tokenizer's characters, a training summary). ``load`` rebuilds the model from the config,
then refuses — with a message naming what is wrong — a weights file that is truncated or
altered, lacks a tensor, has an extra one, or has a tensor whose shape the config contradicts.

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

import dataclasses
import hashlib
import importlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

FORMAT = "llm_lessons.checkpoint/1"

#: Model classes a checkpoint may name: class name -> (module, model class, config class).
#: Only these are ever imported, whatever a JSON file says. Add new model families here.
REGISTRY: dict[str, tuple[str, str, str]] = {
    "GPT": ("llm_lessons.gpt", "GPT", "GPTConfig"),
    "MaskedLM": ("llm_lessons.bert", "MaskedLM", "BertConfig"),
}


def _paths(path: str | Path) -> tuple[Path, Path]:
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_name(path.name + ".safetensors")
    return path, path.with_suffix(".json")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _unique_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict without aliases: a tied weight (GPT's lm_head = wte) is stored once."""
    seen, out = set(), {}
    for name, tensor in model.state_dict().items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if key not in seen:
            seen.add(key)
            out[name] = tensor
    return out


def save(model: nn.Module, path: str | Path, extra: dict | None = None) -> Path:
    """Write ``path`` (.safetensors, added if missing) and its .json sidecar; returns the weights path."""
    name = type(model).__name__
    if name not in REGISTRY:
        raise TypeError(f"cannot checkpoint a {name}: known model classes are {sorted(REGISTRY)}")
    weights, sidecar = _paths(path)
    config = dataclasses.asdict(model.config)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in _unique_tensors(model).items()}
    save_file(tensors, str(weights), metadata={"format": FORMAT, "model": name,
                                               "config": json.dumps(config, sort_keys=True)})
    payload = {"format": FORMAT, "model": name, "config": config, "sha256": _sha256(weights),
               "extra": extra or {}}
    sidecar.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return weights


def load_metadata(path: str | Path) -> dict:
    """The JSON sidecar of a checkpoint: ``model``, ``config``, ``sha256`` and ``extra``."""
    _, sidecar = _paths(path)
    if not sidecar.exists():
        raise FileNotFoundError(f"checkpoint config {sidecar} not found (it is written beside the "
                                ".safetensors file by checkpoint.save)")
    try:
        payload = json.loads(sidecar.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{sidecar} is not valid JSON: {err}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{sidecar} is not an llm_lessons checkpoint config (format {FORMAT!r})")
    return payload


def load(path: str | Path, device: torch.device | str | None = None) -> nn.Module:
    """Rebuild the model saved at ``path`` and load its weights (in eval mode).

    Raises ValueError if the weights file is corrupted, truncated, or does not match the config.
    """
    weights, sidecar = _paths(path)
    meta = load_metadata(weights)
    if meta.get("model") not in REGISTRY:
        raise ValueError(f"{sidecar} names model {meta.get('model')!r}; known: {sorted(REGISTRY)}")
    if not weights.exists():
        raise FileNotFoundError(f"checkpoint weights {weights} not found")
    if _sha256(weights) != meta.get("sha256"):
        raise ValueError(f"{weights} does not match the SHA-256 recorded in {sidecar.name}: the file "
                         "is corrupted, truncated, or from another save")
    module_name, model_name, config_name = REGISTRY[meta["model"]]
    module = importlib.import_module(module_name)
    config_cls = getattr(module, config_name)
    known = {f.name for f in dataclasses.fields(config_cls)}
    if not isinstance(meta.get("config"), dict) or set(meta["config"]) - known:
        raise ValueError(f"{sidecar}: config must be a dict of {config_name} fields {sorted(known)}")
    config = config_cls(**meta["config"])
    model = getattr(module, model_name)(config)
    expected = {k: tuple(v.shape) for k, v in _unique_tensors(model).items()}
    try:
        with safe_open(str(weights), framework="pt") as f:
            header = f.metadata() or {}
            stored_config = json.loads(header.get("config", "null"))
            if header.get("model") != meta["model"] or stored_config != meta["config"]:
                raise ValueError(f"{weights.name} was saved for {header.get('model')} {stored_config}, "
                                 f"but {sidecar.name} says {meta['model']} {meta['config']}")
            found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
            missing, unexpected = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
            if missing or unexpected:
                raise ValueError(f"{weights.name} does not fit {model_name}({config}): missing tensors "
                                 f"{missing}, unexpected tensors {unexpected}")
            wrong = [f"{k}: file {found[k]} vs config {shape}" for k, shape in expected.items()
                     if found[k] != shape]
            if wrong:
                raise ValueError(f"{weights.name} has tensors whose shapes contradict the config: {wrong}")
            state = {k: f.get_tensor(k) for k in found}
    except SafetensorError as err:
        raise ValueError(f"{weights} is not a readable safetensors file (truncated or corrupted?): "
                         f"{err}") from None
    model.load_state_dict(state, strict=False)  # tied aliases are filled through their twin
    return model.to(device or "cpu").eval()
