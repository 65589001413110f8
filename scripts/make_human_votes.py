"""Write llm_lessons/resources/human_votes.jsonl: SIMULATED ratings of real samples.

Usage:  .venv/bin/python scripts/make_human_votes.py

The *samples* are real: the shipped nano GPT (``load_gpt_shakespeare()``) continues 16 prompts
cut from the held-out validation plays under five decoding settings of section 4.3 (notebook
02_4b regenerates them and measures them with automatic metrics). The
*votes* are NOT human judgements. Nobody read these samples; three simulated raters with known,
documented behaviour produced the numbers, so that the analysis in notebook 02_4c always has
data to run on, and so that its estimates can be checked against a known truth:

* every system has a true quality θ (fluency, = its Bradley–Terry log-strength) and a true
  relevance, both below; every sample adds its own deviation ε ~ N(0, 0.5²) per aspect;
* a Likert score is round(3 + 1.5 (θ + ε) + bias_r + N(0, noise_r²)), clipped to 1..5; rater r
  skips a sample with probability skip_r (missing values);
* a pairwise vote picks the left sample with probability σ(θ_left - θ_right + left_bias_r);
  every rater sees every pair of systems on every prompt once, sides drawn by a seeded coin.

Everything is seeded: the same checkpoint and torch version give the same file.
"""

from __future__ import annotations

import json
import os
import pathlib

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from llm_lessons import checkpoint  # noqa: E402
from llm_lessons.data import train_val_split  # noqa: E402
from llm_lessons.evaluation.human_eval import SHIPPED_VOTES, pairwise_tasks  # noqa: E402
from llm_lessons.evaluation.text_metrics import dialogue_prompts  # noqa: E402
from llm_lessons.files import write_atomic  # noqa: E402
from llm_lessons.resources import GPT_SHAKESPEARE, load_gpt_shakespeare, resource_path  # noqa: E402
from llm_lessons.sampling import generate  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEED = 2024
N_PROMPTS, PROMPT_CHARS, NEW_TOKENS = 16, 48, 120
#: The decoding settings compared (keyword arguments of llm_lessons.sampling.generate); the
#: k-th setting samples with torch.Generator().manual_seed(SEED + k).
SYSTEMS = {"greedy": {"greedy": True}, "temperature 0.7": {"temperature": 0.7},
           "top-p 0.9": {"top_p": 0.9}, "temperature 1.0": {"temperature": 1.0},
           "temperature 1.5": {"temperature": 1.5}}
#: The simulation's truth: fluency θ (= Bradley–Terry log-strength, mean 0) and relevance.
TRUE_FLUENCY = {"greedy": -0.3, "temperature 0.7": 0.4, "top-p 0.9": 0.5, "temperature 1.0": 0.1,
                "temperature 1.5": -0.7}
TRUE_RELEVANCE = {"greedy": 0.2, "temperature 0.7": 0.3, "top-p 0.9": 0.2, "temperature 1.0": 0.0,
                  "temperature 1.5": -0.7}
SAMPLE_SD = 0.5
RATERS = {"rater-1": {"noise": 0.5, "bias": 0.0, "left_bias": 0.0, "skip": 0.0},
          "rater-2": {"noise": 0.8, "bias": 0.5, "left_bias": 0.0, "skip": 0.05},
          "rater-3": {"noise": 1.1, "bias": -0.3, "left_bias": 0.7, "skip": 0.15}}


def make_samples() -> list[dict]:
    model, tok = load_gpt_shakespeare()
    pairs = dialogue_prompts(train_val_split().val, N_PROMPTS, seed=SEED, prompt_chars=PROMPT_CHARS)
    idx = torch.tensor([tok.encode(p) for p, _ in pairs])  # (B, T) all prompts have PROMPT_CHARS
    samples = []
    for k, (name, kwargs) in enumerate(SYSTEMS.items()):
        gen = torch.Generator().manual_seed(SEED + k)
        out = generate(model, idx, NEW_TOKENS, generator=gen, **kwargs)  # (B, T + NEW_TOKENS)
        for i, (prompt, reference) in enumerate(pairs):
            samples.append({"type": "sample", "item": f"p{i:02d}", "system": name, "prompt": prompt,
                            "text": tok.decode(out[i, idx.shape[1]:].tolist()), "reference": reference})
    return samples


def simulate(samples: list[dict]) -> tuple[list[dict], list[dict]]:
    rng = np.random.default_rng(SEED)
    latent = {(s["item"], s["system"]): {"fluency": TRUE_FLUENCY[s["system"]] + rng.normal(0, SAMPLE_SD),
                                         "relevance": TRUE_RELEVANCE[s["system"]] + rng.normal(0, SAMPLE_SD)}
              for s in samples}
    likert, pairwise = [], []
    for r, (rater, p) in enumerate(RATERS.items()):
        for s in samples:
            if rng.random() < p["skip"]:
                continue
            q = latent[(s["item"], s["system"])]
            scores = {a: int(np.clip(np.rint(3 + 1.5 * q[a] + p["bias"] + rng.normal(0, p["noise"])), 1, 5))
                      for a in ("fluency", "relevance")}
            likert.append({"type": "likert", "rater": rater, "item": s["item"], "system": s["system"],
                           **scores})
        items = sorted({s["item"] for s in samples})
        for t in pairwise_tasks(items, list(SYSTEMS), seed=SEED + r):
            d = TRUE_FLUENCY[t.left] - TRUE_FLUENCY[t.right] + p["left_bias"]
            choice = "left" if rng.random() < 1 / (1 + np.exp(-d)) else "right"
            pairwise.append({"type": "pairwise", "rater": rater, "item": t.item, "left": t.left,
                             "right": t.right, "choice": choice})
    return likert, pairwise


def main() -> None:
    torch.set_num_threads(1)
    samples = make_samples()
    likert, pairwise = simulate(samples)
    header = {
        "type": "header", "simulated": True,
        "description": ("SIMULATED votes, not human judgements: the samples are real outputs of the "
                        "shipped nano GPT, but every rating was produced by a seeded simulation of three "
                        "raters (see scripts/make_human_votes.py). Use them to learn the analysis, not "
                        "to draw conclusions about the decoding settings."),
        "generator": "scripts/make_human_votes.py", "seed": SEED,
        "model": GPT_SHAKESPEARE,
        "model_sha256": checkpoint.load_metadata(resource_path(GPT_SHAKESPEARE))["sha256"],
        "prompts": {"n": N_PROMPTS, "prompt_chars": PROMPT_CHARS, "source": "train_val_split().val"},
        "new_tokens": NEW_TOKENS, "systems": SYSTEMS,
        "system_seeds": {name: SEED + k for k, name in enumerate(SYSTEMS)},
        "true_fluency": TRUE_FLUENCY, "true_relevance": TRUE_RELEVANCE, "sample_sd": SAMPLE_SD,
        "likert_model": "round(3 + 1.5 * (theta + eps) + bias + N(0, noise^2)), clipped to 1..5",
        "pairwise_model": "P(left) = sigmoid(theta_left - theta_right + left_bias)",
        "raters": RATERS, "torch": torch.__version__,
    }
    path = ROOT / "llm_lessons" / "resources" / SHIPPED_VOTES
    write_atomic(path, "".join(json.dumps(rec, ensure_ascii=False) + "\n"
                               for rec in [header, *samples, *likert, *pairwise]))
    print(f"wrote {path.relative_to(ROOT)}: {len(samples)} samples, {len(likert)} Likert ratings, "
          f"{len(pairwise)} pairwise votes ({path.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
