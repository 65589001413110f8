"""``torch.compile`` on the CPU: the nano GPT's training step, compiled against eager (7.3).

Usage:  .venv/bin/python benchmarks/bench_compile.py [--threads 1] [--steps 40]

The shipped nano GPT (810,880 parameters, batch 8 x 64 characters of *Macbeth*) is copied
twice, one copy wrapped in ``torch.compile`` (the inductor backend: it generates and compiles
C++ kernels, so a C++ compiler must be installed). Printed:

1. the compile time: the first compiled step minus a median eager step (cold or warm
   inductor cache: the script says which it found), and whether the first step's loss and
   gradients equal eager's within float rounding;
2. median step times (forward, backward, AdamW) of both copies, trained side by side on the
   same batches, one step each in turn, so machine load hits both alike; their ratio;
3. the break-even number of steps: compile time / time saved per step.

A benchmark, not a test: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time

import torch
from common import interleaved_training_steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--cold", action="store_true",
                        help="a fresh inductor cache (the compile time of a first run)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.cold:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-")
    from llm_lessons.data import load_plays
    from llm_lessons.resources import load_gpt_shakespeare
    from llm_lessons.training import TrainConfig, make_optimizer, random_windows

    eager, tok = load_gpt_shakespeare()
    twin = copy.deepcopy(eager)
    compiled = torch.compile(twin)
    data = torch.tensor(tok.encode(load_plays(["macbeth"])["macbeth"]))
    gen = torch.Generator().manual_seed(0)
    T, cfg = eager.block_size, TrainConfig()  # the shipped model's recipe
    eager.train()
    twin.train()

    def step_time(model, x, y):
        start = time.perf_counter()
        _, loss = model(x, y)
        loss.backward()
        return time.perf_counter() - start, loss.detach()

    x, y = random_windows(data, cfg.batch_size, T, gen)
    eager_times = [step_time(eager, x, y)[0] for _ in range(5)]
    first, compiled_loss = step_time(compiled, x, y)
    compile_s = first - statistics.median(eager_times)
    _, eager_loss = step_time(eager, x, y)  # one more backward: compare the gradients of one
    eager.zero_grad()
    eager(x, y)[1].backward()
    same = abs(float(compiled_loss) - float(eager_loss)) < 1e-4 and all(
        torch.allclose(p.grad, q.grad, atol=1e-5, rtol=1e-3)
        for p, q in zip(eager.parameters(), twin.parameters(), strict=True))
    print(f"torch {torch.__version__}, {args.threads} thread(s), "
          f"{'fresh' if args.cold else 'existing'} inductor cache")
    print(f"compile time (first compiled step minus an eager step): {compile_s:.1f} s")
    print(f"compiled loss and gradients equal eager's within float rounding: {same}")
    runs = {"eager": (eager, lambda a, b: eager(a, b)[1]),
            "compiled": (compiled, lambda a, b: compiled(a, b)[1])}
    opts = {"eager": make_optimizer(eager, cfg), "compiled": make_optimizer(twin, cfg)}
    wall, cpu = interleaved_training_steps(
        runs, opts, lambda: random_windows(data, cfg.batch_size, T, gen), args.steps, cfg.grad_clip)
    med = {name: statistics.median(times[5:]) for name, times in wall.items()}  # warm steps
    saved = med["eager"] - med["compiled"]
    print(f"median step: eager {1e3 * med['eager']:.1f} ms, compiled {1e3 * med['compiled']:.1f} ms, "
          f"eager / compiled = {med['eager'] / med['compiled']:.2f}")
    cpu_ratio = statistics.median(cpu["eager"][5:]) / statistics.median(cpu["compiled"][5:])
    print(f"CPU-time ratio eager / compiled = {cpu_ratio:.2f}")
    if saved > 0:
        print(f"break-even after {compile_s / saved:,.0f} steps "
              f"(compile time / {1e3 * saved:.1f} ms saved per step)")
    else:
        print("no time saved per step: compiling never pays off at this size on this machine")


if __name__ == "__main__":
    main()
