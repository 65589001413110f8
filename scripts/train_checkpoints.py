"""Train the shipped nano GPT on character-level Shakespeare, with chapter 3.2's recipe before
the speedrun of chapter 8.9 (``TrainConfig()``'s defaults: AdamW, 1,200 steps of 8 windows).

Usage:  .venv/bin/python scripts/train_checkpoints.py [OUT_DIR]   (default: the package resources)
Writes llm_lessons/resources/gpt_nano_shakespeare.safetensors and .json (config, tokenizer
characters, training summary). CPU, one thread, fixed seeds. The JSON records this machine's
numeric fingerprint (llm_lessons.reproducibility): on a machine with the same fingerprint a
re-run gives the same weights bit for bit; elsewhere ``compare_to_reference`` checks agreement
within stated tolerances. Notebook 03_2 now trains with the faster ``nano`` preset and Muon and
compares its model with this one for quality; the later chapters' numbers were measured on this
one, so it stays the shipped model.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from llm_lessons import checkpoint, set_seed  # noqa: E402
from llm_lessons.gpt import GPT, GPTConfig  # noqa: E402
from llm_lessons.reproducibility import numeric_fingerprint  # noqa: E402
from llm_lessons.resources import GPT_SHAKESPEARE, shakespeare_char_data  # noqa: E402
from llm_lessons.training import TrainConfig, evaluate, train  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
#: The validation slice the shipped model's test re-scores (whole windows of the first characters).
VAL_SLICE = 20_000


def main(out: pathlib.Path = ROOT / "llm_lessons" / "resources") -> None:
    torch.set_num_threads(1)
    tok, train_ids, val_ids = shakespeare_char_data()
    set_seed(0)  # the model's initial weights, as in notebook 03_2
    model = GPT(GPTConfig.preset("nano", vocab_size=tok.vocab_size))
    # TrainConfig's defaults: chapter 3.2's recipe before the speedrun of chapter 8.9 (AdamW,
    # 1,200 steps of 8 windows). The later chapters' numbers were measured on this model.
    config = TrainConfig(progress=sys.stderr.isatty())
    start = time.perf_counter()
    history = train(model, train_ids, val_ids, config)
    seconds = time.perf_counter() - start
    summary = {
        "data": "llm_lessons.resources.shakespeare_char_data() (train_val_split(), plays kept whole)",
        "seed": 0, "gpt_preset": "nano", "train_preset": "TrainConfig() (3.2's recipe before 8.9)",
        "train_config": {k: v for k, v in config.__dict__.items() if k != "progress"},
        "steps": history.steps[-1], "tokens": history.tokens[-1],
        "train_loss": round(history.train_loss[-1], 4), "val_loss": round(history.val_loss[-1], 4),
        "val_loss_all": round(evaluate(model, val_ids), 4),
        "val_slice_chars": VAL_SLICE, "val_loss_slice": round(evaluate(model, val_ids[:VAL_SLICE]), 4),
        "torch": torch.__version__, "numeric_fingerprint": numeric_fingerprint(),
    }
    extra = {"tokenizer": {"type": "CharTokenizer", "chars": tok.chars}, "training": summary}
    path = checkpoint.save(model, out / GPT_SHAKESPEARE, extra=extra)
    print(json.dumps(summary, indent=1))
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB) after "
          f"{seconds:.0f} s of training")


if __name__ == "__main__":
    main(*(pathlib.Path(a) for a in sys.argv[1:2]))
