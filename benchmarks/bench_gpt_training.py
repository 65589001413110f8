"""Training speed of our GPT: throughput against Hugging Face GPT-2, and time to val loss 2.0.

Usage:  .venv/bin/python benchmarks/bench_gpt_training.py [--threads 2] [--steps 60] [--skip-recipes]

1. Throughput: our GPT and ``transformers.GPT2LMHeadModel`` with the same configuration (the
   nano preset on character Shakespeare) train side by side in one process on the same batches
   with the same AdamW settings, one step each in turn, so machine load hits both alike. Printed:
   median step time, tokens/s, and their ratio (> 1 means ours is faster).
2. Time to validation loss 2.0: TrainConfig()'s defaults (3.2's recipe before the speedrun of
   chapter 8.9; benchmarks/speedrun.py races today's), then nanoGPT's README
   CPU recipe (batch 12, lr 1e-3) in the same loop, each in a fresh subprocess (so each peak
   memory is its own), stopping at the first evaluation <= 2.0. Printed: steps, tokens, training
   seconds (evaluation excluded) and CPU seconds, peak resident memory.

A benchmark, not a test: timings depend on the machine and its load. The step counts are
deterministic.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from common import interleaved_training_steps, peak_rss_mib

RECIPES = {  # name -> overrides of TrainConfig()'s defaults (3.2's recipe before the speedrun)
    "ours (book defaults)": {},
    "ours, bf16 autocast": {"dtype": "bfloat16"},
    "nanoGPT README CPU recipe": {"batch_size": 12, "lr": 1e-3, "warmup_steps": 100, "max_steps": 2000},
}


def throughput(steps: int) -> None:
    from transformers import GPT2LMHeadModel

    from llm_lessons.gpt import GPT, GPTConfig
    from llm_lessons.interop.gpt2 import gpt2_config
    from llm_lessons.resources import shakespeare_char_data
    from llm_lessons.training import TrainConfig, make_optimizer, random_windows

    tok, train_ids, _ = shakespeare_char_data()
    cfg = GPTConfig.preset("nano", vocab_size=tok.vocab_size)
    tcfg = TrainConfig()  # the recipe before the speedrun (chapter 8.9): AdamW, batch 8
    torch.manual_seed(0)
    ours = GPT(cfg)
    hf = GPT2LMHeadModel(gpt2_config(cfg))

    def hf_loss(x, y):  # the same next-token loss, computed from HF's logits on our targets
        logits = hf(input_ids=x).logits  # (B, T, V)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    runs = {"ours": (ours, lambda x, y: ours(x, y)[1]), "HF GPT2LMHeadModel": (hf, hf_loss)}
    opts = {name: make_optimizer(model, tcfg) for name, (model, _) in runs.items()}
    gen = torch.Generator().manual_seed(0)
    wall, cpu = interleaved_training_steps(
        runs, opts, lambda: random_windows(train_ids, tcfg.batch_size, cfg.block_size, gen), steps,
        tcfg.grad_clip)
    tokens = tcfg.batch_size * cfg.block_size
    print(f"== throughput: nano GPT ({ours.num_params():,} parameters), batch {tcfg.batch_size} x "
          f"{cfg.block_size}, {steps} interleaved steps each (first 5 dropped), "
          f"{torch.get_num_threads()} threads")
    median = {name: statistics.median(ts[5:]) for name, ts in wall.items()}
    median_cpu = {name: statistics.median(ts[5:]) for name, ts in cpu.items()}
    for name, m in median.items():
        print(f"{name:>20}: {m * 1e3:6.1f} ms/step  {tokens / m:8.0f} tokens/s   "
              f"(CPU time {median_cpu[name] * 1e3:6.1f} ms/step)")
    hf = "HF GPT2LMHeadModel"
    print(f"{'ratio':>20}: ours is {median[hf] / median['ours']:.2f}x the speed of HF per step "
          f"(CPU time: {median_cpu[hf] / median_cpu['ours']:.2f}x)")
    print(f"{'peak RSS':>20}: {peak_rss_mib():.0f} MiB (both models in one process)")


def time_to_target(name: str, target: float) -> dict:
    from llm_lessons import set_seed
    from llm_lessons.gpt import GPT, GPTConfig
    from llm_lessons.resources import shakespeare_char_data
    from llm_lessons.training import TrainConfig, train

    tok, train_ids, val_ids = shakespeare_char_data()
    set_seed(0)
    model = GPT(GPTConfig.preset("nano", vocab_size=tok.vocab_size))
    config = TrainConfig(**RECIPES[name], progress=False)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    hist = train(model, train_ids, val_ids, config, callback=lambda h: h.val_loss[-1] <= target)
    return {"recipe": name, "batch": config.batch_size, "lr": config.lr, "steps": hist.steps[-1],
            "tokens": hist.tokens[-1], "val": round(hist.val_loss[-1], 3), "train_s": hist.seconds[-1],
            "wall_s": time.perf_counter() - wall0, "cpu_s": time.process_time() - cpu0,
            "peak_mib": peak_rss_mib(), "reached": hist.val_loss[-1] <= target}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=60, help="interleaved throughput steps")
    parser.add_argument("--target", type=float, default=2.0)
    parser.add_argument("--skip-recipes", action="store_true", help="throughput comparison only")
    parser.add_argument("--only", help=argparse.SUPPRESS)  # internal: run one recipe, print JSON
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.only:
        print(json.dumps(time_to_target(args.only, args.target)))
        return
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs visible, load average "
          f"{os.getloadavg()[0]:.1f} at start")
    throughput(args.steps)
    if args.skip_recipes:
        return
    print(f"== time to validation loss <= {args.target} (character Shakespeare, split by plays; "
          f"evaluation every 100 steps on 16k fixed validation tokens, excluded from train_s)")
    results = []
    for name in RECIPES:
        out = subprocess.run([sys.executable, __file__, "--only", name, "--threads", str(args.threads),
                              "--target", str(args.target)], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(r)
        status = "reached" if r["reached"] else "NOT reached"
        print(f"{name:>28}: {status} val {r['val']:.3f} at step {r['steps']:4d} ({r['tokens'] / 1e6:.2f}M "
              f"tokens, batch {r['batch']}, lr {r['lr']:g}) in {r['train_s']:5.1f} s training "
              f"({r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU), peak {r['peak_mib']:.0f} MiB")
    base = results[-1]
    for r in results[:-1]:
        print(f"{r['recipe']:>28}: {base['steps'] / r['steps']:.2f}x fewer steps, "
              f"{base['train_s'] / r['train_s']:.2f}x less training time than the nanoGPT recipe")


if __name__ == "__main__":
    main()
