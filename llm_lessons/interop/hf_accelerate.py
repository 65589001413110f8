"""The book's training loop through Hugging Face ``accelerate``: the same steps, and the same
numbers, on one CPU, one GPU or several processes (7.3).

Shapes use fixed letters: B batch (per process), W processes, T time.

``accelerate`` asks for three changes to a plain PyTorch loop, and nothing else:

1. ``model, optimizer = accelerator.prepare(model, optimizer)`` moves the model to the
   accelerator's device and, when several processes run, wraps it for data parallelism (DDP);
2. ``accelerator.backward(loss)`` replaces ``loss.backward()`` (it scales the loss for mixed
   precision and gradient accumulation when those are on);
3. ``accelerator.clip_grad_norm_`` replaces ``torch.nn.utils.clip_grad_norm_`` (it unscales
   the gradients first).

:func:`train_loop` is the step of :func:`llm_lessons.training.train` written out with the
book's own pieces (:func:`~llm_lessons.training.random_windows`,
:func:`~llm_lessons.training.make_optimizer`, :func:`~llm_lessons.training.lr_at`); with
``accelerator=None`` it is the plain loop, with an ``Accelerator`` the same loop with those
three lines swapped. On one process both give the same losses, step for step. Launched on W
processes (``accelerate launch --num_processes 2`` or ``torchrun --nproc_per_node=2``), each
process keeps its slice of the same global batch of W * B windows (as in
:mod:`llm_lessons.frontiers.distributed`), and the gradient all-reduce makes the run equal to
one process with the global batch::

    torchrun --nproc_per_node=2 -m llm_lessons.interop.hf_accelerate --out run.json

>>> from llm_lessons.gpt import GPT, GPTConfig
>>> _ = torch.manual_seed(0)
>>> model = GPT(GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=8))
>>> config = TrainConfig(max_steps=3, batch_size=2, warmup_steps=1, progress=False)
>>> log = train_loop(model, torch.arange(40) % 5, config)   # the plain loop, no accelerate
>>> len(log.loss), [round(lr, 6) for lr in log.lr]   # warmup of 1 step, then the cosine
(3, [0.003, 0.003, 0.00165])
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from llm_lessons.configs import block_size_of
from llm_lessons.frontiers.distributed import sharded
from llm_lessons.reproducibility import model_device
from llm_lessons.training import BatchFn, TrainConfig, lr_at, make_optimizer, random_windows


@dataclass
class LoopLog:
    """Per optimizer step: the loss of the (global) batch, the gradient norm before clipping
    and the learning rate."""

    loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def train_loop(model: nn.Module, data: torch.Tensor, config: TrainConfig, accelerator=None,
               batch_fn: BatchFn | None = None) -> LoopLog:
    """Train ``model`` in place for ``config.max_steps`` steps on the 1-D token tensor ``data``.

    With ``accelerator`` (an ``accelerate.Accelerator``), the model and optimizer go through
    ``accelerator.prepare`` and the backward pass and clipping through the accelerator; on W
    processes each takes B = ``config.batch_size`` windows of a global batch of W * B, and the
    logged loss is the mean over the processes (the loss of the global batch). No evaluation,
    no checkpoints: :func:`llm_lessons.training.train` adds those around this same step.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if not (isinstance(data, torch.Tensor) and data.dim() == 1 and not data.is_floating_point()):
        raise TypeError("data must be a 1-D integer tensor of token ids")
    if accelerator is not None and not all(
            hasattr(accelerator, name) for name in ("prepare", "backward", "clip_grad_norm_")):
        raise TypeError(f"accelerator must be an accelerate.Accelerator or None, got "
                        f"{type(accelerator).__name__}")
    T = config.block_size or block_size_of(model)
    if len(data) < T + 1:
        raise ValueError(f"data has {len(data)} tokens: too few for one window of block_size "
                         f"{T} plus its shifted target (needs >= {T + 1})")
    batch_fn = batch_fn or random_windows
    gen = torch.Generator().manual_seed(config.seed)  # the same batches in every process
    optimizer = make_optimizer(model, config)
    if accelerator is None:
        device = model_device(model)
        backward, clip_grad_norm = torch.Tensor.backward, torch.nn.utils.clip_grad_norm_
    else:
        model, optimizer = accelerator.prepare(model, optimizer)  # DDP-wrapped when W > 1
        device, backward = accelerator.device, accelerator.backward
        clip_grad_norm = accelerator.clip_grad_norm_
        batch_fn = sharded(batch_fn, accelerator.process_index, accelerator.num_processes)
    clip = config.grad_clip if config.grad_clip > 0 else math.inf
    log = LoopLog()
    model.train()
    for step in range(config.max_steps):
        lr = lr_at(step, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = batch_fn(data, config.batch_size, T, gen)  # (B, T) each
        _, loss = model(x.to(device), y.to(device))
        optimizer.zero_grad(set_to_none=True)
        backward(loss)  # plain: loss.backward(); accelerate: also all-reduces across processes
        norm = clip_grad_norm(model.parameters(), clip)
        optimizer.step()
        mean_loss = loss.detach() if accelerator is None else accelerator.reduce(
            loss.detach(), reduction="mean")  # the global batch's loss: equal slices
        log.loss.append(float(mean_loss))
        log.grad_norm.append(float(norm))
        log.lr.append(lr)
    model.eval()
    return log


def main(argv: list[str] | None = None) -> None:
    """One process of a launch: a small GPT on two plays, the log (and weights) to ``--out``."""
    from accelerate import Accelerator  # noqa: PLC0415 (only the launched script needs it)
    from safetensors.torch import save_file  # noqa: PLC0415

    from llm_lessons.data import train_val_split  # noqa: PLC0415
    from llm_lessons.gpt import GPT, GPTConfig  # noqa: PLC0415
    from llm_lessons.tokenizers import CharTokenizer  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--global-batch", type=int, default=8)
    parser.add_argument("--plain", action="store_true", help="the loop without accelerate")
    parser.add_argument("--out", required=True, help="the log (JSON); weights beside it")
    args = parser.parse_args(argv)
    accelerator = None if args.plain else Accelerator(cpu=not torch.cuda.is_available())
    world = 1 if accelerator is None else accelerator.num_processes
    if args.global_batch % world:
        raise SystemExit(f"--global-batch {args.global_batch} must divide among {world} processes")
    split = train_val_split(names=["macbeth", "the-tempest"])
    tok = CharTokenizer.from_text(split.train + split.val)
    data = torch.tensor(tok.encode(split.train))
    torch.manual_seed(0)  # every process builds the same initial weights
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=2, n_head=2,
                          n_embd=32))
    config = TrainConfig(max_steps=args.steps, batch_size=args.global_batch // world,
                         warmup_steps=min(3, args.steps), progress=False)
    log = train_loop(model, data, config, accelerator)
    if accelerator is None or accelerator.is_main_process:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump({"world": world, **log.to_dict()}, f)
        weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
        save_file(weights, args.out.removesuffix(".json") + ".safetensors")
    if accelerator is not None:
        accelerator.wait_for_everyone()
        accelerator.end_training()


if __name__ == "__main__":
    main()
