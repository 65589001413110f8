"""Train the IsoFLOP ladder of notebook 8.1 (scaling laws) and write the shipped data file.

Usage:  .venv/bin/python scripts/scaling_sweep.py [OUT_DIR]   (default: the package resources)

Four compute budgets C = 1e11, 3e11, 1e12 and 3e12 FLOPs (counted as 6ND) times six sizes
each (seven for the largest): 25 runs from 5.5 thousand to 1.9 million parameters (the book's
GPT, character-level Shakespeare, the by-play split, block 64, heads of 16 channels). Each run
trains D = C / (6N) tokens with its own warmup + cosine schedule ending there (Chinchilla's
approach 2: every point is a finished run, never a checkpoint of a longer one), batch 16 x 64,
peak learning rate 3e-3 for every size (the nano preset's; tuning it per size would be fairer
to the largest models, and costs runs), and is scored on a fixed validation set: the 512 whole
windows of the first 32,768 validation characters. Seeds are fixed (0).

Writes ``scaling_sweep.csv`` (one row per run) and ``scaling_sweep.json`` (the settings, the
seconds, this machine's CPU and numeric fingerprint, the torch version). CPU, one thread: the
shipped run took 23 minutes on a busy 2-core machine (the JSON records its seconds).
"""

from __future__ import annotations

import csv
import io
import json
import os
import pathlib
import platform
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from llm_lessons.files import write_atomic  # noqa: E402
from llm_lessons.frontiers.scaling import train_point  # noqa: E402
from llm_lessons.gpt import GPT, GPTConfig  # noqa: E402
from llm_lessons.reproducibility import numeric_fingerprint  # noqa: E402
from llm_lessons.resources import shakespeare_char_data  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
#: (n_layer, n_embd) of every rung, smallest first.
LADDER = [(1, 16), (1, 24), (1, 32), (2, 32), (2, 48), (3, 64), (4, 96), (4, 128), (6, 160)]
#: Each budget trains six consecutive rungs (the largest, seven), the window sliding up as the
#: budget grows. A pilot put the best size of 1e11 near 10 thousand parameters, about 150
#: characters per parameter, so the windows start low.
BUDGETS = {1e11: LADDER[0:6], 3e11: LADDER[0:6], 1e12: LADDER[1:7], 3e12: LADDER[2:9]}
SETTINGS = dict(block_size=64, batch_size=16, lr=3e-3, val_tokens=32_768, seed=0)
FIELDS = ["budget", "n_layer", "n_embd", "N", "D", "steps", "flops_6nd", "flops_exact",
          "val_loss", "seconds"]


def run_ladder(budgets=BUDGETS, log=print) -> list[dict]:
    tok, train_ids, val_ids = shakespeare_char_data()
    rows = []
    for budget, shapes in budgets.items():
        for n_layer, n_embd in shapes:
            N = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=n_layer,
                              n_head=max(1, n_embd // 16), n_embd=n_embd)).num_params()
            tokens = int(budget / (6 * N))
            row = train_point(n_layer, n_embd, tokens, train_ids, val_ids,
                              vocab_size=tok.vocab_size, **SETTINGS)
            row = {"budget": budget, **row}
            rows.append(row)
            log(f"C={budget:.0e} L={n_layer} C_={n_embd} N={row['N']} D={row['D']} "
                f"loss={row['val_loss']:.4f} {row['seconds']:.0f}s")
    return rows


def main(out: pathlib.Path = ROOT / "llm_lessons" / "resources") -> None:
    torch.set_num_threads(1)
    start = time.perf_counter()
    rows = run_ladder(log=lambda s: print(s, flush=True))
    seconds = time.perf_counter() - start
    text = io.StringIO()
    writer = csv.DictWriter(text, FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{row[k]:.0e}" if k == "budget" else round(row[k], 4)
                             if isinstance(row[k], float) else row[k]) for k in FIELDS})
    write_atomic(out / "scaling_sweep.csv", text.getvalue())
    meta = {"script": "scripts/scaling_sweep.py", "ladder": LADDER,
            "budgets": {f"{b:.0e}": s for b, s in BUDGETS.items()}, "settings": SETTINGS,
            "schedule": "warmup min(100, steps // 10) steps, cosine to 0.1 lr; AdamW, wd 0.1",
            "data": "shakespeare_char_data() (train_val_split(), plays kept whole)",
            "threads": 1, "seconds": round(seconds), "cpu": platform.processor() or platform.machine(),
            "torch": torch.__version__, "numeric_fingerprint": numeric_fingerprint()}
    write_atomic(out / "scaling_sweep.json", json.dumps(meta, indent=1) + "\n")
    print(f"{len(rows)} runs in {seconds:.0f} s")


if __name__ == "__main__":
    main(*(pathlib.Path(a) for a in sys.argv[1:2]))
