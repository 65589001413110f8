"""Checkpoints under faults and hostile files: a failed or killed save never loses the previous
pair, and a loader checks every size against the safetensors header before allocating."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import save_file

from llm_lessons import checkpoint, files
from llm_lessons.gpt import GPT, GPTConfig

CFG = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8)


def _model(seed):
    torch.manual_seed(seed)
    return GPT(CFG).eval()


def _same(a, b):
    pairs = zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    return all(torch.equal(x, y) for x, y in pairs)


@pytest.fixture
def old(tmp_path):
    model = _model(0)
    return model, checkpoint.save(model, tmp_path / "run", extra={"v": 1})


@pytest.mark.parametrize("extra", [{"t": torch.zeros(2)}, {"s": "\ud800"}, {"x": float("nan")}])
def test_refused_save_leaves_the_previous_pair(old, extra):
    model, path = old
    with pytest.raises(TypeError, match="extra must hold only JSON"):
        checkpoint.save(_model(1), path, extra=extra)
    assert _same(checkpoint.load(path), model) and checkpoint.load_metadata(path)["extra"] == {"v": 1}
    assert sorted(p.name for p in path.parent.iterdir()) == ["run.json", "run.safetensors"]


@pytest.mark.parametrize("failing_call", [1, 2, 3])
def test_exception_at_each_commit_step_leaves_a_loadable_pair(old, monkeypatch, failing_call):
    model, path = old
    new = _model(1)
    calls, real = [], os.replace

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == failing_call:
            raise OSError("disk full")
        return real(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(new, path, extra={"v": 2})
    monkeypatch.undo()
    loaded = checkpoint.load(path)
    # before the weights are replaced: the old pair; after: the new weights with their pending JSON
    assert _same(loaded, new if failing_call == 3 else model)
    assert checkpoint.load_metadata(path)["extra"] == {"v": 2 if failing_call == 3 else 1}
    checkpoint.save(new, path)  # and the next save tidies up: only the pair remains
    assert sorted(p.name for p in path.parent.iterdir()) == ["run.json", "run.safetensors"]


KILLER = """
import os, signal, sys, torch
from llm_lessons import checkpoint, files
from llm_lessons.gpt import GPT, GPTConfig
at, n = sys.argv[2], [0]
def die(*args, real={"fsync": os.fsync, "replace": os.replace}):
    n[0] += 1
    if n[0] == int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)
    return real[at](*args)
setattr(files.os, at, die)
torch.manual_seed(1)
checkpoint.save(GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8)), sys.argv[1])
"""


@pytest.mark.parametrize("at, call, expect_new", [("fsync", 1, False), ("replace", 3, True)])
def test_sigkill_half_way_through_a_save_leaves_a_loadable_pair(old, at, call, expect_new):
    """A real SIGKILL: while the new weights are being written, and between committing the
    weights and the JSON. The first must load the previous model, the second the new one."""
    model, path = old
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(KILLER), str(path), at, str(call)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert _same(checkpoint.load(path), _model(1) if expect_new else model)


def _rewrite(path, tensors, config=None):
    """New weights (and config) with a matching hash, so only the content checks can object."""
    sidecar = path.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    meta["config"] = config or meta["config"]
    save_file(tensors, str(path), metadata={"format": checkpoint.FORMAT, "model": "GPT",
                                            "config": json.dumps(meta["config"], sort_keys=True)})
    meta["sha256"] = checkpoint._sha256(path)
    sidecar.write_text(json.dumps(meta))


def test_huge_config_is_refused_before_any_allocation(old, monkeypatch):
    model, path = old
    tensors = {k: v.contiguous() for k, v in checkpoint.unique_tensors(model).items()}
    _rewrite(path, tensors, {**CFG.to_dict(), "vocab_size": 20_000_000})
    with pytest.raises(ValueError, match=r"vocab_size must be a positive int <= 1048576"):
        checkpoint.load(path)
    devices = []  # within the bounds, but contradicted by the header: only meta models are built
    init = GPT.__init__
    monkeypatch.setattr(GPT, "__init__", lambda self, c: (devices.append(torch.empty(0).device.type),
                                                          init(self, c))[1])
    _rewrite(path, tensors, {**CFG.to_dict(), "vocab_size": 1_000_000})
    with pytest.raises(ValueError, match=r"wte.weight: file \(11, 8\) vs config \(1000000, 8\)"):
        checkpoint.load(path)
    assert devices == ["meta"]


@pytest.mark.parametrize("change, match", [
    (lambda t: t.double(), "dtype 'F64'"),
    (lambda t: t.long(), "dtype 'I64'"),
    (lambda t: t.half(), "dtype 'F16'"),
    (lambda t: t.clone().fill_(float("nan")), "NaN or inf in"),
])
def test_tensors_are_never_converted(old, change, match):
    model, path = old
    tensors = {k: v.contiguous() for k, v in checkpoint.unique_tensors(model).items()}
    tensors["wpe.weight"] = change(tensors["wpe.weight"])
    _rewrite(path, tensors)
    with pytest.raises(ValueError, match=match):
        checkpoint.load(path)


def test_corrupt_headers_are_refused_clearly(old):
    _, path = old
    data = bytearray(path.read_bytes())
    data[:8] = (2**62).to_bytes(8, "little")  # a header "longer" than the file
    path.write_bytes(bytes(data))
    meta = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps({**meta, "sha256": checkpoint._sha256(path)}))
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        checkpoint.load(path)


def test_registry_names_classes_and_save_refuses_what_cannot_load(tmp_path):
    assert checkpoint.REGISTRY["GPT"][0] is GPT
    with pytest.raises(ValueError, match="float32"):
        checkpoint.save(_model(0).to(torch.bfloat16), tmp_path / "bf16")
    broken = _model(0)
    with torch.no_grad():
        broken.wpe.weight[0, 0] = float("inf")
    with pytest.raises(ValueError, match="NaN or inf"):
        checkpoint.save(broken, tmp_path / "inf")
    assert list(tmp_path.iterdir()) == []
