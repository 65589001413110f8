"""The CPU speedrun: wall time until the book's GPT reaches a validation loss, recipe by recipe.

A :class:`Recipe` is a GPT shape (``GPTConfig`` fields on top of the ``nano`` preset), a
training recipe (``TrainConfig`` fields) and how to run it: the optimizer (AdamW or Muon),
``torch.compile``, bfloat16 autocast, a sequence-length warm-up, thread count. :func:`race`
trains one from a seed with the book's own :func:`~llm_lessons.training.train` and stops at the
first evaluation whose validation loss is at or below the target. Every recipe is evaluated the
same way: every ``eval_interval`` steps, on the same fixed windows, the evaluation's time
counted in the wall time (and compilation's too), so the clock is the one a reader waits on.

Recipes are compared as *ratios measured in one process*, interleaved seed by seed: seconds on
one CPU mean nothing on another, but "recipe B takes half recipe A's time" mostly carries over.
``benchmarks/speedrun.py`` runs the record table; chapter 8.9 reads it.

>>> r = Recipe("tiny", model=dict(n_layer=1, n_embd=32, n_head=2), train=dict(max_steps=20))
>>> r.with_(name="tiny+", train=dict(lr=1e-2)).train   # a row is the row before plus a change
{'max_steps': 20, 'lr': 0.01}
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import torch

from llm_lessons.frontiers.muon import MUON_LR, muon_optimizer
from llm_lessons.gpt import GPT, GPTConfig
from llm_lessons.reproducibility import set_seed
from llm_lessons.training import PRESETS, History, TrainConfig, make_optimizer, random_windows, train
from llm_lessons.validation import check_int, check_real

#: How every race is evaluated: the same fixed windows every 50 steps (4 x 64 windows of each
#: split, :func:`train`'s default evaluation set).
EVAL = dict(eval_interval=50, eval_batches=4, eval_batch_size=64)


@dataclass
class Recipe:
    """One row of the record table. ``model`` and ``train`` override the ``nano`` presets.

    ``optimizer``: ``"adamw"`` (:func:`~llm_lessons.training.make_optimizer`) or ``"muon"``
    (:func:`~llm_lessons.frontiers.muon.muon_optimizer` at ``muon_lr``). ``zero_proj``: start
    every residual projection at zero, so each block begins as the identity. ``compile``:
    ``torch.compile`` the model (its compile time counts). A sequence-length warm-up and
    bfloat16 autocast are ``TrainConfig`` fields (``seq_warmup_steps``, ``dtype``).
    """

    name: str
    model: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    optimizer: str = "adamw"
    muon_lr: float = MUON_LR
    zero_proj: bool = False
    compile: bool = False
    note: str = ""

    def __post_init__(self):
        if self.optimizer not in ("adamw", "muon"):
            raise ValueError(f"optimizer must be 'adamw' or 'muon', got {self.optimizer!r}")
        check_real(self.muon_lr, "muon_lr", low=0.0, low_open=True)

    def with_(self, name: str, note: str = "", **changes) -> Recipe:
        """This recipe with ``changes``; ``model`` and ``train`` dicts are merged, not replaced."""
        for key in ("model", "train"):
            if key in changes:
                changes[key] = {**getattr(self, key), **changes[key]}
        return replace(self, name=name, note=note, **changes)

    def gpt_config(self, vocab_size: int) -> GPTConfig:
        return GPTConfig.preset("nano", vocab_size=vocab_size, **self.model)

    def train_config(self, seed: int = 1337) -> TrainConfig:
        return TrainConfig(**{**self.train, **EVAL, "seed": seed, "sample_interval": 0,
                              "progress": False})


@dataclass
class RaceResult:
    """One run: ``seconds`` and ``steps`` to the target (None if never reached), the validation
    loss at every evaluation, and the wall time of each."""

    recipe: str
    threads: int
    seed: int
    steps: int | None
    seconds: float | None
    history: History
    wall: list[float]


#: The record table's two ends and the recipe chapter 3.2 trained with before the speedrun.
RECIPES: dict[str, Recipe] = {
    # nanoGPT's README run on a CPU (config/train_shakespeare_char.py with the README's
    # overrides), reproduced with the book's code: no biases, exact GELU, 12 windows of 64,
    # peak 1e-3 after 100 warm-up steps, cosine to 1e-4 at step 2,000, AdamW (0.9, 0.99)
    "nanogpt": Recipe("nanoGPT's README recipe", model=dict(bias=False, activation="gelu"),
                      train=dict(max_steps=2000, batch_size=12, lr=1e-3, warmup_steps=100,
                                 min_lr_ratio=0.1, betas=(0.9, 0.99), weight_decay=0.1),
                      note="its hyper-parameters, the book's code"),
    "book_v1": Recipe("3.2's recipe before the speedrun",
                      train=dict(max_steps=1200, batch_size=8, lr=3e-3, warmup_steps=100),
                      note="AdamW, 8 windows, peak 3e-3, 1,200 steps (the shipped model's)"),
    # what chapter 3.2 trains with now: TrainConfig.preset("nano"), Muon, and nanoGPT's exact
    # GELU (GPT-2's tanh form is the same curve to 5e-4 but costs twice as much on a CPU; the
    # shipped GPT keeps the tanh form, which converts exactly to and from GPT-2)
    "speedrun": Recipe("3.2's recipe now", model=dict(activation="gelu"), train=dict(PRESETS["nano"]),
                       optimizer="muon",
                       note="+ exact GELU: the erf form, half the tanh form's CPU time"),
}


def build(recipe: Recipe, vocab_size: int, seed: int = 0, device: str | torch.device = "cpu"):
    """The recipe's freshly initialised model (seeded) and its optimizer (None: AdamW by train)."""
    set_seed(seed)
    model = GPT(recipe.gpt_config(vocab_size)).to(device)
    if recipe.zero_proj:
        for block in model.blocks:
            torch.nn.init.zeros_(block.attn.proj.weight)
            torch.nn.init.zeros_(block.mlp.proj.weight)
    optimizer = None
    if recipe.optimizer == "muon":
        cfg = recipe.train_config()
        optimizer = muon_optimizer(model, cfg.lr, recipe.muon_lr, cfg.weight_decay, cfg.betas)
    return model, optimizer


@contextmanager
def _threads(threads: int | None) -> Iterator[int]:
    """Run the block on ``threads`` CPU threads (None: as now) and put the count back after;
    yields the count in use."""
    old = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(check_int(threads, "threads", low=1))
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(old)


def race(recipe: Recipe, train_ids: torch.Tensor, val_ids: torch.Tensor, target: float = 2.0,
         seed: int = 0, threads: int | None = None, device: str | torch.device = "cpu") -> RaceResult:
    """Train ``recipe`` from ``seed`` until the validation loss is <= ``target`` or its steps
    run out; the clock starts before the model is built and stops at that evaluation."""
    check_real(target, "target", low=0.0, low_open=True)
    check_int(seed, "seed", low=0)
    with _threads(threads) as used:
        start = time.perf_counter()
        vocab_size = int(max(train_ids.max(), val_ids.max())) + 1  # char ids: 0..V-1 all used
        model, optimizer = build(recipe, vocab_size, seed, device)
        runner = torch.compile(model) if recipe.compile else model
        wall: list[float] = []

        def stop(history: History) -> bool:
            wall.append(time.perf_counter() - start)
            return history.val_loss[-1] <= target

        history = train(runner, train_ids, val_ids, recipe.train_config(1337 + seed), stop,
                        optimizer=optimizer)
    hit = history.val_loss[-1] <= target
    return RaceResult(recipe.name, used, seed, history.steps[-1] if hit else None,
                      wall[-1] if hit else None, history, wall)


def median_seconds(results: list[RaceResult]) -> float:
    """Median time to target over runs; a run that never got there counts as infinitely slow."""
    return statistics.median(r.seconds if r.seconds is not None else float("inf") for r in results)


def bf16_probe(steps: int = 6, vocab_size: int = 73, threads: int | None = None) -> float:
    """Step time with bfloat16 autocast over step time in float32, for the ``nano`` GPT on
    this machine's CPU (below 1: bfloat16 is faster here). CPUs with bfloat16 matrix units
    (AMX) gain; others emulate it and lose many times over, so a recipe asks before using it.
    Where a bfloat16 kernel refuses to run at all (PyTorch 2.13's bfloat16 attention on an
    AMX CPU restricted to ``ATEN_CPU_CAPABILITY=default``, for one), the answer is ``inf``."""
    with _threads(threads):
        times = {}
        gen = torch.Generator().manual_seed(0)
        data = torch.randint(vocab_size, (4096,), generator=gen)
        for dtype in ("float32", "bfloat16", "float32", "bfloat16"):
            model, _ = build(RECIPES["speedrun"].with_("probe", optimizer="adamw"), vocab_size)
            opt = make_optimizer(model, TrainConfig())
            spent = []
            for _ in range(steps):
                x, y = random_windows(data, 8, model.block_size, gen)
                t0 = time.perf_counter()
                try:
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
                        _, loss = model(x, y)
                except RuntimeError:  # no usable bfloat16 kernel on this CPU: never faster
                    return math.inf
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                spent.append(time.perf_counter() - t0)
            times.setdefault(dtype, []).append(statistics.median(spent[1:]))
        return min(times["bfloat16"]) / min(times["float32"])
