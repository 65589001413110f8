"""The shipped IsoFLOP ladder of notebook 8.1 (``scripts/scaling_sweep.py``): its FLOP columns
recomputed from the shapes (6ND and the exact count side by side), each budget spent, each
budget's best size inside the sizes it ran, and its cheapest run trained again."""

from __future__ import annotations

import csv
import json
from collections import defaultdict

import pytest

from llm_lessons.files import resource_path
from llm_lessons.frontiers.scaling import exact_training_flops, isoflop_minimum, train_point
from llm_lessons.gpt import GPT, GPTConfig
from llm_lessons.resources import shakespeare_char_data

V, T, BATCH = 73, 64, 16


def rows() -> list[dict]:
    with open(resource_path("scaling_sweep.csv"), encoding="utf-8") as f:
        return [{k: float(v) if k in ("budget", "val_loss", "seconds") else int(v)
                 for k, v in row.items()} for row in csv.DictReader(f)]


def test_the_metadata_records_how_the_ladder_was_trained():
    meta = json.loads(resource_path("scaling_sweep.json").read_text(encoding="utf-8"))
    assert meta["settings"] == dict(block_size=T, batch_size=BATCH, lr=3e-3, val_tokens=32_768, seed=0)
    assert meta["threads"] == 1 and meta["seconds"] > 0 and meta["torch"]
    assert {tuple(s) for shapes in meta["budgets"].values() for s in shapes} == {
        (r["n_layer"], r["n_embd"]) for r in rows()}


def test_the_flop_columns_are_the_shapes_counted_two_ways():
    for r in rows():
        model = GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=r["n_layer"],
                              n_head=max(1, r["n_embd"] // 16), n_embd=r["n_embd"]))
        assert r["N"] == model.num_params()
        assert r["D"] == r["steps"] * BATCH * T
        assert r["flops_6nd"] == 6 * r["N"] * r["D"]
        assert r["flops_exact"] == exact_training_flops(r["n_layer"], r["n_embd"], T, V, r["D"])
        # the budget is spent: D = C / 6N, rounded down to whole batches
        assert r["budget"] - 6 * r["N"] * BATCH * T < r["flops_6nd"] <= r["budget"]
        assert 1.0 < r["flops_exact"] / r["flops_6nd"] < 1.2  # attention's share, and the head


def test_every_budget_has_its_best_size_inside_the_sizes_it_ran():
    by_budget = defaultdict(list)
    for r in rows():
        by_budget[r["budget"]].append(r)
    assert len(by_budget) >= 4 and all(len(runs) >= 5 for runs in by_budget.values())
    best = []
    for budget in sorted(by_budget):
        runs = sorted(by_budget[budget], key=lambda r: r["N"])
        lowest = min(range(len(runs)), key=lambda i: runs[i]["val_loss"])
        assert 0 < lowest < len(runs) - 1, (budget, lowest)  # a run on each side of the best
        # the notebook's parabola: the best run and up to two sizes on each side (far from the
        # best, loss against log N is no parabola: undertrained large models level off)
        near = runs[max(0, lowest - 2): lowest + 3]
        assert len(near) >= 4
        n_opt, loss = isoflop_minimum([r["N"] for r in near], [r["val_loss"] for r in near])
        assert runs[0]["N"] < n_opt < runs[-1]["N"]
        best.append((n_opt, loss))
    assert [n for n, _ in best] == sorted(n for n, _ in best)  # more compute, bigger best model
    assert [loss for _, loss in best] == sorted((loss for _, loss in best), reverse=True)


def test_training_the_cheapest_point_again_gives_its_shipped_loss():
    """Within 0.03 nats: bit-identity holds only on the machine that trained it."""
    r = min(rows(), key=lambda r: r["seconds"])
    tok, train_ids, val_ids = shakespeare_char_data()
    again = train_point(r["n_layer"], r["n_embd"], r["D"], train_ids, val_ids, vocab_size=tok.vocab_size)
    assert again["D"] == r["D"] and again["N"] == r["N"]
    assert again["val_loss"] == pytest.approx(r["val_loss"], abs=0.03)
