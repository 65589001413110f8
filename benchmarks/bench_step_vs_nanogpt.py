"""One training step of the book's GPT against a nanoGPT-shaped model and GPT2LMHeadModel.

Usage:  .venv/bin/python benchmarks/bench_step_vs_nanogpt.py [--threads 1 2] [--steps 60]

The shape is nanoGPT's README CPU run on character Shakespeare: 4 layers, 4 heads, 128
channels, block 64, batch 12, dropout 0, no biases. The reference is written here from
nanoGPT's published architecture (GPT-2's pre-norm block: LayerNorm, one c_attn Linear for
q, k, v, PyTorch's fused causal attention, c_proj, a 4C MLP with exact GELU, a tied output
head; N(0, 0.02) weights): the model a reader would compare the book's with. All three train
on the same batches with the same AdamW settings and gradient clipping, one step each in turn,
so machine load hits them alike. Printed per thread count: median step time and the ratios
(book / reference: below 1 means the book's step is faster). The book's GPT runs twice: with
GPT-2's tanh-approximated GELU (its default, for exact conversion to GPT-2) and with the exact
GELU that nanoGPT uses (``GPTConfig(activation="gelu")``): on CPUs the tanh form's kernels cost
about twice as much, most of the difference between the two models' steps.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics

import torch
import torch.nn.functional as F
from common import interleaved_training_steps
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


def compare(steps: int) -> dict[str, float]:
    from transformers import GPT2LMHeadModel

    from llm_lessons.gpt import GPT, GPTConfig
    from llm_lessons.interop.gpt2 import gpt2_config
    from llm_lessons.resources import shakespeare_char_data
    from llm_lessons.training import TrainConfig, make_optimizer, random_windows

    tok, train_ids, _ = shakespeare_char_data()
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=BLOCK, n_layer=N_LAYER, n_head=N_HEAD,
                    n_embd=N_EMBD, dropout=0.0, bias=False)
    torch.manual_seed(0)
    book, ref = GPT(cfg), RefGPT(tok.vocab_size)
    exact = GPT(GPTConfig(**{**cfg.to_dict(), "activation": "gelu"}))  # nanoGPT's non-linearity
    hf = GPT2LMHeadModel(gpt2_config(GPTConfig(**{**cfg.to_dict(), "bias": True})))

    def hf_loss(x, y):
        logits = hf(input_ids=x).logits  # (B, T, V)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    runs = {"book GPT": (book, lambda x, y: book(x, y)[1]),
            "book GPT, exact GELU": (exact, lambda x, y: exact(x, y)[1]), "nanoGPT-shaped": (ref, ref),
            "HF GPT2LMHeadModel": (hf, hf_loss)}
    tcfg = TrainConfig(lr=1e-3)
    opts = {name: make_optimizer(model, tcfg) for name, (model, _) in runs.items()}
    gen = torch.Generator().manual_seed(0)
    wall, _ = interleaved_training_steps(runs, opts, lambda: random_windows(train_ids, BATCH, BLOCK, gen),
                                         steps, tcfg.grad_clip)
    params = {name: sum(p.numel() for p in m.parameters()) for name, (m, _) in runs.items()}
    median = {name: statistics.median(ts[5:]) for name, ts in wall.items()}
    for name, m in median.items():
        print(f"  {name:>20}: {m * 1e3:6.1f} ms/step  ({params[name]:,} parameters)")
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs visible, load average {os.getloadavg()[0]:.1f}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        print(f"== {threads} thread(s), batch {BATCH} x {BLOCK}, {args.steps} interleaved steps "
              "(first 5 dropped)")
        median = compare(args.steps)
        for name in ("book GPT", "book GPT, exact GELU"):
            book = median[name]
            print(f"  {name}: {book / median['nanoGPT-shaped']:.3f} x nanoGPT-shaped, "
                  f"{book / median['HF GPT2LMHeadModel']:.3f} x HF  (below 1: the book is faster)")


if __name__ == "__main__":
    main()
