"""The CPU speedrun's record table: wall time to validation loss 2.0 on the by-play split,
one change per row, each measured against the row it changes, on this machine.

Usage:  .venv/bin/python benchmarks/speedrun.py [--seeds 0 1 2] [--threads 2] [--quick]
                                                [--target 2.0] [--write [CSV]]

Every row is a :class:`~llm_lessons.frontiers.speedrun.Recipe` raced by
:func:`~llm_lessons.frontiers.speedrun.race`: the book's GPT and training loop from a seed to
the first evaluation (every 50 steps, on fixed windows, its cost counted) at or below 2.0 nats
per character. Seeds run interleaved (seed 0 of every row, then seed 1, ...) so that load on
the machine hits all rows alike; each row reports its median over seeds. The headline, the
nanoGPT README recipe against chapter 3.2's recipe, is raced at every thread count in
``--threads`` *and* at 1 thread. ``--write`` saves the table as
``llm_lessons/resources/speedrun_records.csv`` and ``.json`` (the CPU named), which chapter 8.9
shows. Seconds belong to this machine; the ratios are the result.

bfloat16 autocast gets a row only where :func:`~llm_lessons.frontiers.speedrun.bf16_probe`
measures it faster than float32 on this CPU; elsewhere the row says what the probe measured.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llm_lessons.frontiers.speedrun import RECIPES, Recipe, bf16_probe, median_seconds, race  # noqa: E402
from llm_lessons.reproducibility import numeric_fingerprint  # noqa: E402
from llm_lessons.resources import shakespeare_char_data  # noqa: E402

OUT = ROOT / "llm_lessons" / "resources" / "speedrun_records.csv"


def ladder(bf16_ratio: float) -> list[tuple[Recipe, str | None, bool]]:
    """(recipe, the row it changes, on the ladder?) in table order. The ladder climbs from
    nanoGPT's recipe to chapter 3.2's; a ladder row is *kept* (a record) only if it measures
    faster than the row it changes. The other rows are ablations of the row they name."""
    nanogpt, v1, final = RECIPES["nanogpt"], RECIPES["book_v1"], RECIPES["speedrun"]
    fused = v1.with_("+ fused AdamW", train=dict(fused=True),
                     note="PyTorch's fused AdamW kernel: the same update in one pass")
    muon = fused.with_("+ Muon, batch 8", train=dict(max_steps=800), optimizer="muon",
                       muon_lr=final.muon_lr, note="Muon for the blocks' matrices, AdamW for the rest")
    batch16 = muon.with_("+ batch 16", train=dict(batch_size=16, max_steps=500),
                         note="twice the windows per step, 500 steps")
    batch32 = batch16.with_("+ batch 32", train=dict(batch_size=32, max_steps=250, warmup_steps=50),
                            note="32 windows per step, 250 steps, 50 of warm-up")
    seq_warmup = batch32.with_("+ sequence-length warm-up", train=dict(seq_warmup_steps=100),
                               note="windows grow from 16 to 64 characters in 100 steps")
    rows = [(nanogpt, None, True), (v1, nanogpt.name, True),
            (v1.with_("shorter schedule (800 steps)", train=dict(max_steps=800),
                      note="the cosine ends sooner"), v1.name, False),
            (fused, v1.name, True), (muon, fused.name, True), (batch16, muon.name, True),
            (batch32, batch16.name, True), (seq_warmup, batch32.name, True),
            (final, seq_warmup.name, True)]
    for name, change, note in (
            ("ReLU²", dict(model=dict(activation="relu2")), "relu(x)^2 in the MLP"),
            ("no biases", dict(model=dict(bias=False)), "nanoGPT's bias=False"),
            ("zero-init projections", dict(zero_proj=True), "every block starts as the identity"),
            ("Muon lr 0.02", dict(muon_lr=0.02), "half the record's Muon learning rate"),
            ("AdamW instead of Muon", dict(optimizer="adamw"), "the final shape with fused AdamW"),
            ("torch.compile", dict(compile=True), "Inductor; the compile time counts")):
        rows.append((final.with_(name, note=note, **change), final.name, False))
    if bf16_ratio < 1:
        rows.append((final.with_("bfloat16 autocast", train=dict(dtype="bfloat16"),
                                 note=f"the probe measured a step at {bf16_ratio:.2f}x"), final.name, False))
    return rows


def run(rows, seeds, threads, train_ids, val_ids, target) -> dict[str, list]:
    results = {recipe.name: [] for recipe, _, _ in rows}
    for seed in seeds:
        for recipe, _, _ in rows:
            r = race(recipe, train_ids, val_ids, target=target, seed=seed, threads=threads)
            results[recipe.name].append(r)
            shown = "never" if r.seconds is None else f"{r.seconds:6.1f} s at step {r.steps}"
            print(f"  seed {seed} {threads} thread(s) {recipe.name:>34}: {shown}", flush=True)
    return results


def budget_loss(result, budget: float) -> float | None:
    """Validation loss at the last evaluation within ``budget`` seconds (None if none)."""
    seen = [v for v, w in zip(result.history.val_loss, result.wall, strict=False) if w <= budget]
    return seen[-1] if seen else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--budget", type=float, default=15.0, help="seconds for the fixed-budget loss")
    parser.add_argument("--quick", action="store_true", help="the two headline rows only")
    parser.add_argument("--target", type=float, default=2.0, help="validation loss to reach")
    parser.add_argument("--write", type=Path, nargs="?", const=OUT, default=None,
                        help=f"save the table (default {OUT.relative_to(ROOT)}) and its .json")
    args = parser.parse_args()
    logging.getLogger("torch._dynamo").setLevel(logging.ERROR)  # compile's graph-break notes
    fingerprint = numeric_fingerprint()
    print(f"torch {torch.__version__} on {fingerprint['cpu']}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}")
    start = time.perf_counter()
    bf16 = bf16_probe(threads=args.threads)
    print(f"bfloat16 probe: a step takes {bf16:.2f}x float32's here "
          f"({'kept as a row' if bf16 < 1 else 'not raced'})")
    _, train_ids, val_ids = shakespeare_char_data()
    rows = ladder(bf16)
    if args.quick:
        rows = [row for row in rows if row[0].name in (RECIPES["nanogpt"].name, RECIPES["speedrun"].name)]
    results = run(rows, args.seeds, args.threads, train_ids, val_ids, args.target)
    heads = [RECIPES["nanogpt"], RECIPES["speedrun"]]
    one = (run([(r, None, True) for r in heads], args.seeds, 1, train_ids, val_ids, args.target)
           if args.threads != 1 else {})
    medians = {name: median_seconds(rs) for name, rs in results.items()}
    table = []
    at = f"val@{args.budget:g}s"
    print(f"\n{'row':>34} {'vs':>10} {'median s':>9} {'steps':>6} {'ratio':>6} {at:>8}")
    for recipe, parent, ladder_row in rows:
        rs = results[recipe.name]
        steps = [r.steps for r in rs if r.steps is not None]
        ratio = medians[recipe.name] / medians[parent] if parent else 1.0
        kept = ladder_row and ratio < 1 if parent else ladder_row  # a record beats its row
        at_budget = [budget_loss(r, args.budget) for r in rs]
        at_budget = [v for v in at_budget if v is not None]
        row = {"row": recipe.name, "changes": parent or "", "ladder": ladder_row, "kept": kept,
               "note": recipe.note,
               "threads": args.threads, "seeds": len(rs), "median_seconds": round(medians[recipe.name], 1),
               "median_steps": statistics.median(steps) if len(steps) == len(rs) else "",
               "reached": len(steps),
               "ratio_to_changed_row": round(ratio, 3),
               "ratio_to_nanogpt": round(medians[recipe.name] / medians[RECIPES["nanogpt"].name], 3),
               "val_at_budget": round(statistics.median(at_budget), 3) if at_budget else ""}
        table.append(row)
        print(f"{recipe.name:>34} {'' if not parent else 'prev':>10} {row['median_seconds']:9.1f} "
              f"{row['median_steps']!s:>6} {ratio:6.2f} {row['val_at_budget']!s:>8}"
              + ("" if kept else "   (ladder, not kept)" if ladder_row else "   (ablation)"))
    headline = {}
    for threads, res in ((args.threads, results), (1, one)):
        if res:
            base, best = (median_seconds(res[r.name]) for r in heads)
            headline[str(threads)] = {"nanogpt_seconds": round(base, 1), "speedrun_seconds": round(best, 1),
                                      "ratio": round(best / base, 3),
                                      "runs": {r.name: [x.seconds for x in res[r.name]] for r in heads}}
            print(f"headline at {threads} thread(s): {best:.1f} s vs nanoGPT's recipe {base:.1f} s, "
                  f"ratio {best / base:.2f} (median of {len(args.seeds)})")
    seconds = time.perf_counter() - start
    print(f"{seconds / 60:.1f} min in all")
    if args.write:
        with open(args.write, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(table[0]))
            writer.writeheader()
            writer.writerows(table)
        meta = {"script": "benchmarks/speedrun.py", "target": args.target, "seeds": args.seeds,
                "threads": args.threads, "budget_seconds": args.budget, "bf16_ratio": round(bf16, 3),
                "headline": headline, "seconds_total": round(seconds), "cpu": fingerprint["cpu"],
                "numeric_fingerprint": fingerprint, "torch": torch.__version__,
                "recipes": {r.name: {"model": r.model, "train": r.train, "optimizer": r.optimizer,
                                     "muon_lr": r.muon_lr,
                                     "zero_proj": r.zero_proj, "compile": r.compile}
                            for r, _, _ in rows}}
        args.write.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.write} and its .json")


if __name__ == "__main__":
    main()
