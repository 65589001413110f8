"""Published sizes of well-known language models, and the arithmetic of scale.

The table ``resources/model_sizes.csv`` holds one row per model: its name, organisation, the
month its paper or report first appeared (``YYYY-MM``), its parameter count, the number of
tokens it was pre-trained on (blank where the paper does not state one number), whether its
weights are ``open``, ``on request`` or ``closed``, a source (an arXiv id or a URL) and notes.
Every number is the one the source states; the book's chapter 1 cites each row.

>>> rows = load_model_sizes()
>>> chinchilla = next(r for r in rows if r.model == "Chinchilla")
>>> chinchilla.parameters, chinchilla.training_tokens
(70000000000.0, 1400000000000.0)
>>> round(chinchilla.tokens_per_parameter)
20

The same module holds the small formulas the chapter uses: a log-linear growth fit, the
``6 N D`` estimate of training compute, and the parameter count of a GPT-style Transformer.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from llm_lessons.files import resource_path
from llm_lessons.validation import check_int

#: Columns of ``model_sizes.csv``, in order.
COLUMNS = ("model", "organisation", "date", "parameters", "training_tokens", "weights", "source",
           "notes")
#: Allowed values of the ``weights`` column.
WEIGHTS = ("open", "on request", "closed")
#: Chinchilla's rule of thumb: a compute-optimal model sees about 20 tokens per parameter.
CHINCHILLA_TOKENS_PER_PARAMETER = 20.0

_DATE = re.compile(r"^(\d{4})-(\d{2})$")


def decimal_year(date: str) -> float:
    """Turn ``'YYYY-MM'`` into a year with a fraction, placing the point mid-month.

    >>> round(decimal_year("2020-01"), 4), round(decimal_year("2020-12"), 4)
    (2020.0417, 2020.9583)
    """
    match = _DATE.match(date) if isinstance(date, str) else None
    if match is None:
        raise ValueError(f"date must be a string 'YYYY-MM', got {date!r}")
    year, month = int(match[1]), int(match[2])
    if not 1 <= month <= 12:
        raise ValueError(f"month must be 01..12, got {date!r}")
    return year + (month - 0.5) / 12


@dataclass(frozen=True)
class ModelSize:
    """One row of the table: a model and the sizes its paper states."""

    model: str
    organisation: str
    date: str  # 'YYYY-MM' of the first paper or report
    parameters: float
    training_tokens: float | None  # None where the source gives no single number
    weights: str  # one of WEIGHTS
    source: str  # 'arXiv:NNNN.NNNNN' or a URL
    notes: str = ""

    @property
    def year(self) -> float:
        """The date as a decimal year (mid-month)."""
        return decimal_year(self.date)

    @property
    def tokens_per_parameter(self) -> float | None:
        """Training tokens divided by parameters, or None when the tokens are unknown."""
        return None if self.training_tokens is None else self.training_tokens / self.parameters


def _positive(value: str, column: str, where: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{where}: {column} must be a number, got {value!r}") from None
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{where}: {column} must be a positive number, got {value!r}")
    return number


def parse_model_sizes(text: str) -> list[ModelSize]:
    """Parse and check the CSV text of the table; rows come back sorted by date, then name.

    >>> text = "\\n".join([",".join(COLUMNS), "Tiny,Us,2026-01,8e5,,open,this book,"])
    >>> parse_model_sizes(text)[0].parameters
    800000.0
    """
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise ValueError(f"the header must be {','.join(COLUMNS)}; got {reader.fieldnames}")
    rows = []
    for line, raw in enumerate(reader, start=2):
        if None in raw or any(v is None for v in raw.values()):
            raise ValueError(f"line {line}: expected {len(COLUMNS)} fields, got a different number")
        where = f"line {line} ({raw['model'] or 'unnamed'})"
        if not raw["model"].strip():
            raise ValueError(f"{where}: the model name is empty")
        if not raw["source"].strip():
            raise ValueError(f"{where}: every row needs a source (an arXiv id or a URL)")
        if raw["weights"] not in WEIGHTS:
            raise ValueError(f"{where}: weights must be one of {WEIGHTS}, got {raw['weights']!r}")
        try:
            decimal_year(raw["date"])
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
        tokens = raw["training_tokens"].strip()
        rows.append(ModelSize(
            model=raw["model"].strip(), organisation=raw["organisation"].strip(), date=raw["date"],
            parameters=_positive(raw["parameters"], "parameters", where),
            training_tokens=_positive(tokens, "training_tokens", where) if tokens else None,
            weights=raw["weights"], source=raw["source"].strip(), notes=raw["notes"].strip(),
        ))
    names = [r.model for r in rows]
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"model names must be unique; repeated: {repeated}")
    return sorted(rows, key=lambda r: (r.date, r.model))


def load_model_sizes() -> list[ModelSize]:
    """The bundled table of published model sizes (read offline), sorted by date."""
    text = resource_path("model_sizes.csv").read_text(encoding="utf-8")
    return parse_model_sizes(text)


@dataclass(frozen=True)
class GrowthFit:
    """A least-squares line through log10(value) against the year."""

    orders_per_year: float  # slope: powers of ten gained per year
    intercept: float  # log10(value) at year 0 (only meaningful together with the slope)

    @property
    def doublings_per_year(self) -> float:
        """How many times the value doubles in a year: slope / log10(2)."""
        return self.orders_per_year / math.log10(2)

    @property
    def doubling_time_months(self) -> float:
        """Months for the value to double (infinite if it does not grow)."""
        return math.inf if self.orders_per_year <= 0 else 12 / self.doublings_per_year

    def predict(self, year: float) -> float:
        """The fitted value at ``year``."""
        return 10 ** (self.intercept + self.orders_per_year * year)


def fit_log_growth(years: Sequence[float], values: Sequence[float]) -> GrowthFit:
    """Fit ``log10(value) = intercept + slope * year`` by least squares.

    A quantity that doubles every year gains log10(2) ~ 0.301 orders of magnitude a year:

    >>> fit = fit_log_growth([2018, 2019, 2020], [1.0, 2.0, 4.0])
    >>> round(fit.orders_per_year, 3), round(fit.doublings_per_year, 6)
    (0.301, 1.0)
    """
    x = np.asarray(years, dtype=float)
    y = np.asarray(values, dtype=float)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"years and values must be 1-D and equally long, got {x.shape} and {y.shape}")
    if x.size < 2 or np.ptp(x) == 0:
        raise ValueError(f"need at least two different years to fit a slope, got {x.tolist()}")
    if not np.all(y > 0):
        raise ValueError(f"values must be positive to take a logarithm, got {y.tolist()}")
    logy = np.log10(y)
    slope = float(np.sum((x - x.mean()) * (logy - logy.mean())) / np.sum((x - x.mean()) ** 2))
    return GrowthFit(orders_per_year=slope, intercept=float(logy.mean() - slope * x.mean()))


def training_flops(parameters: float, tokens: float) -> float:
    """Training compute by the usual estimate ``6 N D``: 2 FLOPs per parameter per token for the
    forward pass and 4 for the backward pass (attention's own FLOPs are ignored).

    >>> f"{training_flops(175e9, 300e9):.3g}"  # GPT-3; its paper states 3.14e23
    '3.15e+23'
    """
    if parameters <= 0 or tokens <= 0:
        raise ValueError(f"parameters and tokens must be positive, got {parameters} and {tokens}")
    return 6.0 * parameters * tokens


def gpt_param_count(n_layer: int, d_model: int, vocab_size: int, block_size: int, *,
                    exact: bool = False) -> int:
    """Parameters of a GPT-2-style decoder (4x MLP, tied input/output embeddings).

    Each block holds 4 d^2 weights in attention (query, key, value, output) and 8 d^2 in the
    MLP (d -> 4d -> d), so the weights total ``12 L d^2 + V d + T d`` (blocks, token and
    position embeddings). ``exact=True`` adds what that leaves out: per block 9d biases and two
    LayerNorms (4d), plus the final LayerNorm (2d). GPT-2 small (L=12, d=768, V=50257, T=1024):

    >>> gpt_param_count(12, 768, 50257, 1024, exact=True)
    124439808
    >>> gpt_param_count(4, 128, 65, 64)  # a nano GPT for character-level text
    802944
    """
    sizes = {"n_layer": n_layer, "d_model": d_model, "vocab_size": vocab_size, "block_size": block_size}
    L, d, V, T = (check_int(value, name, low=1) for name, value in sizes.items())
    count = 12 * L * d * d + V * d + T * d
    if exact:
        count += 13 * L * d + 2 * d
    return count
