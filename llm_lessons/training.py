"""One training loop for every language model in the book (n-gram-free ones: GPT, BERT, ...).

Shapes use fixed letters: B batch, T time (``block_size``), N tokens in a dataset.

A model only has to implement ``forward(idx, targets) -> (logits, loss)`` with ``loss`` the
mean cross-entropy over the targets that are not -100. Batches come from a *batch function*
``batch_fn(data, batch_size, block_size, generator) -> (x, y)``; the default,
:func:`random_windows`, cuts random windows of a 1-D token tensor and shifts them by one for
next-token prediction; a masked LM plugs in its own (windows, then masking). Everything random
flows from ``TrainConfig.seed`` through explicit ``torch.Generator`` objects, so the same seed
gives the same numbers, step for step.

The recipe: AdamW (Loshchilov & Hutter, 2019: weight decay applied to the weights directly,
decoupled from the adaptive gradient step, and only to matrices), learning rate warmed up
linearly then decayed along a cosine (:func:`lr_at`), gradient-norm clipping, and periodic
evaluation on a *fixed* set of validation batches so successive numbers are comparable.

>>> data = torch.arange(10)
>>> x, y = random_windows(data, batch_size=2, block_size=4, generator=torch.Generator().manual_seed(0))
>>> x.tolist(), y.tolist()    # y is x shifted left by one: the next token at every position
([[2, 3, 4, 5], [3, 4, 5, 6]], [[3, 4, 5, 6], [4, 5, 6, 7]])
>>> cfg = TrainConfig(max_steps=100, lr=1e-3, warmup_steps=10, min_lr_ratio=0.1)
>>> [round(lr_at(s, cfg), 6) for s in (0, 9, 10, 55, 100)]
[0.0001, 0.001, 0.001, 0.00055, 0.0001]
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from llm_lessons import train_state
from llm_lessons.configs import Presets, block_size_of
from llm_lessons.reproducibility import eval_mode, model_device
from llm_lessons.validation import check_batch_size, check_bool, check_int, check_real

Batch = tuple[torch.Tensor, torch.Tensor]
BatchFn = Callable[[torch.Tensor, int, int, torch.Generator], Batch]

#: ``nano``: the CPU lesson (pairs with ``GPTConfig.preset("nano", activation="gelu")``), the
#: record of chapter 8.9's speedrun: with Muon (:mod:`llm_lessons.frontiers.muon`) it reaches 2.0
#: nats per character in under half the time of nanoGPT's CPU recipe. ``small``: the GPU size.
PRESETS: dict[str, dict] = {
    "nano": dict(max_steps=250, batch_size=32, lr=3e-3, warmup_steps=50, fused=True,
                 seq_warmup_steps=100, eval_interval=25, sample_interval=50),
    "small": dict(max_steps=2000, batch_size=64, lr=1e-3, warmup_steps=100, eval_interval=200,
                  sample_interval=500),
}


@dataclass
class TrainConfig(Presets):
    """Hyper-parameters of :func:`train`. ``block_size=None`` uses the model's ``block_size``.

    The defaults are the recipe chapter 3.2 used before the speedrun, which trained the shipped
    GPT: AdamW, 1,200 steps of 8 windows, peak 3e-3.
    """

    family: ClassVar[str] = "training"
    presets: ClassVar[dict[str, dict]] = PRESETS

    max_steps: int = 1200
    batch_size: int = 8
    block_size: int | None = None
    lr: float = 3e-3                      # peak learning rate, reached after warmup
    min_lr_ratio: float = 0.1             # the cosine ends at lr * min_lr_ratio
    warmup_steps: int = 100
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float = 1.0                # max global gradient norm; 0 disables clipping
    eval_interval: int = 100
    eval_batches: int = 4                 # fixed validation set: eval_batches x eval_batch_size windows
    eval_batch_size: int = 64
    sample_interval: int = 300            # call sample_fn every this many steps (0: never)
    seed: int = 1337
    dtype: str = "float32"                # "bfloat16" runs forward/backward under autocast
    fused: bool = False                   # AdamW's fused kernel: one pass over all weights
    seq_warmup_steps: int = 0             # windows grow from seq_warmup_start to block_size
    seq_warmup_start: int = 16            # ... over the first seq_warmup_steps steps
    progress: bool = True                 # a tqdm.auto progress bar

    def __post_init__(self):
        for name in ("max_steps", "batch_size", "eval_interval", "eval_batches", "eval_batch_size"):
            check_int(getattr(self, name), f"TrainConfig.{name}", low=1)
        if self.block_size is not None:
            check_int(self.block_size, "TrainConfig.block_size", low=1)
        check_int(self.sample_interval, "TrainConfig.sample_interval", low=0)
        check_int(self.seed, "TrainConfig.seed", low=0, high=2**63 - 2)  # seed + 1 seeds the eval batches
        check_real(self.lr, "TrainConfig.lr", low=0.0, low_open=True)
        check_real(self.min_lr_ratio, "TrainConfig.min_lr_ratio", low=0.0, high=1.0)
        check_real(self.weight_decay, "TrainConfig.weight_decay", low=0.0)
        check_real(self.grad_clip, "TrainConfig.grad_clip", low=0.0)  # 0 disables; -1 is not "off"
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise ValueError(f"TrainConfig.betas must be a pair (beta1, beta2), got {self.betas!r}")
        for i, beta in enumerate(self.betas):
            check_real(beta, f"TrainConfig.betas[{i}]", low=0.0, high=1.0, high_open=True)
        if not 0 <= check_int(self.warmup_steps, "TrainConfig.warmup_steps") <= self.max_steps:
            raise ValueError(f"warmup_steps must be in [0, max_steps], got {self.warmup_steps}")
        if self.dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype must be 'float32' or 'bfloat16', got {self.dtype!r}")
        check_bool(self.progress, "TrainConfig.progress")
        check_bool(self.fused, "TrainConfig.fused")
        check_int(self.seq_warmup_steps, "TrainConfig.seq_warmup_steps", low=0, high=self.max_steps)
        check_int(self.seq_warmup_start, "TrainConfig.seq_warmup_start", low=1)


def lr_at(step: int, config: TrainConfig) -> float:
    """Learning rate for optimizer step ``step`` (0-based): linear warmup, then cosine decay.

    lr(s) = lr * (s + 1) / W                                   for s < W (warmup steps)
    lr(s) = lr_min + (lr - lr_min) * (1 + cos(pi * p)) / 2,    p = (s - W) / (S - W), for s >= W
    """
    peak, W, S = config.lr, config.warmup_steps, config.max_steps
    if step < W:
        return peak * (step + 1) / W
    low = peak * config.min_lr_ratio
    progress = min(1.0, (step - W) / max(1, S - W))
    return low + (peak - low) * 0.5 * (1.0 + math.cos(math.pi * progress))


def window_at(step: int, config: TrainConfig, block_size: int) -> int:
    """The training window's length at ``step``: with a sequence-length warm-up it grows
    linearly from ``seq_warmup_start`` to ``block_size`` over ``seq_warmup_steps`` steps (short
    windows cost less and teach the local statistics first); otherwise ``block_size``.

    >>> cfg = TrainConfig(seq_warmup_steps=100, seq_warmup_start=16)
    >>> [window_at(s, cfg, 64) for s in (0, 50, 99, 100, 500)]
    [16, 40, 63, 64, 64]
    """
    W = config.seq_warmup_steps
    if step >= W:
        return block_size
    start = min(config.seq_warmup_start, block_size)
    return start + (block_size - start) * step // W


def _check_data(data: torch.Tensor, block_size: int, name: str = "data") -> None:
    if not isinstance(data, torch.Tensor) or data.dim() != 1 or data.is_floating_point():
        raise TypeError(f"{name} must be a 1-D integer tensor of token ids")
    if len(data) < block_size + 1:
        raise ValueError(f"{name} has {len(data)} tokens: too few for one window of block_size "
                         f"{block_size} plus its shifted target (needs >= {block_size + 1})")


def random_windows(data: torch.Tensor, batch_size: int, block_size: int,
                   generator: torch.Generator) -> Batch:
    """B random windows x (B, T) of ``data`` and their next-token targets y = x shifted by one."""
    _check_data(data, block_size)
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)  # (B,)
    rows = starts[:, None] + torch.arange(block_size + 1)  # (B, T + 1) indices into data
    chunk = data[rows]  # (B, T + 1)
    return chunk[:, :-1], chunk[:, 1:]


class NonFiniteLossError(ValueError):
    """Training or evaluation met a NaN or infinite loss. ``step`` is the optimizer step where it
    happened (None outside training) and ``history`` what was measured until then."""

    def __init__(self, message: str, step: int | None = None, history: History | None = None):
        super().__init__(message)
        self.step, self.history = step, history


def _autocast(device: torch.device, dtype: str):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=dtype == "bfloat16")


@torch.no_grad()
def _mean_loss(model: nn.Module, batches: list[Batch], device: torch.device, dtype: str) -> float:
    """Mean loss per target token over batches (targets equal to -100 do not count)."""
    total, count = 0.0, 0
    with eval_mode(model):
        for x, y in batches:
            with _autocast(device, dtype):
                _, loss = model(x.to(device), y.to(device))
            n = int((y != -100).sum())
            value = loss.float().item()
            if not math.isfinite(value):
                raise NonFiniteLossError(f"the model's loss is {value} on an evaluation batch: its "
                                         "weights or its outputs hold NaN or inf")
            total, count = total + value * n, count + n
    if count == 0:
        raise ValueError("the evaluation batches hold no target to score (every target is -100)")
    return total / count


def evaluate(model: nn.Module, data: torch.Tensor, block_size: int | None = None,
             batch_size: int = 64, num_batches: int | None = None, batch_fn: BatchFn | None = None,
             seed: int = 0, dtype: str = "float32") -> float:
    """Mean next-token loss (nats per token) of ``model`` on ``data``, in eval mode.

    By default every non-overlapping window of ``block_size`` tokens is scored once (the whole
    text, deterministic). With ``num_batches``, that many batches are drawn with ``batch_fn``
    (default :func:`random_windows`) from a generator seeded with ``seed``.
    """
    T = check_int(block_size or block_size_of(model), "block_size", low=1)
    check_batch_size(batch_size)
    if num_batches is not None:
        check_int(num_batches, "num_batches", low=1)
    _check_data(data, T)
    if num_batches is None and batch_fn is None:
        n = (len(data) - 1) // T
        x, y = data[: n * T].view(n, T), data[1: n * T + 1].view(n, T)  # (N,) -> (n, T)
        batches = [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, n, batch_size)]
    else:
        gen = torch.Generator().manual_seed(seed)
        batches = [(batch_fn or random_windows)(data, batch_size, T, gen) for _ in range(num_batches or 1)]
    return _mean_loss(model, batches, model_device(model), dtype)


def decay_groups(params: list[nn.Parameter], weight_decay: float) -> list[dict]:
    """AdamW's two parameter groups: weight decay on the matrices (dim >= 2) only, so biases and
    norm gains are not shrunk towards 0.

    >>> [(len(g["params"]), g["weight_decay"]) for g in decay_groups(list(nn.Linear(3, 2).parameters()), 0.1)]
    [(1, 0.1), (1, 0.0)]
    """
    return [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW over :func:`decay_groups`: weight decay on matrices only.

    ``config.fused`` takes PyTorch's fused kernel (the same update in one pass, rounded
    differently); otherwise its default, the ``foreach`` kernels, one pass per operation.
    """
    groups = decay_groups([p for p in model.parameters() if p.requires_grad], config.weight_decay)
    if config.fused:
        try:
            return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, fused=True)
        except RuntimeError as err:  # torch < 2.4 has no fused kernel on a CPU: same maths
            warnings.warn(f"fused AdamW is not available here ({err}); using foreach", stacklevel=2)
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas)


@dataclass
class History:
    """What :func:`train` measured. Evaluation points: ``steps`` and the lists beside it;
    every optimizer step: ``lr``, ``step_loss`` (the minibatch loss) and ``grad_norm``."""

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)   # training time so far, evaluation excluded
    lr: list[float] = field(default_factory=list)
    step_loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    samples: list[tuple[int, str]] = field(default_factory=list)
    interrupted_at: int | None = None                    # the step Ctrl-C stopped, if any

    def to_dict(self) -> dict:
        return asdict(self)


def _history_from(values: dict) -> History:
    known = {f: values[f] for f in History.__dataclass_fields__ if f in values}
    history = History(**known)
    history.samples = [tuple(s) for s in history.samples]  # JSON turned the pairs into lists
    return history


def _weights_finite(model: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def _diverged(what: str, step: int, model: nn.Module, history: History) -> NonFiniteLossError:
    kept = ("the model holds the weights from before this step, all finite" if _weights_finite(model)
            else "the model's weights hold NaN or inf: reload a checkpoint")
    return NonFiniteLossError(f"training diverged: the {what} is not finite at step {step} ({kept}; "
                              "try a lower lr, or grad_clip)", step, history)


def train(model: nn.Module, train_data: torch.Tensor, val_data: torch.Tensor, config: TrainConfig,
          callback: Callable[[History], bool | None] | None = None, *,
          batch_fn: BatchFn | None = None, sample_fn: Callable[[nn.Module], str] | None = None,
          state_path: str | Path | None = None, eval_batch_fn: BatchFn | None = None,
          optimizer: torch.optim.Optimizer | None = None) -> History:
    """Train ``model`` in place on 1-D token tensors and return its :class:`History`.

    At step 0, every ``eval_interval`` steps and at the end, the loss on fixed train and
    validation batches is recorded and ``callback(history)`` is called; if it returns True,
    training stops there. Every ``sample_interval`` steps ``sample_fn(model)`` (e.g. a short
    generated text) is stored in ``history.samples``. The model is left in eval mode.

    Faults: Ctrl-C (``KeyboardInterrupt``) stops training and returns the history so far, with
    ``history.interrupted_at`` set. A NaN or infinite loss or gradient norm raises
    :class:`NonFiniteLossError` naming the step, before the optimizer uses it (so the weights
    are those of the last finite step); the error carries the partial ``history``.

    Resuming: with ``state_path``, the full training state (model, optimizer, schedule step,
    batch generator, global RNG, history; :mod:`llm_lessons.train_state`) is saved atomically
    at every evaluation point and at the end. If a state is already saved there, training
    continues from it, and finishes with exactly the weights an uninterrupted run would have.

    ``eval_batch_fn`` draws the fixed evaluation batches when they must differ from the training
    batches' function (data-parallel training shards the training batches, never the evaluation).

    ``optimizer`` replaces :func:`make_optimizer`'s AdamW (e.g. Muon from
    :mod:`llm_lessons.frontiers.muon`); the schedule sets every group's learning rate to
    :func:`lr_at` times the group's ``lr_scale`` (1 if it has none).
    """
    batch_fn = batch_fn or random_windows
    eval_batch_fn = eval_batch_fn or batch_fn
    T = check_int(config.block_size or block_size_of(model), "block_size", low=1)
    _check_data(train_data, T, "train_data")
    _check_data(val_data, T, "val_data")
    device = model_device(model)
    gen = torch.Generator().manual_seed(config.seed)  # training batches
    fixed = torch.Generator().manual_seed(config.seed + 1)  # the fixed evaluation batches
    eval_sets = {split: [eval_batch_fn(data, config.eval_batch_size, T, fixed)
                         for _ in range(config.eval_batches)]
                 for split, data in (("train", train_data), ("val", val_data))}
    optimizer = optimizer if optimizer is not None else make_optimizer(model, config)
    history, first, seconds, resumed = History(), 0, 0.0, False
    tokens = 0  # training tokens read so far (windows are shorter during a sequence warm-up)
    run_config = {k: v for k, v in asdict(config).items() if k != "progress"}
    run_config["betas"] = list(config.betas)
    if state_path is not None and train_state.exists(state_path):
        first, seconds, saved = train_state.load_state(state_path, model, optimizer, gen, run_config)
        history, resumed = _history_from(saved), True
        history.interrupted_at = None
        tokens = history.tokens[-1] if history.tokens else 0
    model.train()
    bar = None
    if config.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.max_steps, initial=first, desc="training", unit="step")
    step = first
    try:
        for step in range(first, config.max_steps + 1):
            evaluated = resumed and step == first  # the saved history already holds this point
            if (step % config.eval_interval == 0 or step == config.max_steps) and not evaluated:
                history.steps.append(step)
                for split, losses in (("train", history.train_loss), ("val", history.val_loss)):
                    try:
                        losses.append(_mean_loss(model, eval_sets[split], device, config.dtype))
                    except NonFiniteLossError:
                        raise _diverged(f"{split} loss", step, model, history) from None
                history.tokens.append(tokens)
                history.seconds.append(seconds)
                if sample_fn is not None and config.sample_interval and (
                        step % config.sample_interval == 0 or step == config.max_steps):
                    with eval_mode(model):  # back to training mode afterwards
                        history.samples.append((step, sample_fn(model)))
                if state_path is not None:
                    train_state.save_state(state_path, model, optimizer, gen, step=step, seconds=seconds,
                                           history=history.to_dict(), config=run_config)
                if bar is not None:
                    bar.set_postfix(train=f"{history.train_loss[-1]:.3f}", val=f"{history.val_loss[-1]:.3f}")
                if callback is not None and callback(history):
                    break
            if step == config.max_steps:
                break
            start = time.perf_counter()
            lr = lr_at(step, config)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            window = window_at(step, config, T)
            x, y = batch_fn(train_data, config.batch_size, window, gen)
            with _autocast(device, config.dtype):
                _, loss = model(x.to(device), y.to(device))
            loss_value = loss.item()
            if not math.isfinite(loss_value):  # checked before backward: the weights stay as they are
                raise _diverged("training loss", step, model, history)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            clip = config.grad_clip if config.grad_clip > 0 else float("inf")
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            norm_value = norm.item()
            if not math.isfinite(norm_value):
                raise _diverged("gradient norm", step, model, history)
            optimizer.step()
            history.lr.append(lr)
            history.step_loss.append(loss_value)
            history.grad_norm.append(norm_value)
            tokens += config.batch_size * window  # the global batch, as config states it
            seconds += time.perf_counter() - start
            if bar is not None:
                bar.update(1)
    except KeyboardInterrupt:
        history.interrupted_at = step  # the partial history is returned; the state file (if any)
    except Exception as err:  # holds the last evaluation point, from which a new call resumes
        with contextlib.suppress(AttributeError):
            err.history = history
        raise
    finally:
        if bar is not None:
            bar.close()
        model.eval()
    return history
