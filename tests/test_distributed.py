"""Data-parallel training (chapter 8): the book's loop under torchrun with 2 processes, DDP and
FSDP, equals the single-process run with the same global batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from llm_lessons.frontiers.distributed import communication_per_step, sharded
from llm_lessons.gpt import GPT, GPTConfig
from llm_lessons.training import random_windows

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["--plays", "macbeth,the-tempest", "--steps", "30", "--global-batch", "8", "--n-layer", "2",
        "--n-embd", "32"]


def _run(strategy: str, out: Path) -> tuple[dict, dict]:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
                if strategy != "none" else [sys.executable])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*launcher, "-m", "llm_lessons.frontiers.distributed", "--strategy", strategy,
                           *ARGS, "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text()), load_file(str(out.with_suffix(".safetensors")))


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    return _run("none", tmp_path_factory.mktemp("single") / "run.json")


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_processes_train_exactly_like_one_with_the_global_batch(strategy, single, tmp_path):
    result, weights = _run(strategy, tmp_path / "run.json")
    reference, reference_weights = single
    assert result["world"] == 2 and result["steps"] == reference["steps"]
    for key in ("val_loss", "train_loss", "grad_norm"):  # the gradient norm is of the averaged gradient
        assert result[key] == pytest.approx(reference[key], abs=1e-5), key
    assert reference["val_loss"][-1] < reference["val_loss"][0] - 0.5  # and it did learn
    assert weights.keys() == reference_weights.keys()
    for name, tensor in reference_weights.items():  # 30 AdamW steps amplify rounding a little
        assert torch.allclose(weights[name], tensor, atol=2e-4), name


def test_each_process_takes_its_slice_of_the_same_global_batch():
    data = torch.arange(1000)
    x, y = random_windows(data, 6, 5, torch.Generator().manual_seed(3))
    parts = [sharded(random_windows, rank, 3)(data, 2, 5, torch.Generator().manual_seed(3))
             for rank in range(3)]
    assert torch.equal(torch.cat([p[0] for p in parts]), x)
    assert torch.equal(torch.cat([p[1] for p in parts]), y)
    with pytest.raises(ValueError, match="rank must be in"):
        sharded(random_windows, 2, 2)


def test_communication_volume_follows_the_ring_formulas():
    model = GPT(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=8))
    size = sum(p.numel() for p in model.parameters()) * 4  # float32, the tied matrix once
    assert communication_per_step(model, 2, "ddp") == size  # 2 (W-1)/W = 1 for W = 2
    assert communication_per_step(model, 4, "fsdp") == 3 * 3 * size // 4
