"""Reliability diagrams, intervals and evaluation windows (section 2.4)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt

from llm_lessons.plotting.style import PALETTE, as_numpy, new_axes


def plot_reliability(bins, ax: plt.Axes | None = None, *, title: str = "",
                     label: str = "model") -> plt.Axes:
    """Reliability diagram of :class:`llm_lessons.evaluation.calibration.ReliabilityBins`: per confidence
    bin, the accuracy (bars) against the diagonal a calibrated model would follow; the gap to
    the bin's mean confidence is hatched, the bins' shares of the predictions a thin line."""
    import numpy as np

    ax = new_axes(ax, figsize=(4.6, 4.2))
    edges, count = as_numpy(bins.edges), as_numpy(bins.count)
    acc, conf = as_numpy(bins.accuracy), as_numpy(bins.confidence)
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
    :func:`llm_lessons.evaluation.likelihood.token_windows`): the tokens it reads as a light bar, the tokens
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
