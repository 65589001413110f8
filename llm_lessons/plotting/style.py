"""The book's figure style and small plotting helpers (presentation layer).

Every helper draws on an Axes it is given (or makes one) and *returns* it, so lessons can
compose figures and tests can inspect them; nothing here calls ``plt.show()``.

>>> ax = line_plot({"train": [3.0, 2.5, 2.1]}, xlabel="step", ylabel="loss")
>>> ax.get_xlabel()
'step'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import contextmanager

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


@contextmanager
def book_style():
    """Apply the house style inside a ``with`` block only.

    ``plt.rc_context`` restores *every* rcParam on exit, including ``interactive``, which the
    notebook's inline backend switches on when it first loads: if that happens inside the
    block, later figures would silently stop displaying. Keep whatever the backend chose.
    """
    interactive = None
    try:
        with plt.rc_context(STYLE):
            yield
            interactive = plt.isinteractive()
    finally:
        if interactive is not None:
            plt.interactive(interactive)


def new_axes(ax: plt.Axes | None = None, figsize: tuple[float, float] | None = None) -> plt.Axes:
    """Return ``ax`` if given, else the Axes of a new figure in the house style."""
    if ax is not None:
        return ax
    with book_style():
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


def labelled_scatter(x: Sequence[float], y: Sequence[float], labels: Sequence[str], *,
                     groups: Sequence[str] | None = None,
                     offsets: Mapping[str, tuple[float, float]] | None = None, logy: bool = False,
                     xlabel: str = "", ylabel: str = "", title: str = "",
                     ax: plt.Axes | None = None, place: bool = False,
                     xlim: tuple[float, float] | None = None,
                     ylim: tuple[float, float] | None = None,
                     legend_loc: str = "best") -> plt.Axes:
    """Scatter points and write each one's label beside it (e.g. model names on a timeline).

    ``groups`` (one name per point) colours the points by group and adds a legend. Labels sit
    alternately above and below their points, which keeps neighbours on a timeline apart;
    ``offsets`` moves chosen labels by (dx, dy) points where they still collide.
    ``place=True`` instead lets :func:`~llm_lessons.plotting.labels.place_labels` choose each
    label's position so that none collides (give the final ``xlim``/``ylim`` then).

    >>> ax = labelled_scatter([2018, 2020], [1e8, 1e11], ["GPT-1", "GPT-3"], logy=True)
    >>> [t.get_text() for t in ax.texts]
    ['GPT-1', 'GPT-3']
    """
    if not len(x) == len(y) == len(labels) or (groups is not None and len(groups) != len(x)):
        raise ValueError(f"x, y, labels (and groups) must be equally long, got {len(x)}, {len(y)}, "
                         f"{len(labels)}" + ("" if groups is None else f", {len(groups)}"))
    ax = new_axes(ax)
    names = [None] if groups is None else list(dict.fromkeys(groups))
    for i, name in enumerate(names):
        idx = [j for j in range(len(x)) if groups is None or groups[j] == name]
        ax.scatter([x[j] for j in idx], [y[j] for j in idx], s=20, color=PALETTE[i % len(PALETTE)],
                   label=name, zorder=3)
    if logy:
        ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if xlim is not None:
        ax.set_xlim(xlim)
    if ylim is not None:
        ax.set_ylim(ylim)
    if groups is not None:
        ax.legend(loc=legend_loc)
    if place:
        from llm_lessons.plotting.labels import place_labels

        place_labels(ax, x, y, labels)
        return ax
    offsets = offsets or {}
    for j, (xj, yj, text) in enumerate(zip(x, y, labels, strict=True)):
        dx, dy = offsets.get(text, (3, 4 if j % 2 == 0 else -4))
        ax.annotate(text, (xj, yj), xytext=(dx, dy), textcoords="offset points", fontsize=7,
                    ha="left" if dx >= 0 else "right", va="bottom" if dy >= 0 else "top")
    return ax


def as_numpy(x):
    """A torch tensor, NumPy array or nested list as a float64 NumPy array (detached, on CPU)."""
    import numpy as np

    if hasattr(x, "detach"):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def heatmap(matrix, ax: plt.Axes | None = None, *, xlabels: Sequence[str] | None = None,
            ylabels: Sequence[str] | None = None, xlabel: str = "", ylabel: str = "",
            title: str = "", cmap: str = "viridis", vmin: float | None = None,
            vmax: float | None = None, colorbar: bool = True, annotate: bool = False,
            fmt: str = "{:.2f}") -> plt.Axes:
    """Draw a 2-D matrix (rows down, columns across) as an image and return the Axes.

    ``annotate=True`` writes each value in its cell (for small matrices a reader checks by hand).

    >>> heatmap([[1, 0], [0.5, 0.5]], xlabels=["a", "b"]).get_xticklabels()[1].get_text()
    'b'
    """
    m = as_numpy(matrix)
    if m.ndim != 2:
        raise ValueError(f"heatmap needs a 2-D matrix, got shape {m.shape}")
    for labels, n, what in ((xlabels, m.shape[1], "xlabels (columns)"),
                            (ylabels, m.shape[0], "ylabels (rows)")):
        if labels is not None and len(labels) != n:
            raise ValueError(f"{len(labels)} {what} for a matrix of shape {m.shape}")
    ax = new_axes(ax)
    im = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
    ax.grid(False)
    if xlabels is not None:
        ax.set_xticks(range(m.shape[1]), labels=list(xlabels), rotation=90)
    if ylabels is not None:
        ax.set_yticks(range(m.shape[0]), labels=list(ylabels))
    if annotate:
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                r, g, b, _ = im.cmap(im.norm(m[i, j]))
                dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5  # perceived brightness of the cell
                ax.text(j, i, fmt.format(m[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if dark else "black")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    return ax
