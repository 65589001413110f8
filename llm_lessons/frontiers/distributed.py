"""Training across processes with ``torch.distributed``: the book's loop, unchanged, under DDP or
FSDP, launched with ``torchrun``.

Shapes use fixed letters: B batch (per process), W processes (the "world"), T time.

**Data parallelism.** W processes each hold the model and each take B windows of a global batch
of W * B. After the backward pass the gradients are averaged over the processes (an
*all-reduce*), so every copy takes the same optimizer step and the copies never drift apart: the
run is the single-process run with the global batch, computed W ways at once.

- **DDP** (``DistributedDataParallel``) keeps a whole copy of the weights, gradients and
  optimizer state in every process, and all-reduces the gradients during the backward pass.
- **FSDP** (``fully_shard``, ZeRO stage 3) keeps only 1/W of each in each process, all-gathers a
  layer's weights just before it runs (forward and backward) and reduce-scatters its gradients:
  the memory of one copy, spread over W processes, for about 1.5 times DDP's traffic.

Nothing in :func:`llm_lessons.training.train` changes: every process draws the same global batch
from the same seeded generator and keeps its own slice (:func:`sharded`), and evaluates the
whole fixed evaluation set itself. Run it as::

    torchrun --nproc_per_node=2 -m llm_lessons.frontiers.distributed --strategy ddp --out run.json

on one machine (CPU: the ``gloo`` backend; GPUs: ``nccl``), or on several machines with
``--nnodes=2 --rdzv-backend=c10d --rdzv-endpoint=HOST:29500 --rdzv-id=JOB`` (the same command
on every machine: the rendezvous hands out the ranks).

>>> data = torch.arange(100)
>>> x0, _ = sharded(random_windows, rank=0, world=2)(data, 2, 4, torch.Generator().manual_seed(0))
>>> x, _ = random_windows(data, 4, 4, torch.Generator().manual_seed(0))   # the global batch
>>> torch.equal(x0, x[:2])
True
"""

from __future__ import annotations

import argparse
import json
import os

import torch
from torch import nn

from llm_lessons.training import BatchFn, TrainConfig, random_windows, train


def sharded(batch_fn: BatchFn, rank: int, world: int) -> BatchFn:
    """A batch function that draws the global batch (``world`` times the batch size) and keeps
    this process's contiguous slice: all processes advance their generators identically."""
    if not 0 <= rank < world:
        raise ValueError(f"rank must be in [0, world), got rank={rank}, world={world}")

    def draw(data, batch_size, block_size, generator):
        x, y = batch_fn(data, batch_size * world, block_size, generator)  # (W*B, T) each
        return x[rank * batch_size:(rank + 1) * batch_size], y[rank * batch_size:(rank + 1) * batch_size]

    return draw


def communication_per_step(model: nn.Module, world: int, strategy: str) -> int:
    """Bytes each process sends per optimizer step, with ring collectives (the usual schedule).

    A ring all-reduce of S bytes sends 2 (W-1)/W * S per process (a reduce-scatter, then an
    all-gather); DDP all-reduces the gradients once. FSDP all-gathers the weights twice
    (forward, and again in backward, having freed them) and reduce-scatters the gradients once:
    3 (W-1)/W * S.
    """
    size = sum(p.numel() * p.element_size() for p in model.parameters())  # a tied matrix once
    per_collective = (world - 1) * size // world
    return {"ddp": 2 * per_collective, "fsdp": 3 * per_collective}[strategy]


def wrap(model: nn.Module, strategy: str) -> nn.Module:
    """The model ready for data-parallel training; the process group must exist."""
    if strategy == "ddp":
        return nn.parallel.DistributedDataParallel(model)
    if strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard  # noqa: PLC0415 (only FSDP needs it)

        for block in model.blocks:  # one unit per block: only one block's weights whole at a time
            fully_shard(block)
        return fully_shard(model)  # the rest (embeddings, final norm, tied head) as the root unit
    raise ValueError(f"strategy must be 'ddp' or 'fsdp', got {strategy!r}")


def gathered_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every weight whole, whatever the wrapper (FSDP's shards are gathered), by the plain names."""
    state = {}
    for name, value in model.state_dict().items():
        if hasattr(value, "full_tensor"):  # an FSDP shard (a DTensor)
            value = value.full_tensor()
        state[name.removeprefix("module.")] = value.detach().clone()
    return state


def _data(plays: list[str] | None) -> tuple[torch.Tensor, torch.Tensor, int]:
    from llm_lessons.data import train_val_split  # noqa: PLC0415 (the corpus, only when run)
    from llm_lessons.tokenizers import CharTokenizer  # noqa: PLC0415

    split = train_val_split(names=plays)
    tok = CharTokenizer.from_text(split.train + split.val)
    return torch.tensor(tok.encode(split.train)), torch.tensor(tok.encode(split.val)), tok.vocab_size


def main(argv: list[str] | None = None) -> None:
    """One process of a torchrun launch (or the single-process reference with ``--strategy none``)."""
    import torch.distributed as dist  # noqa: PLC0415

    from llm_lessons.gpt import GPT, GPTConfig  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", choices=["ddp", "fsdp", "none"], default="ddp")
    parser.add_argument("--plays", default=None, help="comma-separated play names (default: all)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--global-batch", type=int, default=16)
    parser.add_argument("--preset", default="nano")
    parser.add_argument("--n-layer", type=int, default=None, help="override the preset's depth")
    parser.add_argument("--n-embd", type=int, default=None, help="override the preset's width")
    parser.add_argument("--out", default=None,
                        help="write the history (JSON) here, and the final weights beside it (.safetensors)")
    args = parser.parse_args(argv)
    distributed = args.strategy != "none"
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)  # one GPU per process, chosen before NCCL starts
    if distributed:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    if args.global_batch % world:
        raise SystemExit(f"--global-batch {args.global_batch} must divide among {world} processes")
    train_ids, val_ids, vocab = _data(args.plays.split(",") if args.plays else None)
    sizes = {k: v for k, v in (("n_layer", args.n_layer), ("n_embd", args.n_embd)) if v is not None}
    torch.manual_seed(0)  # every process builds the same initial weights
    model = GPT(GPTConfig.preset(args.preset, vocab_size=vocab, **sizes))
    if torch.cuda.is_available():
        model = model.to(f"cuda:{local_rank}")
    run = TrainConfig(max_steps=args.steps, batch_size=args.global_batch // world,
                      block_size=model.block_size, warmup_steps=min(10, args.steps),
                      eval_interval=max(1, args.steps // 4),
                      eval_batches=2, eval_batch_size=16, sample_interval=0, progress=False)
    wrapped = wrap(model, args.strategy) if distributed else model
    history = train(wrapped, train_ids, val_ids, run, eval_batch_fn=random_windows,
                    batch_fn=sharded(random_windows, rank, world) if distributed else None)
    state = gathered_state(wrapped)
    if rank == 0 and args.out:
        from safetensors.torch import save_file  # noqa: PLC0415

        result = {"strategy": args.strategy, "world": world, "steps": history.steps,
                  "val_loss": history.val_loss, "train_loss": history.train_loss,
                  "grad_norm": history.grad_norm, "seconds": history.seconds,
                  "bytes_per_step": communication_per_step(model, world, args.strategy)
                  if distributed else 0}
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(result, f)
        weights = os.path.splitext(args.out)[0] + ".safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, weights)
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
