"""Checkpoints: exact round trip, and every kind of bad file refused with a clear message."""

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from llm_lessons import checkpoint
from llm_lessons.gpt import GPT, GPTConfig

CFG = GPTConfig(vocab_size=17, block_size=8, n_layer=2, n_head=2, n_embd=8)


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = GPT(CFG).eval()
    path = checkpoint.save(model, tmp_path / "m.safetensors", extra={"chars": "abc"})
    return model, path


def _rewrite(path, tensors, metadata):
    """Write a new weights file and record its hash, so only the content check can object."""
    save_file(tensors, str(path), metadata=metadata)
    sidecar = path.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    meta["sha256"] = checkpoint._sha256(path)
    sidecar.write_text(json.dumps(meta))


def _contents(path):
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()  # noqa: SIM118


def test_round_trip_identical_logits(saved):
    model, path = saved
    again = checkpoint.load(path)
    idx = torch.randint(CFG.vocab_size, (3, CFG.block_size), generator=torch.Generator().manual_seed(1))
    assert torch.equal(model(idx)[0], again(idx)[0])
    assert again.lm_head.weight is again.wte.weight  # still tied after loading
    assert again.config == CFG and not again.training
    assert checkpoint.load_metadata(path)["extra"] == {"chars": "abc"}
    tensors, _ = _contents(path)
    assert "lm_head.weight" not in tensors and "wte.weight" in tensors  # the tied matrix once


def test_truncated_or_altered_file_is_refused(saved):
    _, path = saved
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupted, truncated"):
        checkpoint.load(path)
    flipped = bytearray(data)
    flipped[-5] ^= 0xFF  # one byte of one weight
    path.write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="SHA-256"):
        checkpoint.load(path)


def test_truncated_file_refused_even_with_a_matching_hash(saved):
    _, path = saved
    path.write_bytes(path.read_bytes()[:100])
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["sha256"] = checkpoint._sha256(path)
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        checkpoint.load(path)


def test_missing_and_unexpected_tensors_are_refused(saved):
    _, path = saved
    tensors, metadata = _contents(path)
    del tensors["blocks.1.mlp.fc.bias"]
    tensors["extra.weight"] = torch.zeros(2)
    _rewrite(path, tensors, metadata)
    with pytest.raises(ValueError, match=r"missing tensors \['blocks.1.mlp.fc.bias'\], unexpected "
                                         r"tensors \['extra.weight'\]"):
        checkpoint.load(path)


def test_wrong_shape_is_refused(saved):
    _, path = saved
    tensors, metadata = _contents(path)
    tensors["wpe.weight"] = torch.zeros(16, 8)
    _rewrite(path, tensors, metadata)
    with pytest.raises(ValueError, match=r"wpe.weight: file \(16, 8\) vs config \(8, 8\)"):
        checkpoint.load(path)


def test_config_mismatch_is_refused(saved):
    _, path = saved
    sidecar = path.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    meta["config"]["n_head"] = 4
    sidecar.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="was saved for GPT"):
        checkpoint.load(path)
    meta["config"]["n_heads"] = 4
    sidecar.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="GPTConfig fields"):
        checkpoint.load(path)


def test_bad_sidecars_and_models(saved, tmp_path):
    _, path = saved
    sidecar = path.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**meta, "model": "os.system"}))
    with pytest.raises(ValueError, match="names model 'os.system'"):
        checkpoint.load(path)
    sidecar.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        checkpoint.load(path)
    sidecar.unlink()
    with pytest.raises(FileNotFoundError, match="m.json"):
        checkpoint.load(path)
    with pytest.raises(TypeError, match="cannot checkpoint a Linear"):
        checkpoint.save(torch.nn.Linear(2, 2), tmp_path / "x")


def test_shipped_gpt_loads_and_scores_as_recorded():
    from llm_lessons import resources as pretrained
    from llm_lessons.files import resource_path
    from llm_lessons.training import evaluate

    model, tok = pretrained.load_gpt_shakespeare()
    path = resource_path(pretrained.GPT_SHAKESPEARE)
    recorded = checkpoint.load_metadata(path)["extra"]["training"]
    data_tok, _, val_ids = pretrained.shakespeare_char_data()
    assert tok.chars == data_tok.chars
    assert recorded["val_loss"] <= 2.0 and recorded["val_loss_all"] <= 2.05
    loss = evaluate(model, val_ids[: recorded["val_slice_chars"]])
    assert loss <= recorded["val_loss_slice"] + 1e-3
    assert loss < 2.2  # far below the bigram's ~2.49 on this text
