"""One training step of the book's GPT against a nanoGPT-shaped model and GPT2LMHeadModel.

Usage:  .venv/bin/python benchmarks/bench_step_vs_nanogpt.py [--threads 1 2] [--steps 60]
                                                             [--profile]

The shape is nanoGPT's README CPU run on character Shakespeare: 4 layers, 4 heads, 128
channels, block 64, batch 12, dropout 0, no biases. The reference is written here from
nanoGPT's published architecture (GPT-2's pre-norm block: LayerNorm, one c_attn Linear for
q, k, v, PyTorch's fused causal attention, c_proj, a 4C MLP with exact GELU, a tied output
head; N(0, 0.02) weights) and trains with nanoGPT's optimizer on a CPU: AdamW with weight
decay on matrices only, PyTorch's default ``foreach`` kernels (nanoGPT takes the fused kernel
only on CUDA). All models train on the same batches with the same AdamW settings and gradient
clipping, one step each in turn, so machine load hits them alike.

The book's GPT runs as chapter 3.2's recipe builds it (the speedrun's record,
``RECIPES["speedrun"]``: the exact GELU) with ``TrainConfig.preset("nano")``'s fused AdamW
kernel. Every model here steps with AdamW, so the step compares models; Muon's extra cost in
3.2's recipe is on the record table's clock (``benchmarks/speedrun.py``). Two variants that
take the difference apart: GPT-2's tanh GELU (the shipped model's activation, exact for GPT-2
conversion, twice the CPU cost) and nanoGPT's foreach AdamW (then the same computation as the
reference: its ratio is the noise floor). Printed per thread count: median step time and the
ratios (book / reference: below 1 means the book's step is faster). ``--profile`` adds
torch.profiler's top operators per model.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics

import torch
import torch.nn.functional as F
from common import interleaved_training_steps, training_step
from torch import nn

N_LAYER, N_HEAD, N_EMBD, BLOCK, BATCH = 4, 4, 128, 64, 12


class RefBlock(nn.Module):
    """GPT-2's block as nanoGPT writes it, without biases."""

    def __init__(self, C: int, nh: int):
        super().__init__()
        self.nh = nh
        self.ln_1, self.ln_2 = nn.LayerNorm(C, bias=False), nn.LayerNorm(C, bias=False)
        self.c_attn = nn.Linear(C, 3 * C, bias=False)
        self.attn_proj = nn.Linear(C, C, bias=False)
        self.c_fc = nn.Linear(C, 4 * C, bias=False)
        self.mlp_proj = nn.Linear(4 * C, C, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)  # (B, T, C) each
        q, k, v = (t.view(B, T, self.nh, C // self.nh).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn_proj(y.transpose(1, 2).contiguous().view(B, T, C))  # (B, nh, T, hs) -> (B, T, C)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class RefGPT(nn.Module):
    def __init__(self, vocab: int):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, N_EMBD), nn.Embedding(BLOCK, N_EMBD)
        self.blocks = nn.ModuleList(RefBlock(N_EMBD, N_HEAD) for _ in range(N_LAYER))
        self.ln_f = nn.LayerNorm(N_EMBD, bias=False)
        self.lm_head = nn.Linear(N_EMBD, vocab, bias=False)
        self.lm_head.weight = self.wte.weight
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * N_LAYER) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(p, std=std)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T))  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))  # (B, T, V)
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)


def compare(steps: int) -> tuple[dict[str, float], dict, dict, object]:
    from transformers import GPT2LMHeadModel

    from llm_lessons.frontiers.speedrun import RECIPES
    from llm_lessons.gpt import GPT, GPTConfig
    from llm_lessons.interop.gpt2 import gpt2_config
    from llm_lessons.resources import shakespeare_char_data
    from llm_lessons.training import TrainConfig, make_optimizer, random_windows

    tok, train_ids, _ = shakespeare_char_data()
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=BLOCK, n_layer=N_LAYER, n_head=N_HEAD,
                    n_embd=N_EMBD, dropout=0.0, bias=False, **RECIPES["speedrun"].model)
    tanh_cfg = GPTConfig(**{**cfg.to_dict(), "activation": "gelu_tanh"})  # GPT-2's, the shipped GPT's
    recipe = TrainConfig(**{**RECIPES["speedrun"].train, "lr": 1e-3})  # 3.2's fused AdamW
    nanogpt = TrainConfig(lr=1e-3, fused=False)  # nanoGPT on a CPU: foreach AdamW
    torch.manual_seed(0)
    models = {"book GPT (3.2's recipe)": (GPT(cfg), recipe),
              "book, GPT-2's tanh GELU": (GPT(tanh_cfg), recipe),
              "book, foreach AdamW": (GPT(cfg), nanogpt),
              "nanoGPT-shaped": (RefGPT(tok.vocab_size), nanogpt),
              "HF GPT2LMHeadModel": (GPT2LMHeadModel(gpt2_config(GPTConfig(**{**cfg.to_dict(),
                                                                             "bias": True}))),
                                     nanogpt)}

    def loss_fn(name, model):
        if name == "nanoGPT-shaped":
            return model
        if name.startswith("HF"):
            def hf_loss(x, y):
                logits = model(input_ids=x).logits  # (B, T, V)
                return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            return hf_loss
        return lambda x, y: model(x, y)[1]

    runs = {name: (model, loss_fn(name, model)) for name, (model, _) in models.items()}
    opts = {name: make_optimizer(model, tcfg) for name, (model, tcfg) in models.items()}
    gen = torch.Generator().manual_seed(0)
    wall, _ = interleaved_training_steps(runs, opts, lambda: random_windows(train_ids, BATCH, BLOCK, gen),
                                         steps, recipe.grad_clip)
    params = {name: sum(p.numel() for p in m.parameters()) for name, (m, _) in runs.items()}
    median = {name: statistics.median(ts[5:]) for name, ts in wall.items()}
    for name, m in median.items():
        print(f"  {name:>26}: {m * 1e3:6.1f} ms/step  ({params[name]:,} parameters)")
    return median, runs, opts, lambda: random_windows(train_ids, BATCH, BLOCK, gen)


def profile(runs: dict, opts: dict, batch_fn, names: tuple[str, ...], grad_clip: float,
            steps: int = 20) -> None:
    """torch.profiler's operators by self CPU time, for each named model (after a warm-up)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    for name in names:
        model, loss_fn = runs[name]
        for _ in range(5):
            training_step(model, loss_fn, opts[name], *batch_fn(), grad_clip)
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                training_step(model, loss_fn, opts[name], *batch_fn(), grad_clip)
        print(f"  -- {name}: top operators, self CPU time over {steps} steps")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--profile", action="store_true", help="torch.profiler tables too")
    args = parser.parse_args()
    from llm_lessons.reproducibility import numeric_fingerprint

    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs visible ({numeric_fingerprint()['cpu']}), "
          f"load average {os.getloadavg()[0]:.1f}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        print(f"== {threads} thread(s), batch {BATCH} x {BLOCK}, {args.steps} interleaved steps "
              "(first 5 dropped)")
        median, runs, opts, batch_fn = compare(args.steps)
        ref, hf = median["nanoGPT-shaped"], median["HF GPT2LMHeadModel"]
        for name in [n for n in median if n.startswith("book")]:
            print(f"  {name:>26}: {median[name] / ref:.3f} x nanoGPT-shaped, "
                  f"{median[name] / hf:.3f} x HF  (below 1: the book is faster)")
        if args.profile:
            profile(runs, opts, batch_fn, ("book GPT (3.2's recipe)", "book, GPT-2's tanh GELU",
                                             "nanoGPT-shaped"), grad_clip=1.0)


if __name__ == "__main__":
    main()
