"""The speedrun's pieces: Muon against torch.optim.Muon and the SVD, the hybrid optimizer's AdamW
groups against torch.optim.AdamW, ReLU^2, the race harness, and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from llm_lessons.frontiers.muon import MuonAdamW, muon_lr_ratio, muon_optimizer, newton_schulz
from llm_lessons.frontiers.speedrun import EVAL, Recipe, bf16_probe, build, median_seconds, race
from llm_lessons.gpt import GPT, GPTConfig
from llm_lessons.training import TrainConfig, make_optimizer, train
from llm_lessons.transformer import ReLUSquared


def _matrix(m, n, seed=0):
    return torch.randn(m, n, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("shape", [(8, 32), (32, 8), (16, 16), (128, 512)])
def test_newton_schulz_keeps_the_singular_vectors_and_evens_the_values(shape):
    G = _matrix(*shape).double()
    U, S, Vh = torch.linalg.svd(G, full_matrices=False)
    X = newton_schulz(G)
    inner = U.T @ X @ Vh.T  # diagonal if X = U f(S) V^T
    off = inner - torch.diag(torch.diagonal(inner))
    assert off.abs().max() < 1e-8
    values = torch.diagonal(inner)
    assert values.min() > 0.6 and values.max() < 1.25  # the iteration's band, not exactly 1


def test_newton_schulz_matches_pytorchs_iteration():
    from torch.optim._muon import _zeropower_via_newtonschulz

    G = _matrix(64, 256, seed=3)
    ours = newton_schulz(G)
    theirs = _zeropower_via_newtonschulz(G, (3.4445, -4.7750, 2.0315), 5, 1e-7).float()
    # PyTorch iterates in bfloat16 (8 significant bits): equal to about 1% of the norm
    assert (ours - theirs).norm() / ours.norm() < 0.03


def test_muon_groups_step_like_torch_muon():
    params = [torch.nn.Parameter(_matrix(24, 8, seed=s)) for s in range(2)]
    twins = [torch.nn.Parameter(p.detach().clone()) for p in params]
    ours = MuonAdamW([{"params": params, "muon": True}], lr=0.02, weight_decay=0.1)
    ref = torch.optim.Muon(twins, lr=0.02, weight_decay=0.1, momentum=0.95, nesterov=True)
    for step in range(3):
        for p, q in zip(params, twins, strict=True):
            g = _matrix(24, 8, seed=10 + step)
            p.grad, q.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    for p, q, start in zip(params, twins, [_matrix(24, 8, seed=s) for s in range(2)], strict=True):
        moved, moved_ref = p.detach() - start, q.detach() - start
        assert (moved - moved_ref).norm() / moved_ref.norm() < 0.03  # bfloat16 in PyTorch's
        assert ours.state[p]["momentum_buffer"].allclose(ref.state[q]["momentum_buffer"])


def test_adamw_groups_step_exactly_like_torch_adamw():
    p = torch.nn.Parameter(_matrix(5, 3))
    q = torch.nn.Parameter(p.detach().clone())
    ours = MuonAdamW([{"params": [p], "weight_decay": 0.1}], lr=1e-2, betas=(0.9, 0.99))
    ref = torch.optim.AdamW([q], lr=1e-2, betas=(0.9, 0.99), weight_decay=0.1)
    for step in range(4):
        g = _matrix(5, 3, seed=20 + step)
        p.grad, q.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-6, atol=1e-7)


def test_muon_optimizer_puts_only_hidden_matrices_in_muon():
    model = GPT(GPTConfig(vocab_size=11, n_layer=2, n_head=2, n_embd=8))
    opt = muon_optimizer(model, lr=1e-3, muon_lr=0.02)
    muon = [g for g in opt.param_groups if g["muon"]]
    assert len(muon) == 1 and muon[0]["lr_scale"] == pytest.approx(20.0)
    assert len(muon[0]["params"]) == 2 * 4  # qkv, attn proj, fc, mlp proj per block
    assert all(p is not model.wte.weight for p in muon[0]["params"])
    assert muon_lr_ratio(torch.Size((24, 8))) == pytest.approx(math.sqrt(3))
    with pytest.raises(ValueError, match="2-D"):
        MuonAdamW([{"params": [torch.nn.Parameter(torch.zeros(3))], "muon": True}])


def test_train_scales_each_groups_learning_rate():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=7, n_layer=1, n_head=1, n_embd=8, block_size=8))
    opt = muon_optimizer(model, lr=1e-3, muon_lr=0.02)
    data = torch.randint(7, (200,), generator=torch.Generator().manual_seed(0))
    cfg = TrainConfig(max_steps=3, warmup_steps=0, lr=1e-3, batch_size=2, eval_interval=3,
                      eval_batches=1, eval_batch_size=2, progress=False)
    train(model, data, data, cfg, optimizer=opt)
    lrs = {g["muon"]: g["lr"] for g in opt.param_groups}
    assert lrs[True] == pytest.approx(20 * lrs[False])


def test_fused_adamw_is_the_same_update():
    torch.manual_seed(0)
    a = GPT(GPTConfig(vocab_size=7, n_layer=1, n_head=1, n_embd=8, block_size=8))
    b = GPT(GPTConfig(vocab_size=7, n_layer=1, n_head=1, n_embd=8, block_size=8))
    b.load_state_dict(a.state_dict())
    x = torch.randint(7, (2, 8), generator=torch.Generator().manual_seed(1))
    for model, fused in ((a, False), (b, True)):
        opt = make_optimizer(model, TrainConfig(fused=fused))
        assert opt.defaults["fused"] is (True if fused else None)  # None: foreach
        for _ in range(3):
            opt.zero_grad()
            model(x, x)[1].backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match="fused"):
        TrainConfig(fused="yes")


def test_relu_squared():
    x = torch.linspace(-2, 2, 9)
    assert torch.equal(ReLUSquared()(x), torch.where(x > 0, x * x, torch.zeros_like(x)))
    assert GPT(GPTConfig(vocab_size=5, n_layer=1, n_head=1, n_embd=4, activation="relu2"))


def test_race_stops_at_the_target_and_counts_evaluations():
    data = torch.tensor([0, 1, 2, 3] * 200)  # a cycle: learnable in a few dozen steps
    recipe = Recipe("cycle", model=dict(n_layer=1, n_head=1, n_embd=16, block_size=8),
                    train=dict(max_steps=400, batch_size=8, lr=1e-2, warmup_steps=10))
    result = race(recipe, data, data, target=0.5, seed=0, threads=1)
    assert result.steps is not None and result.steps % EVAL["eval_interval"] == 0
    assert result.history.val_loss[-1] <= 0.5 < min(result.history.val_loss[:-1])
    assert result.seconds == result.wall[-1] and len(result.wall) == len(result.history.steps)
    never = race(recipe.with_("short", train=dict(max_steps=1, warmup_steps=0)), data, data, target=0.01)
    assert never.steps is None and never.seconds is None
    assert median_seconds([result, never, never]) == math.inf


def test_recipe_variants_build_what_they_say():
    recipe = Recipe("z", model=dict(n_layer=1), zero_proj=True, optimizer="muon")
    model, opt = build(recipe, vocab_size=9)
    assert torch.count_nonzero(model.blocks[0].mlp.proj.weight) == 0
    assert isinstance(opt, MuonAdamW)
    assert recipe.with_("y", model=dict(n_embd=64)).model == {"n_layer": 1, "n_embd": 64}
    with pytest.raises(ValueError, match="optimizer"):
        Recipe("bad", optimizer="sgd")
    with pytest.raises(ValueError, match="target"):
        race(recipe, torch.arange(100) % 9, torch.arange(100) % 9, target=0.0)


def test_bf16_probe_returns_a_ratio():
    ratio = bf16_probe(steps=2, threads=1)
    assert ratio > 0  # inf where no bfloat16 kernel runs (an AMX CPU on the simulated path)


# --- the shipped record table (benchmarks/speedrun.py --write), which chapter 8.9 shows ---

def _table():
    import csv
    import json

    from llm_lessons.resources import resource_path

    path = resource_path("speedrun_records.csv")
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return rows, json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))


def test_the_record_table_is_what_the_code_races():
    from llm_lessons.frontiers.speedrun import RECIPES

    rows, meta = _table()
    names = [row["row"] for row in rows]
    assert len(names) == len(set(names)) and set(names) == set(meta["recipes"])
    for key in ("nanogpt", "book_v1", "speedrun"):  # the table's recipes are the package's
        recipe = RECIPES[key]
        saved = meta["recipes"][recipe.name]
        assert saved["model"] == recipe.model and saved["optimizer"] == recipe.optimizer
        assert saved["train"] == {k: list(v) if isinstance(v, tuple) else v
                                  for k, v in recipe.train.items()}
        assert saved["muon_lr"] == recipe.muon_lr
    assert meta["target"] == 2.0 and len(meta["seeds"]) == 3 and meta["cpu"]


def test_the_record_table_supports_the_books_claims():
    rows, meta = _table()
    kept = [row for row in rows if row["kept"] == "True"]
    assert kept[0]["row"] == "nanoGPT's README recipe" and kept[-1]["row"] == "3.2's recipe now"
    by_name = {row["row"]: row for row in rows}
    for row in rows[1:]:  # the ratio column is the medians' ratio
        before = float(by_name[row["changes"]]["median_seconds"])
        assert float(row["ratio_to_changed_row"]) == pytest.approx(
            float(row["median_seconds"]) / before, abs=5e-3)  # medians rounded to 0.1 s
    for row in kept[1:]:
        assert float(row["ratio_to_changed_row"]) < 1, row["row"]  # each record beat the last
        assert int(row["reached"]) == 3
    assert set(meta["headline"]) == {"1", "2"}
    for head in meta["headline"].values():  # the bar: half nanoGPT's time or less
        assert head["ratio"] <= 0.5
        assert head["ratio"] == pytest.approx(head["speedrun_seconds"] / head["nanogpt_seconds"],
                                              abs=2e-3)


def test_the_defaults_are_the_shipped_models_recipe():
    """TrainConfig's defaults stay the recipe that trained the shipped GPT (its JSON records it),
    so scripts/train_checkpoints.py still reproduces it; 3.2 trains with the nano preset."""
    from dataclasses import asdict

    from llm_lessons import checkpoint
    from llm_lessons.frontiers.speedrun import RECIPES
    from llm_lessons.resources import GPT_SHAKESPEARE, resource_path

    recorded = checkpoint.load_metadata(resource_path(GPT_SHAKESPEARE))["extra"]["training"]
    defaults = asdict(TrainConfig())
    for key, value in recorded["train_config"].items():
        assert defaults[key] == (tuple(value) if key == "betas" else value), key
    v1 = TrainConfig(**RECIPES["book_v1"].train)
    assert (v1.max_steps, v1.batch_size, v1.lr) == (TrainConfig().max_steps, TrainConfig().batch_size,
                                                    TrainConfig().lr)


def test_sequence_length_warmup_feeds_shorter_windows_first():
    from llm_lessons.training import random_windows, window_at

    seen = []

    def batch_fn(data, batch_size, block_size, generator):
        seen.append(block_size)
        return random_windows(data, batch_size, block_size, generator)

    data = torch.randint(7, (300,), generator=torch.Generator().manual_seed(0))
    cfg = TrainConfig(max_steps=6, warmup_steps=0, batch_size=2, seq_warmup_steps=4,
                      seq_warmup_start=2, eval_interval=6, eval_batches=1, eval_batch_size=2,
                      progress=False)
    model = GPT(GPTConfig(vocab_size=7, n_layer=1, n_head=1, n_embd=8, block_size=8))
    hist = train(model, data, data, cfg, batch_fn=batch_fn, eval_batch_fn=random_windows)
    assert seen == [2, 3, 5, 6, 8, 8] == [window_at(s, cfg, 8) for s in range(6)]
    assert hist.tokens == [0, 2 * sum(seen)]  # the characters actually read
    with pytest.raises(ValueError, match="seq_warmup_steps"):
        TrainConfig(max_steps=10, warmup_steps=0, seq_warmup_steps=11)


def test_chapter_3_2_trains_the_records_model():
    """Notebook 03_2 builds the table's last row: its saved output prints the GPT configuration
    it trained, and that is the record recipe's (the exact GELU included)."""
    from pathlib import Path

    import nbformat

    from llm_lessons.frontiers.speedrun import RECIPES
    from llm_lessons.resources import shakespeare_char_data

    path = Path(__file__).resolve().parents[1] / "notebooks" / "03_2_train_clm.ipynb"
    printed = "".join(out.get("text", "") for cell in nbformat.read(path, 4).cells
                      if cell.cell_type == "code" for out in cell.get("outputs", []))
    vocab_size = shakespeare_char_data()[0].vocab_size
    assert repr(RECIPES["speedrun"].gpt_config(vocab_size)) in printed
    assert repr(TrainConfig.preset("nano")) in printed
