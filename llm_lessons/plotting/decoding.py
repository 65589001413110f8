"""What a decoding filter keeps of a next-token distribution (section 4.3)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt

from llm_lessons.plotting.style import PALETTE, as_numpy, new_axes


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

    z, f = as_numpy(logits), as_numpy(filtered)
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
