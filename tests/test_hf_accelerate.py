"""The book's training loop through ``accelerate`` (7.3): on one process it is the plain loop
bit for bit (and the plain loop is the book's ``train``); on two processes launched with
torchrun (gloo, CPU) it equals one process training on the combined batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from llm_lessons.gpt import GPT, GPTConfig
from llm_lessons.interop.hf_accelerate import train_loop
from llm_lessons.training import TrainConfig, train

ROOT = Path(__file__).resolve().parent.parent
DATA = torch.arange(3000) * 7 % 13  # a periodic text: the loss must fall


def _model() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=13, block_size=16, n_layer=2, n_head=2, n_embd=32))


CONFIG = TrainConfig(max_steps=12, batch_size=4, warmup_steps=3, eval_interval=12,
                     eval_batches=1, eval_batch_size=4, progress=False)


def test_one_process_through_accelerate_equals_the_plain_loop_bit_for_bit():
    from accelerate import Accelerator

    plain_model, accel_model = _model(), _model()
    plain = train_loop(plain_model, DATA, CONFIG)
    accel = train_loop(accel_model, DATA, CONFIG, Accelerator(cpu=True))
    assert plain.loss == accel.loss and plain.grad_norm == accel.grad_norm
    for p, q in zip(plain_model.parameters(), accel_model.parameters(), strict=True):
        assert torch.equal(p, q)
    assert plain.loss[-1] < plain.loss[0] - 0.3  # and it learns


def test_the_plain_loop_is_the_books_train_step_for_step():
    a, b = _model(), _model()
    log = train_loop(a, DATA, CONFIG)
    history = train(b, DATA, DATA, CONFIG)
    assert history.step_loss == log.loss and history.lr == log.lr
    assert history.grad_norm == pytest.approx(log.grad_norm, rel=1e-6)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_bad_input_is_refused():
    with pytest.raises(TypeError, match="nn.Module"):
        train_loop("gpt", DATA, CONFIG)
    with pytest.raises(TypeError, match="TrainConfig"):
        train_loop(_model(), DATA, {"max_steps": 1})
    with pytest.raises(TypeError, match="1-D integer"):
        train_loop(_model(), DATA.float(), CONFIG)
    with pytest.raises(TypeError, match="Accelerator"):
        train_loop(_model(), DATA, CONFIG, accelerator="cpu")
    with pytest.raises(ValueError, match="too few"):
        train_loop(_model(), DATA[:10], CONFIG)


def _launch(tmp_path: Path, processes: int) -> tuple[dict, dict]:
    out = tmp_path / f"run{processes}.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
                 f"--nproc_per_node={processes}"] if processes > 1 else [sys.executable])
    extra = [] if processes > 1 else ["--plain"]
    done = subprocess.run([*launcher, "-m", "llm_lessons.interop.hf_accelerate", "--steps", "8",
                           "--global-batch", "8", *extra, "--out", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text()), load_file(str(out.with_suffix(".safetensors")))


def test_two_processes_through_accelerate_train_like_one_with_the_combined_batch(tmp_path):
    one, one_weights = _launch(tmp_path, 1)
    two, two_weights = _launch(tmp_path, 2)
    assert (one["world"], two["world"]) == (1, 2)
    assert two["loss"] == pytest.approx(one["loss"], abs=1e-5)  # the global batch's loss
    assert two["grad_norm"] == pytest.approx(one["grad_norm"], abs=1e-5)  # of the averaged gradient
    assert one["loss"][-1] < one["loss"][0]
    for name, tensor in one_weights.items():
        assert torch.allclose(two_weights[name], tensor, atol=1e-4), name
