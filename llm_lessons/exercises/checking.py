"""How a checker judges a student's function: cases, named mistakes and forbidden shortcuts.

A checker knows three things about an exercise:

- **cases**: inputs with the right answer, computed by the checker's own reference (written
  again here, step by step, never by the package function a student could simply call), small
  and edge cases included;
- **mistakes**: plausible wrong implementations, each with the hint a teacher would give
  ("did you apply softmax over the last dimension?"). When the student's answer is wrong, the
  first mistake that gives the student's answers on *every* case names the error (on a tiny
  case several mistakes can coincide; across all of them only the real one does);
- **forbidden**: the package or PyTorch functions that *are* the answer. Calling one during
  the check (or holding one in a global name) fails with "solve it without ...".

``run_check`` calls the student's function on every case and returns a one-line success
message or raises ``ExerciseFailed`` (an ``AssertionError``) that says *what* is wrong: not
implemented yet, the wrong type or shape, a named mistake, or the first wrong case with the
expected and received values.

>>> import torch
>>> cases = [Case((torch.tensor([1.0, 3.0]),), torch.tensor([0.25, 0.75]), "x = [1, 3]")]
>>> halves = Mistake("halves", lambda x: x / 2, "you halved x; divide by its sum")
>>> run_check("check_share", lambda x: x / x.sum(), cases, [halves])
'check_share: all 1 cases passed'
>>> run_check("check_share", lambda x: x / 2, cases, [halves])
Traceback (most recent call last):
...
llm_lessons.exercises.checking.ExerciseFailed: check_share, x = [1, 3]: you halved x; divide by its sum
"""

from __future__ import annotations

import contextlib
import importlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch


class ExerciseFailed(AssertionError):
    """A student's function gave a wrong answer; the message says which and, if known, why."""


@dataclass(frozen=True)
class Case:
    """One input (the positional arguments) and the right answer, with a label for messages."""

    args: tuple
    want: Any
    label: str


@dataclass(frozen=True)
class Mistake:
    """A plausible wrong implementation (same signature as the exercise) and the hint for it."""

    name: str
    fn: Callable
    hint: str


def random_int(g: torch.Generator, low: int, high: int) -> int:
    """One integer in [low, high) from the checker's seeded generator (cases are reproducible)."""
    return int(torch.randint(low, high, (), generator=g))


def random_float(g: torch.Generator, low: float, high: float) -> float:
    """One float in [low, high) from the checker's seeded generator."""
    return low + (high - low) * float(torch.rand((), generator=g))


def clone_args(args: tuple) -> tuple:
    """Fresh copies, so neither the student nor a mistake can change the checker's inputs."""
    return tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)


def difference(got: Any, want: Any, atol: float = 1e-5, rtol: float = 1e-4) -> str | None:
    """None when ``got`` equals ``want`` (tensors, numbers, tuples, lists); else what differs.

    >>> difference(torch.ones(2), torch.ones(3))
    'expected shape (3,), got shape (2,)'
    >>> difference(1.0, 1.0 + 1e-9) is None
    True
    """
    if isinstance(want, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(want):
            return f"expected {len(want)} values, got {_describe(got)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            problem = difference(g, w, atol, rtol)
            if problem:
                return f"value {i}: {problem}"
        return None
    if isinstance(want, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"expected a tensor of shape {tuple(want.shape)}, got {_describe(got)}"
        if got.shape != want.shape:
            return f"expected shape {tuple(want.shape)}, got shape {tuple(got.shape)}"
        if want.dtype == torch.bool or got.dtype == torch.bool:
            same = torch.equal(got.bool(), want.bool())
        else:
            g, w = got.detach().double(), want.detach().double()
            infinite = torch.isinf(w) & (g == w)
            same = bool((torch.isclose(g, w, atol=atol, rtol=rtol) | infinite).all())
        return None if same else f"expected\n{want}\ngot\n{got}"
    if isinstance(want, (int, float)):
        try:
            value = float(got)
        except (TypeError, ValueError, RuntimeError):
            return f"expected a number, got {_describe(got)}"
        if math.isinf(want) and value == want:
            return None
        return None if math.isclose(value, want, rel_tol=rtol, abs_tol=atol) else (
            f"expected {want:.6g}, got {value:.6g}")
    return None if got == want else f"expected {want!r}, got {got!r}"


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return f"{type(value).__name__} {value!r}"[:80]


MISSING = object()


def _owner(dotted: str) -> tuple[Any, str]:
    """The object that holds ``dotted``'s last name, and that name: a module, or a class in one
    (``"torch.nn.Transformer.generate_square_subsequent_mask"``)."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):  # the longest importable prefix is the module
        try:
            owner = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:-1]:
            owner = getattr(owner, name)
        return owner, parts[-1]
    raise ImportError(f"no module in {dotted!r}")


def available(names: Sequence[str]) -> tuple[str, ...]:
    """The names this PyTorch has (a newer function is forbidden only where it exists)."""
    found = []
    for dotted in names:
        try:
            owner, attr = _owner(dotted)
        except (ImportError, AttributeError):
            continue
        if hasattr(owner, attr):
            found.append(dotted)
    return tuple(found)


@contextlib.contextmanager
def forbid(names: Sequence[str], exercise: str) -> Iterator[None]:
    """Make each ``"module.attribute"`` in ``names`` raise while the student's code runs."""
    originals = []
    for dotted in names:
        owner, attr = _owner(dotted)
        # A class keeps its raw attribute (a staticmethod stays one when put back); MISSING:
        # inherited, so the class's own copy is removed again afterwards.
        own = vars(owner) if isinstance(owner, type) else None
        original = getattr(owner, attr) if own is None else own.get(attr, MISSING)

        def refuse(*args, _name=dotted, **kwargs):
            raise ExerciseFailed(f"{exercise}: solve it without calling {_name}: that function "
                                 "is the answer, so the check would prove nothing")

        originals.append((owner, attr, original))
        setattr(owner, attr, refuse)
    try:
        yield
    finally:
        for owner, attr, original in reversed(originals):
            if original is MISSING:
                delattr(owner, attr)
            else:
                setattr(owner, attr, original)


def forbidden_globals(fn: Callable, names: Sequence[str]) -> list[str]:
    """The forbidden functions ``fn`` holds under a global name (``from x import answer``)."""
    targets = {}
    for dotted in names:
        owner, attr = _owner(dotted)
        targets[id(getattr(owner, attr))] = dotted
    if id(fn) in targets:  # the answer itself, handed in as the student's function
        return [targets[id(fn)]]
    code = getattr(fn, "__code__", None)
    scope = getattr(fn, "__globals__", {})
    if code is None:
        return []
    used = set(code.co_names)
    for const in code.co_consts:  # nested functions and lambdas
        if hasattr(const, "co_names"):
            used |= set(const.co_names)
    return sorted({targets[id(scope[n])] for n in used if n in scope and id(scope[n]) in targets})


def call(exercise: str, fn: Callable, args: tuple) -> Any:
    """The student's answer on ``args``; a stub's ``NotImplementedError`` is said plainly."""
    try:
        return fn(*clone_args(args))
    except NotImplementedError:
        raise ExerciseFailed(f"{exercise}: your function is not implemented yet (it still "
                             "raises NotImplementedError)") from None
    except ExerciseFailed:
        raise
    except Exception as error:  # noqa: BLE001 - the student's own bug, reported with the case
        raise ExerciseFailed(f"{exercise}: your function raised {type(error).__name__}: {error}"
                             ) from error


def run_check(exercise: str, fn: Callable, cases: Sequence[Case],
              mistakes: Sequence[Mistake] = (), forbidden: Sequence[str] = (),
              atol: float = 1e-5, rtol: float = 1e-4, student: Callable | None = None) -> str:
    """Judge ``fn`` on every case; the first wrong one raises ``ExerciseFailed`` with the reason.

    ``student`` is the function the student wrote, when ``fn`` wraps it (its global names are
    searched for forbidden functions).
    """
    held = forbidden_globals(student or fn, forbidden)
    if held:
        raise ExerciseFailed(f"{exercise}: solve it without calling {', '.join(held)}: that "
                             "function is the answer, so the check would prove nothing")
    with forbid(forbidden, exercise):
        answers = [call(exercise, fn, case.args) for case in cases]
    wrong = [(case, got, problem) for case, got in zip(cases, answers, strict=True)
             if (problem := difference(got, case.want, atol, rtol)) is not None]
    if not wrong:
        return f"{exercise}: all {len(cases)} cases passed"
    case, _, problem = wrong[0]
    for mistake in mistakes:  # the first mistake that gives the student's answer on every case
        if all(_same(mistake, c, got, atol, rtol) for c, got in zip(cases, answers, strict=True)):
            raise ExerciseFailed(f"{exercise}, {case.label}: {mistake.hint}")
    raise ExerciseFailed(f"{exercise}, {case.label}: {problem}")


def _same(mistake: Mistake, case: Case, got: Any, atol: float, rtol: float) -> bool:
    try:
        return difference(got, mistake.fn(*clone_args(case.args)), atol, rtol) is None
    except Exception:  # noqa: BLE001 - a mistake that cannot run on this case does not explain it
        return False
