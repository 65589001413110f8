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
                     ax: plt.Axes | None = None) -> plt.Axes:
    """Scatter points and write each one's label beside it (e.g. model names on a timeline).

    ``groups`` (one name per point) colours the points by group and adds a legend. Labels sit
    alternately above and below their points, which keeps neighbours on a timeline apart;
    ``offsets`` moves chosen labels by (dx, dy) points where they still collide.

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
    offsets = offsets or {}
    for j, (xj, yj, text) in enumerate(zip(x, y, labels, strict=True)):
        dx, dy = offsets.get(text, (3, 4 if j % 2 == 0 else -4))
        ax.annotate(text, (xj, yj), xytext=(dx, dy), textcoords="offset points", fontsize=7,
                    ha="left" if dx >= 0 else "right", va="bottom" if dy >= 0 else "top")
    if logy:
        ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if groups is not None:
        ax.legend()
    return ax


# ---- attention and positional-encoding figures (sections 4.1, 4.2) ----

def _as_numpy(x):
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
    m = _as_numpy(matrix)
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


def plot_attention(weights, tokens: Sequence[str], ax: plt.Axes | None = None, *,
                   query_tokens: Sequence[str] | None = None, title: str = "",
                   annotate: bool = False, colorbar: bool = True) -> plt.Axes:
    """Heatmap of one head's attention weights (T, S): row = query token, column = key token.

    ``tokens`` label the S keys (and the queries too, unless ``query_tokens`` is given, as with
    a key-value cache or cross-attention). Colours run from 0 to 1, the range of a weight.

    >>> ax = plot_attention([[1.0, 0.0], [0.3, 0.7]], ["I", "am"])
    >>> ax.get_ylabel()
    'query'
    """
    w = _as_numpy(weights)
    if w.ndim != 2:
        raise ValueError(f"plot_attention takes one head's weights (T, S), got shape {w.shape}")
    rows = list(tokens) if query_tokens is None else list(query_tokens)
    if len(tokens) != w.shape[1] or len(rows) != w.shape[0]:
        raise ValueError(f"weights of shape {w.shape} need {w.shape[0]} query and {w.shape[1]} key "
                         f"tokens, got {len(rows)} and {len(tokens)}")
    return heatmap(w, ax, xlabels=tokens, ylabels=rows, xlabel="key", ylabel="query", title=title,
                   cmap="Blues", vmin=0.0, vmax=1.0, colorbar=colorbar, annotate=annotate)


def plot_attention_heads(weights, tokens: Sequence[str], *, ncols: int = 4,
                         titles: Sequence[str] | None = None, size: float = 2.6):
    """One small attention heatmap per head of a layer (nh, T, S); returns the Axes array.

    >>> axes = plot_attention_heads([[[1.0, 0.0], [0.5, 0.5]]] * 2, ["a", "b"], ncols=2)
    >>> [ax.get_title() for ax in axes.flat]
    ['head 0', 'head 1']
    """
    import numpy as np

    w = _as_numpy(weights)
    if w.ndim != 3:
        raise ValueError(f"plot_attention_heads takes one layer's weights (nh, T, S), got {w.shape}")
    nh = w.shape[0]
    titles = [f"head {h}" for h in range(nh)] if titles is None else list(titles)
    ncols = min(ncols, nh)
    nrows = -(-nh // ncols)
    with book_style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False,
                                 layout="constrained")
    for h, ax in enumerate(axes.flat):
        if h >= nh:
            ax.set_axis_off()
            continue
        plot_attention(w[h], tokens, ax, title=titles[h], colorbar=False)
        if h % ncols:
            ax.set_ylabel("")
            ax.set_yticklabels([])
        if h < nh - ncols:
            ax.set_xlabel("")
    return np.asarray(axes)


def plot_encoding_dimensions(pe, dims: Sequence[int], start: int = 0, ax: plt.Axes | None = None,
                             *, title: str = "") -> plt.Axes:
    """Plot columns ``dims`` of a positional-encoding table (positions, d) against position.

    ``start`` is the position of the table's first row (to show a window of a long table).

    >>> import numpy as np
    >>> plot_encoding_dimensions(np.zeros((5, 4)), dims=[0, 1]).get_xlabel()
    'position'
    """
    import numpy as np

    table = _as_numpy(pe)
    if table.ndim != 2:
        raise ValueError(f"expected an encoding table (positions, d), got shape {table.shape}")
    bad = [d for d in dims if not 0 <= d < table.shape[1]]
    if bad:
        raise ValueError(f"dimensions {bad} out of range for a table with {table.shape[1]} columns")
    ax = new_axes(ax)
    pos = np.arange(start, start + table.shape[0])
    for d in dims:
        ax.plot(pos, table[:, d], label=f"dim {d} ({'sin' if d % 2 == 0 else 'cos'})")
    ax.set(xlabel="position", ylabel="encoding value", title=title, ylim=(-1.1, 1.1))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: the curves fill the box
    return ax


def bertviz_view(weights, tokens: Sequence[str], kind: str = "head", decimals: int = 3):
    """A bertviz ``head_view`` or ``model_view`` of attention (L, nh, T, T), as displayable HTML.

    Weights are rounded to ``decimals`` (in float64, so the page stays small and the same on
    every machine). ``model_view`` uses bertviz's light mode, to match the page. The view loads
    require.js and d3 from a CDN when the page is opened.
    """
    import torch
    from bertviz import head_view, model_view

    w = torch.as_tensor(_as_numpy(weights))
    if w.dim() == 3:
        w = w[None]  # (nh, T, T) -> (1, nh, T, T): a single layer
    if w.dim() != 4 or w.shape[-1] != w.shape[-2] or w.shape[-1] != len(tokens):
        raise ValueError(f"expected self-attention weights (L, nh, T, T) for {len(tokens)} tokens, "
                         f"got shape {tuple(w.shape)}")
    layers = tuple(layer[None].round(decimals=decimals) for layer in w)  # L x (1, nh, T, T)
    if kind == "head":
        return head_view(layers, list(tokens), html_action="return")
    if kind == "model":  # bertviz draws model_view on black by default; match the light page
        return model_view(layers, list(tokens), display_mode="light", html_action="return")
    raise ValueError(f"kind must be 'head' or 'model', got {kind!r}")


# ---- decoding figures (section 4.3) ----

def readable_token(token: str) -> str:
    """A token as a tick label: spaces shown as ␣ and newlines as \\n, the rest unchanged.

    >>> readable_token(" "), readable_token("\\n"), readable_token(" the")
    ('␣', '\\\\n', '␣the')
    """
    return token.replace("\n", "\\n").replace(" ", "␣")


def plot_distribution_filter(logits, filtered, labels: Sequence[str] | None = None, *, top: int = 20,
                             title: str = "", ax: plt.Axes | None = None) -> plt.Axes:
    """One next-token distribution before and after a decoding filter, most likely tokens first.

    Grey bars: softmax(``logits``), the model's distribution. Coloured bars: softmax(``filtered``),
    what the next token is drawn from: removed tokens (``-inf``) lose their bar and their label
    turns grey; the kept ones are renormalised, so their bars grow. Only the ``top`` most
    likely tokens (by the model) are drawn.

    >>> ax = plot_distribution_filter([2.0, 1.0, 0.0], [2.0, 1.0, float("-inf")], ["a", "b", "c"])
    >>> [round(float(p.get_height()), 3) for p in ax.patches][3:]  # after: c removed, a, b renormalised
    [0.731, 0.269, 0.0]
    """
    import numpy as np

    z, f = _as_numpy(logits), _as_numpy(filtered)
    if z.ndim != 1 or z.shape != f.shape:
        raise ValueError(f"logits and filtered must be 1-D and of the same length (V,), got {z.shape} "
                         f"and {f.shape}")
    if labels is not None and len(labels) != len(z):
        raise ValueError(f"{len(labels)} labels for {len(z)} tokens")
    before = np.exp(z - z.max())
    before /= before.sum()
    after = np.exp(f - f.max())
    after /= after.sum()
    order = np.argsort(-before, kind="stable")[:top]
    ax = new_axes(ax)
    x = np.arange(len(order))
    ax.bar(x - 0.2, before[order], width=0.4, color="0.75", label="model")
    ax.bar(x + 0.2, after[order], width=0.4, color=PALETTE[0], label="after filter (renormalised)")
    names = [readable_token(labels[i]) if labels is not None else str(i) for i in order]
    ax.set_xticks(x, labels=names)
    for tick, i in zip(ax.get_xticklabels(), order, strict=True):
        if not np.isfinite(f[i]):
            tick.set_color("0.6")
    kept = int(np.isfinite(f).sum())
    ax.set(ylabel="probability", title=title or f"{kept} of {len(z)} tokens kept")
    ax.legend(loc="upper right")
    return ax


def plot_history(history, references: Mapping[str, float] | None = None, *, title: str = "",
                 minibatch: bool = False, ax: plt.Axes | None = None) -> plt.Axes:
    """Train and validation loss of a :class:`llm_lessons.training.History` against the step.

    ``references`` draws labelled horizontal lines (e.g. the uniform, unigram and bigram losses);
    ``minibatch=True`` adds every step's minibatch loss as a thin grey line behind the curves.

    >>> from types import SimpleNamespace
    >>> h = SimpleNamespace(steps=[0, 100], train_loss=[4.2, 2.5], val_loss=[4.2, 2.6])
    >>> [line.get_label() for line in plot_history(h, {"bigram": 2.48}).get_lines()][:2]
    ['train', 'validation']
    """
    ax = new_axes(ax)
    if minibatch:
        ax.plot(range(len(history.step_loss)), history.step_loss, color="0.75", linewidth=0.5,
                label="minibatch (each step)")
    ax.plot(history.steps, history.train_loss, label="train")
    ax.plot(history.steps, history.val_loss, label="validation")
    if references:
        reference_lines(ax, references)
    ax.set(xlabel="step", ylabel="loss (nats per token)", title=title)
    ax.legend(loc="center")
    return ax


class LiveLossPlot:
    """A ``train(..., callback=LiveLossPlot(...))`` callback that redraws the loss curves in place.

    It shows one figure in the notebook and updates it at every evaluation (an IPython display
    handle), so readers watch the curves fall during training. Outside IPython it draws nothing.
    """

    def __init__(self, references: Mapping[str, float] | None = None, title: str = ""):
        from matplotlib.figure import Figure

        self.references, self.title = references, title
        with book_style():
            self.figure = Figure(figsize=STYLE["figure.figsize"], dpi=STYLE["figure.dpi"])
            self.ax = self.figure.add_subplot()
        self.handle = None

    def __call__(self, history) -> None:
        try:
            from IPython.display import display
        except ImportError:
            return None
        self.ax.clear()
        with book_style():
            plot_history(history, self.references, title=self.title, ax=self.ax)
        if self.handle is None:
            self.handle = display(self.figure, display_id=True)
        else:
            self.handle.update(self.figure)
        return None


def plot_reliability(bins, ax: plt.Axes | None = None, *, title: str = "",
                     label: str = "model") -> plt.Axes:
    """Reliability diagram of :class:`llm_lessons.calibration.ReliabilityBins`: per confidence
    bin, the accuracy (bars) against the diagonal a calibrated model would follow; the gap to
    the bin's mean confidence is hatched, the bins' shares of the predictions a thin line."""
    import numpy as np

    ax = new_axes(ax, figsize=(4.6, 4.2))
    edges, count = _as_numpy(bins.edges), _as_numpy(bins.count)
    acc, conf = _as_numpy(bins.accuracy), _as_numpy(bins.confidence)
    m = len(edges) - 1
    if len(count) > m and count[m] > 0:  # fold the "exactly 1" bin into the last drawn bin
        c = count[m - 1] + count[m]
        acc, conf = acc.copy(), conf.copy()
        acc[m - 1] = (acc[m - 1] * count[m - 1] + acc[m] * count[m]) / c
        conf[m - 1] = (conf[m - 1] * count[m - 1] + conf[m] * count[m]) / c
        count = count.copy()
        count[m - 1] = c
    keep = count[:m] > 0
    left, width = edges[:-1][keep], (edges[1:] - edges[:-1])[keep]
    ax.bar(left, acc[:m][keep], width=width, align="edge", color=PALETTE[0], alpha=0.8,
           edgecolor="white", label=f"{label}: accuracy")
    lo, hi = np.minimum(acc, conf)[:m][keep], np.maximum(acc, conf)[:m][keep]
    ax.bar(left, hi - lo, bottom=lo, width=width, align="edge", fill=False, hatch="////",
           edgecolor=PALETTE[1], linewidth=0.8, label="gap to mean confidence")
    ax.plot([0, 1], [0, 1], color="black", lw=1, ls="--", label="calibrated")
    share = count[:m] / max(count[:m].sum(), 1)
    ax.plot((edges[:-1] + edges[1:])[keep] / 2, share[keep], color=PALETTE[2], lw=1,
            marker=".", label="share of predictions")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (top probability)", ylabel="accuracy",
           title=title)
    ax.legend(loc="upper left")
    return ax


def plot_intervals(estimates: Mapping[str, float], low: Mapping[str, float], high: Mapping[str, float],
                   ax: plt.Axes | None = None, *, truth: Mapping[str, float] | None = None,
                   xlabel: str = "", title: str = "") -> plt.Axes:
    """Horizontal point-and-interval plot (e.g. strengths with bootstrap intervals), best on top;
    ``truth`` adds known true values (e.g. of a simulation) as open markers."""
    names = sorted(estimates, key=estimates.get)
    ax = new_axes(ax, figsize=(5.6, 0.5 * len(names) + 1.2))
    y = list(range(len(names)))
    est = [estimates[n] for n in names]
    err = [[estimates[n] - low[n] for n in names], [high[n] - estimates[n] for n in names]]
    ax.errorbar(est, y, xerr=err, fmt="o", color=PALETTE[0], capsize=4, label="estimate, interval")
    if truth is not None:
        ax.plot([truth[n] for n in names], y, "D", mfc="none", color=PALETTE[1], label="true value")
    ax.set_yticks(y, names)
    ax.set(xlabel=xlabel, title=title)
    ax.legend(loc="lower right")
    return ax


def plot_token_windows(windows: Sequence, n_tokens: int, ax: plt.Axes | None = None, *,
                       title: str = "") -> plt.Axes:
    """One row per evaluation window (objects with ``start``, ``stop``, ``n_scored``, e.g. from
    :func:`llm_lessons.metrics.token_windows`): the tokens it reads as a light bar, the tokens
    it scores as a dark bar, on a shared token-position axis."""
    ax = new_axes(ax, figsize=(6.4, 0.32 * len(windows) + 1.1))
    for row, w in enumerate(windows):
        y = len(windows) - 1 - row
        ax.barh(y, w.stop - w.start, left=w.start - 0.5, height=0.7, color=PALETTE[5], alpha=0.45,
                label="read (input)" if row == 0 else None)
        ax.barh(y, w.n_scored, left=w.stop - w.n_scored + 0.5, height=0.35, color=PALETTE[0],
                label="scored (predicted)" if row == 0 else None)
    ax.set_xlim(-1, n_tokens)
    ax.set_yticks(range(len(windows)), [f"window {len(windows) - i}" for i in range(len(windows))])
    ax.set(xlabel="token position", title=title)
    ax.grid(axis="y", visible=False)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25 - 0.6 / max(len(windows), 1)), ncol=2)
    return ax
