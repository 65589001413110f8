"""Generation speed with and without the key-value cache, at several sequence lengths.

Usage:  .venv/bin/python benchmarks/bench_generation.py [--threads 2] [--lengths 64 256 1024]
        [--block-size 1024] [--batch 1]

The model has the nano GPT's shape (4 layers, 4 heads, 128 channels, 81 characters) with its
context stretched to ``--block-size`` (the last length is the model's full context), random
weights (speed does not depend on them). Each run starts from a one-token prompt and
generates up to the given total length greedily; tokens/s counts new tokens of all rows.
Without the cache, step t re-runs the whole prefix (O(t) tokens, O(t^2) attention); with it,
step t feeds one token and attends to t cached keys. Cached and uncached runs are interleaved
in one process after one warm-up run each (PyTorch's first pass at every new shape is slow),
so the printed ratio compares like with like; their tokens are checked to be identical.
On a machine shared with other jobs, ``--threads 1`` gives far steadier numbers: single-token
steps are tiny, and two OpenMP threads competing for busy cores mostly wait for each other.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from llm_lessons.gpt import GPT, GPTConfig
from llm_lessons.sampling import generate


def time_generation(model: GPT, length: int, batch: int, use_cache: bool) -> tuple[float, torch.Tensor]:
    prompt = torch.zeros(batch, 1, dtype=torch.long)
    start = time.perf_counter()
    out = generate(model, prompt, length - 1, greedy=True, use_cache=use_cache)
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--block-size", type=int, default=0, help="0: the largest length")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per length (median)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    block = args.block_size or max(args.lengths)
    if max(args.lengths) > block:
        parser.error(f"lengths must not exceed --block-size {block}")
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("nano", vocab_size=81, block_size=block)).eval()
    print(f"nano GPT shape, block_size={block}, {model.num_params() / 1e6:.2f}M parameters, "
          f"batch {args.batch}, greedy, float32, {args.threads} thread(s), torch {torch.__version__}")
    print(f"{'length':>7} {'cached tok/s':>13} {'uncached tok/s':>15} {'speed-up':>9}")
    for length in args.lengths:
        for use_cache in (True, False):  # warm-up: the first pass at each new shape is slow
            time_generation(model, length, args.batch, use_cache)
        times: dict[bool, list[float]] = {True: [], False: []}
        outs = {}
        for _ in range(args.repeats):
            for use_cache in (True, False):
                seconds, outs[use_cache] = time_generation(model, length, args.batch, use_cache)
                times[use_cache].append(seconds)
        if not torch.equal(outs[True], outs[False]):
            raise AssertionError(f"cached and uncached generation differ at length {length}")
        rate = {c: args.batch * (length - 1) / statistics.median(t) for c, t in times.items()}
        print(f"{length:>7} {rate[True]:>13.0f} {rate[False]:>15.0f} {rate[True] / rate[False]:>8.1f}x")


if __name__ == "__main__":
    main()
