"""The ablation table of notebook 8.2: GPT's block turned into Llama's, one change at a time.

Usage:  .venv/bin/python scripts/modern_ablation.py [--steps N] [--seeds 0 1] [--rows gpt llama]
Writes llm_lessons/resources/modern_ablation.csv (one line per row and seed) and
modern_ablation.json (settings, seconds, CPU fingerprint, torch version). CPU, one thread:
the shipped table (7 rows x 2 seeds) took 13 minutes on a busy 2-core machine.

Every row has the nano shape (4 layers, 4 heads, 128 channels, 64 positions), trains on the same
tokens (``steps`` x ``batch_size`` x 64 characters of character Shakespeare, by-play split) with
the same optimiser and schedule, and is scored on the same validation windows. The rows are
cumulative, from GPT-2's block to Llama's:

==========  ===============================================================================
gpt         the book's GPT: LayerNorm, GELU MLP (4C), learned positions, tied head, biases
+rmsnorm    every LayerNorm replaced by RMSNorm
+swiglu     and every MLP by SwiGLU, hidden (2/3)(4C) rounded to 352
+rope       ModernGPT, nkv = nh, tied head: RoPE instead of learned positions, no biases
+gqa        and 2 key/value heads for 4 query heads
llama       and an untied output head: ``ModernConfig.preset("nano")``, Llama's full recipe
moe         llama with 4 SwiGLU experts of hidden 176, top-2: the same *active* parameters
            and FLOPs per token as llama, twice its feed-forward parameters
==========  ===============================================================================
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import pathlib
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from llm_lessons import set_seed  # noqa: E402
from llm_lessons.files import write_atomic  # noqa: E402
from llm_lessons.frontiers.layers import RMSNorm, SwiGLU  # noqa: E402
from llm_lessons.frontiers.modern_gpt import ModernConfig, ModernGPT  # noqa: E402
from llm_lessons.gpt import GPT, GPTConfig  # noqa: E402
from llm_lessons.reproducibility import numeric_fingerprint  # noqa: E402
from llm_lessons.resources import shakespeare_char_data  # noqa: E402
from llm_lessons.training import TrainConfig, train  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "llm_lessons" / "resources" / "modern_ablation.csv"
ROWS = ("gpt", "+rmsnorm", "+swiglu", "+rope", "+gqa", "llama", "moe")
#: Training settings shared by every row (the notebook re-runs one row with these).
SETTINGS = dict(steps=400, check_step=100, batch_size=16, lr=3e-3, warmup_steps=50, eval_batches=2,
                eval_batch_size=64)
FIELDS = ("row", "seed", "val_loss", "train_loss", "val_loss_at_check", "params", "active_params",
          "flops_per_token", "kv_bytes_per_token", "seconds")


def build(row: str, vocab_size: int) -> torch.nn.Module:
    """The untrained model of one row (initialised from the global RNG)."""
    if row not in ROWS:
        raise ValueError(f"unknown row {row!r}; the rows are {ROWS}")
    if row in ("gpt", "+rmsnorm", "+swiglu"):
        model = GPT(GPTConfig.preset("nano", vocab_size=vocab_size))
        if row != "gpt":
            for block in model.blocks:
                block.ln_1, block.ln_2 = RMSNorm(128), RMSNorm(128)
            model.ln_f = RMSNorm(128)
        if row == "+swiglu":
            for block in model.blocks:
                block.mlp = SwiGLU(128)
                torch.nn.init.normal_(block.mlp.gate.weight, std=0.02)
                torch.nn.init.normal_(block.mlp.up.weight, std=0.02)
                torch.nn.init.normal_(block.mlp.down.weight, std=0.02 / (2 * 4) ** 0.5)
        return model
    extra = {"+rope": dict(n_kv_head=4, tie_weights=True), "+gqa": dict(tie_weights=True),
             "llama": {}, "moe": dict(n_expert=4, expert_top_k=2, ffn_hidden=176)}[row]
    return ModernGPT(ModernConfig.preset("nano", vocab_size=vocab_size, **extra))


def counts(model: torch.nn.Module, T: int = 64) -> dict[str, int]:
    """Parameters, parameters active per token, training FLOPs per token and KV-cache bytes.

    Active parameters: every weight matrix a token multiplies (MoE: only k of the E experts, plus
    the router), the output head included even when tied, embeddings (look-ups) excluded.
    FLOPs per token: 6 x active + the attention scores and mixing, 6 x 2 x n_layer x T x C / 2
    (causal: half the T x T square on average), the usual estimate (Kaplan et al., 2020).
    """
    params = sum(p.numel() for p in model.parameters())
    active = 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            n = module.weight.numel() + (module.bias.numel() if module.bias is not None else 0)
            if ".experts." in name:
                cfg = model.config
                n = n * cfg.expert_top_k / cfg.n_expert
            active += n
    cfg = model.config
    flops = 6 * active + 6 * cfg.n_layer * T * cfg.n_embd
    n_kv = getattr(cfg, "n_kv_head", cfg.n_head)
    kv_bytes = 2 * cfg.n_layer * n_kv * (cfg.n_embd // cfg.n_head) * 4
    return dict(params=params, active_params=round(active), flops_per_token=round(flops),
                kv_bytes_per_token=kv_bytes)


def train_config(seed: int, steps: int = SETTINGS["steps"]) -> TrainConfig:
    s = SETTINGS
    return TrainConfig(max_steps=steps, batch_size=s["batch_size"], lr=s["lr"],
                       warmup_steps=min(s["warmup_steps"], steps),
                       eval_interval=min(s["check_step"], steps),
                       eval_batches=s["eval_batches"], eval_batch_size=s["eval_batch_size"],
                       sample_interval=0, seed=1000 + seed, progress=False)


def run(row: str, seed: int, data=None, steps: int = SETTINGS["steps"],
        stop_at: int | None = None) -> dict:
    """Train one row with one seed (weights and batch order) and return its CSV line.

    ``stop_at`` ends the same run early, at an evaluation point (the learning-rate schedule
    still the one of ``steps``): the cheap re-run the notebook and the tests do, whose
    validation loss is the table's ``val_loss_at_check``.
    """
    tok, train_ids, val_ids = data or shakespeare_char_data()
    set_seed(seed)
    model = build(row, tok.vocab_size)
    start = time.perf_counter()
    history = train(model, train_ids, val_ids, train_config(seed, steps),
                    callback=None if stop_at is None else lambda h: h.steps[-1] >= stop_at)
    seconds = time.perf_counter() - start
    check = history.steps.index(min(SETTINGS["check_step"], steps))
    return dict(row=row, seed=seed, val_loss=round(history.val_loss[-1], 4),
                train_loss=round(history.train_loss[-1], 4),
                val_loss_at_check=round(history.val_loss[check], 4), **counts(model),
                seconds=round(seconds, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=SETTINGS["steps"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--rows", nargs="+", default=list(ROWS))
    parser.add_argument("--out", type=pathlib.Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = shakespeare_char_data()
    lines, start = [], time.perf_counter()
    for seed in args.seeds:
        for row in args.rows:
            lines.append(run(row, seed, data, args.steps))
            print(json.dumps(lines[-1]), flush=True)
    total = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(lines)
    write_atomic(args.out, text.getvalue())  # a killed run leaves the old table whole
    meta = {"script": "scripts/modern_ablation.py", "rows": args.rows, "seeds": args.seeds,
            "settings": {**SETTINGS, "steps": args.steps, "block_size": 64,
                         "tokens_per_run": args.steps * SETTINGS["batch_size"] * 64},
            "seed_rule": "set_seed(seed) before building; TrainConfig.seed = 1000 + seed",
            "seconds_total": round(total), "threads": 1, "torch": torch.__version__,
            "numeric_fingerprint": numeric_fingerprint()}
    write_atomic(args.out.with_suffix(".json"), json.dumps(meta, indent=1) + "\n")
    print(f"wrote {args.out} after {total:.0f} s")


if __name__ == "__main__":
    main()
