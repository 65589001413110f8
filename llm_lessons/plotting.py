"""The book's figure style and small plotting helpers (presentation layer).

Every helper draws on an Axes it is given (or makes one) and *returns* it, so lessons can
compose figures and tests can inspect them; nothing here calls ``plt.show()``.

>>> ax = line_plot({"train": [3.0, 2.5, 2.1]}, xlabel="step", ylabel="loss")
>>> ax.get_xlabel()
'step'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib
import matplotlib.pyplot as plt

#: Colours used across the book (colour-blind-safe Okabe–Ito palette).
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]

STYLE = {
    "figure.dpi": 90,
    "savefig.dpi": 90,
    "figure.figsize": (6.4, 3.6),
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "font.size": 10,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "image.cmap": "viridis",
}


def use_book_style() -> None:
    """Apply the book's house style to every later matplotlib figure."""
    plt.rcParams.update(STYLE)


def new_axes(ax: plt.Axes | None = None, figsize: tuple[float, float] | None = None) -> plt.Axes:
    """Return ``ax`` if given, else the Axes of a new figure in the house style."""
    if ax is not None:
        return ax
    with plt.rc_context(STYLE):
        _, ax = plt.subplots(figsize=figsize)
    return ax


def line_plot(series: Mapping[str, Sequence[float]], x: Sequence[float] | None = None, *,
              xlabel: str = "", ylabel: str = "", title: str = "", logy: bool = False,
              ax: plt.Axes | None = None) -> plt.Axes:
    """Plot named series against a shared x (0, 1, 2, ... by default) and return the Axes."""
    ax = new_axes(ax)
    for name, ys in series.items():
        xs = list(x) if x is not None else list(range(len(ys)))
        ax.plot(xs, list(ys), marker="o" if len(ys) <= 12 else None, label=name)
    if logy:
        ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if len(series) > 1:
        ax.legend()
    return ax


def reference_lines(ax: plt.Axes, levels: Mapping[str, float]) -> plt.Axes:
    """Draw labelled horizontal reference lines (e.g. uniform / unigram / bigram loss)."""
    for i, (name, y) in enumerate(levels.items()):
        ax.axhline(y, color="0.45", linestyle=(0, (4, 2 + i)), linewidth=1)
        ax.annotate(f"{name} {y:.2f}", xy=(1.0, y), xycoords=("axes fraction", "data"),
                    xytext=(-4, 2), textcoords="offset points", ha="right", va="bottom",
                    fontsize=8, color="0.3")
    return ax
