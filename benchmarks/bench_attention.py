"""Explicit attention (ours) vs PyTorch's fused kernel: forward+backward time and peak memory.

Usage:  .venv/bin/python benchmarks/bench_attention.py [--threads 1] [--lengths 64 256 1024]

Shapes follow the nano GPT (B=8 sequences, nh=4 heads of hs=32), causal self-attention in
float32 on the CPU. Both run in the same process, interleaved, so the printed ratio compares
like with like; absolute times depend on the machine and on what else runs. Peak memory is
the growth of the maximum resident set size during one forward+backward, each measured in a
fresh subprocess (``--one``), next to the (B, nh, T, T) float32 weights the explicit version
must store for the backward pass.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from common import peak_rss_mib

from llm_lessons.attention import causal_mask, scaled_dot_product_attention

B, NH, HS = 8, 4, 32


def inputs(T: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(T)
    return [torch.randn(B, NH, T, HS, generator=g, requires_grad=True) for _ in range(3)]  # (B, nh, T, hs)


def step(kind: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> None:
    if kind == "explicit":
        out, _ = scaled_dot_product_attention(q, k, v, mask=mask)
    else:
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    out.sum().backward()
    q.grad = k.grad = v.grad = None


def time_both(T: int, repeats: int) -> dict[str, float]:
    """Median seconds per forward+backward, the two kinds interleaved repeat by repeat."""
    q, k, v = inputs(T)
    mask = causal_mask(T)
    times: dict[str, list[float]] = {"explicit": [], "fused": []}
    for kind in times:  # warm-up
        step(kind, q, k, v, mask)
    for _ in range(repeats):
        for kind, record in times.items():
            start = time.perf_counter()
            step(kind, q, k, v, mask)
            record.append(time.perf_counter() - start)
    return {kind: statistics.median(record) for kind, record in times.items()}


def peak_growth_mib(kind: str, T: int, threads: int) -> float:
    """Run one forward+backward in a fresh interpreter; return its max-RSS growth in MiB."""
    done = subprocess.run([sys.executable, __file__, "--one", kind, str(T), "--threads", str(threads)],
                          capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


def one(kind: str, T: int) -> None:
    q, k, v = inputs(T)
    mask = causal_mask(T)
    before = peak_rss_mib()
    step(kind, q, k, v, mask)
    print(peak_rss_mib() - before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--repeats", type=int, default=0, help="0: chosen per length")
    parser.add_argument("--one", nargs=2, metavar=("KIND", "T"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.one:
        one(args.one[0], int(args.one[1]))
        return
    print(f"causal self-attention, B={B}, nh={NH}, hs={HS}, float32, {args.threads} thread(s), "
          f"torch {torch.__version__}")
    print(f"{'T':>6} {'explicit ms':>12} {'fused ms':>10} {'ratio':>6} {'weights MiB':>12} "
          f"{'peak+ explicit MiB':>19} {'peak+ fused MiB':>16}")
    for T in args.lengths:
        repeats = args.repeats or max(5, min(50, 200_000 // (T * T) + 5))
        t = time_both(T, repeats)
        weights_mib = B * NH * T * T * 4 / 2**20
        mem = {kind: peak_growth_mib(kind, T, args.threads) for kind in ("explicit", "fused")}
        print(f"{T:>6} {t['explicit'] * 1e3:>12.2f} {t['fused'] * 1e3:>10.2f} "
              f"{t['explicit'] / t['fused']:>6.2f} {weights_mib:>12.1f} {mem['explicit']:>19.1f} "
              f"{mem['fused']:>16.1f}")


if __name__ == "__main__":
    main()
