"""Train the shipped nano masked LM on character-level Shakespeare, exactly as notebook 03_3 does.

Usage:  .venv/bin/python scripts/train_mlm_checkpoint.py [OUT_DIR]   (default: the package resources)
Writes llm_lessons/resources/bert_nano_shakespeare.safetensors and .json (config, tokenizer
characters, training summary with the held-out masked loss and accuracy). CPU, one thread,
fixed seeds. The JSON records this machine's numeric fingerprint (llm_lessons.reproducibility):
on a machine with the same fingerprint a re-run gives the same weights bit for bit, and
notebook 03_3 checks that; elsewhere it checks agreement within stated tolerances.
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
from llm_lessons.bert import BertConfig, MaskedLM, init_positions_sinusoidal  # noqa: E402
from llm_lessons.mlm_data import MaskedCharTokenizer, MaskedWindows, masked_token_scores  # noqa: E402
from llm_lessons.reproducibility import numeric_fingerprint  # noqa: E402
from llm_lessons.resources import BERT_SHAKESPEARE, shakespeare_char_data  # noqa: E402
from llm_lessons.training import TrainConfig, train  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent

#: The recipe of notebook 03_3: short windows first, then the full block (see its section 3).
PHASES = [dict(block_size=16, batch_size=64, max_steps=300, lr=2e-3, warmup_steps=50, seed=1337),
          dict(block_size=64, batch_size=16, max_steps=500, lr=2e-3, warmup_steps=50, seed=1338)]
#: The held-out set the notebook reports: 512 validation windows of 64, masked with this seed.
HELD_OUT = dict(windows=512, seed=0)


def main(out: pathlib.Path = ROOT / "llm_lessons" / "resources") -> None:
    torch.set_num_threads(1)
    chars, train_ids, val_ids = shakespeare_char_data()
    tok = MaskedCharTokenizer(chars)
    set_seed(0)  # the model's initial weights, as in notebook 03_3
    model = MaskedLM(BertConfig.preset("nano", vocab_size=tok.vocab_size))
    init_positions_sinusoidal(model)
    batches = MaskedWindows(tok.mask_id, tok.vocab_size, tok.special_ids, p=0.15)
    configs = [TrainConfig(**phase, eval_interval=50, progress=sys.stderr.isatty()) for phase in PHASES]
    start = time.perf_counter()
    for config in configs:
        train(model, train_ids, val_ids, config, batch_fn=batches)
    seconds = time.perf_counter() - start
    held_x, held_y = batches(val_ids, HELD_OUT["windows"], model.block_size,
                             torch.Generator().manual_seed(HELD_OUT["seed"]))
    loss, accuracy = masked_token_scores(model, held_x, held_y)
    summary = {
        "data": "llm_lessons.resources.shakespeare_char_data() (train_val_split(), plays kept whole)",
        "seed": 0, "bert_preset": "nano", "init": "init_positions_sinusoidal",
        "mask_rate": batches.p, "phases": PHASES,
        "steps": sum(p["max_steps"] for p in PHASES),
        "tokens": sum(p["max_steps"] * p["batch_size"] * p["block_size"] for p in PHASES),
        "held_out": {**HELD_OUT, "masked_positions": int((held_y != -100).sum()),
                     "masked_loss": round(loss, 4), "masked_accuracy": round(accuracy, 4)},
        "train_seconds": round(seconds, 1), "torch": torch.__version__,
        "numeric_fingerprint": numeric_fingerprint(),
    }
    extra = {"tokenizer": {"type": "MaskedCharTokenizer", "chars": chars.chars}, "training": summary}
    path = checkpoint.save(model, out / BERT_SHAKESPEARE, extra=extra)
    print(json.dumps(summary, indent=1))
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB) after "
          f"{seconds:.0f} s of training")


if __name__ == "__main__":
    main(*(pathlib.Path(a) for a in sys.argv[1:2]))
