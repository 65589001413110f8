"""A training run's full state in one checkpoint, so an interrupted run resumes exactly.

Shapes: none beyond the model's own tensors.

To continue a run as if it had never stopped, more than the weights must come back: the
optimizer's moment estimates (AdamW's ``exp_avg``, ``exp_avg_sq`` and step count), the step
the learning-rate schedule has reached, the generator that draws the training batches, the
global RNG that dropout draws from, and the history measured so far. :func:`save_state`
writes them as one safetensors file (every tensor, RNG states as uint8 tensors) plus a JSON
sidecar (step, seconds, history, the training config and the SHA-256 of the tensors), committed
as a pair atomically; :func:`load_state` checks all of it before changing anything. No pickle.

>>> import tempfile, pathlib
>>> model = torch.nn.Linear(2, 1)
>>> opt = torch.optim.AdamW(model.parameters())
>>> gen = torch.Generator().manual_seed(0)
>>> path = pathlib.Path(tempfile.mkdtemp()) / "state"
>>> save_state(path, model, opt, gen, step=3, seconds=1.5, history={"steps": [0]}, config={"lr": 1.0})
>>> again = torch.nn.Linear(2, 1)
>>> load_state(path, again, torch.optim.AdamW(again.parameters()), torch.Generator(), {"lr": 1.0})
(3, 1.5, {'steps': [0]})
>>> torch.equal(again.weight, model.weight)
True
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load as tensors_from_bytes
from safetensors.torch import save as tensors_to_bytes
from torch import nn

from llm_lessons.checkpoint import unique_tensors  # tied weights (GPT's head) stored once
from llm_lessons.files import read_json_sidecar, write_pair_atomic

FORMAT = "llm_lessons.train_state/1"
MAX_SIDECAR_BYTES = 64 * 2**20  # the history of a long run: a few MB of JSON


def _paths(path: str | Path) -> tuple[Path, Path]:
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_name(path.name + ".safetensors")
    return path, path.with_suffix(".json")


def exists(path: str | Path) -> bool:
    """Whether a training state has been saved at ``path``."""
    weights, sidecar = _paths(path)
    return weights.exists() and sidecar.exists()


def save_state(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer,
               generator: torch.Generator, *, step: int, seconds: float, history: dict,
               config: dict) -> None:
    """Write everything a resumed run needs (see the module docstring), atomically."""
    tensors = {f"model.{k}": v.detach().to("cpu").contiguous() for k, v in unique_tensors(model).items()}
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for i, p in enumerate(params):
        for key, value in optimizer.state.get(p, {}).items():
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"optimizer state {key!r} is a {type(value).__name__}: only tensors "
                                "are saved")
            tensors[f"optim.{i}.{key}"] = value.detach().to("cpu").contiguous()
    tensors["rng.batches"] = generator.get_state()
    tensors["rng.torch"] = torch.get_rng_state()  # dropout's draws
    if torch.cuda.is_available():
        for d, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{d}"] = state
    data = tensors_to_bytes(tensors, metadata={"format": FORMAT})
    payload = {"format": FORMAT, "step": step, "seconds": seconds, "history": history, "config": config,
               "n_params": len(params), "sha256": hashlib.sha256(data).hexdigest()}
    text = json.dumps(payload, indent=1, ensure_ascii=False, allow_nan=True) + "\n"
    weights, sidecar = _paths(path)
    write_pair_atomic(weights, data, sidecar, text.encode("utf-8"))


def _read(path: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    weights, sidecar = _paths(path)
    meta = read_json_sidecar(sidecar, MAX_SIDECAR_BYTES, FORMAT, "a training state")
    data = weights.read_bytes()
    if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
        raise ValueError(f"{weights} does not match the SHA-256 recorded in {sidecar.name}: the file "
                         "is corrupted, truncated, or from another save")
    return meta, tensors_from_bytes(data)


def load_state(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer,
               generator: torch.Generator, config: dict) -> tuple[int, float, dict]:
    """Restore model, optimizer, batch generator and global RNG from ``path``; returns
    ``(step, seconds, history)``. Refuses (before changing anything) a state saved with another
    training ``config`` or for a model with other tensors."""
    meta, tensors = _read(path)
    if meta.get("config") != config:
        saved = meta.get("config") if isinstance(meta.get("config"), dict) else {}
        diff = sorted(k for k in set(saved) | set(config) if saved.get(k) != config.get(k))
        raise ValueError(f"{path} was saved by a run with another training config (differs in {diff}): "
                         "resume with the same TrainConfig, or start a new state file")
    step, seconds, history = meta.get("step"), meta.get("seconds"), meta.get("history")
    if not (isinstance(step, int) and isinstance(seconds, (int, float)) and isinstance(history, dict)):
        raise ValueError(f"{path}: step, seconds and history are missing or malformed")
    own = unique_tensors(model)
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    wrong = sorted(k for k in set(own) | set(state)
                   if k not in own or k not in state or own[k].shape != state[k].shape
                   or own[k].dtype != state[k].dtype)
    if wrong:
        raise ValueError(f"{path} holds a model whose tensors differ from this one's: {wrong[:5]}")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if meta.get("n_params") != len(params):
        raise ValueError(f"{path} holds optimizer state for {meta.get('n_params')} parameters, "
                         f"this optimizer has {len(params)}")
    optim_state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, i, name = key.split(".", 2)
            optim_state.setdefault(int(i), {})[name] = value
    with torch.no_grad():
        for k, v in own.items():
            v.copy_(state[k])
    optimizer.load_state_dict({"state": optim_state, "param_groups": optimizer.state_dict()["param_groups"]})
    generator.set_state(tensors["rng.batches"])
    torch.set_rng_state(tensors["rng.torch"])
    cuda = sorted(k for k in tensors if k.startswith("rng.cuda."))
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])
    return step, float(seconds), history
