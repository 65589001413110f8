"""Masked-LM costs: training throughput against Hugging Face BERT, and generation cost vs a GPT.

Usage:  .venv/bin/python benchmarks/bench_mlm.py [--threads 1] [--steps 40] [--length 48]

1. Throughput: our :class:`~llm_lessons.bert.MaskedLM` and ``transformers.BertForMaskedLM``
   with the same configuration (the nano preset on character Shakespeare) train side by side
   in one process, on the same masked batches with the same AdamW settings, one step each in
   turn, so machine load hits both alike. Printed: median step time, tokens/s, their ratio
   (> 1 means ours is faster) and peak memory.
2. Generation cost for the same output length: the MLM's iterative refinement (mask-predict,
   several iteration counts), the MLM generating left to right (one [MASK] appended per token,
   no cache possible), and a GPT of the same size generating left to right with its key-value
   cache. Printed: median wall time, forward passes, and positions processed. The cost does
   not depend on the weights, so the models are freshly initialised.

A benchmark, not a test: timings depend on the machine and on what else runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F
from common import interleaved_training_steps, peak_rss_mib

BATCH = 16


def throughput(steps: int) -> None:
    from transformers import BertForMaskedLM

    from llm_lessons.bert import BertConfig, MaskedLM
    from llm_lessons.interop.bert import hf_bert_config
    from llm_lessons.mlm_data import MaskedCharTokenizer, MaskedWindows
    from llm_lessons.resources import shakespeare_char_data
    from llm_lessons.training import TrainConfig, make_optimizer

    chars, train_ids, _ = shakespeare_char_data()
    tok = MaskedCharTokenizer(chars)
    cfg = BertConfig.preset("nano", vocab_size=tok.vocab_size)
    tcfg = TrainConfig(batch_size=BATCH)
    torch.manual_seed(0)
    ours = MaskedLM(cfg)
    hf = BertForMaskedLM(hf_bert_config(cfg, attn_implementation="sdpa"))

    def hf_loss(x, y):  # the same masked-token loss, from HF's logits on our labels
        logits = hf(input_ids=x).logits  # (B, T, V)
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), y.view(-1), ignore_index=-100)

    runs = {"ours": (ours, lambda x, y: ours(x, y)[1]), "HF BertForMaskedLM": (hf, hf_loss)}
    opts = {name: make_optimizer(model, tcfg) for name, (model, _) in runs.items()}
    batches = MaskedWindows(tok.mask_id, tok.vocab_size, tok.special_ids)
    gen = torch.Generator().manual_seed(0)
    wall, _ = interleaved_training_steps(
        runs, opts, lambda: batches(train_ids, BATCH, cfg.block_size, gen), steps, tcfg.grad_clip)
    tokens = BATCH * cfg.block_size
    print(f"== MLM training throughput: nano MaskedLM ({ours.num_params():,} parameters), batch "
          f"{BATCH} x {cfg.block_size}, {steps} interleaved steps each (first 5 dropped), "
          f"{torch.get_num_threads()} threads")
    median = {name: statistics.median(ts[5:]) for name, ts in wall.items()}
    for name, m in median.items():
        print(f"{name:>20}: {m * 1e3:6.1f} ms/step  {tokens / m:8.0f} tokens/s")
    print(f"{'ratio':>20}: ours is {median['HF BertForMaskedLM'] / median['ours']:.2f}x the speed of "
          f"HF per step")
    print(f"{'peak RSS':>20}: {peak_rss_mib():.0f} MiB (both models in one process)")


def generation_cost(length: int, repeats: int) -> None:
    from llm_lessons.bert import BertConfig, MaskedLM
    from llm_lessons.gpt import GPT, GPTConfig
    from llm_lessons.mlm_decoding import iterative_refinement, prefix_constrained

    V, mask_id = 77, 74
    torch.manual_seed(0)
    bert = MaskedLM(BertConfig.preset("nano", vocab_size=V)).eval()
    gpt = GPT(GPTConfig.preset("nano", vocab_size=V)).eval()
    prompt = torch.tensor([[1]])
    cases = {f"MLM iterative, {i} iterations": (lambda i=i: iterative_refinement(
        bert, length, i, mask_id), i, i * length) for i in (1, 4, 10, length)}
    cases["MLM left to right (no cache)"] = (
        lambda: prefix_constrained(bert, prompt[0], length - 1, mask_id), length - 1,
        sum(range(2, length + 1)))
    cases["GPT left to right (KV cache)"] = (
        lambda: gpt.generate(prompt, length - 1, greedy=True), length - 1, length - 1)
    print(f"\n== generation cost for {length} tokens (batch 1, greedy, {torch.get_num_threads()} "
          f"threads, median of {repeats})")
    times = {}
    for name, (fn, _, _) in cases.items():
        fn()  # warm-up
        times[name] = statistics.median(_timed(fn) for _ in range(repeats))
    gpt_time = times["GPT left to right (KV cache)"]
    print(f"{'method':>32}  {'ms':>7}  {'forwards':>8}  {'positions':>9}  {'x GPT':>6}")
    for name, (_, forwards, positions) in cases.items():
        print(f"{name:>32}  {times[name] * 1e3:7.1f}  {forwards:8d}  {positions:9d}  "
              f"{times[name] / gpt_time:6.2f}")


def _timed(fn) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=40, help="interleaved training steps")
    parser.add_argument("--length", type=int, default=48, help="generated tokens")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs visible, load average "
          f"{os.getloadavg()[0]:.1f} at start")
    throughput(args.steps)
    generation_cost(args.length, args.repeats)


if __name__ == "__main__":
    main()
